#!/usr/bin/env bash
# The Python package as a user gets it: builds the abi3 wheel with maturin (release, shared target dir and
# triple, so after scripts/python-env.sh nothing compiles again) with its manylinux tag checked by maturin's
# auditwheel pass (`--auditwheel check`: fails on a policy violation or an unbundled shared library), and the
# sdist; installs the wheel into a fresh virtualenv with no cargo or rustc on PATH; runs
# tests/packaging/smoke.py there (import, price, official openai SDK wrapped against the mock provider, a
# report). Reports the wheel size and what `import llmledger` adds to a bare interpreter (figures, not
# asserted). Run by scripts/test.sh.
#
#   scripts/package-python.sh [WORK_DIR]     # default: a temporary directory, removed at the end
#
# LLMLEDGER_WHEEL=FILE.whl smoke-tests that prebuilt wheel instead of building one (the release workflow
# tests each platform's wheel so, with no Rust toolchain at all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
source scripts/env.sh
source scripts/package-lib.sh

WORK="${1:-$(mktemp -d)}"
[ -n "${1:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"

if [ -n "${LLMLEDGER_WHEEL:-}" ]; then
  wheel="$LLMLEDGER_WHEEL"
else
  [ -x .venv/bin/maturin ] || source scripts/python-env.sh
  # The interpreter and target pip's PEP 517 build of scripts/python-env.sh used: cargo finds every unit fresh.
  .venv/bin/maturin build --quiet --release --target "$CARGO_BUILD_TARGET" -i "$ROOT/.venv/bin/python" \
    --auditwheel check --out "$WORK/dist"
  .venv/bin/maturin sdist --out "$WORK/dist" >/dev/null 2>&1
  wheel="$(ls "$WORK"/dist/llmledger-*.whl)"
  sdist="$(ls "$WORK"/dist/llmledger-*.tar.gz)"
  case "$(basename "$wheel")" in
    *-cp39-abi3-manylinux_2_*_x86_64*.whl | *-cp39-abi3-manylinux2014_x86_64*.whl) ;;
    *) echo "unexpected wheel tag: $(basename "$wheel") (want cp39-abi3-manylinux_*_x86_64)" >&2; exit 1 ;;
  esac
  # The sdist holds the whole Rust workspace it needs (maturin trims the members to the binding's): cargo
  # resolves it offline from the sdist alone.
  mkdir -p "$WORK/sdist" && tar -xzf "$sdist" -C "$WORK/sdist"
  sdist_root="$(ls -d "$WORK"/sdist/llmledger-*)"
  cargo metadata --offline --format-version 1 --manifest-path "$sdist_root/bindings-python/Cargo.toml" \
    >/dev/null
  test -d "$sdist_root/pricing/data"
  printf 'sdist: %s (%s KB)\n' "$(basename "$sdist")" "$(( $(wc -c <"$sdist") / 1024 ))"
fi

# A fresh virtualenv: the wheel and the official openai SDK (from the index, or pip's cache); no Rust.
VENV="$WORK/venv"
without_rust python3 -m venv "$VENV"
without_rust "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary :all: "$wheel" openai

start_mock
trap 'kill "$MOCK_PID" 2>/dev/null || true; [ -n "${1:-}" ] || rm -rf "$WORK"' EXIT
mkdir -p "$WORK/ledger"
# From $WORK, so that `import llmledger` cannot pick up the checkout's python source.
( cd "$WORK" && without_rust "$VENV/bin/python" "$ROOT/tests/packaging/smoke.py" "$MOCK_URL" "$WORK/ledger" )

read -r added bare with < <(cd "$WORK" && python3 "$ROOT/tests/packaging/startup.py" 15 \
  "$VENV/bin/python" -c pass -- "$VENV/bin/python" -c "import llmledger")
printf 'wheel: %s (%s KB)\n' "$(basename "$wheel")" "$(( $(wc -c <"$wheel") / 1024 ))"
printf 'import llmledger: +%s ms over a bare python (%s ms -> %s ms, median of 15)\n' "$added" "$bare" "$with"
echo "python package smoke: OK"
