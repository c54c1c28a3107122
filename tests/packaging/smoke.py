"""Smoke test of an installed llmledger wheel (run by scripts/package-python.sh in a fresh virtualenv, with no
cargo or rustc on PATH): the import, a price, and the official openai SDK wrapped against the mock provider
(URL in argv[1]) with a SQLite ledger. Expected values are hand-computed from pricing/data/openai.json.

    python smoke.py http://127.0.0.1:PORT LEDGER_DIR
"""

import sys
from decimal import Decimal
from pathlib import Path

import openai

import llmledger

url, ledger_dir = sys.argv[1], Path(sys.argv[2])

# The package came from the wheel, not from a source checkout.
assert "site-packages" in llmledger.__file__, llmledger.__file__

# gpt-4o: $2.50 / 1M input, $10.00 / 1M output: 1,000 × 2.5 + 500 × 10 = 7,500 µ$.
price = llmledger.cost("gpt-4o", input_tokens=1000, output_tokens=500)
assert price.total == Decimal("0.0075"), price.total

tracker = llmledger.Tracker(store=f"sqlite://{ledger_dir / 'ledger.db'}")
client = tracker.wrap(openai.OpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0), user_id="smoke")
resp = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
# Mock chat usage: prompt 120 (20 cached), completion 45 → 100 × 2.5 + 20 × 1.25 + 45 × 10 = 725 µ$.
usage = resp._token_usage
assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (100, 20, 45), usage
assert usage.cost.total == Decimal("0.000725"), usage.cost.total
rows = tracker.usage(group_by="user")
assert [(r["user"], r["requests"], r["cost"]) for r in rows] == [("smoke", 1, Decimal("0.000725"))], rows
tracker.close()
print("python smoke: import, cost, wrapped openai call and report OK")
