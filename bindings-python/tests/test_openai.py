"""The wrapped official ``openai`` client against the mock server: every tracked surface, sync and async."""

from __future__ import annotations

import gc
import logging
from decimal import Decimal
from typing import Any, List

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

import llmledger
from conftest import MESSAGES

# gpt-4o: $2.50 / 1M input, $1.25 / 1M cached input, $10.00 / 1M output.
# Mock chat usage: prompt 120 (20 cached), completion 45 → 100 × 2.5 + 20 × 1.25 + 45 × 10 = 725 µ$.
CHAT_COST = Decimal("0.000725")
# Mock Responses usage: input 200 (50 cached), output 80 → 150 × 2.5 + 50 × 1.25 + 80 × 10 = 1237.5 µ$.
RESPONSES_COST = Decimal("0.0012375")


def assert_chat_usage(u: Any, *, provider: str = "openai", model: str = "gpt-4o") -> None:
    assert isinstance(u, llmledger.Usage)
    assert (u.provider, u.model) == (provider, model)
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens) == (100, 20, 0, 45)
    assert u.total_tokens == 165
    assert u.cost.total == CHAT_COST
    assert isinstance(u.cost.total, Decimal)
    assert u.currency == "USD"
    assert sum(u.breakdown.values(), Decimal(0)) == CHAT_COST
    assert u.usage_source == "reported"
    assert u.estimated is False
    assert u.success is True


def test_chat_create(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="u1", workspace_id="w1", project="chat", tags={"env": "test"})
    assert isinstance(client, openai.OpenAI)
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert isinstance(resp, ChatCompletion)
    assert resp.choices[0].message.content == "Hello from the mock."
    u = resp._token_usage
    assert_chat_usage(u)
    assert (u.user_id, u.workspace_id, u.project, u.session_id) == ("u1", "w1", "chat", None)
    assert u.tags == {"env": "test"}
    assert u.request_id == resp.id
    assert u.latency_ms >= 0
    assert llmledger.usage_of(resp) is u
    # The SDK object is unchanged: nothing of ours leaks into its serialization.
    assert "_token_usage" not in resp.model_dump_json()
    rows = tracker.usage(user_id="u1")
    assert len(rows) == 1 and rows[0]["requests"] == 1 and rows[0]["cost_usd"] == CHAT_COST


def test_original_client_is_untouched(tracker: llmledger.Tracker, openai_client: Any) -> None:
    tracker.wrap(openai_client, user_id="u1")
    resp = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert llmledger.usage_of(resp) is None
    assert tracker.usage() == []


def test_arguments_pass_through(tracker: llmledger.Tracker, openai_client: Any, mock: Any) -> None:
    client = tracker.wrap(openai_client)
    client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        temperature=0.25,
        extra_headers={"x-custom": "kept"},
        extra_body={"custom_field": [1, 2]},
        timeout=5.0,
    )
    req = mock.last_request()
    assert req["headers"]["x-custom"] == "kept"
    assert req["body"]["custom_field"] == [1, 2]
    assert req["body"]["temperature"] == 0.25
    assert "stream_options" not in req["body"]


def test_chat_stream_hides_injected_usage_chunk(tracker: llmledger.Tracker, openai_client: Any, mock: Any) -> None:
    plain: List[ChatCompletionChunk] = list(
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    )
    client = tracker.wrap(openai_client, user_id="s1")
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert mock.last_request()["body"]["stream_options"] == {"include_usage": True}
    # What the unwrapped client saw: the same chunks (ids are fresh per response), no usage-only chunk.
    assert [c.model_dump(exclude={"id"}) for c in chunks] == [c.model_dump(exclude={"id"}) for c in plain]
    assert all(c.choices for c in chunks)
    assert_chat_usage(llmledger.usage_of(stream))
    assert tracker.usage(user_id="s1")[0]["cost_usd"] == CHAT_COST


def test_chat_stream_caller_asked_for_usage(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 120
    assert_chat_usage(llmledger.usage_of(stream))


def test_chat_stream_with_block_and_next(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        first = next(stream)
        rest = list(stream)
    assert first.choices[0].delta.role == "assistant"
    assert len(rest) == 6
    assert_chat_usage(llmledger.usage_of(stream))


def test_chat_parse(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    resp = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)
    assert resp.choices[0].message.content == "Hello from the mock."
    assert_chat_usage(resp._token_usage)


def test_chat_stream_helper(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
    assert text == "Hello from the mock."
    assert final.usage is None  # the caller did not ask for usage, so it sees none
    assert_chat_usage(llmledger.usage_of(stream))


def test_with_raw_response(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_mock_1"
    parsed = raw.parse()
    assert isinstance(parsed, ChatCompletion)
    assert_chat_usage(llmledger.usage_of(parsed))
    assert llmledger.usage_of(raw) is llmledger.usage_of(parsed)
    assert tracker.usage()[0]["requests"] == 1


def test_with_raw_response_stream(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
    stream = raw.parse()
    assert all(c.choices for c in stream)
    assert_chat_usage(llmledger.usage_of(stream))


def test_with_streaming_response(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as raw:
        parsed = raw.parse()
    assert_chat_usage(llmledger.usage_of(parsed))


def test_responses_create_and_stream(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="r1")
    resp = client.responses.create(model="gpt-4o", input="hi")
    assert isinstance(resp, Response)
    u = resp._token_usage
    assert (u.input_tokens, u.cache_read_tokens, u.output_tokens, u.reasoning_tokens) == (150, 50, 80, 30)
    assert u.cost.total == RESPONSES_COST
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    assert [e.type for e in events][-1] == "response.completed"
    with client.responses.stream(model="gpt-4o", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the mock."
    assert llmledger.usage_of(stream).cost.total == RESPONSES_COST
    rows = tracker.usage(user_id="r1")
    assert rows[0]["requests"] == 3 and rows[0]["cost_usd"] == 3 * RESPONSES_COST


def test_embeddings(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    resp = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert isinstance(resp, CreateEmbeddingResponse)
    u = resp._token_usage
    assert (u.input_tokens, u.output_tokens) == (16, 0)
    assert u.cost.total == Decimal("0.02") * 16 / 1_000_000  # $0.02 / 1M tokens


def test_images_and_audio(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, project="media")
    img = client.images.generate(model="gpt-image-1", prompt="a cat")
    assert img._token_usage.output_tokens == 4160 and img._token_usage.input_tokens == 50
    dalle = client.images.generate(model="dall-e-3", prompt="a cat", size="1024x1024", quality="standard")
    assert dalle._token_usage.cost.total == Decimal("0.04")  # one standard 1024² DALL·E 3 image
    tr = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", b"RIFF0000", "audio/wav"))
    assert tr._token_usage.output_tokens == 9
    rows = tracker.usage(project="media", group_by=["model"])
    assert {r["model"] for r in rows} >= {"gpt-image-1", "dall-e-3", "gpt-4o-transcribe"}


def test_http_errors_recorded_and_reraised(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="e1")
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-mock-status": "429"})
    assert info.value.status_code == 429
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-mock-status": "500"})
    failed = llmledger.usage_of(info.value)
    assert failed is not None and failed.success is False and failed.error_class == "RateLimitError"
    row = tracker.usage(user_id="e1")[0]
    assert (row["requests"], row["failed"], row["cost_usd"]) == (2, 2, Decimal(0))


def test_sse_error_event(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-mock-case": "sse_error"}
    )
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 3
    u = llmledger.usage_of(stream)
    assert u is not None and u.usage_source != "reported" and "stream_aborted" in u.flags


@pytest.mark.parametrize("how", ["break_then_close", "break_then_drop"])
def test_abandoned_stream(tracker: llmledger.Tracker, openai_client: Any, how: str) -> None:
    client = tracker.wrap(openai_client, user_id="ab")
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    if how == "break_then_close":
        stream.close()
        u = llmledger.usage_of(stream)
        assert u is not None and "stream_aborted" in u.flags and u.estimated
    else:
        gc.disable()  # freed by reference counting alone (no cycle): core records it when it is dropped
        try:
            del stream
        finally:
            gc.enable()
    row = tracker.usage(user_id="ab")[0]
    assert row["requests"] == 1
    assert row["input_tokens"] > 0  # the prompt, estimated locally


def test_lost_connection(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-mock-case": "disconnect"}
    )
    assert len(list(stream)) == 3  # the SDK ends quietly when the server hangs up mid-stream
    u = llmledger.usage_of(stream)
    assert u.usage_source != "reported" and u.flags and u.input_tokens > 0


def test_stream_dropped_unread(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="unread")
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    gc.disable()  # never iterated, never closed: recorded as abandoned when reference counting frees it
    try:
        del stream
    finally:
        gc.enable()
    row = tracker.usage(user_id="unread")[0]
    assert row["requests"] == 1 and row["input_tokens"] > 0


def test_stream_without_usage(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-mock-case": "no_usage"}
    )
    assert len(list(stream)) == 7
    u = llmledger.usage_of(stream)
    assert u.usage_source in ("estimated", "partial") and "stream_without_usage" in u.flags
    assert u.input_tokens > 0 and u.output_tokens > 0


def test_azure(tracker: llmledger.Tracker, mock: Any) -> None:
    azure = openai.AzureOpenAI(azure_endpoint=mock.url, api_key="test", api_version="2024-10-21", max_retries=0)
    client = tracker.wrap(azure, user_id="az")
    assert isinstance(client, openai.AzureOpenAI)
    resp = client.chat.completions.create(model="prod-4o", messages=MESSAGES)
    assert mock.last_request()["path"] == "/openai/deployments/prod-4o/chat/completions"
    u = resp._token_usage
    assert (u.provider, u.model, u.resolved_model) == ("azure", "prod-4o", "gpt-4o")
    assert u.cost.total == CHAT_COST
    chunks = list(client.chat.completions.create(model="prod-4o", messages=MESSAGES, stream=True))
    assert all(c.choices for c in chunks)


def test_azure_unmapped_deployment_is_recorded_unpriced(tracker: llmledger.Tracker, mock: Any) -> None:
    azure = openai.AzureOpenAI(azure_endpoint=mock.url, api_key="test", api_version="2024-10-21", max_retries=0)
    client = tracker.wrap(azure, user_id="az-unmapped")
    resp = client.chat.completions.create(model="team-deployment-7", messages=MESSAGES)
    assert resp.choices[0].message.content == "Hello from the mock."
    u = resp._token_usage
    # A deployment name that maps to no model: flagged and unpriced, never $0, and the call is unaffected.
    assert (u.provider, u.model, u.resolved_model) == ("azure", "team-deployment-7", None)
    assert u.cost is None and u.pricing_error.code == "unknown_model"
    assert (u.input_tokens, u.output_tokens) == (100, 45)
    [row] = tracker.usage(user_id="az-unmapped")
    assert (row["requests"], row["unpriced"], row["cost_usd"]) == (1, 1, Decimal(0))


def test_chat_stream_caller_refused_usage(tracker: llmledger.Tracker, openai_client: Any, mock: Any) -> None:
    client = tracker.wrap(openai_client)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
    )
    chunks = list(stream)
    # What the caller asked for: no usage-only chunk reaches it. The call is still priced exactly.
    assert all(c.choices for c in chunks)
    assert mock.last_request()["body"]["stream_options"] == {"include_usage": True}
    assert_chat_usage(llmledger.usage_of(stream))


def test_provider_decided_at_wrap_time(tracker: llmledger.Tracker) -> None:
    def provider(client: Any, **kw: Any) -> str:
        return tracker.wrap(client, **kw)._llmledger.provider

    assert provider(openai.OpenAI(base_url="https://api.x.ai/v1", api_key="k")) == "xai"
    assert provider(openai.OpenAI(api_key="k")) == "openai"
    azure = openai.AzureOpenAI(azure_endpoint="https://r.openai.azure.com", api_key="k", api_version="2024-10-21")
    assert provider(azure) == "azure"
    assert provider(openai.OpenAI(base_url="https://r.openai.azure.com/openai/v1", api_key="k")) == "azure"
    assert provider(openai.OpenAI(api_key="k"), provider="xai") == "xai"
    with pytest.raises(llmledger.InvalidInputError) as bad:
        provider(openai.OpenAI(api_key="k"), provider="acme")
    assert (bad.value.field, bad.value.value) == ("provider", "acme")


def test_xai_over_http(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, provider="xai")
    resp = client.chat.completions.create(model="grok-4", messages=MESSAGES)
    u = resp._token_usage
    # grok-4 (USD per 1M): 3.00 in, 0.75 cached, 15.00 out: 100 × 3 + 20 × 0.75 + 45 × 15 = 990 µ$.
    assert u.provider == "xai" and u.input_tokens == 100 and u.cost.total == Decimal("0.00099")


def test_unknown_model_is_flagged_not_raised(
    store_url: str, openai_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for policy, level in (("flag", logging.DEBUG), ("error", logging.ERROR)):
        with llmledger.Tracker(store=store_url, unknown_model=policy) as tracker, caplog.at_level(logging.DEBUG, "llmledger"):
            caplog.clear()
            resp = tracker.wrap(openai_client).chat.completions.create(model="no-such-model-xyz", messages=MESSAGES)
            u = resp._token_usage
            assert u.cost is None and u.pricing_error.code == "unknown_model"
            assert u.input_tokens == 100
            assert [r.levelno for r in caplog.records if "unpriced" in r.getMessage()] == [level]


def test_tracking_failure_never_raises(
    tracker: llmledger.Tracker, openai_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = tracker.wrap(openai_client)
    tracker.close()
    with caplog.at_level(logging.WARNING, logger="llmledger"):
        resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert resp.choices[0].message.content == "Hello from the mock."
    assert len(chunks) == 7
    assert any(r.name == "llmledger" for r in caplog.records)


def test_with_options_stays_wrapped(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="wo").with_options(timeout=9.0)
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp._token_usage.user_id == "wo"


def test_untracked_endpoints_pass_through(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client)
    with pytest.raises(openai.NotFoundError):
        client.models.list()
    assert tracker.usage() == []


# -- async ------------------------------------------------------------------------------------------------------


async def test_async_chat_create_and_stream(tracker: llmledger.Tracker, async_openai_client: Any) -> None:
    client = tracker.wrap(async_openai_client, user_id="as")
    assert isinstance(client, openai.AsyncOpenAI)
    resp = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert_chat_usage(resp._token_usage)
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    assert len(chunks) == 7 and all(c.choices for c in chunks)
    assert_chat_usage(llmledger.usage_of(stream))
    assert tracker.usage(user_id="as")[0]["cost_usd"] == 2 * CHAT_COST


async def test_async_stream_helper_and_responses(tracker: llmledger.Tracker, async_openai_client: Any) -> None:
    client = tracker.wrap(async_openai_client)
    async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        await stream.get_final_completion()
    assert_chat_usage(llmledger.usage_of(stream))
    resp = await client.responses.create(model="gpt-4o", input="hi")
    assert resp._token_usage.cost.total == RESPONSES_COST
    events = [e async for e in await client.responses.create(model="gpt-4o", input="hi", stream=True)]
    assert events[-1].type == "response.completed"


async def test_async_errors_and_abandon(tracker: llmledger.Tracker, async_openai_client: Any) -> None:
    client = tracker.wrap(async_openai_client, user_id="ae")
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-mock-status": "429"})
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert "stream_aborted" in llmledger.usage_of(stream).flags
    row = tracker.usage(user_id="ae")[0]
    assert (row["requests"], row["failed"]) == (2, 1)


async def test_async_azure(tracker: llmledger.Tracker, mock: Any) -> None:
    azure = openai.AsyncAzureOpenAI(azure_endpoint=mock.url, api_key="test", api_version="2024-10-21", max_retries=0)
    client = tracker.wrap(azure)
    assert isinstance(client, openai.AsyncAzureOpenAI)
    resp = await client.chat.completions.create(model="prod-4o", messages=MESSAGES)
    u = resp._token_usage
    assert (u.provider, u.resolved_model, u.cost.total) == ("azure", "gpt-4o", CHAT_COST)


async def test_async_stream_dropped_unread(tracker: llmledger.Tracker, async_openai_client: Any) -> None:
    client = tracker.wrap(async_openai_client, user_id="async-unread")
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    gc.disable()  # never iterated, never closed: recorded as abandoned when reference counting frees it
    try:
        del stream
    finally:
        gc.enable()
    row = tracker.usage(user_id="async-unread")[0]
    assert row["requests"] == 1 and row["input_tokens"] > 0
