"""What an operator sees: ``health()``, the spill directory, the warnings and the recovery line on the
``llmledger`` logger when the store fails and comes back, and typed errors for bad numeric arguments.

The outage is real: an unreachable PostgreSQL port, and the PostgreSQL server of ``scripts/with-postgres.sh``
stopped and started with ``pg_ctl`` (``LLMLEDGER_TEST_PG_CTL``)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, List

import pytest

import llmledger
from llmledger.errors import InvalidInputError, StoreError

from conftest import IN_CI, MESSAGES


class Notices(logging.Handler):
    """Collects the ``llmledger`` logger's records and lets a test wait for one (an event, not a sleep)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def kinds(self) -> List[str]:
        return [r.llmledger_notice["kind"] for r in self.records if hasattr(r, "llmledger_notice")]

    def wait_for(self, kind: str, timeout: float = 20.0) -> logging.LogRecord:
        with self.arrived:
            ok = self.arrived.wait_for(lambda: kind in self.kinds(), timeout)
        assert ok, f"no {kind} notice within {timeout} s; got {self.kinds()}"
        return next(r for r in self.records if getattr(r, "llmledger_notice", {}).get("kind") == kind)


@pytest.fixture
def notices() -> Any:
    handler = Notices()
    logger = logging.getLogger("llmledger")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


# -- bad numeric input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 1.5, "3", 2**64, True, None])
def test_cost_counts_are_checked_and_name_the_field(value: Any) -> None:
    with pytest.raises(InvalidInputError) as err:
        llmledger.cost("gpt-4o", input_tokens=10, output_tokens=value)
    assert err.value.code == "invalid_value"
    assert err.value.field == "output_tokens"


def test_estimate_max_output_tokens_is_checked() -> None:
    with pytest.raises(InvalidInputError) as err:
        llmledger.estimate("gpt-4o", MESSAGES, max_output_tokens=-5)
    assert (err.value.code, err.value.field, err.value.value) == ("invalid_value", "max_output_tokens", "-5")


def test_largest_count_is_accepted() -> None:
    # 2^64 - 1 input tokens of gpt-4o at $2.50 / 1M: exact, no overflow.
    from datetime import datetime, timezone

    cost = llmledger.cost("gpt-4o", input_tokens=2**64 - 1, at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert cost.total == Decimal("46116860184273.8790375")


# -- health and the spill directory ------------------------------------------------------------------------------


def test_health_of_a_healthy_sqlite_ledger(tmp_path: Path, openai_client: Any) -> None:
    spill = tmp_path / "spill"
    tracker = llmledger.Tracker(store=f"sqlite://{tmp_path / 'l.db'}", spill_dir=spill)
    try:
        client = tracker.wrap(openai_client, user_id="ops")
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        tracker.flush()
        h = tracker.health()
        assert h["store_state"] == "up"
        assert (h["recorded_events"], h["written_events"], h["queued_events"], h["spilled_events"]) == (3, 3, 0, 0)
        assert h["spill_dir"] == str(spill)
        assert h["last_error"] is None and h["oldest_spilled_at"] is None
    finally:
        tracker.close()
    assert not [p for p in spill.iterdir()], "an idle ledger leaves no journal behind"


def test_unreachable_postgres_warns_once_redacted_and_keeps_every_event(
    tmp_path: Path, openai_client: Any, notices: Notices
) -> None:
    url = f"postgres://ops:hunter2@127.0.0.1:{free_port()}/ledger"
    spill = tmp_path / "state"
    tracker = llmledger.Tracker(store=url, spill_dir=spill)
    try:
        warning = notices.wait_for("store_unreachable")
        assert warning.levelno == logging.WARNING
        assert "hunter2" not in warning.getMessage() and "ops:***@127.0.0.1" in warning.getMessage()
        assert str(spill) in warning.getMessage()
        assert "hunter2" not in repr(tracker)
        client = tracker.wrap(openai_client, user_id="ops")
        for _ in range(5):
            r = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            assert r.choices[0].message.content  # the call itself is untouched
        with pytest.raises(StoreError) as err:
            tracker.flush()
        assert err.value.field == "spill_dir"
        h = tracker.health()
        assert h["store_state"] == "down"
        assert h["spilled_events"] == 5 and h["queued_events"] == 0
        assert "hunter2" not in (h["last_error"] or "") and "hunter2" not in h["store"]
        assert h["oldest_spilled_age_secs"] is not None and h["down_since"] is not None
        # One warning for the ledger, and one (not one per call) that the spend checks could not run: with
        # the store unreachable, spend control counts as active and each call went ahead unchecked.
        assert notices.kinds() == ["store_unreachable", "spend_store_failed"], "one warning each, not one per event"
    finally:
        with pytest.raises(StoreError):
            tracker.close()  # the store is still down: the events stay in the spill directory
    assert [p.name for p in spill.iterdir() if p.name.endswith(".jsonl")], "the spill outlives the tracker"


def pg_ctl(action: str) -> None:
    ctl, data = os.environ["LLMLEDGER_TEST_PG_CTL"], os.environ["LLMLEDGER_TEST_PG_DATA"]
    runas = os.environ.get("LLMLEDGER_TEST_PG_RUNAS", "")
    cmd = [ctl, "-D", data, "-w"]
    if action == "stop":
        cmd += ["-m", "fast", "stop"]
    else:
        cmd += ["-l", os.environ.get("LLMLEDGER_TEST_PG_LOG", "/dev/null"), "-o", os.environ.get("LLMLEDGER_TEST_PG_OPTS", ""), "start"]
    if runas:
        cmd = ["runuser", "-u", runas, "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def test_postgres_outage_then_recovery_logs_warning_then_info_after_replay(
    tmp_path: Path, openai_client: Any, notices: Notices
) -> None:
    if not (os.environ.get("LLMLEDGER_TEST_PG") and os.environ.get("LLMLEDGER_TEST_PG_CTL")):
        if IN_CI:
            pytest.fail("CI=true but the PostgreSQL server of scripts/with-postgres.sh is not available")
        pytest.skip("needs the PostgreSQL server started by scripts/with-postgres.sh (pg_ctl)")
    user = f"py-outage-{os.getpid()}-{time.time_ns()}"
    tracker = llmledger.Tracker(store=os.environ["LLMLEDGER_TEST_PG"], spill_dir=tmp_path / "spill")
    client = tracker.wrap(openai_client, user_id=user)
    try:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        tracker.flush()
        assert tracker.health()["store_state"] == "up"
        pg_ctl("stop")
        try:
            for _ in range(4):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            with pytest.raises(StoreError):
                tracker.flush()
            down = notices.wait_for("store_down")
            assert down.levelno == logging.WARNING and str(tmp_path / "spill") in down.getMessage()
            assert tracker.health()["spilled_events"] == 4
        finally:
            pg_ctl("start")
        eventually("the store is back and the spill replayed", lambda: tracker.health()["spilled_events"] == 0)
        back = notices.wait_for("store_recovered")
        assert back.levelno == logging.INFO and back.llmledger_notice["replayed_events"] == 4
        assert notices.kinds() == ["store_down", "store_recovered"]
        rows = tracker.usage(user_id=user)
        assert rows[0]["requests"] == 5
        assert tracker.health()["store_state"] == "up"
    finally:
        tracker.close()
