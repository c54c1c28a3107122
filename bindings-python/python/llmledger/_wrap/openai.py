"""Wrapping the official ``openai`` SDK clients: ``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``,
``AsyncAzureOpenAI``, and the same classes pointed at xAI or another OpenAI-compatible endpoint.

Which endpoints are tracked, and the provider behind a base URL, are core's (``Client.classify``); the
tracked ones are chat completions, responses, embeddings, images, audio transcriptions / translations and
speech. Everything else passes through.
"""

from __future__ import annotations

from typing import Any, Dict

import openai
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse, AsyncAPIResponse

from ._base import Spec


class OpenAISpec(Spec):
    sdk = "openai"
    stream_types = (openai.Stream,)
    async_stream_types = (openai.AsyncStream,)
    raw_types = (LegacyAPIResponse, APIResponse, AsyncAPIResponse)
    api_error = openai.APIError

    def describe(self, client: Any) -> Dict[str, Any]:
        azure = isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI))
        # An Azure client built with `azure_deployment=` sends every call to that deployment.
        return {"azure": azure, "azure_deployment": getattr(client, "_azure_deployment", None) if azure else None}


SPEC = OpenAISpec()


def is_async(client: Any) -> bool:
    return isinstance(client, openai.AsyncOpenAI)
