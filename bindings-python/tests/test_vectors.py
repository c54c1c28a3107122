"""The shared vectors (tests/vectors/) through the wrapped official SDKs: the mock server replays each case's
recorded response or stream (`x-mock-case: <name>`), and `_token_usage` must match the case's expected usage
and exact cost. Gemini and Bedrock cases are not reachable through the openai/anthropic SDKs (the Rust
vector runner covers them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Optional

import anthropic
import openai
import pytest

import llmledger
from conftest import MESSAGES, load_vectors

SDK_PROVIDERS = {"openai", "azure", "xai", "anthropic"}
# Usage fields `llmledger.Usage` exposes; the others in a case's `expected.usage` are checked by the Rust runner.
USAGE_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "image_input_tokens",
    "image_output_tokens",
    "service_tier",
    "usage_source",
    "flags",
)


def skip_reason(case: Dict[str, Any]) -> Optional[str]:
    expected = case.get("expected", {})
    streamed = "stream" in case or "stream_file" in case
    if "response_raw" in case:
        return "body is not a JSON object: the SDK itself rejects it before any tracking"
    if "error_code" in expected and streamed:
        return "malformed stream: the SDK raises on it; the Rust runner checks the error code"
    if case.get("aborted"):
        return "abandonment after the last event cannot be expressed through the SDK (see test_abandoned_stream)"
    if "prompt_estimate" in case:
        return "the wrapper estimates the prompt from the request it sent, not from the case's number"
    if "prices" in case:
        return "priced with the case's own price file; the tracker fixture uses the embedded prices"
    if (case.get("price_options") or {}).get("batch"):
        return "batch pricing: batch calls do not go through the wrapped clients"
    request = case.get("request")
    if "error_code" in expected and (
        (case["api"] == "images" and request is None) or (case["api"] == "audio_speech" and "input" not in (request or {}))
    ):
        return "a missing request field: the SDK always sends a complete request"
    return None


def params() -> List[Any]:
    out = []
    for case in load_vectors():
        if case.get("provider") not in SDK_PROVIDERS:
            continue
        reason = skip_reason(case)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(case, id=case["name"], marks=marks))
    return out


def call(case: Dict[str, Any], mock: Any, tracker: llmledger.Tracker) -> Any:
    provider, api, model = case["provider"], case["api"], case["model"]
    streamed = "stream" in case or "stream_file" in case
    headers = {"x-mock-case": case["name"]}
    extra: Dict[str, Any] = {"extra_headers": headers}
    tier = (case.get("price_options") or {}).get("service_tier")
    if tier:
        extra["service_tier"] = tier
    if provider == "anthropic":
        client = tracker.wrap(anthropic.Anthropic(base_url=mock.url, api_key="t", max_retries=0))
        return client.messages.create(model=model, max_tokens=64, messages=MESSAGES, stream=streamed, **extra)
    if provider == "azure":
        raw: Any = openai.AzureOpenAI(azure_endpoint=mock.url, api_key="t", api_version="2024-10-21", max_retries=0)
    else:
        raw = openai.OpenAI(base_url=f"{mock.url}/v1", api_key="t", max_retries=0)
    client = tracker.wrap(raw, provider=provider)
    if api == "chat_completions":
        return client.chat.completions.create(model=model, messages=MESSAGES, stream=streamed, **extra)
    if api == "responses":
        return client.responses.create(model=model, input="Say hello.", stream=streamed, **extra)
    if api == "embeddings":
        return client.embeddings.create(model=model, input="Say hello.", **extra)
    if api == "images":
        request = dict(case.get("request") or {})
        request.setdefault("model", model)
        request.setdefault("prompt", "a cat")
        return client.images.generate(**request, **extra)
    if api == "audio_transcription":
        return client.audio.transcriptions.create(model=model, file=("a.wav", b"RIFF0000", "audio/wav"), **extra)
    if api == "audio_speech":
        request = case.get("request") or {}
        return client.audio.speech.create(model=model, voice="alloy", input=request.get("input", ""), **extra)
    raise AssertionError(f"no SDK surface for api {api!r}")


@pytest.mark.parametrize("case", params())
def test_vector(case: Dict[str, Any], mock: Any, tracker: llmledger.Tracker) -> None:
    expected = case["expected"]
    try:
        result = call(case, mock, tracker)
    except (ValueError, TypeError) as exc:
        if "error_code" in expected:
            pytest.skip(f"the SDK itself rejects this body: {exc}")
        raise
    if isinstance(result, (openai.Stream, anthropic.Stream)):
        try:
            for _ in result:
                pass
        except (openai.APIError, anthropic.APIError):
            # The provider's SSE error event: the SDK raises it; the stream is recorded as aborted.
            assert "stream_aborted" in expected.get("usage", {}).get("flags", expected.get("flags_include", []))
    usage = llmledger.usage_of(result)
    assert usage is not None, "nothing recorded"
    if "error_code" in expected:
        # Bad usage JSON never fails the call: the event is recorded, flagged with the code.
        assert usage.pricing_error_code == expected["error_code"]
        return
    fields = USAGE_FIELDS
    if ("stream" in case or "stream_file" in case) and expected.get("usage", {}).get("usage_source") != "reported":
        # The stream did not report its input: the wrapper counts the prompt it sent (the case has none), so
        # input and cost differ from the case by design; everything else must match.
        fields = tuple(f for f in USAGE_FIELDS if f != "input_tokens")
        expected = {k: v for k, v in expected.items() if k != "cost_usd"}
    for field in fields:
        if field in expected.get("usage", {}):
            assert getattr(usage, field) == expected["usage"][field], field
    for flag in expected.get("flags_include", []):
        assert flag in usage.flags
    if "cost_usd" in expected and not case.get("cost_uncertain"):
        assert usage.cost_usd == Decimal(expected["cost_usd"])
