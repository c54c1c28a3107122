#!/usr/bin/env bash
# Runs every test suite of llmledger: formatting and lints, the Rust tests, the Python and Node tests (the
# official openai/anthropic SDKs against the local mock provider), all with a real PostgreSQL — started by
# scripts/with-postgres.sh unless LLMLEDGER_TEST_PG points at one. This is the README's test command and
# what CI runs; it ends with one "N passed, N failed" line over all suites.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

LOG="$(mktemp -d)/test.log"
step() { printf '\n== %s ==\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --features llmledger-core/postgres -- -D warnings

step "Python package (release build, shared target dir)"
source scripts/python-env.sh

step "Node package (npm ci builds the native module into the same target dir)"
npm ci --no-audit --no-fund --loglevel=error
npm run -s typecheck

step "Rust, Python and Node tests (with PostgreSQL)"
scripts/with-postgres.sh bash -c '
  set -euo pipefail
  cargo test --features llmledger-core/postgres
  .venv/bin/python -m pytest bindings-python/tests -q -rs
  node --test bindings-node/test/*.test.mjs
' 2>&1 | tee "$LOG"

# One closing line over every runner: cargo ("test result: ok. N passed; M failed"), pytest ("N passed")
# and node --test ("# pass N" / "# fail N").
python3 - "$LOG" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
passed = failed = 0
for p, f in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
    passed, failed = passed + int(p), failed + int(f)
for line in re.findall(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", text, re.M):
    for n, kind in re.findall(r"(\d+) (passed|failed)", line):
        if kind == "passed": passed += int(n)
        else: failed += int(n)
for kind, n in re.findall(r"^# (pass|fail) (\d+)$", text, re.M):
    if kind == "pass": passed += int(n)
    else: failed += int(n)
print(f"total: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
PY
