#!/usr/bin/env python3
"""Run every peer benchmark and llmledger's own cases in one go; print/save a results table.

usage: python3 run_all.py [--sections ABCE] [--only SUBSTR] [--reps N] [--startup-runs N]
(bench/peers/run.sh installs everything and calls this; see bench/README.md.)

Each case runs in its own process: the process prints one JSON line (see
bench_py.py); this driver adds the process' peak RSS (GNU /usr/bin/time -f %M,
i.e. the child's ru_maxrss) and computes median/min/max.
Environment (set by run.sh): PEERS_WORK (installed peers, corpus, results),
TOKENS_ENGINES (this checkout's release `tokens-engines` binary), LLMLEDGER_PYTHON
(a python with this checkout's `llmledger` package). Stdlib only; python3 >= 3.9.
"""
import argparse
import json
import os
import platform
import statistics as st
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
W = os.environ["PEERS_WORK"]
VPY = os.path.join(W, "venv", "bin", "python")
LLPY = os.environ["LLMLEDGER_PYTHON"]
TE = os.environ["TOKENS_ENGINES"]
CORPUS = os.path.join(W, "corpus.txt")
CHAT = os.path.join(W, "chat.json")
PYB = [VPY, os.path.join(HERE, "bench_py.py")]
LLB = [LLPY, os.path.join(HERE, "bench_py.py")]
NODEB = ["node", "--expose-gc", os.path.join(HERE, "bench_node.js")]
NODE_LL = os.path.join(REPO, "bindings-node", "js", "index.cjs")
OVPY = [LLPY, os.path.join(HERE, "overhead_py.py")]
OVNODE = ["node", os.path.join(HERE, "overhead_node.js")]
MOCK_SERVER = os.path.join(REPO, "tests", "mock_provider", "server.py")
# What issue 9 asks of each overhead row: (lang, unit) -> ns.
OVERHEAD_TARGET_NS = {("python", "call"): 15_000, ("node", "call"): 15_000,
                      ("python", "chunk"): 1_000, ("node", "chunk"): 1_000}
O2, C1 = "o200k_base", "cl100k_base"


def cases(reps):
    A = []
    # Rust: tiktoken-rs (the reference engine) and llmledger's core, through this crate's bench binary.
    for engine in ("tiktoken-rs", "llmledger"):
        for enc, mode in ((O2, "whole"), (C1, "whole"), (O2, "msgs")):
            A.append([TE, engine, CORPUS, enc, mode, str(reps)])
    for enc in (O2, C1):
        A.append(PYB + ["tiktoken.encode_ordinary.whole", enc])
        A.append(LLB + ["llmledger.count_tokens.whole", enc])
    A.append(PYB + ["tiktoken.encode.whole", O2])
    A.append(PYB + ["tiktoken.encode_ordinary.msgs", O2])
    A.append(PYB + ["tiktoken.encode_ordinary_batch2.msgs", O2])
    A.append(LLB + ["llmledger.count_tokens.msgs", O2])
    for enc in (O2, C1):
        A.append(NODEB + ["gpt-tokenizer.countTokens.whole", enc])
        A.append(NODEB + ["llmledger.countTokens.whole", enc])
    A.append(NODEB + ["gpt-tokenizer.countTokens.msgs", O2])
    A.append(NODEB + ["gpt-tokenizer.countTokens.msgs.cold", O2])
    A.append(NODEB + ["llmledger.countTokens.msgs", O2])

    B = [PYB + [c] for c in (
        "litellm.completion_cost", "litellm.cost_per_token", "tokencost.calculate_cost_by_tokens",
        "tiktoken.plain.chat20", "tokencost.count_message_tokens.chat20", "litellm.token_counter.chat20")]
    B += [LLB + [c] for c in ("llmledger.cost", "llmledger.count_tokens.chat20")]
    B += [NODEB + [c] for c in (
        "gpt-tokenizer.estimateCost", "gpt-tokenizer.countTokens.chat20", "llmledger.cost", "llmledger.countTokens.chat20")]
    B.append([TE, "llmledger-chat20", CHAT, str(reps)])

    req_ll = f"require({json.dumps(NODE_LL)})"
    C = [
        ("python -c pass (baseline)", [VPY, "-c", "pass"]),
        ("python -c 'import tiktoken'", [VPY, "-c", "import tiktoken"]),
        ("python -c 'import tokencost'", [VPY, "-c", "import tokencost"]),
        ("python -c 'import litellm'", [VPY, "-c", "import litellm"]),
        ("python -c 'import llmledger'", [LLPY, "-c", "import llmledger"]),
        ("python: import tiktoken + get_encoding(o200k) + encode", [VPY, "-c", "import tiktoken; tiktoken.get_encoding('o200k_base').encode('hi')"]),
        ("python: import llmledger + count_tokens (gpt-4o)", [LLPY, "-c", "import llmledger; llmledger.count_tokens('hi', 'gpt-4o')"]),
        ("node -e 0 (baseline)", ["node", "-e", "0"]),
        ("node -e \"require('gpt-tokenizer')\"", ["node", "-e", "require('gpt-tokenizer')"]),
        ("node -e \"require('llmledger')\"", ["node", "-e", req_ll]),
        ("node: gpt-tokenizer (o200k) countTokens", ["node", "-e", "require('gpt-tokenizer').countTokens('hi')"]),
        ("node: llmledger countTokens (gpt-4o)", ["node", "-e", req_ll + ".countTokens('hi', 'gpt-4o')"]),
        ("rust: tiktoken-rs first count (o200k_base), new process", [TE, "tiktoken-rs", "first-count", O2]),
        ("rust: tiktoken 3.8 crate first count (o200k_base), new process", [TE, "tiktoken3", "first-count", O2]),
        ("rust: llmledger first count (o200k_base), new process", [TE, "llmledger", "first-count", O2]),
        ("rust: llmledger first count (cl100k_base), new process", [TE, "llmledger", "first-count", C1]),
    ]
    # E: the same SDK call unwrapped and wrapped (SDK, unit, store); the SQLite rows are the default setup.
    E = []
    for runner in (OVPY, OVNODE):
        for args in (("openai", "call", "sqlite"), ("openai", "call", "memory"), ("anthropic", "call", "sqlite"),
                     ("openai", "chunk", "sqlite")):
            E.append(runner + list(args))
    return A, B, C, E


def start_mock():
    """The repository's stdlib mock provider on a free loopback port (HTTP/1.1, keep-alive)."""
    p = subprocess.Popen([sys.executable, MOCK_SERVER, "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        p.kill()
        sys.exit(f"the mock provider did not start: {line}")
    return p, f"http://127.0.0.1:{line[1]}"


def child_env(reps):
    e = dict(os.environ)
    e.update(PEERS_WORK=W, REPS=str(reps),
             TIKTOKEN_CACHE_DIR=os.path.join(W, "tiktoken_cache"),
             CUSTOM_TIKTOKEN_CACHE_DIR=os.path.join(W, "tiktoken_cache"),  # litellm overrides TIKTOKEN_CACHE_DIR
             LITELLM_LOCAL_MODEL_COST_MAP="True",
             NODE_PATH=os.path.join(W, "node", "node_modules"))
    return e


TIME = "/usr/bin/time"  # GNU time; its -f %M is the child's own peak RSS (KiB)


def run_proc(cmd, env, cwd=None, capture=True):
    """Run cmd; return (rc, stdout, stderr, wall_s, peak_rss_kib).

    Peak RSS comes from GNU time (a tiny C parent), not from wait4() here:
    a child forked from this Python driver counts the driver's pre-exec pages
    in its ru_maxrss, which inflates small processes by ~10 MiB."""
    with tempfile.TemporaryFile() as errf, tempfile.NamedTemporaryFile("r") as rssf:
        use_time = os.access(TIME, os.X_OK)
        full = [TIME, "-f", "%M", "-o", rssf.name] + cmd if use_time else cmd
        t = time.perf_counter()
        p = subprocess.Popen(full, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                             stderr=errf, env=env, cwd=cwd)
        out = p.stdout.read() if capture else b""
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read()
        rss = ru.ru_maxrss  # fallback (inflated, see above)
        if use_time:
            lines = [l for l in rssf.read().split() if l.strip().isdigit()]
            rss = int(lines[-1]) if lines else rss
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), wall, rss


def mmm(xs):
    return st.median(xs), min(xs), max(xs)


def fmt_si(x):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def fmt_ns(ns):
    if ns < 0:
        return "−" + fmt_ns(-ns)
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def bench_case(cmd, env):
    # Every case is bounded (CASE_TIMEOUT s, default 300): a stuck one fails alone.
    rc, out, err, wall, rss = run_proc(["timeout", os.environ.get("CASE_TIMEOUT", "300")] + cmd, env)
    line = [l for l in out.splitlines() if l.startswith("{")]
    if rc != 0 or not line:
        print(f"!! FAILED ({rc}{', timed out' if rc == 124 else ''}): {' '.join(cmd)}\n{err[-2000:]}", file=sys.stderr)
        return None
    r = json.loads(line[-1])
    r["peak_rss_mib"] = rss / 1024
    r["proc_wall_s"] = wall
    if r["kind"] == "overhead":
        r["base"] = mmm(r["base_ns"])
        r["wrapped"] = mmm(r["wrapped_ns"])
        bg = r.get("background_ns") or 0
        r["ns"] = mmm([w - b + bg for w, b in zip(r["wrapped_ns"], r["base_ns"])])
    elif r["kind"] == "throughput":
        m, lo, hi = mmm(r["times_s"])
        r["median_s"] = m
        r["tok_s"] = (r["tokens"] / m, r["tokens"] / hi, r["tokens"] / lo)
        r["mb_s"] = (r["bytes"] / 1e6 / m, r["bytes"] / 1e6 / hi, r["bytes"] / 1e6 / lo)
    else:
        r["ns"] = mmm(r["ns_per_call"])
    print(f"   done: {r['lib']:28s} {r['case']:44s} {r.get('encoding', ''):12s} "
          + (f"{fmt_si(r['tok_s'][0])} tok/s" if "tok_s" in r else fmt_ns(r["ns"][0]))
          + f"  rss {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    return r


def startup(label, cmd, env, runs):
    run_proc(cmd, env, capture=False)  # warm-up (pyc compile, page cache)
    ws, rs = [], []
    for _ in range(runs):
        rc, _, err, wall, rss = run_proc(cmd, env, capture=False)
        if rc != 0:
            print(f"!! FAILED startup {label}: {err[-1000:]}", file=sys.stderr)
            return None
        ws.append(wall)
        rs.append(rss / 1024)
    r = dict(label=label, cmd=cmd, wall_s=ws, rss_mib=rs, ms=tuple(x * 1e3 for x in mmm(ws)), rss=mmm(rs))
    print(f"   done: {label:45s} {r['ms'][0]:.0f} ms  rss {r['rss'][0]:.0f} MiB", file=sys.stderr)
    return r


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:  # noqa
        return f"? ({e})"


def machine_info():
    cpu = "?"
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=cpu, nproc=os.cpu_count(), kernel=platform.release(),
                python=sh([VPY, "-c", "import sys;print(sys.version.split()[0])"]),
                node=sh(["node", "--version"]), rustc=sh(["rustc", "--version"]),
                loadavg_start=os.getloadavg())


def to_markdown(res):
    L = []
    mi = res["machine"]
    L.append(f"Machine: {mi['cpu']}, {mi['nproc']} cores, Linux {mi['kernel']}; Python {mi['python']}, "
             f"Node {mi['node']}, {mi['rustc']}. loadavg start {tuple(round(x, 2) for x in mi['loadavg_start'])}, "
             f"end {tuple(round(x, 2) for x in res['loadavg_end'])}. REPS={res['reps']} (median [min–max]).")
    L.append(f"Corpus: {res.get('corpus_bytes', '?')} bytes (sha256 {res.get('corpus_sha256', '?')[:16]}…); "
             "'whole' = one call on the whole corpus, 'msgs' = one call per '\\n\\n'-separated piece "
             f"({res.get('n_msgs', '?')} pieces, ~{res.get('avg_msg_bytes', 0):.0f} B each). MB = 10^6 bytes.")
    if res["A"]:
        L += ["", "### A. Token counting throughput (single thread unless noted)", "",
              "| lang | library | call | encoding | tokens | Mtok/s median [min–max] | MB/s median [min–max] | init ms | peak RSS MiB |",
              "|---|---|---|---|---:|---:|---:|---:|---:|"]
        for r in res["A"]:
            t, m = r["tok_s"], r["mb_s"]
            L.append(f"| {r['lang']} | {r['lib']} | {r['case']}{' (%d threads)' % r['threads'] if r.get('threads') else ''} "
                     f"| {r.get('encoding', '')} | {r['tokens']} | {t[0] / 1e6:.2f} [{t[1] / 1e6:.2f}–{t[2] / 1e6:.2f}] "
                     f"| {m[0]:.1f} [{m[1]:.1f}–{m[2]:.1f}] | {r.get('init_ms', float('nan')):.0f} | {r['peak_rss_mib']:.0f} |")
    if res["B"]:
        L += ["", "### B. Cost computation and pre-flight counting (per call)", "",
              "| lang | library | call | result | time/call median [min–max] | peak RSS MiB |",
              "|---|---|---|---|---:|---:|"]
        for r in res["B"]:
            n = r["ns"]
            v = r["value"]
            v = f"{v:.6g}" if isinstance(v, float) else str(v)
            L.append(f"| {r['lang']} | {r['lib']} | {r['case']} | {v} | {fmt_ns(n[0])} [{fmt_ns(n[1])}–{fmt_ns(n[2])}] "
                     f"| {r['peak_rss_mib']:.0f} |")
    if res.get("E"):
        L += ["", "### E. Added per wrapped SDK call and per stream chunk (CPU time of the process, every thread)", "",
              "Same call through an unwrapped and a wrapped client of the official SDK, to the local mock "
              "provider over loopback HTTP/1.1 keep-alive; calls alternate, a round's figure per side is the "
              "median CPU time of its calls (Python: the calling thread; Node: the process), plus the ledger "
              "threads' CPU time per wrapped call (`ledger thr.`); added = wrapped − unwrapped + ledger "
              f"threads, median [min–max] over {res.get('rounds', '?')} rounds (bench/README.md).", "",
              "| lang | SDK | call | unit | ledger | unwrapped CPU/unit | wrapped CPU/unit | ledger thr. | added median [min–max] | target |",
              "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
        for r in res["E"]:
            call = {"openai": "chat.completions.create", "anthropic": "messages.create"}[r["case"].split(".")[0]]
            unit = "call" if r["unit"] == "call" else f"chunk ({r['units_per_call']}/stream)"
            if r.get("wrapped_units_per_call") != r["units_per_call"]:
                unit += f" — wrapped stream showed {r.get('wrapped_units_per_call')}!"
            n = r["ns"]
            target = OVERHEAD_TARGET_NS.get((r["lang"], r["unit"]))
            L.append(f"| {r['lang']} | {r['sdk']} | {call} | {unit} | {r['store']} | {fmt_ns(r['base'][0])} "
                     f"| {fmt_ns(r['wrapped'][0])} | {fmt_ns(r.get('background_ns') or 0)} "
                     f"| {fmt_ns(n[0])} [{fmt_ns(n[1])}–{fmt_ns(n[2])}] "
                     f"| {'≤ ' + fmt_ns(target) if target else ''} |")
    if res["C"]:
        L += ["", f"### C/D. Startup (wall time of the whole process, {res['startup_runs']} runs after 1 warm-up) and its peak RSS", "",
              "| command | wall ms median [min–max] | peak RSS MiB median |", "|---|---:|---:|"]
        for r in res["C"]:
            L.append(f"| `{r['label']}` | {r['ms'][0]:.0f} [{r['ms'][1]:.0f}–{r['ms'][2]:.0f}] | {r['rss'][0]:.0f} |")
    L += targets(res)
    return "\n".join(L) + "\n"


def targets(res):
    """Issue 9's speed targets against this run's rows (the peers' figures are in the sections above)."""
    rows = []

    def overhead(lang, unit):
        for r in res.get("E", []):
            if r["lang"] == lang and r["unit"] == unit and r["store"] == "sqlite" and r["case"].startswith("openai"):
                return r["ns"][0]
        return None

    def per_call(lang, case):
        return next((r["ns"][0] for r in res["B"] if r["lang"] == lang and r["case"] == case), None)

    def startup(label):
        return next((r["ms"][0] for r in res["C"] if r["label"] == label), None)

    for what, lang, value, limit in (
            ("added per wrapped call (OpenAI chat, SQLite ledger)", "python", overhead("python", "call"), 15_000),
            ("added per wrapped call (OpenAI chat, SQLite ledger)", "node", overhead("node", "call"), 15_000),
            ("added per stream chunk", "python", overhead("python", "chunk"), 1_000),
            ("added per stream chunk", "node", overhead("node", "chunk"), 1_000),
            ("`cost()`", "python", per_call("python", "llmledger.cost"), 1_000),
            ("`cost()`", "node", per_call("node", "llmledger.cost"), 500)):
        if value is not None:
            rows.append(f"| {what} | {lang} | {fmt_ns(value)} | ≤ {fmt_ns(limit)} | {'yes' if value <= limit else '**no**'} |")
    first = startup("rust: llmledger first count (o200k_base), new process")
    if first is not None:
        rows.append(f"| first token count, new process (o200k) | rust | {first:.0f} ms | ≤ 100 ms | {'yes' if first <= 100 else '**no**'} |")
    if not rows:
        return []
    return ["", "### Targets (issue 9) in this run", "", "| what | lang | measured (median) | target | met |",
            "|---|---|---:|---:|---|"] + rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", default="ABCE", help="subset of ABCE (D = RSS, always collected)")
    ap.add_argument("--only", default="", help="run only cases whose command line (or C label) contains this")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "7")))
    ap.add_argument("--startup-runs", type=int, default=int(os.environ.get("STARTUP_RUNS", "10")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "10")),
                    help="section E: rounds of unwrapped/wrapped blocks")
    a = ap.parse_args()

    for p in (VPY, LLPY, TE, NODE_LL):
        if not os.path.exists(p):
            sys.exit(f"missing {p}: run bench/peers/run.sh (PEERS_WORK={W})")
    # regenerate the corpus every run (cheap) so a stale file can't sneak in
    gen = subprocess.run([sys.executable, os.path.join(HERE, "gen_corpus.py"), W], capture_output=True, text=True)
    print(gen.stdout.strip(), file=sys.stderr)
    text = open(CORPUS, encoding="utf-8").read()
    msgs = text.split("\n\n")

    env = child_env(a.reps)
    A, B, C, E = cases(a.reps)
    sel = lambda cmd: a.only in " ".join(cmd)  # noqa: E731
    res = dict(machine=machine_info(), reps=a.reps, startup_runs=a.startup_runs, rounds=a.rounds, A=[], B=[], C=[], E=[],
               corpus_bytes=len(text.encode()), n_msgs=len(msgs),
               avg_msg_bytes=len(text.encode()) / len(msgs),
               corpus_sha256=gen.stdout.split("sha256=")[1].split()[0] if "sha256=" in gen.stdout else "?")
    t0 = time.time()
    if "A" in a.sections:
        print("== A: token counting throughput", file=sys.stderr)
        res["A"] = [r for r in (bench_case(c, env) for c in A if sel(c)) if r]
    if "B" in a.sections:
        print("== B: cost per call / pre-flight", file=sys.stderr)
        res["B"] = [r for r in (bench_case(c, env) for c in B if sel(c)) if r]
    if "C" in a.sections:
        print("== C: startup", file=sys.stderr)
        res["C"] = [r for r in (startup(l, c, env, a.startup_runs) for l, c in C if sel(c) or a.only in l) if r]
    if "E" in a.sections:
        print("== E: added per wrapped call / per stream chunk", file=sys.stderr)
        mock, url = start_mock()
        try:
            e_env = dict(env, MOCK_URL=url, ROUNDS=str(a.rounds))
            res["E"] = [r for r in (bench_case(c, e_env) for c in E if sel(c)) if r]
        finally:
            mock.terminate()
            mock.wait(timeout=10)
    res["loadavg_end"] = os.getloadavg()
    res["total_s"] = time.time() - t0

    outdir = os.path.join(W, "results")
    os.makedirs(outdir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    md = to_markdown(res)
    with open(os.path.join(outdir, f"peers-{stamp}.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(outdir, f"peers-{stamp}.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"(saved {outdir}/peers-{stamp}.json/.md; total {res['total_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
