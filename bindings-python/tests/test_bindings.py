"""The binding contract of issue 9 (``tests/vectors/bindings.json``, format in tests/vectors/README.md, "Binding
cases"): each case's call made through the wrapped official SDK against the mock server, then the request
the mock received, the chunks the caller saw, the record (``_token_usage``), its key sets, the stream's end
and the tracker's report compared with the case. The Node suite runs the same cases; expected values are
the case's (hand-computed), never the library's. As ordinary cases they also run in ``test_vectors.py``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional

import anthropic
import openai
import pytest

import llmledger
from llmledger import _native
from conftest import load_vectors

CASES = [c for c in load_vectors() if "binding" in c]


def date_at_offset(timestamp: str, offset: str) -> str:
    """``{"$date_at_offset": "+09:00"}``: the date of ``timestamp`` shifted by a fixed UTC offset."""
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset.lstrip("+-").split(":")
    at = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(timezone.utc)
    return (at + sign * timedelta(hours=int(hours), minutes=int(minutes))).date().isoformat()


def match(actual: Any, expected: Any, path: str, timestamp: Optional[str] = None) -> None:
    """Objects as subsets (the expected keys only), arrays element by element, the rest exactly; a
    ``Decimal`` compares as a decimal with the expected decimal string, a ``date`` as its ISO text."""
    if isinstance(expected, dict) and "$date_at_offset" in expected:
        assert timestamp is not None, path
        expected = date_at_offset(timestamp, expected["$date_at_offset"])
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for key, want in expected.items():
            assert key in actual, f"{path}.{key} missing"
            match(actual[key], want, f"{path}.{key}", timestamp)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            match(a, e, f"{path}[{i}]", timestamp)
    elif isinstance(actual, Decimal):
        assert actual == Decimal(expected), f"{path}: {actual} != {expected}"
    elif isinstance(actual, date):  # `Cost.price_version`
        assert actual.isoformat() == expected, f"{path}: {actual} != {expected}"
    else:
        assert (actual, type(actual)) == (expected, type(expected)), f"{path}: {actual!r} != {expected!r}"


def sdk_client(sdk: str, mock: Any) -> Any:
    if sdk == "openai":
        return openai.OpenAI(base_url=f"{mock.url}/v1", api_key="t", max_retries=0)
    if sdk == "anthropic":
        return anthropic.Anthropic(base_url=mock.url, api_key="t", max_retries=0)
    raise AssertionError(f"no SDK {sdk!r}")


def native_stream_after_end(case: Dict[str, Any], tracker: llmledger.Tracker) -> Any:
    """The case's stream through core's call engine as the wrappers drive it (on its own tracker, so the
    case's report sees only the SDK call), finished once."""
    client = _native.Client(json.dumps({"sdk": case["binding"]["call"]["sdk"]}), _native.Attribution())
    params = case["binding"]["call"]["params"]
    call = tracker._native.begin(client, case["api"], "", params, None, True, None)
    call.set_request_body(json.dumps(params))
    stream = call.into_stream()
    for event in case["stream"]:
        data = event["data"] if isinstance(event["data"], str) else json.dumps(event["data"])
        stream.push(event.get("event"), data)
    assert stream.finish(False) is not None, "the first finish records"
    return stream


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_binding_case(case: Dict[str, Any], mock: Any) -> None:
    binding, expected = case["binding"], case["binding"]["expected"]
    config = binding["tracker"]
    tracker = llmledger.Tracker(
        store=config["store"],
        currency=config.get("currency", "USD"),
        rates=config.get("rates"),
        timezone=config.get("timezone", "UTC"),
    )
    try:
        client: Any = tracker.wrap(sdk_client(binding["call"]["sdk"], mock), **(binding.get("attribution") or {}))
        method = client
        for part in binding["call"]["method"].split("."):
            method = getattr(method, part)
        params = dict(binding["call"]["params"])
        if binding["mock_case"]:
            params["extra_headers"] = {"x-mock-case": binding["mock_case"]}
        result = method(**params)

        if params.get("stream"):
            chunks: List[Any] = list(result)
            if "chunks_seen" in expected:
                assert len(chunks) == expected["chunks_seen"]
            if "last_chunk_usage" in expected:
                assert (getattr(chunks[-1], "usage", None) is not None) == expected["last_chunk_usage"]
        if "sent" in expected:
            match(mock.last_request()["body"], expected["sent"], "sent")

        usage = llmledger.usage_of(result)
        assert usage is not None, "nothing recorded"
        record = usage.to_dict()
        if "record" in expected:
            match(record, expected["record"], "record")
            # The same values as attributes (money and decimal units as Decimal, the cost as a Cost).
            for key, want in expected["record"].items():
                if key == "cost" and want is not None:
                    match({k: getattr(usage.cost, k) for k in want}, want, "usage.cost")
                elif key == "pricing_error" and want is not None:
                    match({k: getattr(usage.pricing_error, k) for k in want}, want, "usage.pricing_error")
                else:
                    match(getattr(usage, key), want, f"usage.{key}")
        for of, keys in expected.get("keys", {}).items():
            assert list(record if of == "" else record[of]) == keys, f"keys of {of or 'the record'}"

        if "after_end" in expected:
            # Through the SDK: closing the ended stream again records nothing more.
            result.close()
            assert llmledger.usage_of(result) is usage
            # Through core's call engine: finish again and push once more, quietly.
            with llmledger.Tracker(store="memory://") as own:
                stream = native_stream_after_end(case, own)
                assert stream.finish(False) is expected["after_end"]["finish"]
                assert stream.push(None, '{"choices":[]}') is expected["after_end"]["push_hidden"]

        if "report" in expected:
            report = expected["report"]
            rows = tracker.usage(**report["query"])
            match(rows, report["rows"], "rows", record["timestamp"])
            for row in rows:
                assert list(row) == report["keys"], "report row keys"
    finally:
        tracker.close()


def test_every_binding_case_is_here() -> None:
    assert len(CASES) >= 7, f"only {len(CASES)} binding cases"
