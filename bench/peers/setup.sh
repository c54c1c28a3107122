#!/usr/bin/env bash
# Installs the peer libraries (exact pins) from the package registries into $PEERS_WORK and writes the
# corpus there; nothing is written into the repository. Idempotent. Called by run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
W="${PEERS_WORK:?set PEERS_WORK (run.sh does)}"
PY="${PYTHON:-python3}"
mkdir -p "$W"
echo "== peers work dir: $W"

# ---- Python peers. litellm 1.106.2: newer releases need a certifi the mirror used for the reference
# run did not have yet; tiktoken and tokencost are the newest at the time of writing.
if [ ! -x "$W/venv/bin/python" ]; then "$PY" -m venv "$W/venv"; fi
"$W/venv/bin/pip" install -q --disable-pip-version-check "tiktoken==0.14.0" "litellm==1.106.2" "tokencost==0.1.26"

# ---- Node peer.
mkdir -p "$W/node"
[ -f "$W/node/package.json" ] || (cd "$W/node" && npm init -y >/dev/null)
(cd "$W/node" && npm install --no-audit --no-fund --save-exact gpt-tokenizer@4.0.0 >/dev/null)

# ---- Offline rank files for Python tiktoken (it would download them on first use). It looks for
# $TIKTOKEN_CACHE_DIR/<sha1(url)> and accepts a file whose sha256 matches the one it expects; the Rust
# crate tiktoken-rs (a dependency of the bench crate, fetched by cargo) ships byte-identical copies.
TKRS="$(sed -n '/^name = "tiktoken-rs"$/{n;s/^version = "\(.*\)"$/\1/p}' "$HERE/../../Cargo.lock")"
(cd "$HERE/../.." && cargo fetch -q)
ASSETS="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"tiktoken-rs-$TKRS"/assets | head -1)"
CACHE="$W/tiktoken_cache"
mkdir -p "$CACHE"
BLOB=https://openaipublic.blob.core.windows.net/encodings
for enc in o200k_base cl100k_base p50k_base r50k_base; do
  cp "$ASSETS/$enc.tiktoken" "$CACHE/$(printf '%s' "$BLOB/$enc.tiktoken" | sha1sum | cut -d' ' -f1)"
done
TIKTOKEN_CACHE_DIR="$CACHE" "$W/venv/bin/python" -c "
import tiktoken
for n in ('o200k_base', 'cl100k_base'):
    print('   tiktoken offline OK:', n, tiktoken.get_encoding(n).n_vocab)"

# ---- Corpus (deterministic; prints its sha256).
"$PY" "$HERE/gen_corpus.py" "$W"
