"""Spend control through the Python API: limits and balances with exact values, typed errors for bad input,
calls refused *before* the request (the mock provider's request log proves none was sent), settlement to the
hand-computed cost, release on errors and streams, alerts to ``on_alert`` and a signed webhook, and the
issue's multi-process cases: 64 callers in 4 processes on one SQLite file and on one PostgreSQL, and a
process killed while holding reservations.

Hand-computed constants (gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output):
- the mock answers every chat call with 120 prompt tokens (20 of them cached) and 45 completion tokens:
  100 × 2.50/M + 20 × 1.25/M + 45 × 10/M = 0.00025 + 0.000025 + 0.00045 = **0.000725**;
- a request of ``MESSAGES`` ("Say hello.") with ``max_tokens=100`` reserves its worst case: the prompt
  counted locally, 3 (message) + 1 ("user") + 3 ("Say", " hello", ".") + 3 (reply priming) = 10 tokens,
  plus 100 output tokens: 10 × 2.50/M + 100 × 10/M = **0.001025**.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List

import pytest

import llmledger
from llmledger import BudgetExceeded
from llmledger.errors import InvalidInputError, UnknownCurrencyError

from conftest import IN_CI, MESSAGES, PG_URL

COST = Decimal("0.000725")
RESERVE = Decimal("0.001025")
WORKER = Path(__file__).with_name("spend_worker.py")


def uid(name: str) -> str:
    """A user id unique to this run (a PostgreSQL store is shared by every test)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def sent_for(mock: Any, user: str) -> List[Dict[str, Any]]:
    """The requests the mock provider received for ``user`` (the calls pass ``user=``)."""
    return [r for r in mock.requests() if (r.get("body") or {}).get("user") == user]


def pg_or_skip() -> str:
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but LLMLEDGER_TEST_PG is not set: the PostgreSQL spend tests must run in CI")
        pytest.skip("PostgreSQL spend: set LLMLEDGER_TEST_PG=postgres://user@host:port/db to run")
    return PG_URL


# ---------------------------------------------------------------------------------------------------------------
# The API: exact values and bad input
# ---------------------------------------------------------------------------------------------------------------


def test_limits_and_balances_keep_exact_values(tracker: llmledger.Tracker) -> None:
    limit = tracker.budgets.set_limit(scope={"user_id": "u1"}, per="day", amount="5.00", action="block")
    assert (limit["amount"], limit["per"], limit["metric"], limit["currency"]) == (Decimal("5"), "day", "spend", "USD")
    assert limit["thresholds"] == [Decimal("0.5"), Decimal("0.8"), Decimal("1")]
    again = tracker.budgets.set_limit(scope={"user_id": "u1"}, per="day", amount=Decimal("7.25"))
    assert again["id"] == limit["id"] and again["amount"] == Decimal("7.25"), "same scope, per, metric: updated"
    rpm = tracker.budgets.set_limit(scope={"workspace_id": "w1"}, per="minute", requests=60, action="warn")
    assert [(l["id"], l["amount"]) for l in tracker.budgets.limits(scope={"user_id": "u1"})] == [
        (limit["id"], Decimal("7.25"))
    ]
    status = {s["limit"]["id"]: s for s in tracker.budgets.status()}
    assert (status[limit["id"]]["used"], status[limit["id"]]["remaining"]) == (Decimal("0"), Decimal("7.25"))
    assert tracker.budgets.remove(rpm["id"]) is True
    assert tracker.budgets.remove(rpm["id"]) is False

    first = tracker.balances.top_up("u1", "20.00", idempotency_key="stripe_evt_123")
    replay = tracker.balances.top_up("u1", "20.00", idempotency_key="stripe_evt_123")
    assert replay["id"] == first["id"], "a replayed idempotency key returns the first entry"
    tracker.balances.grant("u1", Decimal("0.10"), idempotency_key="promo-1", note="welcome")
    tracker.balances.top_up("u1", "0.2", idempotency_key="k3")
    # 20 + 0.10 + 0.2, exactly (0.1 + 0.2 in floats is 0.30000000000000004).
    assert tracker.balances.get("u1") == llmledger.Balance(
        account="user_id=u1", exists=True, currency="USD", total=Decimal("20.3"), reserved=Decimal("0"),
        available=Decimal("20.3"), low_alert=None,
    )
    history = tracker.balances.history("u1")
    assert [(e["kind"], e["amount"], e["idempotency_key"]) for e in history] == [
        ("top_up", Decimal("0.2"), "k3"), ("grant", Decimal("0.1"), "promo-1"), ("top_up", Decimal("20"), "stripe_evt_123")
    ]
    tracker.balances.set_alert("u1", below="1.50")
    assert tracker.balances.get("u1").low_alert == Decimal("1.5")
    assert tracker.balances.get({"workspace_id": "w9"}).exists is False


def test_bad_input_is_a_typed_error_and_writes_nothing(tracker: llmledger.Tracker) -> None:
    def err(fn: Any, *args: Any, **kwargs: Any) -> llmledger.LlmledgerError:
        with pytest.raises(llmledger.LlmledgerError) as info:
            fn(*args, **kwargs)
        return info.value

    for amount in ("-5", "0", "ten", 0.1, True):
        e = err(tracker.balances.top_up, "u2", amount)
        assert (type(e), e.code, e.field) == (InvalidInputError, "invalid_value", "amount"), amount
    e = err(tracker.balances.top_up, "u2", "5", currency="XYZ")
    assert (type(e), e.code, e.field, e.value) == (UnknownCurrencyError, "unknown_currency", "currency", "XYZ")
    e = err(tracker.budgets.set_limit, scope={"team": "a"}, per="day", amount="1")
    assert (e.code, e.field, e.value) == ("invalid_value", "scope.team", "team")
    e = err(tracker.budgets.set_limit, scope={"user_id": "u2"}, per="week", amount="1")
    assert (e.code, e.field) == ("invalid_value", "per")
    e = err(tracker.budgets.set_limit, scope={"user_id": "u2"}, per="day", amount="-1")
    assert (e.code, e.field) == ("invalid_value", "amount")
    e = err(tracker.balances.set_alert, "nobody", below="1")
    assert (e.code, e.field) == ("invalid_value", "account")
    assert tracker.balances.get("u2").exists is False and tracker.budgets.limits() == []
    e = err(llmledger.Tracker, store="memory://", webhooks=[{"url": "ftp://hooks.example.com/x", "secret": "s"}])
    assert (e.code, e.field, e.value) == ("invalid_value", "webhooks[0].url", "ftp:")


# ---------------------------------------------------------------------------------------------------------------
# Wrapped calls: refused before sending, settled exactly, released on errors
# ---------------------------------------------------------------------------------------------------------------


def test_a_small_balance_runs_out_and_the_refused_call_is_never_sent(
    tracker: llmledger.Tracker, openai_client: Any, mock: Any
) -> None:
    user = uid("prepaid")
    tracker.balances.top_up(user, "0.003", idempotency_key=f"{user}-1")
    client = tracker.wrap(openai_client, user_id=user)
    for _ in range(3):
        result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
        assert result._token_usage.cost.total == COST
    # 0.003 − 3 × 0.000725 = 0.000825 available < 0.001025 needed.
    with pytest.raises(BudgetExceeded) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
    e = info.value
    assert (e.code, e.rule, e.rule_id, e.scope) == ("budget_exceeded", "balance", f"user_id={user}", {"user_id": user})
    assert (e.limit, e.spent, e.reserved, e.requested, e.currency) == (
        Decimal("0.000825"), Decimal("0"), Decimal("0"), RESERVE, "USD"
    )
    assert isinstance(e, llmledger.LlmledgerError)
    assert len(sent_for(mock, user)) == 3, "the refused call never reached the provider"
    balance = tracker.balances.get(user)
    assert (balance.total, balance.reserved, balance.available) == (Decimal("0.000825"), Decimal("0"), Decimal("0.000825"))
    assert [e["amount"] for e in tracker.balances.history(user)] == [-COST] * 3 + [Decimal("0.003")]
    rows = tracker.usage(user_id=user, timeframe="today")
    assert (rows[0]["requests"], rows[0]["cost"]) == (3, 3 * COST)
    import pickle

    assert pickle.loads(pickle.dumps(e)).requested == RESERVE


def test_a_daily_limit_refuses_async_openai_and_anthropic_before_sending(
    tracker: llmledger.Tracker, async_openai_client: Any, async_anthropic_client: Any, mock: Any
) -> None:
    import asyncio

    user = uid("limited")
    limit = tracker.budgets.set_limit(scope={"user_id": user}, per="day", amount="0.0015")
    openai_client = tracker.wrap(async_openai_client, user_id=user)
    anthropic_client = tracker.wrap(async_anthropic_client, user_id=user)

    async def run() -> None:
        first = await openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
        assert first._token_usage.cost.total == COST
        # 0.000725 used + 0.001025 requested = 0.00175 > 0.0015.
        with pytest.raises(BudgetExceeded) as info:
            await openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
        assert (info.value.rule, info.value.rule_id, info.value.per) == ("limit", limit["id"], "day")
        assert (info.value.limit, info.value.spent, info.value.requested) == (Decimal("0.0015"), COST, RESERVE)
        with pytest.raises(BudgetExceeded):
            await anthropic_client.messages.create(
                model="claude-sonnet-4-5", max_tokens=1000, messages=MESSAGES, metadata={"user_id": user}
            )

    mock.clear()
    asyncio.run(run())
    sent = mock.requests()
    assert len(sent) == 1 and sent[0]["body"]["user"] == user, "only the first call was sent"
    status = tracker.budgets.status(scope={"user_id": user})[0]
    assert (status["used"], status["reserved"], status["remaining"]) == (COST, Decimal("0"), Decimal("0.000775"))


def test_streams_settle_exactly_and_errors_release(tracker: llmledger.Tracker, openai_client: Any, anthropic_client: Any) -> None:
    import openai

    user = uid("streams")
    tracker.balances.top_up(user, "1", idempotency_key=f"{user}-1")
    client = tracker.wrap(openai_client, user_id=user)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, stream=True, user=user)
    assert tracker.balances.get(user).reserved == RESERVE, "held while the stream runs"
    chunks = list(stream)
    assert chunks and llmledger.usage_of(stream).cost.total == COST
    assert (tracker.balances.get(user).total, tracker.balances.get(user).reserved) == (1 - COST, Decimal("0"))

    # The provider fails: nothing was billed, the reservation comes back.
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user, extra_headers={"x-mock-status": "500"}
        )
    assert (tracker.balances.get(user).total, tracker.balances.get(user).reserved) == (1 - COST, Decimal("0"))

    # A stream closed early settles what it counted (estimated) and holds nothing afterwards.
    early = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, stream=True, user=user)
    next(iter(early))
    early.close()
    after = tracker.balances.get(user)
    assert after.reserved == Decimal("0") and after.total < 1 - COST
    assert tracker._native.spend().verify() == "[]"

    # Anthropic, sync, streamed: claude-haiku-4-5 at $1/M input, $0.10/M cache read, $1.25/M cache write,
    # $5/M output; the mock's usage is 300 input, 1,000 cache read, 100 cache write, 60 output:
    # 0.0003 + 0.0001 + 0.000125 + 0.0003 = 0.000825.
    before = tracker.balances.get(user).total
    wrapped = tracker.wrap(anthropic_client, user_id=user)
    with wrapped.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES) as s:
        for _ in s:
            pass
    assert tracker.balances.get(user).total == before - Decimal("0.000825")


# ---------------------------------------------------------------------------------------------------------------
# Alerts: the in-process callback and a signed webhook
# ---------------------------------------------------------------------------------------------------------------


class Receiver:
    """A local webhook receiver: records each POST's headers and raw body, answers 200."""

    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                outer.arrived.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_an_alert_reaches_on_alert_and_a_signed_webhook_once(store_url: str, openai_client: Any) -> None:
    receiver = Receiver()
    got: List[Dict[str, Any]] = []
    arrived = threading.Event()

    def on_alert(alert: Dict[str, Any]) -> None:
        got.append(alert)
        arrived.set()

    secret = "whsec_" + uuid.uuid4().hex
    tracker = llmledger.Tracker(store=store_url, webhooks=[{"url": receiver.url, "secret": secret}], on_alert=on_alert)
    try:
        user = uid("alerted")
        limit = tracker.budgets.set_limit(scope={"user_id": user}, per="day", amount="0.0012")
        client = tracker.wrap(openai_client, user_id=user)
        # 0.000725 crosses 50 % of 0.0012 (0.0006), not 80 % (0.00096).
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
        assert arrived.wait(10) and receiver.arrived.wait(10)
        alert = got[0]
        assert (alert["kind"], alert["threshold"], alert["amount"], alert["limit"], alert["scope"]) == (
            "limit_threshold", Decimal("0.5"), COST, Decimal("0.0012"), {"user_id": user}
        )
        assert alert["alert_id"] == f"{limit['id']}:user_id={user}:{alert['period']}:0.5"
        request = receiver.received[0]
        header = request["headers"]["llmledger-signature"]
        parts = dict(p.split("=", 1) for p in header.split(","))
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300
        assert request["headers"]["llmledger-alert-id"] == alert["alert_id"]
        assert request["headers"]["llmledger-delivery-id"].startswith("dlv_")
        assert Decimal(json.loads(request["body"])["amount"]) == COST
        assert tracker.deliver_alerts() == 0, "handed on once: nothing pending"
    finally:
        tracker.close()
    assert len(got) == 1 and len(receiver.received) == 1
    receiver.server.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# Many processes on one store
# ---------------------------------------------------------------------------------------------------------------

BALANCE = Decimal("0.005")


def run_four_processes(store: str, mock: Any) -> None:
    """64 callers (4 processes × 16 threads, 3 calls each) over 4 users with 0.005 each: every user's settled
    spend stays within the balance, and the mock saw exactly the calls that were not refused."""
    tag = uid("conc")
    setup = llmledger.Tracker(store=store)
    try:
        for n in range(4):
            setup.balances.top_up(f"{tag}-u{n}", str(BALANCE), idempotency_key=f"{tag}-u{n}")
    finally:
        setup.close()
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), "calls", store, mock.url, tag, "16", "3"], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    ok: Dict[str, int] = {}
    refused: Dict[str, int] = {}
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
        result = json.loads(out.strip().splitlines()[-1])
        for user, n in result["ok"].items():
            ok[user] = ok.get(user, 0) + n
        for user, n in result["refused"].items():
            refused[user] = refused.get(user, 0) + n
    assert sum(ok.values()) + sum(refused.values()) == 4 * 16 * 3
    check = llmledger.Tracker(store=store)
    try:
        for n in range(4):
            user = f"{tag}-u{n}"
            b = check.balances.get(user)
            # Settled spend never exceeds the balance, and is exactly the calls that went through.
            assert b.total == BALANCE - ok.get(user, 0) * COST and b.total >= 0 and b.reserved == 0, (user, b)
            # 48 attempts on 0.005: some pass (at most 6: 0.005 − 5 × 0.000725 ≥ 0.001025), the rest are refused.
            assert 1 <= ok.get(user, 0) <= 6 and refused.get(user, 0) >= 42
            assert len(sent_for(mock, user)) == ok.get(user, 0), "every refused call was refused before sending"
        assert check._native.spend().verify() == "[]"
    finally:
        check.close()


def test_four_processes_never_overspend_on_one_sqlite_file(store_url: str, mock: Any) -> None:
    run_four_processes(store_url, mock)


def test_four_processes_never_overspend_on_one_postgresql(mock: Any) -> None:
    run_four_processes(pg_or_skip(), mock)


def test_a_killed_process_reservations_are_released_after_expiry(store_url: str, openai_client: Any, mock: Any) -> None:
    user = uid("killed")
    tracker = llmledger.Tracker(store=store_url, spend={"reservation_ttl_secs": 2})
    try:
        tracker.balances.top_up(user, "0.01", idempotency_key=user)
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), "hold", store_url, mock.url, user, "2"],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "HOLDING"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        held = tracker.balances.get(user)
        assert (held.total, held.reserved) == (Decimal("0.01"), 2 * RESERVE), "the dead process's holds remain"
        # Past their expiry (2 s), the next reservation releases them first.
        time.sleep(2.2)
        client = tracker.wrap(openai_client, user_id=user)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
        after = tracker.balances.get(user)
        assert (after.total, after.reserved, after.available) == (Decimal("0.01") - COST, Decimal("0"), Decimal("0.01") - COST)
        assert tracker._native.spend().verify() == "[]"
    finally:
        tracker.close()
