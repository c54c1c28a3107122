#!/usr/bin/env python3
"""Overhead figures of the Python package (figures, not tests). Run against a release build:

    pip install .            # or: maturin develop --release
    python bench/python/bench.py [--quick]

Starts the mock provider server, then prints, as medians:
- added time per wrapped non-streaming chat call vs the unwrapped client (target ≤ 30 µs),
- added time per stream chunk (≤ 2 µs),
- added time of a budget check per wrapped call (a prepaid balance: reserve + settle on the SQLite file),
- `llmledger.cost()` (≤ 2 µs), `count_tokens` throughput vs `tiktoken` (≥ 5×) and `estimate` of a 20-message
  chat (≤ 1 ms), with `tiktoken`, `tokencost` and `litellm` measured in the same run when installed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, List

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Say hello."}]
CHAT20 = [
    {"role": "system" if i == 0 else ("user" if i % 2 else "assistant"),
     "content": f"Message {i}: the quick brown fox jumps over the lazy dog, again and again, turn {i}."}
    for i in range(20)
]
TEXT = (ROOT / "tests" / "mock_provider" / "README.md").read_text(encoding="utf-8") * 4


def per_call(fn: Callable[[], Any], n: int, rounds: int = 7, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median over `rounds` of the mean seconds per call of `n` calls."""
    samples = []
    for _ in range(rounds):
        t = clock()
        for _ in range(n):
            fn()
        samples.append((clock() - t) / n)
    return statistics.median(samples)


def interleaved(a: Callable[[], Any], b: Callable[[], Any], n: int, rounds: int) -> List[float]:
    """Median CPU seconds of this process (all its threads, the ledger writer's included) per call of a and
    b, in alternating batches. CPU time, not wall time: the mock server runs in another process, and on a
    shared machine wall time mostly measures the other tenants."""
    sa, sb = [], []
    for _ in range(rounds):
        sa.append(per_call(a, n, 1, time.process_time))
        sb.append(per_call(b, n, 1, time.process_time))
    return [statistics.median(sa), statistics.median(sb)]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.2f} µs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0

    import openai

    import llmledger

    server = subprocess.Popen([sys.executable, str(ROOT / "tests/mock_provider/server.py"), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        tmp = tempfile.mkdtemp()
        tracker = llmledger.Tracker(store=f"sqlite:///{tmp}/bench.db")
        plain = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        wrapped = tracker.wrap(plain, user_id="bench")

        def call(client: Any) -> Callable[[], Any]:
            return lambda: client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

        for _ in range(50):  # warm up connections
            call(plain)()
            call(wrapped)()
        base, tracked = interleaved(call(plain), call(wrapped), int(100 * scale) or 10, 21)
        print(f"non-streaming call    unwrapped {us(base)}   wrapped {us(tracked)}   added {us(tracked - base)}"
              "  (CPU, SQLite ledger writer included)")
        mem_tracker = llmledger.Tracker(store="memory:")
        in_memory = mem_tracker.wrap(plain, user_id="bench")
        for _ in range(50):
            call(in_memory)()
        base, tracked = interleaved(call(plain), call(in_memory), int(100 * scale) or 10, 21)
        print(f"non-streaming call    unwrapped {us(base)}   wrapped {us(tracked)}   added {us(tracked - base)}"
              "  (CPU, in-memory ledger: the wrapper, parsing and pricing)")

        # Spend control: the same wrapped call with a prepaid balance (reserve before, settle after: two
        # write transactions on the SQLite file) vs a tracker where no limit or balance exists.
        paid_tracker = llmledger.Tracker(store=f"sqlite:///{tmp}/paid.db")
        paid_tracker.balances.top_up("bench", "1000000")
        paid = paid_tracker.wrap(plain, user_id="bench")

        def capped(client: Any) -> Callable[[], Any]:
            return lambda: client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=100)

        for _ in range(50):
            capped(paid)()
        free, checked = interleaved(capped(wrapped), capped(paid), int(100 * scale) or 10, 21)
        wall_free = per_call(capped(wrapped), int(100 * scale) or 10)
        wall_checked = per_call(capped(paid), int(100 * scale) or 10)
        print(f"budget check          added {us(checked - free)} CPU   {us(wall_checked - wall_free)} wall"
              "  (reserve + settle per call, SQLite file)")
        paid_tracker.close()

        chunks = 2000
        hdr = {"x-mock-chunks": str(chunks)}

        def stream(client: Any) -> Callable[[], Any]:
            return lambda: sum(1 for _ in client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=hdr))

        base, tracked = interleaved(stream(plain), stream(wrapped), 3, int(21 * scale) or 3)
        print(f"stream chunk          added {us((tracked - base) / (chunks + 2))}   ({chunks} chunks/stream, CPU)")

        cost = per_call(lambda: llmledger.cost("claude-sonnet-4-5", input_tokens=1200, output_tokens=300,
                                               cache_read_tokens=5000), int(20000 * scale))
        print(f"cost()                {us(cost)}")

        ours = per_call(lambda: llmledger.count_tokens(TEXT, model="gpt-4o"), int(50 * scale) or 5)
        line = f"count_tokens          {len(TEXT) / ours / 1e6:8.2f} MB/s"
        try:
            import tiktoken

            enc = tiktoken.get_encoding("o200k_base")
            theirs = per_call(lambda: enc.encode_ordinary(TEXT), int(50 * scale) or 5)
            line += f"   tiktoken {len(TEXT) / theirs / 1e6:8.2f} MB/s   ratio {theirs / ours:5.2f}x"
        except ImportError:
            line += "   (tiktoken not installed)"
        print(line)

        est = per_call(lambda: llmledger.estimate(model="gpt-4o", messages=CHAT20, max_output_tokens=500),
                       int(2000 * scale))
        line = f"estimate(20 messages) {us(est)}"
        try:
            from tokencost import calculate_prompt_cost  # type: ignore[import-not-found]

            line += f"   tokencost {us(per_call(lambda: calculate_prompt_cost(CHAT20, 'gpt-4o'), 200))}"
        except ImportError:
            line += "   (tokencost not installed)"
        try:
            import litellm  # type: ignore[import-not-found]

            line += f"   litellm {us(per_call(lambda: litellm.token_counter(model='gpt-4o', messages=CHAT20), 200))}"
        except ImportError:
            line += "   (litellm not installed)"
        print(line)
        tracker.close()
        mem_tracker.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
