"""Every shared vector (tests/vectors/*.json, format in its README) through the Python package, two ways:

- ``record``: the case's exact bytes through the package's native entry points, the ones the wrappers call —
  ``Tracker.begin`` then ``Call.finish`` for a response body, ``Call.into_stream`` / ``push`` / ``finish`` for a
  stream — and
  ``llmledger.cost(at=, batch=)`` where the case pins a date or batch pricing;
- ``sdk``: for OpenAI / Azure / xAI / Anthropic cases, the same bytes served by the mock server
  (``x-mock-case: <name>``) and fetched through the wrapped official SDK.

Expected usage, flags, error codes and USD costs come from the case (hand-computed), never from the library.
Error cases must give the flagged, unpriced record with the case's code (a response) or fail the first bad
push with it (a stream). Each case's outcome goes to a per-case table (``LLMLEDGER_VECTOR_TABLE_DIR/python.tsv``)
that scripts/test.sh prints next to the Rust and Node ones.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import anthropic
import openai
import pytest

import llmledger
from llmledger import _native
from conftest import MESSAGES, ROOT, VECTORS, load_vectors

SDK_SURFACES = {
    "openai": {"chat_completions", "responses", "embeddings", "images", "audio_transcription", "audio_speech"},
    "azure": {"chat_completions", "responses", "embeddings"},
    "xai": {"chat_completions", "responses"},
    "anthropic": {"messages"},
}
TABLE: Dict[str, Tuple[str, str]] = {}
CASES = load_vectors()


@pytest.fixture(scope="module", autouse=True)
def write_table() -> Iterator[None]:
    yield
    out = Path(os.environ.get("LLMLEDGER_VECTOR_TABLE_DIR") or ROOT / "target" / "vector-table")
    out.mkdir(parents=True, exist_ok=True)
    rows = [f"{name}\t{status}\t{detail}" for name, (status, detail) in sorted(TABLE.items())]
    (out / "python.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def is_stream(case: Dict[str, Any]) -> bool:
    return "stream" in case or "stream_file" in case


def batch(case: Dict[str, Any]) -> bool:
    return bool((case.get("price_options") or {}).get("batch"))


def parse_sse(text: str) -> List[Tuple[Optional[str], str]]:
    """A raw SSE transcript split as the SSE spec says (blank-line blocks, ``event:``/``data:``, ``:`` comments)."""
    out = []
    for block in text.split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[6:] if line[5:6] == " " else line[5:])
        if data:
            out.append((event, "\n".join(data)))
    return out


def stream_events(case: Dict[str, Any]) -> List[Tuple[Optional[str], str]]:
    if "stream_file" in case:
        return parse_sse((VECTORS / case["stream_file"]).read_text(encoding="utf-8"))
    return [(e.get("event"), e["data"] if isinstance(e["data"], str) else json.dumps(e["data"])) for e in case["stream"]]


def request_with_prompt(model: str, n: int) -> Optional[str]:
    """A request whose prompt the core counts as exactly ``n`` tokens for ``model`` (a stream's prompt estimate
    is taken from its request), or None. Words with a leading space never merge: the count grows per word."""
    for k in range(1, 4 * n + 1):
        text = "the" + " the" * (k - 1)
        got = llmledger.count_tokens(text, model)
        if got == n:
            return json.dumps({"input": text})
        if got > n:
            return None
    return None


def check_usage(case: Dict[str, Any], recorded: Any, counted: bool = True, priced: bool = True) -> None:
    """Compares a recorded usage with the case, every field of ``expected.usage`` (as the Rust runner does)."""
    expected = case["expected"]
    actual = recorded.to_dict()
    for key, want in (expected.get("usage") or {}).items():
        if key == "input_tokens" and not counted:
            continue
        got = actual.get(key, [] if key == "flags" else None)
        if key == "audio_seconds":
            assert got is not None and Decimal(got) == Decimal(want), key
        elif key == "flags":
            assert sorted(got) == sorted(want), key
        else:
            assert got == want, key
    for flag in expected.get("flags_include", []):
        assert flag in actual.get("flags", []), f"flag {flag}"
    if "cost_usd" not in expected or not counted or not priced:
        return
    want = Decimal(expected["cost_usd"])
    if "prices" in case:
        # Priced by a tracker loaded with the case's own price file (one version, in force since before now).
        if (case.get("price_options") or {}).get("region"):
            return  # a requested region has no argument on this path; the Rust runner compares the cost
        assert recorded.pricing_error is None, recorded.pricing_error
        assert recorded.cost.total_usd == want, "cost_usd (the case's own prices)"
        return
    if case.get("at") or batch(case):
        # The tracker prices at now, standard rates: price this usage at the case's date / batch instead.
        at = datetime.fromisoformat(case["at"].replace("Z", "+00:00")) if case.get("at") else None
        fields = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
                  "reasoning_tokens", "audio_input_tokens", "audio_output_tokens", "image_input_tokens",
                  "image_output_tokens", "web_search_requests")
        got_cost = llmledger.cost(case["model"], **{f: actual.get(f, 0) for f in fields}, at=at, batch=batch(case),
                                  service_tier=(case.get("price_options") or {}).get("service_tier"))
        assert got_cost.total_usd == want, "cost_usd (cost() at the case's date / batch)"
        return
    assert recorded.pricing_error is None, recorded.pricing_error
    assert recorded.cost.total_usd == want, "cost_usd"


def begin(native: Any, case: Dict[str, Any], body: Optional[str], stream: bool) -> Any:
    """Core's call for the case, as the wrappers start one: a client of the case's provider, the case's API
    (the wrappers get it from ``Client.classify``), the request's facts, and its body when core wants it."""
    client = _native.Client(json.dumps({"provider": case["provider"]}), _native.Attribution())
    facts = {"model": case["model"], **(json.loads(body) if body else {})}
    call = native.begin(client, case["api"], "", facts, None, stream, None)
    if body is not None and call.wants_request_body:
        call.set_request_body(body)
    return call


def via_record(native: Any, case: Dict[str, Any]) -> str:
    """The ``record`` path; returns a note for the table ('' when everything was compared)."""
    code = case["expected"].get("error_code")
    api = case["api"]
    if not is_stream(case):
        body = case["response_raw"] if "response_raw" in case else json.dumps(case.get("response", {}))
        request = json.dumps(case["request"]) if "request" in case else None
        usage = begin(native, case, request, False).finish(body)
        if code:
            assert usage.cost is None, "an error case is recorded unpriced"
            assert usage.pricing_error.code == code, usage.pricing_error
            return ""
        check_usage(case, usage)
        return ""
    request, note = None, ""
    if "prompt_estimate" in case:
        request = request_with_prompt(case["model"], case["prompt_estimate"])
        if request is None:
            note = "input/cost not compared: no prompt text counts as the estimate"
    stream = begin(native, case, request, True).into_stream()
    failed: Optional[Exception] = None
    for event, data in stream_events(case):
        try:
            stream.push(event, data)
        except llmledger.LlmledgerError as exc:
            failed = exc
            break
    if code:
        assert failed is not None, f"no push failed; want {code}"
        assert failed.code == code, str(failed)
        # As the wrappers do after a failed push: the stream is still recorded, once.
        assert stream.finish(True).api == api
        assert stream.finish(True) is None, "a second finish is a quiet no-op"
        return ""
    assert failed is None, str(failed)
    check_usage(case, stream.finish(bool(case.get("aborted"))), counted=not note)
    return note


def no_sdk_reason(case: Dict[str, Any]) -> Optional[str]:
    """Why the ``sdk`` path does not apply to a case, or None. Every reason is a fact about the SDKs."""
    if case["api"] not in SDK_SURFACES.get(case["provider"], set()):
        return f"no official SDK of {case['provider']}/{case['api']} in the Python package"
    if is_stream(case) and (case["expected"].get("usage") or {}).get("usage_source") == "none":
        return 'an SDK call always carries a prompt, which is counted, so the source cannot be "none"'
    if case["api"] == "messages" and any("event" not in e for e in case.get("stream", [])):
        return "the anthropic SDK drops SSE events without an `event:` line"
    request = case.get("request")
    if case["api"] == "images" and "error_code" in case["expected"] and request is None:
        return "the case has no request; the SDK always sends one"
    if case["api"] == "audio_speech" and "input" not in (request or {}):
        return "the case's request has no input; the SDK always sends one"
    return None


def sdk_call(case: Dict[str, Any], mock: Any, tracker: llmledger.Tracker) -> Any:
    provider, api, model = case["provider"], case["api"], case["model"]
    streamed = is_stream(case)
    extra: Dict[str, Any] = {"extra_headers": {"x-mock-case": case["name"]}}
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
        if streamed and case.get("aborted"):
            # An abandoned case stops after its last event: ask for usage so the wrapper hides no chunk.
            extra["stream_options"] = {"include_usage": True}
        return client.chat.completions.create(model=model, messages=MESSAGES, stream=streamed, **extra)
    if api == "responses":
        # The case's tools go with the call: a web search's context size is read from the request.
        tools = (case.get("request") or {}).get("tools")
        if tools:
            extra["tools"] = tools
        return client.responses.create(model=model, input="Say hello.", stream=streamed, **extra)
    if api == "embeddings":
        return client.embeddings.create(model=model, input="Say hello.", **extra)
    if api == "images":
        request = dict(case.get("request") or {})
        request.setdefault("prompt", "a cat")
        request["model"] = model
        return client.images.generate(**request, **extra)
    if api == "audio_transcription":
        return client.audio.transcriptions.create(model=model, file=("a.wav", b"RIFF0000", "audio/wav"), **extra)
    if api == "audio_speech":
        request = case.get("request") or {}
        return client.audio.speech.create(model=model, voice="alloy", input=request.get("input", ""), **extra)
    raise AssertionError(f"no SDK surface for api {api!r}")


def case_prices(case: Dict[str, Any], tmp_path: Path) -> Optional[str]:
    """The case's own price file (``prices``), written where a tracker can load it."""
    if "prices" not in case:
        return None
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(case["prices"]), encoding="utf-8")
    return str(path)


def via_sdk(case: Dict[str, Any], mock: Any, store_url: str, caplog: pytest.LogCaptureFixture,
            prices: Optional[str] = None) -> str:
    """The ``sdk`` path; returns a note for the table."""
    expected = case["expected"]
    code = expected.get("error_code")
    tracker = llmledger.Tracker(store=store_url, prices=prices)
    try:
        caplog.clear()
        sdk_error: Optional[BaseException] = None
        result = None
        try:
            result = sdk_call(case, mock, tracker)
            if isinstance(result, (openai.Stream, anthropic.Stream)):
                events = len([e for e in stream_events(case) if e[1] != "[DONE]" and e[0] != "ping"])
                for n, _ in enumerate(result, start=1):
                    if case.get("aborted") and n == events:
                        result.close()
                        break
        except llmledger.LlmledgerError:
            raise  # tracking must never break the call
        except Exception as exc:  # the SDK's own error (bad body, provider error event)
            sdk_error = exc
        usage = llmledger.usage_of(result) if result is not None else None
        warnings = [r.getMessage() for r in caplog.records if r.name == "llmledger" and r.levelno >= logging.WARNING]
        if code:
            if is_stream(case):
                # The SDK parses events first: it rejects the bad one itself, or our push fails and is logged.
                if sdk_error is None:
                    assert any("stream event" in w for w in warnings), warnings
                    assert usage is not None, "the broken stream is still recorded once"
                return "sdk" if sdk_error is None else "sdk (SDK rejected the event)"
            if sdk_error is not None:
                return "sdk (SDK rejected the body)"
            if usage is None:
                # The SDK returned what cannot carry `_token_usage` (a list): the ledger has the flagged event.
                rows = tracker.usage()
                assert [(r["requests"], r["unpriced"]) for r in rows] == [(1, 1)], rows
                return "sdk (checked in the ledger)"
            assert usage.cost is None and usage.pricing_error.code == code, usage.pricing_error
            return "sdk"
        if sdk_error is not None:
            # A stream ending in the provider's error event: the SDK raises; the stream is recorded as aborted.
            flags = (expected.get("usage") or {}).get("flags", expected.get("flags_include", []))
            assert is_stream(case) and "stream_aborted" in flags, repr(sdk_error)
        assert usage is not None, "nothing recorded"
        assert warnings == [], warnings
        assert (usage.provider, usage.api) == (case["provider"], case["api"])
        # A stream that did not report its input is counted from the prompt this call sent (not the case's).
        counted = not is_stream(case) or (expected.get("usage") or {}).get("usage_source", "reported") == "reported"
        check_usage(case, usage, counted=counted)
        return "sdk" if counted else "sdk (input from its own prompt)"
    finally:
        tracker.close()


def test_the_vectors_are_there() -> None:
    assert len(CASES) >= 60, f"only {len(CASES)} cases in {VECTORS}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: Dict[str, Any], mock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notes = []
    try:
        prices = case_prices(case, tmp_path)
        tracker = llmledger.Tracker(store=f"sqlite://{tmp_path / 'record.db'}", prices=prices)
        try:
            note = via_record(tracker._native, case)
            notes.append(f"record ({note})" if note else "record")
        finally:
            tracker.close()
        reason = no_sdk_reason(case)
        notes.append(f"no sdk: {reason}" if reason else via_sdk(case, mock, f"sqlite://{tmp_path / 'sdk.db'}", caplog, prices))
        TABLE[case["name"]] = ("pass", "; ".join(notes))
    except BaseException as exc:
        TABLE[case["name"]] = ("fail", str(exc).split("\n")[0])
        raise
