"""Wrapping the official ``anthropic`` SDK clients: ``Anthropic``, ``AsyncAnthropic`` and the Bedrock ones.

Tracked (core's ``Client.classify``): ``POST /v1/messages`` (``messages.create`` streamed or not, the
``messages.stream`` helper, and ``beta.messages``). ``messages.count_tokens`` and everything else pass
through untracked.
"""

from __future__ import annotations

from typing import Any, Dict

import anthropic
from anthropic._response import APIResponse, AsyncAPIResponse

from ._base import Spec


class AnthropicSpec(Spec):
    sdk = "anthropic"
    stream_types = (anthropic.Stream,)
    async_stream_types = (anthropic.AsyncStream,)
    raw_types = (APIResponse, AsyncAPIResponse)
    api_error = anthropic.APIError

    def describe(self, client: Any) -> Dict[str, Any]:
        # `AnthropicBedrock` / `AsyncAnthropicBedrock` live in an optional submodule; match by class name.
        return {"bedrock": "Bedrock" in type(client).__name__}


SPEC = AnthropicSpec()


def is_async(client: Any) -> bool:
    return isinstance(client, anthropic.AsyncAnthropic) or type(client).__name__.startswith("Async")
