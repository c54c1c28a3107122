# Sourced by demo.sh and test.sh: a virtualenv at .venv with the official SDKs and the llmledger package
# built from this checkout (maturin, release, into the shared target dir).
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check 'maturin>=1.16,<2' openai anthropic pytest pytest-asyncio
PATH="$PWD/.venv/bin:$PATH" .venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
