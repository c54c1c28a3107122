"""``tracker.reconcile``: core's tracked-against-billed rows through the binding (the matching rules and the
planted-difference cases are core's tests, ``core/tests/org_reconcile.rs``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import llmledger
from conftest import MESSAGES

# gpt-4o, mock chat usage: 100 × 2.5 + 20 × 1.25 + 45 × 10 = 725 µ$ (see test_openai.py).
CHAT_COST = Decimal("0.000725")


def test_a_tracked_call_nothing_billed_is_flagged(tracker: llmledger.Tracker, openai_client: Any) -> None:
    client = tracker.wrap(openai_client, user_id="u1")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    today = dt.datetime.now(dt.timezone.utc).date()
    rows = tracker.reconcile(since=today, by=["provider", "model"])
    assert rows == [
        {
            "provider": "openai",
            "model": "gpt-4o",
            "tracked_usd": 2 * CHAT_COST,
            "billed_usd": Decimal(0),
            "diff_usd": -2 * CHAT_COST,
            "diff_pct": None,
            "flagged": True,
            "cause": "tracked but not billed: not yet in the provider's report, or billed to another organisation",
        }
    ]
    assert isinstance(rows[0]["tracked_usd"], Decimal)
    # Days before the call: nothing on either side.
    assert tracker.reconcile(since=today - dt.timedelta(days=3), until=today - dt.timedelta(days=1)) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"since": "2026-11-05", "until": "2026-11-01"}, "until"),
        ({"since": "2026-11-01", "threshold_pct": -1}, "threshold_pct"),
        ({"since": "2026-11-01", "by": ["colour"]}, "reconcile"),
        ({"since": "not a day"}, "reconcile"),
    ],
)
def test_bad_queries_are_typed_errors_naming_the_field(tracker: llmledger.Tracker, kwargs: Any, field: str) -> None:
    with pytest.raises(llmledger.InvalidInputError) as e:
        tracker.reconcile(**kwargs)
    assert e.value.code == "invalid_value"
    assert e.value.field == field
