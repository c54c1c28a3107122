#!/usr/bin/env bash
# One command for the whole peer comparison, from a fresh clone:
#   bench/peers/run.sh [run_all.py options, e.g. --sections AB --only llmledger]
# Installs the peers into $PEERS_WORK (default: a directory under $TMPDIR), builds this checkout's Rust
# bench binary, Python package (.venv, via scripts/python-env.sh) and Node native module, then runs every
# case — peers and llmledger side by side — and prints the Markdown table (also saved under
# $PEERS_WORK/results/). REPS and STARTUP_RUNS default to 5; the run itself takes ~5 min on 2 cores and
# is stopped after BENCH_TIMEOUT seconds (default 1200).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export PEERS_WORK="${PEERS_WORK:-${TMPDIR:-/tmp}/llmledger-bench-peers}"
source scripts/env.sh

bash bench/peers/setup.sh
echo "== building llmledger (Rust bench binary, Python package, Node native module)"
cargo build -q --release -p llmledger-bench
source scripts/python-env.sh
node bindings-node/scripts/build.mjs

export TOKENS_ENGINES="${CARGO_TARGET_DIR:-$ROOT/target}/$CARGO_BUILD_TARGET/release/tokens-engines"
export LLMLEDGER_PYTHON="$ROOT/.venv/bin/python"
export REPS="${REPS:-5}" STARTUP_RUNS="${STARTUP_RUNS:-5}"
timeout "${BENCH_TIMEOUT:-1200}" python3 bench/peers/run_all.py "$@"
