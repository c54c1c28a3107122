#!/usr/bin/env bash
# Runs every test suite of llmledger: formatting and lints, the Rust tests (with a real PostgreSQL,
# started by scripts/with-postgres.sh unless LLMLEDGER_TEST_PG points at one), then the Python and Node
# suites when their packages are present. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step() { printf '\n== %s ==\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --features llmledger-core/postgres -- -D warnings

step "rust tests (with PostgreSQL)"
scripts/with-postgres.sh cargo test --workspace --features llmledger-core/postgres
