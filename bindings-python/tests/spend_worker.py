"""A separate process for the spend-control tests (``test_spend.py``): a tracker on a shared store and the
official ``openai`` client against the mock provider.

    spend_worker.py calls STORE MOCK_URL TAG THREADS CALLS   # THREADS × CALLS calls over users TAG-u0..3;
                                                               # prints {"ok": {user: n}, "refused": {user: n}}
    spend_worker.py hold STORE MOCK_URL USER STREAMS         # opens STREAMS streams (each holds a
                                                               # reservation), prints HOLDING, then waits
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from typing import Any, List

import openai

import llmledger

USERS = 4
MESSAGES = [{"role": "user", "content": "Say hello."}]


def calls(store: str, mock_url: str, tag: str, threads: int, per_thread: int) -> None:
    tracker = llmledger.Tracker(store=store)
    client = tracker.wrap(openai.OpenAI(base_url=f"{mock_url}/v1", api_key="test", max_retries=0))
    ok: Counter = Counter()
    refused: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            user = f"{tag}-u{(n + i) % USERS}"
            try:
                with llmledger.attribute(user_id=user):
                    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100, user=user)
                outcome = ok
            except llmledger.BudgetExceeded:
                outcome = refused
            with lock:
                outcome[user] += 1

    workers: List[threading.Thread] = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    tracker.close()
    print(json.dumps({"ok": dict(ok), "refused": dict(refused)}), flush=True)


def hold(store: str, mock_url: str, user: str, streams: int) -> None:
    tracker = llmledger.Tracker(store=store, spend={"reservation_ttl_secs": 2})
    client = tracker.wrap(openai.OpenAI(base_url=f"{mock_url}/v1", api_key="test", max_retries=0))
    held: List[Any] = []
    for _ in range(streams):
        with llmledger.attribute(user_id=user):
            stream = client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, max_tokens=100, stream=True, user=user
            )
        next(iter(stream))  # sent and answered: the reservation is open until the stream ends
        held.append(stream)
    print("HOLDING", flush=True)
    time.sleep(600)  # killed with SIGKILL long before


if __name__ == "__main__":
    mode, store, mock_url = sys.argv[1:4]
    if mode == "calls":
        calls(store, mock_url, sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        hold(store, mock_url, sys.argv[4], int(sys.argv[5]))
