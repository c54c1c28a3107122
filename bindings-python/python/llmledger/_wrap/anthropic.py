"""Wrapping the official ``anthropic`` SDK clients: ``Anthropic`` and ``AsyncAnthropic``.

Tracked: ``POST /v1/messages`` (``messages.create`` streamed or not, the ``messages.stream`` helper, and
``beta.messages``). ``messages.count_tokens`` and everything else pass through untracked.
"""

from __future__ import annotations

from typing import Any, Optional

import anthropic
from anthropic._response import APIResponse, AsyncAPIResponse

from ._base import Spec


class AnthropicSpec(Spec):
    stream_types = (anthropic.Stream,)
    async_stream_types = (anthropic.AsyncStream,)
    raw_types = (APIResponse, AsyncAPIResponse)
    api_error = anthropic.APIError

    def classify(self, options: Any) -> Optional[str]:
        if options.method.lower() != "post":
            return None
        return "messages" if options.url.split("?", 1)[0].rstrip("/") == "/v1/messages" else None


SPEC = AnthropicSpec()


def detect_provider(client: Any) -> str:
    name = type(client).__name__
    return "bedrock" if "Bedrock" in name else "anthropic"


def is_async(client: Any) -> bool:
    return isinstance(client, anthropic.AsyncAnthropic) or type(client).__name__.startswith("Async")
