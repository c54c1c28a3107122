"""Wrapping the official ``openai`` SDK clients: ``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``,
``AsyncAzureOpenAI``, and the same classes pointed at xAI or another OpenAI-compatible endpoint.

Tracked endpoints: ``/chat/completions`` (``create``, ``parse``, ``stream``), ``/responses`` (``create``,
``parse``, ``stream``), ``/embeddings``, ``/images/generations`` and ``/images/edits``,
``/audio/transcriptions`` and ``/audio/translations``, ``/audio/speech``. Everything else passes through.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import openai
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse, AsyncAPIResponse

from .._native import provider_for_base_url
from ._base import Spec

_APIS = {
    "/chat/completions": "chat_completions",
    "/responses": "responses",
    "/embeddings": "embeddings",
    "/images/generations": "images",
    "/images/edits": "images",
    "/audio/transcriptions": "audio_transcription",
    "/audio/translations": "audio_transcription",
    "/audio/speech": "audio_speech",
}


class OpenAISpec(Spec):
    stream_types = (openai.Stream,)
    async_stream_types = (openai.AsyncStream,)
    raw_types = (LegacyAPIResponse, APIResponse, AsyncAPIResponse)
    api_error = openai.APIError

    def classify(self, options: Any) -> Optional[str]:
        if options.method.lower() != "post":
            return None
        url = options.url.split("?", 1)[0]
        # Azure's client prefixes deployments itself in `_build_request`; a full URL ends with the path.
        api = _APIS.get(url)
        if api is None and "/deployments/" in url:
            api = _APIS.get("/" + url.split("/deployments/", 1)[1].split("/", 1)[-1])
        return api

    def inject_usage(self, api: str, options: Any, stream: bool) -> Tuple[Any, bool]:
        if not stream or api != "chat_completions" or not isinstance(options.json_data, dict):
            return options, False
        data = options.json_data
        stream_options = data.get("stream_options")
        if isinstance(stream_options, dict) and stream_options.get("include_usage") is True:
            return options, False
        stream_options = dict(stream_options) if isinstance(stream_options, dict) else {}
        stream_options["include_usage"] = True
        return options.model_copy(update={"json_data": {**data, "stream_options": stream_options}}), True


SPEC = OpenAISpec()


def detect_provider(client: Any) -> str:
    """``azure`` for the Azure clients, else what the base URL's host says (core's rule: xAI, Azure hosts,
    Gemini's OpenAI endpoint, otherwise ``openai``)."""
    if isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        return "azure"
    return provider_for_base_url(str(getattr(client, "base_url", "") or ""))


def is_async(client: Any) -> bool:
    return isinstance(client, openai.AsyncOpenAI)
