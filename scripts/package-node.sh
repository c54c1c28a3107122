#!/usr/bin/env bash
# The npm packages as a user gets them: packs this platform's `@llmledger/<platform>` package (the native
# module of this checkout's release build, shared target dir: no second compile) and the main `llmledger`
# package with `npm pack` (bindings-node/scripts/pack.mjs), installs both tarballs into a fresh folder with
# no cargo or rustc on PATH, then runs tests/packaging/smoke.cjs (require, wrapped openai call against the
# mock provider, price, report), smoke.mjs (ESM import) and `tsc --noEmit` over the typed example
# (bindings-node/test/types/example.ts) against the installed d.ts. Reports the JS size and what
# `require('llmledger')` adds to `node -e 0` (figures, not asserted). Run by scripts/test.sh.
#
#   scripts/package-node.sh [WORK_DIR]     # default: a temporary directory, removed at the end
#
# LLMLEDGER_NODE_BINARY=FILE.node packs that prebuilt module instead of building this checkout's (the release
# workflow tests each platform's artifact so, with no Rust toolchain at all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
source scripts/env.sh
source scripts/package-lib.sh

WORK="${1:-$(mktemp -d)}"
[ -n "${1:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"

# napi-rs's platform name of this machine, as the loader computes it.
platform="$(node -p "require('./bindings-node/js/platform.cjs').platformName()")"
[ -d node_modules/openai ] || npm ci --no-audit --no-fund --loglevel=error
if [ -n "${LLMLEDGER_NODE_BINARY:-}" ]; then
  binary=(--binary "$LLMLEDGER_NODE_BINARY")
else
  # The checkout's build (npm ci has installed @napi-rs/cli; cargo finds the release build fresh).
  npm run -s build >/dev/null
  binary=()
fi
main_tgz="$(node bindings-node/scripts/pack.mjs --out "$WORK/dist" --main)"
platform_tgz="$(node bindings-node/scripts/pack.mjs --out "$WORK/dist" --platform "$platform" ${binary[@]+"${binary[@]}"})"

# A fresh project: the two tarballs plus the SDKs and TypeScript at the versions this repo's lockfile pins
# (npm's cache usually has them); nothing from the checkout's node_modules.
APP="$WORK/app"
rm -rf "$APP" && mkdir -p "$APP"
pins=()
for dep in openai @anthropic-ai/sdk typescript @types/node; do
  pins+=("$dep@$(node -p "require('./node_modules/$dep/package.json').version")")
done
echo '{ "name": "llmledger-smoke", "private": true }' >"$APP/package.json"
( cd "$APP" && unset LLMLEDGER_NATIVE && without_rust npm install --no-audit --no-fund --prefer-offline \
    --loglevel=error "$main_tgz" "$platform_tgz" "${pins[@]}" >/dev/null )
cp tests/packaging/smoke.cjs tests/packaging/smoke.mjs bindings-node/test/types/example.ts \
  bindings-node/test/types/tsconfig.json "$APP/"

start_mock
trap 'kill "$MOCK_PID" 2>/dev/null || true; [ -n "${1:-}" ] || rm -rf "$WORK"' EXIT
(
  cd "$APP"
  unset LLMLEDGER_NATIVE
  without_rust node smoke.cjs "$MOCK_URL"
  without_rust node smoke.mjs
  without_rust node_modules/.bin/tsc -p tsconfig.json
  echo "tsc --noEmit over the installed d.ts: OK"
)

# Figures. The JS layer as installed (every .cjs/.mjs; no bundler here, so the size is before minification:
# an upper bound of the minified size), and the median require time added to a bare node, 15 runs each.
js=("$APP"/node_modules/llmledger/bindings-node/js/*.cjs "$APP"/node_modules/llmledger/bindings-node/js/*.mjs)
read -r added bare with < <(cd "$APP" && env -u LLMLEDGER_NATIVE python3 "$ROOT/tests/packaging/startup.py" 15 \
  node -e 0 -- node -e "require('llmledger')")
kb() { echo "$(( $(wc -c <"$1") / 1024 ))"; }
printf 'node packages: %s (%s KB), %s (%s KB)\n' "$(basename "$main_tgz")" "$(kb "$main_tgz")" \
  "$(basename "$platform_tgz")" "$(kb "$platform_tgz")"
printf 'JS layer: %s bytes in %s files, unminified (%s bytes gzipped); native module %s KB\n' \
  "$(cat "${js[@]}" | wc -c | tr -d ' ')" "${#js[@]}" "$(cat "${js[@]}" | gzip -9 | wc -c | tr -d ' ')" \
  "$(kb "$APP/node_modules/@llmledger/$platform/llmledger.$platform.node")"
printf "require('llmledger'): +%s ms over node -e 0 (%s ms -> %s ms, median of 15)\n" "$added" "$bare" "$with"
echo "node package smoke: OK"
