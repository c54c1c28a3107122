"""The wrapped official ``anthropic`` client against the mock server, sync and async."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

import llmledger
from conftest import MESSAGES

MODEL = "claude-sonnet-4-5"
# claude-sonnet-4-5: $3 / 1M input, $3.75 / 1M 5-minute cache write, $0.30 / 1M cache read, $15 / 1M output.
# Mock usage: input 300, cache write 100, cache read 1000, output 60 → 900 + 375 + 300 + 900 = 2475 µ$.
MESSAGE_COST = Decimal("0.002475")


def assert_message_usage(u: Any) -> None:
    assert isinstance(u, llmledger.Usage)
    assert (u.provider, u.model) == ("anthropic", MODEL)
    assert (u.input_tokens, u.cache_write_tokens, u.cache_read_tokens, u.output_tokens) == (300, 100, 1000, 60)
    assert u.total_tokens == 1460
    assert u.cost.total == MESSAGE_COST
    assert sum(u.breakdown.values(), Decimal(0)) == MESSAGE_COST
    assert u.usage_source == "reported"


def test_messages_create(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    client = tracker.wrap(anthropic_client, user_id="a1", workspace_id="w1")
    assert isinstance(client, anthropic.Anthropic)
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert isinstance(msg, Message)
    assert msg.content[0].text == "Hello from the mock."
    assert_message_usage(msg._token_usage)
    assert msg._token_usage.request_id == msg.id
    assert tracker.usage(user_id="a1")[0]["cost_usd"] == MESSAGE_COST


def test_messages_create_stream(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    plain = [e.type for e in anthropic_client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES, stream=True)]
    client = tracker.wrap(anthropic_client)
    stream = client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    assert [e.type for e in stream] == plain
    assert_message_usage(llmledger.usage_of(stream))


def test_messages_stream_helper(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    client = tracker.wrap(anthropic_client)
    with client.messages.stream(model=MODEL, max_tokens=9, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the mock."
    assert final.usage.output_tokens == 60
    assert_message_usage(llmledger.usage_of(stream))


def test_beta_messages(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    client = tracker.wrap(anthropic_client, project="beta")
    msg = client.beta.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES)
    assert_message_usage(msg._token_usage)
    with client.beta.messages.stream(model=MODEL, max_tokens=9, messages=MESSAGES) as stream:
        stream.until_done()
    assert_message_usage(llmledger.usage_of(stream))
    assert tracker.usage(project="beta")[0]["requests"] == 2


def test_count_tokens_passes_through(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    client = tracker.wrap(anthropic_client)
    assert client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens == 42
    assert tracker.usage() == []


def test_errors(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    client = tracker.wrap(anthropic_client, user_id="ae")
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES, extra_headers={"x-mock-status": "429"})
    with pytest.raises(anthropic.APIStatusError) as overloaded:  # OverloadedError in some SDK versions
        client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES, extra_headers={"x-mock-status": "529"})
    assert overloaded.value.status_code == 529
    stream = client.messages.create(
        model=MODEL, max_tokens=9, messages=MESSAGES, stream=True, extra_headers={"x-mock-case": "sse_error"}
    )
    with pytest.raises(anthropic.APIStatusError):
        for _ in stream:
            pass
    u = llmledger.usage_of(stream)
    # message_start had arrived: input is reported, output is not.
    assert u.input_tokens == 300 and u.usage_source != "reported" and "stream_aborted" in u.flags
    row = tracker.usage(user_id="ae")[0]
    assert (row["requests"], row["failed"]) == (3, 2)


def test_abandoned_stream(tracker: llmledger.Tracker, anthropic_client: Any) -> None:
    client = tracker.wrap(anthropic_client, user_id="ab")
    stream = client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES, stream=True)
    for event in stream:
        if event.type == "content_block_delta":
            break
    # No reference cycle holds a dropped stream: it is recorded as soon as the last reference goes.
    del stream, event
    row = tracker.usage(user_id="ab")[0]
    assert row["requests"] == 1 and row["input_tokens"] == 300


async def test_async(tracker: llmledger.Tracker, async_anthropic_client: Any) -> None:
    client = tracker.wrap(async_anthropic_client, user_id="aa")
    assert isinstance(client, anthropic.AsyncAnthropic)
    msg = await client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES)
    assert_message_usage(msg._token_usage)
    stream = await client.messages.create(model=MODEL, max_tokens=9, messages=MESSAGES, stream=True)
    assert len([e async for e in stream]) == 10
    assert_message_usage(llmledger.usage_of(stream))
    async with client.messages.stream(model=MODEL, max_tokens=9, messages=MESSAGES) as s:
        assert "".join([t async for t in s.text_stream]) == "Hello from the mock."
    assert_message_usage(llmledger.usage_of(s))
    assert tracker.usage(user_id="aa")[0]["cost_usd"] == 3 * MESSAGE_COST
