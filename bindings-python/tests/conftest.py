"""Fixtures: the mock provider server (real HTTP), trackers on a real SQLite file (and PostgreSQL when
``LLMLEDGER_TEST_PG`` is set), wrapped official SDK clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import llmledger

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "mock_provider" / "server.py"
VECTORS = Path(os.environ.get("LLMLEDGER_VECTORS", ROOT / "tests" / "vectors"))

PG_URL = os.environ.get("LLMLEDGER_TEST_PG")
MYSQL_URL = os.environ.get("LLMLEDGER_TEST_MYSQL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class Mock:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def requests(self) -> List[Dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_mock/requests") as resp:
            return json.loads(resp.read())

    def last_request(self) -> Dict[str, Any]:
        return self.requests()[-1]

    def clear(self) -> None:
        req = urllib.request.Request(f"{self.url}/_mock/requests", method="DELETE")
        urllib.request.urlopen(req).close()


@pytest.fixture(scope="session")
def mock() -> Iterator[Mock]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--vectors", str(VECTORS)], stdout=subprocess.PIPE, text=True, cwd=str(ROOT)
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"mock server did not start: {line!r}"
        yield Mock(int(line.split()[1]))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file, then PostgreSQL from ``LLMLEDGER_TEST_PG`` and MySQL/MariaDB from
    ``LLMLEDGER_TEST_MYSQL`` (shared: tests filter by unique ids)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'ledger.db'}"
    if request.param == "mysql":
        if not MYSQL_URL:
            if IN_CI:
                pytest.fail("CI=true but LLMLEDGER_TEST_MYSQL is not set: the MySQL ledger tests must run in CI")
            pytest.skip("MySQL ledger: set LLMLEDGER_TEST_MYSQL=mysql://user:pass@host:port/db to run")
        return MYSQL_URL
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but LLMLEDGER_TEST_PG is not set: the PostgreSQL ledger tests must run in CI")
        pytest.skip("PostgreSQL ledger: set LLMLEDGER_TEST_PG=postgres://user@host:port/db to run")
    return PG_URL


@pytest.fixture
def tracker(store_url: str) -> Iterator[llmledger.Tracker]:
    t = llmledger.Tracker(store=store_url, azure_deployments={"prod-4o": "gpt-4o"})
    yield t
    t.close()


@pytest.fixture
def openai_client(mock: Mock) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{mock.url}/v1", api_key="test", max_retries=0)


@pytest.fixture
def async_openai_client(mock: Mock) -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=f"{mock.url}/v1", api_key="test", max_retries=0)


@pytest.fixture
def anthropic_client(mock: Mock) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=mock.url, api_key="test", max_retries=0)


@pytest.fixture
def async_anthropic_client(mock: Mock) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(base_url=mock.url, api_key="test", max_retries=0)


def load_vectors() -> List[Dict[str, Any]]:
    """The shared vectors (every case of tests/vectors/*.json; see its README), or [] before they exist."""
    out: List[Dict[str, Any]] = []
    if not VECTORS.is_dir():
        return out
    for path in sorted(VECTORS.glob("*.json")):
        out.extend(case for case in json.loads(path.read_text(encoding="utf-8")) if isinstance(case, dict))
    return out


MESSAGES = [{"role": "user", "content": "Say hello."}]
