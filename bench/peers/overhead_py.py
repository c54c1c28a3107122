#!/usr/bin/env python3
"""What llmledger adds to an official SDK call, in Python: the same call through an unwrapped and a wrapped
client, against the local mock provider (HTTP/1.1 keep-alive on loopback). One case per process.

usage: python overhead_py.py SDK UNIT STORE      (run with a python that has this checkout's llmledger)
  SDK   openai (chat.completions.create) | anthropic (messages.create)
  UNIT  call (one non-streaming call) | chunk (one chunk of a CHUNKS-chunk chat stream; openai only)
  STORE sqlite (a ledger file in a temporary directory; the default kind of store) | memory
Environment: MOCK_URL (the mock's base URL, e.g. http://127.0.0.1:PORT), ROUNDS (default 10), CALLS per
round (default 60; streams: CALLS/50, at least 1), CHUNKS per stream (default 1000).

CPU time, not wall time: the mock runs in another process, and on a shared machine wall time mostly
measures the other tenants. Calls alternate (unwrapped, wrapped, unwrapped, …) so load drift hits both
alike; each call's CPU time on the calling thread is taken, and a round's figure per side is the median of
its calls (robust to preemption and to the rare outlier). The ledger's own threads (`llmledger-writer`
batching and writing to the store, the tokio blocking threads it writes on) work outside the calls: their
CPU time over the interleaved phase and its final `flush()` (from /proc/self/task/*/schedstat, ns) is
divided by the wrapped calls and reported as `background_ns`; the driver adds it. The result is what
llmledger adds per call in total, ledger writes included. Prints one JSON line (kind "overhead").
"""
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.metadata import version

MOCK = os.environ["MOCK_URL"]
ROUNDS = int(os.environ.get("ROUNDS", "10"))
CALLS = int(os.environ.get("CALLS", "60"))
CHUNKS = int(os.environ.get("CHUNKS", "1000"))
MESSAGES = [{"role": "user", "content": "Say hello."}]


def clients(sdk):
    """Two clients of the same class and settings (wrapping must not change the unwrapped one)."""
    if sdk == "openai":
        import openai

        def make():
            return openai.OpenAI(base_url=f"{MOCK}/v1", api_key="bench", max_retries=0)

        return make(), make(), f"openai {version('openai')}"
    import anthropic

    def make():
        return anthropic.Anthropic(base_url=MOCK, api_key="bench", max_retries=0)

    return make(), make(), f"anthropic {version('anthropic')}"


def one_unit(sdk, unit):
    """A function doing one call (or one stream) on a client, and how many units it counts."""
    hdr = {"x-mock-chunks": str(CHUNKS)}
    if sdk == "openai" and unit == "call":
        return (lambda c: c.chat.completions.create(model="gpt-4o", messages=MESSAGES)), 1
    if sdk == "openai":
        def stream(c):
            n = 0
            for _ in c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=hdr):
                n += 1
            return n
        return stream, None
    if unit == "call":
        return (lambda c: c.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)), 1
    raise SystemExit("chunk: openai only (the mock sizes chat streams only)")


def ledger_threads_ns():
    """CPU ns of the ledger's threads (by name: the writer and the tokio threads it writes on); 0 without
    procfs. Not `llmledger-warm`: that one builds the token counter once per process, not per call."""
    total = 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            if name.startswith("llmledger-write") or name.startswith("tokio-"):
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread ended meanwhile
    return total


def main():
    sdk, unit, store = sys.argv[1], sys.argv[2], sys.argv[3]
    import llmledger

    tmp = tempfile.mkdtemp(prefix="llmledger-overhead-")
    url = f"sqlite:///{tmp}/bench.db" if store == "sqlite" else "memory:"
    tracker = llmledger.Tracker(store=url, spill_dir=os.path.join(tmp, "spill"))
    plain, other, sdk_ver = clients(sdk)
    wrapped = tracker.wrap(other, user_id="bench")
    fn, per = one_unit(sdk, unit)
    # Chunks the caller sees per stream (the unwrapped count: the wrapper must show the same stream).
    units = per or fn(plain)
    calls = CALLS if unit == "call" else max(1, CALLS // 50)
    for _ in range(max(20, calls)):  # warm-up: connections, SDK caches, the ledger's first writes
        fn(plain)
        fn(wrapped)
    tracker.flush()
    # The caller must see the stream it asked for; a difference is reported next to the figure.
    wrapped_units = per or fn(wrapped)
    main_cpu = time.thread_time_ns
    base, tracked = [], []
    b0 = ledger_threads_ns()
    for _ in range(ROUNDS):
        a, b = [], []
        for _ in range(calls):
            t = main_cpu()
            fn(plain)
            t1 = main_cpu()
            fn(wrapped)
            b.append(main_cpu() - t1)
            a.append(t1 - t)
        base.append(statistics.median(a) / units)
        tracked.append(statistics.median(b) / units)
    tracker.flush()
    bg = (ledger_threads_ns() - b0) / (ROUNDS * calls * units)
    tracker.close()
    print(json.dumps(dict(
        lang="python", lib=f"llmledger {version('llmledger')}", sdk=sdk_ver, kind="overhead", unit=unit,
        store=store, case=f"{sdk}.{unit}.{store}", calls_per_block=calls, units_per_call=units,
        wrapped_units_per_call=wrapped_units,
        base_ns=base, wrapped_ns=tracked, background_ns=bg)))


if __name__ == "__main__":
    main()
