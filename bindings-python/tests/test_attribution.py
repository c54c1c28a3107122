"""Attribution through contextvars: nesting, threads, asyncio tasks; reports per user with exact totals."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

import llmledger
from conftest import MESSAGES
from test_openai import CHAT_COST


def test_nesting_and_precedence(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="base", project="p0", tags={"a": "1"})
    with tracker.attribute(user_id="outer", workspace_id="w1", tags={"b": "2"}):
        with llmledger.attribute(session_id="s1", user_id="inner", tags={"a": "9"}) as eff:
            u = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)._token_usage
            assert eff.user_id == "inner"
        v = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)._token_usage
    w = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)._token_usage
    assert (u.user_id, u.workspace_id, u.project, u.session_id, u.tags) == ("inner", "w1", "p0", "s1", {"a": "9", "b": "2"})
    assert (v.user_id, v.workspace_id, v.session_id, v.tags) == ("outer", "w1", None, {"a": "1", "b": "2"})
    assert (w.user_id, w.workspace_id, w.tags) == ("base", None, {"a": "1"})


def test_threads(any_store: str, openai_client: Any) -> None:
    project = f"threads-{uuid.uuid4().hex[:8]}"
    with llmledger.Tracker(store=any_store) as tracker:
        client = tracker.wrap(openai_client, project=project)

        def work(i: int) -> str:
            user = f"t{i % 4}"
            with tracker.attribute(user_id=user):
                resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            assert resp._token_usage.user_id == user
            return user

        with ThreadPoolExecutor(max_workers=8) as pool:
            users = list(pool.map(work, range(24)))
        rows = tracker.usage(project=project, group_by=["user"])
        by_user = {r["user"]: r for r in rows}
        assert sorted(by_user) == ["t0", "t1", "t2", "t3"]
        for user in by_user:
            assert by_user[user]["requests"] == users.count(user) == 6
            assert by_user[user]["cost_usd"] == 6 * CHAT_COST
        assert sum((r["cost_usd"] for r in rows), Decimal(0)) == 24 * CHAT_COST


def test_asyncio_tasks(any_store: str, async_openai_client: Any) -> None:
    project = f"tasks-{uuid.uuid4().hex[:8]}"

    async def main(tracker: llmledger.Tracker) -> None:
        client = tracker.wrap(async_openai_client, project=project)

        async def handler(user: str) -> None:
            with tracker.attribute(user_id=user):
                await asyncio.sleep(0)  # interleave with the other tasks
                resp = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
                assert resp._token_usage.user_id == user
                stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
                async for _ in stream:
                    await asyncio.sleep(0)
                assert llmledger.usage_of(stream).user_id == user

        await asyncio.gather(*(handler(f"u{i}") for i in range(5)))

    with llmledger.Tracker(store=any_store) as tracker:
        asyncio.run(main(tracker))
        rows = tracker.usage(project=project, group_by=["user", "model"])
        assert len(rows) == 5
        assert all(r["requests"] == 2 and r["cost_usd"] == 2 * CHAT_COST and r["model"] == "gpt-4o" for r in rows)


def test_report_filters_and_groups(any_store: str, openai_client: Any, anthropic_client: Any) -> None:
    project = f"rep-{uuid.uuid4().hex[:8]}"
    with llmledger.Tracker(store=any_store) as tracker:
        oa = tracker.wrap(openai_client, project=project)
        an = tracker.wrap(anthropic_client, project=project)
        for user in ("alice", "bob", "carol"):
            with tracker.attribute(user_id=user):
                oa.chat.completions.create(model="gpt-4o", messages=MESSAGES)
                an.messages.create(model="claude-sonnet-4-5", max_tokens=9, messages=MESSAGES)
        rows = tracker.usage(project=project, group_by=["user", "model"])
        assert len(rows) == 6
        # Core's one row shape (Node's keys): group keys at the top, then the totals.
        assert list(rows[0]) == ["user", "model", "requests", "successful", "failed", "unpriced", "input_tokens",
                                 "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
                                 "cost", "cost_usd", "currency", "avg_latency_ms", "p95_latency_ms"]
        total = sum((r["cost_usd"] for r in rows), Decimal(0))
        assert total == 3 * (CHAT_COST + Decimal("0.002475"))
        alice = tracker.usage(project=project, user_id="alice")
        assert alice[0]["requests"] == 2
        days = tracker.usage(project=project, group_by="day")
        assert len(days) == 1 and days[0]["requests"] == 6
        assert tracker.usage(project=project, since="2000-01-01", until="2000-01-02") == []


def test_report_days_default_to_the_trackers_time_zone(tmp_path: Any, openai_client: Any) -> None:
    from datetime import timezone
    from zoneinfo import ZoneInfo

    # A zone whose date differs from UTC's right now (UTC−12 in the UTC morning, UTC+14 after), so a
    # report grouped in UTC could not pass.
    zone = "Etc/GMT+12" if datetime.now(timezone.utc).hour < 12 else "Pacific/Kiritimati"
    with llmledger.Tracker(store=f"sqlite://{tmp_path / 'tz.db'}", timezone=zone) as tracker:
        u = tracker.wrap(openai_client).chat.completions.create(model="gpt-4o", messages=MESSAGES)._token_usage
        local, utc = u.timestamp.astimezone(ZoneInfo(zone)).date(), u.timestamp.astimezone(timezone.utc).date()
        assert local != utc
        [row] = tracker.usage(group_by="day")
        assert (row["day"], row["requests"], row["currency"]) == (local.isoformat(), 1, "USD")
        [row] = tracker.usage(group_by="day", timezone="UTC")
        assert row["day"] == utc.isoformat()
