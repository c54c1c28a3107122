#!/usr/bin/env python3
"""llmledger demo: three users make chat, streamed, Responses and Anthropic calls through wrapped official
clients; then a pre-flight estimate and the per-user × model cost report from the embedded SQLite ledger;
then spend control: a user with a small prepaid balance runs out of credit and the next call is refused
with ``llmledger.BudgetExceeded`` before it is sent, and a low-balance alert reaches the ``on_alert`` callback.

    pip install . openai anthropic
    python examples/python/demo.py

Without API keys it starts the local mock provider (tests/mock_provider/server.py) and points the clients
at it; with OPENAI_API_KEY and ANTHROPIC_API_KEY set it calls the real APIs (a few cents at most).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional

import anthropic
import openai

import llmledger

ROOT = Path(__file__).resolve().parents[2]


def clients() -> tuple:
    if os.environ.get("OPENAI_API_KEY") and os.environ.get("ANTHROPIC_API_KEY"):
        print("using the real OpenAI and Anthropic APIs")
        return openai.OpenAI(), anthropic.Anthropic(), None
    server = subprocess.Popen([sys.executable, str(ROOT / "tests/mock_provider/server.py"), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline().split()[1])
    print(f"no API keys: using the local mock provider on port {port}")
    return (openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="mock"),
            anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="mock"), server)


def main() -> None:
    oa, an, server = clients()
    # scripts/demo.sh passes a path so the CLI can report from the same ledger afterwards.
    db = Path(os.environ.get("LLMLEDGER_DEMO_DB") or Path(tempfile.mkdtemp()) / "demo.db").resolve()
    alerts: List[Dict[str, Any]] = []  # called on llmledger's alert thread; printed below
    tracker = llmledger.Tracker(store=f"sqlite://{db}", on_alert=alerts.append)
    gpt = tracker.wrap(oa, project="demo")
    claude = tracker.wrap(an, project="demo")
    ask = [{"role": "user", "content": "In one sentence: why count tokens?"}]
    try:
        for user in ("alice", "bob", "carol"):
            with tracker.attribute(user_id=user):  # per request in a web app (contextvars)
                resp = gpt.chat.completions.create(model="gpt-4o-mini", messages=ask, max_tokens=60)
                print(f"{user:6} chat       {resp._token_usage.cost.total:.8f} USD")
                stream = gpt.chat.completions.create(model="gpt-4o-mini", messages=ask, max_tokens=60, stream=True)
                "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                print(f"{user:6} streamed   {llmledger.usage_of(stream).cost.total:.8f} USD")
                r = gpt.responses.create(model="gpt-4o-mini", input=ask[0]["content"], max_output_tokens=60)
                print(f"{user:6} responses  {r._token_usage.cost.total:.8f} USD")
                m = claude.messages.create(model="claude-haiku-4-5", max_tokens=60, messages=ask)
                print(f"{user:6} anthropic  {m._token_usage.cost.total:.8f} USD")

        print("\npre-flight estimate:")
        print(llmledger.estimate(model="gpt-4o", messages=ask * 10, max_output_tokens=512))

        print("\ncost per user × model (USD):")
        rows = tracker.usage(group_by=["user", "model"])
        for row in rows:
            print(f"  {row['user']:6} {row['model']:28} {row['requests']:3} calls  {row['cost_usd']:.8f}")
        total = sum((row["cost_usd"] for row in rows), Decimal(0))
        print(f"  {'total':35} {sum(r['requests'] for r in rows):3} calls  {total:.8f}")

        spend_control(tracker, gpt, oa, alerts)
    finally:
        tracker.close()
        if server is not None:
            server.terminate()


def mock_requests(client: Any) -> Optional[int]:
    """How many requests the mock provider has received (None against the real APIs)."""
    base = str(client.base_url).rstrip("/").rsplit("/v1", 1)[0]
    if not base.startswith("http://127.0.0.1"):
        return None
    with urllib.request.urlopen(f"{base}/_mock/requests") as resp:
        return len(json.loads(resp.read()))


def spend_control(tracker: llmledger.Tracker, gpt: Any, oa: Any, alerts: List[Dict[str, Any]]) -> None:
    print("\nspend control: dave has 0.003 USD of prepaid credit (a low-balance alert below 0.0015)")
    tracker.balances.top_up("dave", "0.003", idempotency_key="demo-topup-dave")
    tracker.balances.set_alert("dave", below="0.0015")
    ask = [{"role": "user", "content": "Say hello."}]
    with tracker.attribute(user_id="dave"):
        for _ in range(10):  # bounded: with the real APIs a call costs less than with the mock
            sent_before = mock_requests(oa)
            try:
                r = gpt.chat.completions.create(model="gpt-4o", messages=ask, max_tokens=100)
            except llmledger.BudgetExceeded as e:
                seen = mock_requests(oa)
                print(f"dave   refused    BudgetExceeded(code={e.code!r}, rule={e.rule!r}, available={e.limit - e.reserved}, "
                      f"requested={e.requested} {e.currency})")
                if seen is not None:
                    print(f"       the provider received {seen - (sent_before or 0)} requests for it: refused before sending")
                break
            b = tracker.balances.get("dave")
            print(f"dave   chat       {r._token_usage.cost.total:.8f} USD  balance {b.total} available {b.available}")
    tracker.deliver_alerts()  # the alert thread already has them; this just makes sure before printing
    for alert in alerts:
        print(f"on_alert: {alert['kind']} for {alert['scope']}: {alert['amount']} {alert['currency']} "
              f"(threshold {alert['threshold']})")


if __name__ == "__main__":
    main()
