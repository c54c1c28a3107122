"""A model that shipped today: priced through ``Tracker(prices=…)`` or ``Tracker(litellm_prices=…)`` from a
small price file, the wrapped official SDK over HTTP to the mock, into a real SQLite ledger. A bad file
is refused at construction with a typed error naming the file, model and field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llmledger
from conftest import MESSAGES

# Mock chat usage: prompt 120 (20 cached), completion 45.
OUR_FORMAT = {
    "provider": "openai",
    "models": [
        {
            "id": "acme-brand-new",
            "mode": "chat",
            "prices": [
                {
                    "effective_from": "2020-01-01",
                    "source": "launch post",
                    "checked": "2020-01-01",
                    "input": "3.00",
                    "cache_read": "0.30",
                    "output": "12.00",
                }
            ],
        }
    ],
}
# 100 × 3.00/1M + 20 × 0.30/1M + 45 × 12.00/1M = 0.0003 + 0.000006 + 0.00054
OUR_FORMAT_COST = Decimal("0.000846")

LITELLM = {
    "acme-litellm-new": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 2e-06,
        "cache_read_input_token_cost": 5e-07,
        "output_cost_per_token": 8e-06,
    }
}
# 100 × 2/1M + 20 × 0.5/1M + 45 × 8/1M = 0.0002 + 0.00001 + 0.00036
LITELLM_COST = Decimal("0.00057")


def call(tracker: llmledger.Tracker, client: Any, model: str) -> Any:
    return tracker.wrap(client, user_id="u-new").chat.completions.create(model=model, messages=MESSAGES)._token_usage


def test_a_price_file_prices_a_model_the_day_it_ships(tmp_path: Path, openai_client: Any) -> None:
    store = f"sqlite://{tmp_path / 'new.db'}"
    with llmledger.Tracker(store=store) as before:
        u = call(before, openai_client, "acme-brand-new")
        assert u.cost is None and u.pricing_error.code == "unknown_model"
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(OUR_FORMAT))
    with llmledger.Tracker(store=store, prices=path) as tracker:
        u = call(tracker, openai_client, "acme-brand-new")
        assert (u.cost.total, u.resolved_model) == (OUR_FORMAT_COST, "acme-brand-new")
        rows = tracker.usage(user_id="u-new")
        # The earlier call stays unpriced (flagged, not $0); re-pricing it is `llmledger ledger reprice`.
        assert (rows[0]["requests"], rows[0]["unpriced"], rows[0]["cost_usd"]) == (2, 1, OUR_FORMAT_COST)


def test_a_litellm_file_prices_a_model_the_day_it_ships(tmp_path: Path, openai_client: Any) -> None:
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(LITELLM))
    with llmledger.Tracker(store=f"sqlite://{tmp_path / 'll.db'}", litellm_prices=path) as tracker:
        u = call(tracker, openai_client, "acme-litellm-new")
        assert (u.cost.total, u.resolved_model) == (LITELLM_COST, "acme-litellm-new")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"output": "-12.00"}, "negative: openai: acme-brand-new: prices[0].output = -12.00"),
        ({"output": None}, "mode: openai: acme-brand-new"),
    ],
)
def test_a_bad_price_file_is_refused_naming_file_model_and_field(
    tmp_path: Path, change: Any, named: str
) -> None:
    data = json.loads(json.dumps(OUR_FORMAT))
    version = data["models"][0]["prices"][0]
    for key, value in change.items():
        if value is None:
            del version[key]
        else:
            version[key] = value
    path = tmp_path / "bad-prices.json"
    path.write_text(json.dumps(data))
    with pytest.raises(llmledger.InvalidInputError) as info:
        llmledger.Tracker(store="memory://", prices=path)
    assert info.value.code == "invalid_price_data"
    assert "bad-prices.json" in str(info.value) and named in str(info.value)


def test_versions_out_of_order_and_a_claimed_alias_are_refused(tmp_path: Path) -> None:
    data = json.loads(json.dumps(OUR_FORMAT))
    first = data["models"][0]["prices"][0]
    data["models"][0]["prices"] = [dict(first, effective_from="2021-01-01"), first]
    data["models"].append(
        {"id": "acme-other", "mode": "chat", "aliases": ["acme-brand-new"], "prices": [first]}
    )
    path = tmp_path / "bad-order.json"
    path.write_text(json.dumps(data))
    with pytest.raises(llmledger.InvalidInputError) as info:
        llmledger.Tracker(store="memory://", prices=path)
    message = str(info.value)
    assert "unsorted-versions: openai: acme-brand-new: prices.effective_from = 2020-01-01" in message
    assert "duplicate: openai: acme-other: aliases = acme-brand-new" in message
