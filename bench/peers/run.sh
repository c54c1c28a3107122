#!/usr/bin/env bash
# One command for the whole peer comparison, from a fresh clone:
#   bench/peers/run.sh [run_all.py options, e.g. --sections AB --only llmledger]
# Installs the peers into $PEERS_WORK (default: a directory under $TMPDIR), builds this checkout's Rust
# bench binary, Python package (.venv, via scripts/python-env.sh) and Node native module, then runs every
# case — peers and llmledger side by side, the per-call overhead of wrapped SDK clients against the
# repository's mock provider included — and prints the Markdown table (also saved under
# $PEERS_WORK/results/). REPS and STARTUP_RUNS default to 5, ROUNDS 10 and CALLS 60 (section E); the run
# itself takes ~6–8 min on 2 cores; each case is stopped after CASE_TIMEOUT s (300) and the whole run
# after BENCH_TIMEOUT s (default 1200).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export PEERS_WORK="${PEERS_WORK:-${TMPDIR:-/tmp}/llmledger-bench-peers}"
source scripts/env.sh

bash bench/peers/setup.sh
echo "== building llmledger (Rust bench binary, Python package, Node native module)"
cargo build -q --release -p llmledger-bench
source scripts/python-env.sh
# The Node SDKs of section E are the package's dev dependencies.
[ -d node_modules/openai ] && [ -d node_modules/@anthropic-ai/sdk ] || npm ci --ignore-scripts --no-audit --no-fund
node bindings-node/scripts/build.mjs

export TOKENS_ENGINES="${CARGO_TARGET_DIR:-$ROOT/target}/$CARGO_BUILD_TARGET/release/tokens-engines"
export LLMLEDGER_PYTHON="$ROOT/.venv/bin/python"
export REPS="${REPS:-5}" STARTUP_RUNS="${STARTUP_RUNS:-5}" ROUNDS="${ROUNDS:-10}" CALLS="${CALLS:-60}"
timeout "${BENCH_TIMEOUT:-1200}" python3 bench/peers/run_all.py "$@"
