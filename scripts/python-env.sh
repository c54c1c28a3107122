# Sourced by demo.sh and test.sh: a virtualenv at .venv with the official SDKs and the llmledger package
# built from this checkout (maturin, release, into the shared target dir).
if [ ! -x .venv/bin/python ]; then
  # Debian's own python3 ships venv separately (python3-venv); install it when we can.
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv .venv
  fi
fi
.venv/bin/pip install -q --disable-pip-version-check 'maturin>=1.16,<2' openai anthropic pytest pytest-asyncio mcp
PATH="$PWD/.venv/bin:$PATH" .venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
