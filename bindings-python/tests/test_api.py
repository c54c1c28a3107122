"""Module-level API: count_tokens, estimate, cost, errors, currencies, Usage objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llmledger
from conftest import MESSAGES


def test_count_tokens() -> None:
    assert llmledger.count_tokens("hello world", model="gpt-4o") == 2
    assert llmledger.count_tokens("", model="gpt-4o") == 0
    chat = llmledger.count_tokens(MESSAGES, model="gpt-4o")
    assert chat > llmledger.count_tokens("Say hello.", model="gpt-4o")


def test_cost_is_exact_decimal() -> None:
    c = llmledger.cost("gpt-4o", input_tokens=100, cache_read_tokens=20, output_tokens=45)
    assert c.total == Decimal("0.000725") and isinstance(c.total, Decimal)
    assert c.currency == "USD" and c.model == "gpt-4o"
    assert c.breakdown == {"input": Decimal("0.00025"), "cache_read": Decimal("0.000025"), "output": Decimal("0.00045")}
    big = llmledger.cost("claude-sonnet-4-5", input_tokens=300, cache_write_tokens=100, cache_read_tokens=1000, output_tokens=60)
    assert big.total == Decimal("0.002475")


def test_cost_in_other_currency() -> None:
    c = llmledger.cost("gpt-4o", input_tokens=1_000_000, currency="KRW", rates={"KRW": "1391.50"})
    assert (c.total_usd, c.total, c.currency) == (Decimal("2.5"), Decimal("3478.75"), "KRW")
    with pytest.raises(llmledger.UnknownCurrencyError) as info:
        llmledger.cost("gpt-4o", input_tokens=1, currency="EUR")
    assert info.value.code == "unknown_currency"


def test_errors_carry_code_field_value() -> None:
    with pytest.raises(llmledger.UnknownModelError) as info:
        llmledger.cost("gpt-4oo", input_tokens=1)
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, llmledger.LlmledgerError)
    assert (err.code, err.field, err.value) == ("unknown_model", "model", "gpt-4oo")
    assert "gpt-4o" in err.suggestions
    with pytest.raises(ValueError) as bad:
        llmledger.Tracker(store="nosuch://x")
    assert isinstance(bad.value, llmledger.ConfigError) and bad.value.code == "config"
    with pytest.raises(llmledger.LlmledgerError) as tz:
        llmledger.Tracker(store="memory:", timezone="Mars/Base")
    assert tz.value.code == "config"
    with pytest.raises(llmledger.ConfigError):
        llmledger.Tracker(store="memory:", unknown_model="maybe")


def test_estimate_renders_a_table() -> None:
    est = llmledger.estimate(model="gpt-4o", messages=MESSAGES, max_output_tokens=100)
    assert est.input_tokens == llmledger.count_tokens(MESSAGES, model="gpt-4o")
    assert est.exact is True and est.currency == "USD"
    assert est.min_cost == est.input_cost == Decimal("0.0000025") * est.input_tokens
    assert est.max_cost == est.min_cost + Decimal("0.001")  # 100 output tokens at $10 / 1M
    html = est._repr_html_()
    assert html.startswith("<table") and "gpt-4o" in html and "cost range" in html
    assert "input tokens" in str(est)


def test_tracker_currency_and_estimate(tmp_path: Path, openai_client: Any) -> None:
    with llmledger.Tracker(store=f"sqlite://{tmp_path / 'krw.db'}", currency="KRW", rates={"KRW": "1391.50"}) as t:
        assert t.currency == "KRW"
        u = t.wrap(openai_client).chat.completions.create(model="gpt-4o", messages=MESSAGES)._token_usage
        assert (u.currency, u.cost.total_usd, u.cost.total) == ("KRW", Decimal("0.000725"), Decimal("0.000725") * Decimal("1391.50"))
        assert sum(u.breakdown.values(), Decimal(0)) == u.cost.total
        # USD breakdown inside `cost`: 100 × 2.50/M, 20 × 1.25/M, 45 × 10/M.
        assert u.cost.breakdown_usd == {"input": Decimal("0.00025"), "cache_read": Decimal("0.000025"), "output": Decimal("0.00045")}
        row = t.usage()[0]
        assert (row["cost_usd"], row["cost"]) == (Decimal("0.000725"), Decimal("1.00883750"))
        assert t.estimate("gpt-4o", MESSAGES).currency == "KRW"


def test_usage_object(tracker: llmledger.Tracker, openai_client: Any) -> None:
    u = tracker.wrap(openai_client, user_id="x").chat.completions.create(model="gpt-4o", messages=MESSAGES)._token_usage
    d = u.to_dict()
    # The record JSON parsed, as Node's `_tokenUsage`: decimals stay strings, the cost is an object.
    assert d == json.loads(u.to_json())
    assert list(d)[:4] == ["event_id", "timestamp", "provider", "api"]  # in the record's order, as in Node
    assert (d["provider"], d["api"], d["model"], d["user_id"]) == ("openai", "chat_completions", "gpt-4o", "x")
    # Mock chat usage: 100 uncached × 2.50/M + 20 cached × 1.25/M + 45 × 10/M.
    assert (d["cost"]["total"], d["currency"], d["estimated"]) == ("0.000725", "USD", False)
    assert d["breakdown"] == {"input": "0.00025", "cache_read": "0.000025", "output": "0.00045"}
    assert (d["prompt_tokens"], d["total_tokens"], d["web_search_requests"]) == (120, 165, 0)
    # Every key of the record is an attribute; money and decimal units become Decimal.
    for key, value in d.items():
        if key not in ("cost", "breakdown", "timestamp"):
            assert getattr(u, key) == value, key
    assert sorted(dir(u)) == sorted(list(d) + ["to_dict", "to_json"])
    assert u.breakdown == {"input": Decimal("0.00025"), "cache_read": Decimal("0.000025"), "output": Decimal("0.00045")}
    assert (u.cost.total, u.cost.currency, u.cost.model) == (Decimal("0.000725"), "USD", "gpt-4o")
    assert u.timestamp.isoformat().replace("+00:00", "Z")[:19] == d["timestamp"][:19]
    assert "0.000725 USD" in repr(u)
    with pytest.raises(AttributeError):
        u.no_such_field  # noqa: B018


def test_pricing_error_has_the_error_shape(tracker: llmledger.Tracker, openai_client: Any) -> None:
    u = tracker.wrap(openai_client).chat.completions.create(model="gpt-4oo", messages=MESSAGES)._token_usage
    err = u.pricing_error
    # The same exception `cost()` raises for the same model: code, message, field, value, suggestions.
    assert isinstance(err, llmledger.UnknownModelError)
    assert (err.code, err.field, err.value) == ("unknown_model", "model", "gpt-4oo")
    assert "gpt-4o" in err.suggestions
    with pytest.raises(llmledger.UnknownModelError) as raised:
        llmledger.cost("gpt-4oo", input_tokens=1)
    assert (raised.value.message, raised.value.suggestions) == (err.message, err.suggestions)
    assert u.to_dict()["pricing_error"] == {
        "code": "unknown_model", "message": err.message, "field": "model", "value": "gpt-4oo",
        "suggestions": err.suggestions,
    }
    assert (u.cost, u.breakdown, u.currency) == (None, None, "USD")


def test_wrap_rejects_other_objects(tracker: llmledger.Tracker) -> None:
    with pytest.raises(TypeError):
        tracker.wrap(object())


def record_one_call_in_a_forked_child(tracker: llmledger.Tracker, client: Any) -> None:
    """Forks; the child records one call as user ``child`` through the inherited wrapped client, flushes and
    leaves without atexit hooks. Asserts the child exited cleanly."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with tracker.attribute(user_id="child"):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            tracker.flush()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_fork_restarts_writer_in_child(tmp_path: Path, openai_client: Any) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    with llmledger.Tracker(store=f"sqlite://{tmp_path / 'fork.db'}") as tracker:
        client = tracker.wrap(openai_client)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, user="parent")
        tracker.flush()
        record_one_call_in_a_forked_child(tracker, client)
        rows = tracker.usage(group_by=["user"])
        assert {r["user"]: r["requests"] for r in rows} == {"": 1, "child": 1}


def test_import_has_no_sdk_dependency() -> None:
    code = "import sys, llmledger; print('openai' in sys.modules, 'anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_fork_with_events_queued_loses_and_doubles_nothing(tmp_path: Path, openai_client: Any) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    with llmledger.Tracker(store=f"sqlite://{tmp_path / 'queued.db'}") as tracker:
        client = tracker.wrap(openai_client)
        with tracker.attribute(user_id="parent"):
            for _ in range(3):  # queued in the batch writer, not flushed before the fork
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        record_one_call_in_a_forked_child(tracker, client)
        rows = tracker.usage(group_by=["user"])
        assert {r["user"]: r["requests"] for r in rows} == {"parent": 3, "child": 1}
        # gpt-4o, mock usage: 100 × 2.50 + 20 × 1.25 + 45 × 10 = 725 µ$ per call.
        assert sum((r["cost_usd"] for r in rows), Decimal(0)) == Decimal("0.0029")


WRITER = """
import json, sys
import llmledger
from llmledger import _native
tracker = llmledger.Tracker(store=sys.argv[1])
client = _native.Client('{"sdk": "openai"}', _native.Attribution(user_id=sys.argv[2]))
for i in range(int(sys.argv[3])):
    body = {"id": f"{sys.argv[2]}-{i}", "object": "chat.completion", "model": "gpt-4o", "choices": [],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}
    call = tracker._native.begin(client, "chat_completions", "/chat/completions", {"model": "gpt-4o"}, None, False, None)
    call.finish(json.dumps(body))
tracker.close()
"""


def test_several_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path / 'shared.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, store, f"w{k}", "200"], stderr=subprocess.PIPE, text=True)
        for k in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with llmledger.Tracker(store=store) as reader:
        rows = reader.usage(group_by=["user"])
    assert {r["user"]: r["requests"] for r in rows} == {f"w{k}": 200 for k in range(4)}
    # gpt-4o: 1000 × 2.50 + 100 × 10 = 3500 µ$ per call; 800 calls = 2.8 USD.
    assert sum((r["cost_usd"] for r in rows), Decimal(0)) == Decimal("2.8")


def test_currency_overflow_is_a_typed_error() -> None:
    # 10^15 tokens × 2.50 / 1M = 2.5 billion USD; × 7.9 × 10^28 overflows a 96-bit decimal.
    with pytest.raises(llmledger.InvalidInputError) as err:
        llmledger.cost("gpt-4o", input_tokens=10**15, currency="KRW", rates={"KRW": "79228162514264337593543950335"})
    assert (err.value.code, err.value.field) == ("invalid_value", "rates.KRW")
    # The largest token count still prices exactly: (2^63 - 1) × 2.50 / 1M.
    assert llmledger.cost("gpt-4o", input_tokens=2**63 - 1).total == Decimal("23058430092136.9395175")
