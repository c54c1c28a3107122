#!/usr/bin/env bash
# The dashboard's browser test: Debian's headless Chromium (installed with apt-get when missing, about
# 20 s and ~100 MB here) driven by puppeteer-core over `llmledger serve` and the seeded test ledger.
# Builds the debug `llmledger` binary and the `dashboard_seed` example (already built by `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if ! command -v chromium >/dev/null; then
  apt-get install -y --no-install-recommends chromium >/dev/null
fi
cargo build -q -p llmledger-cli --bin llmledger --example dashboard_seed
exec node --test --test-reporter=spec tests/browser/*.test.mjs
