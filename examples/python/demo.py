#!/usr/bin/env python3
"""llmledger demo: three users make chat, streamed, Responses and Anthropic calls through wrapped official
clients; then a pre-flight estimate and the per-user × model cost report from the embedded SQLite ledger.

    pip install . openai anthropic
    python examples/python/demo.py

Without API keys it starts the local mock provider (tests/mock_provider/server.py) and points the clients
at it; with OPENAI_API_KEY and ANTHROPIC_API_KEY set it calls the real APIs (a few cents at most).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

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
    tracker = llmledger.Tracker(store=f"sqlite://{db}")
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
    finally:
        tracker.close()
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
