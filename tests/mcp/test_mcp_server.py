"""`llmledger mcp` through the official MCP Python SDK client over stdio: the tools are listed and answer
with exact figures from the dashboard's seeded ledger (cli/tests/support/dashboard_seed.rs, hand-computed
costs) and the embedded prices (gpt-4o: $2.50 / $10 per 1M input / output tokens)."""

import asyncio
import json
import os
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("LLMLEDGER_BIN_DIR", ROOT / "target/x86_64-unknown-linux-gnu/debug"))


def text(result) -> str:
    return result.content[0].text


async def session_run(store: str) -> None:
    params = StdioServerParameters(command=str(BIN / "llmledger"), args=["mcp", "--store", store])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            names = sorted(t.name for t in (await session.list_tools()).tools)
            assert names == ["list_models", "price_lookup", "usage_report"], names
            rows = json.loads(text(await session.call_tool("usage_report", {"group_by": "user"})))
            by_user = {r["user"]: Decimal(r["cost_usd"]) for r in rows}
            # alice: 0.004 + 0.0125; the hostile id 0.00075; bob's call is unpriced.
            assert by_user["alice"] == Decimal("0.0165"), rows
            assert by_user["<img src=x onerror=alert(1)>"] == Decimal("0.00075"), rows
            assert by_user["bob"] == Decimal("0"), rows
            since = json.loads(text(await session.call_tool("usage_report", {"since": "2026-11-02"})))
            assert Decimal(since[0]["cost_usd"]) == Decimal("0.01325"), since
            # gpt-4o: 1000 × 2.50 + 500 × 10 = 7500 µ$.
            cost = json.loads(text(await session.call_tool("price_lookup", {"model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500})))
            assert Decimal(cost["total_usd"]) == Decimal("0.0075"), cost
            models = json.loads(text(await session.call_tool("list_models", {"provider": "anthropic"})))
            assert models and all(m["provider"] == "anthropic" for m in models), models[:2]
            bad = text(await session.call_tool("usage_report", {"group_by": "colour"}))
            assert bad.startswith("error [invalid_value]") and "colour" in bad, bad


def test_mcp_tools_answer_from_the_ledger() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = subprocess.run(
            [str(BIN / "examples/dashboard_seed"), str(Path(tmp) / "ledger.db")], check=True, capture_output=True, text=True
        ).stdout.strip()
        asyncio.run(session_run(store))
