#!/usr/bin/env python3
"""Python peer benchmarks; one case per process (so peak RSS is per case).

usage: python bench_py.py CASE [ENCODING]     (run with the peers venv python)
Environment: PEERS_WORK (corpus.txt, chat.json), REPS (default 7),
TIKTOKEN_CACHE_DIR (offline ranks, set by run_all.py),
LITELLM_LOCAL_MODEL_COST_MAP=True (set by run_all.py; no price fetch).

Prints one JSON line:
  throughput cases: times_s = seconds for one full pass over the corpus, per rep
  per-call cases:   ns_per_call = one value per rep
"""
import gc
import json
import os
import sys
import time
from importlib.metadata import version

W = os.environ["PEERS_WORK"]
REPS = int(os.environ.get("REPS", "7"))
MIN_BATCH_S = float(os.environ.get("MIN_BATCH_S", "0.2"))

# The "typical chat completion" priced in section B.
MODEL = "gpt-4o"
PROMPT, CACHED, COMPLETION = 1200, 1024, 350


def corpus():
    with open(os.path.join(W, "corpus.txt"), encoding="utf-8") as f:
        return f.read()


def chat():
    with open(os.path.join(W, "chat.json"), encoding="utf-8") as f:
        return json.load(f)


def throughput(fn, text, **extra):
    tokens = fn()  # warm-up (also the token count reported)
    times = []
    for _ in range(REPS):
        gc.collect()
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
        assert n == tokens, (n, tokens)
    return dict(kind="throughput", tokens=tokens, bytes=len(text.encode("utf-8")), times_s=times, **extra)


def per_call(fn, **extra):
    value = fn()
    # calibrate: smallest power-of-two loop count taking >= MIN_BATCH_S
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t >= MIN_BATCH_S:
            break
        n *= 2
    ns = []
    for _ in range(REPS):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        ns.append((time.perf_counter_ns() - t) / n)
    return dict(kind="per_call", value=value, loops=n, ns_per_call=ns, **extra)


def emit(lib, case, res, **extra):
    out = dict(lang="python", lib=lib, case=case, **extra, **res)
    if "value" in out and not isinstance(out["value"], (int, float, str, type(None))):
        out["value"] = str(out["value"])
    print(json.dumps(out))


# ---------------------------------------------------------------- A: tiktoken
def tiktoken_case(case, enc_name):
    import tiktoken
    t0 = time.perf_counter()
    enc = tiktoken.get_encoding(enc_name)
    init_ms = (time.perf_counter() - t0) * 1e3
    text = corpus()
    msgs = text.split("\n\n")
    lib = f"tiktoken {version('tiktoken')}"
    if case == "tiktoken.encode_ordinary.whole":
        res = throughput(lambda: len(enc.encode_ordinary(text)), text, calls=1)
    elif case == "tiktoken.encode.whole":
        res = throughput(lambda: len(enc.encode(text)), text, calls=1)
    elif case == "tiktoken.encode_ordinary.msgs":
        eo = enc.encode_ordinary
        res = throughput(lambda: sum(len(eo(m)) for m in msgs), text, calls=len(msgs))
    elif case == "tiktoken.encode.msgs":
        e = enc.encode
        res = throughput(lambda: sum(len(e(m)) for m in msgs), text, calls=len(msgs))
    elif case == "tiktoken.encode_ordinary_batch2.msgs":
        res = throughput(lambda: sum(map(len, enc.encode_ordinary_batch(msgs, num_threads=2))),
                         text, calls=len(msgs), threads=2)
    else:
        raise SystemExit(f"unknown case {case}")
    emit(lib, case, res, encoding=enc_name, init_ms=init_ms)


# ---------------------------------------------------------------- B: cost
def litellm_case(case):
    import logging
    t0 = time.perf_counter()
    import litellm
    import_ms = (time.perf_counter() - t0) * 1e3
    litellm.suppress_debug_info = True
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    from litellm import ModelResponse
    from litellm.types.utils import PromptTokensDetailsWrapper, Usage
    lib = f"litellm {version('litellm')}"
    assert litellm.model_cost[MODEL]["input_cost_per_token"] > 0
    if case == "litellm.completion_cost":
        usage = Usage(prompt_tokens=PROMPT, completion_tokens=COMPLETION, total_tokens=PROMPT + COMPLETION,
                      prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=CACHED))
        resp = ModelResponse(model=MODEL, usage=usage, choices=[
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}])
        res = per_call(lambda: litellm.completion_cost(completion_response=resp))
    elif case == "litellm.cost_per_token":
        def f():
            p, c = litellm.cost_per_token(model=MODEL, prompt_tokens=PROMPT, completion_tokens=COMPLETION,
                                          cache_read_input_tokens=CACHED)
            return p + c
        res = per_call(f)
    elif case == "litellm.token_counter.chat20":
        msgs = chat()
        res = per_call(lambda: litellm.token_counter(model=MODEL, messages=msgs))
    else:
        raise SystemExit(f"unknown case {case}")
    emit(lib, case, res, import_ms=import_ms)


def tokencost_case(case):
    t0 = time.perf_counter()
    import tokencost as tc
    import_ms = (time.perf_counter() - t0) * 1e3
    lib = f"tokencost {version('tokencost')}"
    if case == "tokencost.calculate_cost_by_tokens":
        # tokencost has no single "usage -> cost" call; 3 calls (uncached in, cached in, out) is its equivalent
        def f():
            return (tc.calculate_cost_by_tokens(PROMPT - CACHED, MODEL, "input")
                    + tc.calculate_cost_by_tokens(CACHED, MODEL, "cached")
                    + tc.calculate_cost_by_tokens(COMPLETION, MODEL, "output"))
        res = per_call(f)
    elif case == "tokencost.count_message_tokens.chat20":
        msgs = chat()
        res = per_call(lambda: tc.count_message_tokens(msgs, MODEL))
    elif case == "tokencost.calculate_prompt_cost.chat20":
        msgs = chat()
        res = per_call(lambda: tc.calculate_prompt_cost(msgs, MODEL))
    else:
        raise SystemExit(f"unknown case {case}")
    emit(lib, case, res, import_ms=import_ms)


def plain_tiktoken_chat_case(case):
    """Same counting rule as tokencost.count_message_tokens for gpt-4o
    (3 tokens/message + tokens of every value + 3 reply priming), plain tiktoken."""
    import tiktoken
    enc = tiktoken.get_encoding("o200k_base")
    msgs = chat()
    eo = enc.encode_ordinary

    def f():
        n = 3
        for m in msgs:
            n += 3
            for v in m.values():
                n += len(eo(v))
        return n
    res = per_call(f)
    emit(f"tiktoken {version('tiktoken')}", case, res)


# ---------------------------------------------------------------- llmledger (this checkout)
def llmledger_case(case, enc_name):
    t0 = time.perf_counter()
    import llmledger
    import_ms = (time.perf_counter() - t0) * 1e3
    lib = f"llmledger {version('llmledger')}"
    # count_tokens takes a model; these two resolve to the encodings exactly.
    model = {"o200k_base": "gpt-4o", "cl100k_base": "gpt-4"}[enc_name]
    if case in ("llmledger.count_tokens.whole", "llmledger.count_tokens.msgs"):
        count = llmledger.count_tokens
        t0 = time.perf_counter()
        count("hi", model)  # a first count, reported where the peers report building their encoder
        init_ms = (time.perf_counter() - t0) * 1e3
        text = corpus()
        msgs = text.split("\n\n")
        if case == "llmledger.count_tokens.whole":
            res = throughput(lambda: count(text, model), text, calls=1)
        else:
            res = throughput(lambda: sum(count(m, model) for m in msgs), text, calls=len(msgs))
        return emit(lib, case, res, encoding=enc_name, init_ms=init_ms, import_ms=import_ms)
    if case == "llmledger.cost":
        # Input buckets are disjoint: 176 uncached + 1024 cached = the 1200 prompt tokens.
        res = per_call(lambda: llmledger.cost(MODEL, input_tokens=PROMPT - CACHED, cache_read_tokens=CACHED,
                                              output_tokens=COMPLETION).total)
    elif case == "llmledger.count_tokens.chat20":
        msgs = chat()
        res = per_call(lambda: llmledger.count_tokens(msgs, MODEL))
    else:
        raise SystemExit(f"unknown case {case}")
    emit(lib, case, res, import_ms=import_ms)


def main():
    case = sys.argv[1]
    if case.startswith("llmledger."):
        return llmledger_case(case, sys.argv[2] if len(sys.argv) > 2 else "o200k_base")
    if case.startswith("tiktoken.") and case != "tiktoken.plain.chat20":
        tiktoken_case(case, sys.argv[2] if len(sys.argv) > 2 else "o200k_base")
    elif case == "tiktoken.plain.chat20":
        plain_tiktoken_chat_case(case)
    elif case.startswith("litellm."):
        litellm_case(case)
    elif case.startswith("tokencost."):
        tokencost_case(case)
    else:
        raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    main()
