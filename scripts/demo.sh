#!/usr/bin/env bash
# The main job: three users of a small app make chat, streamed, Responses and Anthropic calls through
# wrapped official SDK clients (Python, then Node) (against the local mock provider, or the real APIs when OPENAI_API_KEY and
# ANTHROPIC_API_KEY are set); then a pre-flight estimate, and the per-user × model cost report — printed by
# the app from the embedded SQLite ledger, and again by the `llmledger` CLI from the same ledger file.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

echo "== installing the Python package from this checkout (first run builds the Rust core: a few minutes) =="
source scripts/python-env.sh

export LLMLEDGER_DEMO_DB="$(mktemp -d)/llmledger-demo.db"
echo "== the demo app (Python, official openai + anthropic clients) =="
.venv/bin/python examples/python/demo.py

echo
echo "== the Node half (official openai + @anthropic-ai/sdk clients, same ledger file) =="
npm ci --no-audit --no-fund --loglevel=error
npm run -s build
node bindings-node/examples/demo.mjs --store "sqlite://$LLMLEDGER_DEMO_DB"

echo
echo "== the whole ledger (Python and Node calls), through the CLI: llmledger report --by user,model =="
cargo build -q --release -p llmledger-cli
"target/$CARGO_BUILD_TARGET/release/llmledger" report --store "sqlite://$LLMLEDGER_DEMO_DB" --by user,model

echo
echo "== see it: open the printed URL (Ctrl-C stops the server) =="
echo "target/$CARGO_BUILD_TARGET/release/llmledger serve --store sqlite://$LLMLEDGER_DEMO_DB"
