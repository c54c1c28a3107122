#!/usr/bin/env python3
"""Summarizes one scripts/test.sh run: passed / failed / skipped per suite, every skip with its reason, the
per-case table of the shared vectors (tests/vectors/) as each of the three runners saw them, and — as the very
last line — ``N passed, N failed, N skipped`` over all suites.

    test-summary.py LOGDIR ALLOWANCE

LOGDIR holds ``<suite>.log`` and ``<suite>.rc`` per suite (rust, python, node, browser: the dashboard in
headless Chromium, counted as node --test; fuzz: one test per target; packaging: the version check and the two
package smoke scripts), ``skips.tsv`` (runtime skips a
Rust test reported: ``suite<TAB>test<TAB>reason``; libtest counts those tests as passed) and ``vectors/`` (one
``<runner>.tsv`` per vector runner: ``case<TAB>status<TAB>detail``). Exits non-zero when a suite failed or
did not report, a vector case is missing from or failed in a runner's table, or skips exceed ALLOWANCE.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

SUITES = ("rust", "python", "node", "browser", "fuzz", "packaging")
RUNNERS = ("rust", "python", "node")


def count_rust(text: str) -> Tuple[int, int, int, List[str]]:
    p = f = s = 0
    for ok, failed, ignored in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text):
        p, f, s = p + int(ok), f + int(failed), s + int(ignored)
    reasons = [f"rust: {name} (#[ignore])" for name in re.findall(r"^test (\S+) \.\.\. ignored", text, re.M)]
    return p, f, s, reasons


def count_python(text: str) -> Tuple[int, int, int, List[str]]:
    p = f = s = 0
    # pytest -q's closing line, e.g. "3 failed, 200 passed, 2 skipped, 1 error in 12.3s".
    for line in re.findall(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s", text, re.M):
        for n, kind in re.findall(r"(\d+) (\w+)", line):
            if kind == "passed":
                p += int(n)
            elif kind in ("failed", "error", "errors"):
                f += int(n)
            elif kind in ("skipped", "xfailed", "deselected"):
                s += int(n)
    reasons = [f"python: {r.strip()}" for r in re.findall(r"^SKIPPED \[\d+\] (.*)$", text, re.M)]
    return p, f, s, reasons


def count_node(text: str) -> Tuple[int, int, int, List[str]]:
    counts: Dict[str, int] = {}
    # node --test's closing block (spec reporter "ℹ pass N", TAP "# pass N").
    for kind, n in re.findall(r"^(?:ℹ|#) (pass|fail|cancelled|skipped|todo) (\d+)$", text, re.M):
        counts[kind] = counts.get(kind, 0) + int(n)
    p = counts.get("pass", 0)
    f = counts.get("fail", 0) + counts.get("cancelled", 0)
    s = counts.get("skipped", 0) + counts.get("todo", 0)
    # Spec reporter skip lines: "﹣ NAME (0.1ms) # REASON"; TAP: "ok N - NAME # SKIP REASON".
    found = re.findall(r"^\s*﹣ (.*?) \([\d.]+m?s\) # (.+)$", text, re.M)
    found += re.findall(r"^\s*ok \d+ - (.*?) # SKIP ?(.*)$", text, re.M)
    reasons = [f"node: {name.strip()} — {why.strip()}" for name, why in found]
    return p, f, s, sorted(set(reasons))


def count_fuzz(text: str) -> Tuple[int, int, int, List[str]]:
    # fuzz-loop prints one line per target: "NAME: N execs, …, no failure" or "NAME: FAILED after N execs: …".
    p = len(re.findall(r"^\s*\w+: \d+ execs, .*no failure$", text, re.M))
    f = len(re.findall(r"^\s*\w+: (?:FAILED|no corpus)", text, re.M))
    return p, f, 0, []


def count_packaging(text: str) -> Tuple[int, int, int, List[str]]:
    # scripts/check-versions.py, scripts/package-python.sh and scripts/package-node.sh each end in one line.
    p = len(re.findall(r"^(?:versions agree: .*|python package smoke: OK|node package smoke: OK)$", text, re.M))
    return p, 0, 0, []


def read_table(path: Path) -> Dict[str, Tuple[str, str]]:
    rows: Dict[str, Tuple[str, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            rows[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return rows


def main() -> int:
    logdir, allowance = Path(sys.argv[1]), int(sys.argv[2])
    problems: List[str] = []
    totals = [0, 0, 0]
    skip_reasons: List[str] = []
    runtime_skips: Dict[str, List[str]] = {}
    skips_file = logdir / "skips.tsv"
    if skips_file.exists():
        for line in skips_file.read_text(encoding="utf-8").splitlines():
            suite, _, rest = line.partition("\t")
            runtime_skips.setdefault(suite, []).append(rest.replace("\t", ": "))

    print("\n== summary ==")
    counters = (count_rust, count_python, count_node, count_node, count_fuzz, count_packaging)
    for suite, counter in zip(SUITES, counters):
        log, rc_file = logdir / f"{suite}.log", logdir / f"{suite}.rc"
        if not log.exists():
            problems.append(f"{suite}: did not run")
            print(f"{suite:>7}: did not run")
            continue
        p, f, s, reasons = counter(log.read_text(encoding="utf-8", errors="replace"))
        # A Rust test that found no server returns early: libtest counts it as passed; it was a skip.
        extra = runtime_skips.get(suite, [])
        p, s = p - len(extra), s + len(extra)
        reasons += [f"{suite}: {r}" for r in extra]
        rc = rc_file.read_text().strip() if rc_file.exists() else "?"
        if rc != "0" and f == 0:
            problems.append(f"{suite}: exited {rc} without a failed test (did it build?)")
            f += 1
        if p + f == 0:
            problems.append(f"{suite}: no test ran")
        print(f"{suite:>7}: {p} passed, {f} failed, {s} skipped")
        totals = [totals[0] + p, totals[1] + f, totals[2] + s]
        skip_reasons += reasons

    tables = {r: read_table(logdir / "vectors" / f"{r}.tsv") for r in RUNNERS if (logdir / "vectors" / f"{r}.tsv").exists()}
    for r in RUNNERS:
        if r not in tables:
            problems.append(f"vectors: the {r} runner wrote no per-case table")
    names = sorted(set().union(*(t.keys() for t in tables.values()))) if tables else []
    if names:
        cells = {n: [tables.get(r, {}).get(n, ("missing", "")) for r in RUNNERS] for n in names}
        def cell(status: str, detail: str) -> str:
            full = status + (f" ({detail})" if detail else "")
            return full if len(full) <= 56 else full[:55] + "…"

        # Details are cut to keep the table readable; the full text is in LOGDIR/vectors/<runner>.tsv.
        text = {n: [cell(status, detail) for status, detail in row] for n, row in cells.items()}
        widths = [max(len(n) for n in [*names, "case"])] + [
            max(len(t) for t in [*(text[n][i] for n in names), RUNNERS[i]]) for i in range(len(RUNNERS) - 1)
        ]
        print(f"\n== shared vectors: {len(names)} cases × {len(tables)} runners ==")
        header = ["case", *RUNNERS]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[-1])
        for name in names:
            print("  ".join(c.ljust(w) for c, w in zip([name, *text[name]], widths)) + "  " + text[name][-1])
            for runner, (status, _) in zip(RUNNERS, cells[name]):
                if status not in ("pass", "skip"):
                    problems.append(f"vectors: {name} is {status} in the {runner} runner")

    if skip_reasons:
        print(f"\n== skipped ({totals[2]}; allowance {allowance}) ==")
        for reason in skip_reasons:
            print(f"  {reason}")
    if totals[2] > allowance:
        problems.append(f"{totals[2]} skipped tests exceed the allowance of {allowance} (scripts/test.sh)")
    for p in problems:
        print(f"PROBLEM: {p}")
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if problems or totals[1] or not totals[0] else 0


if __name__ == "__main__":
    sys.exit(main())
