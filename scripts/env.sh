# Sourced by the scripts: one target triple for cargo, maturin and napi so that every tool shares one
# target dir and nothing is built twice (see shared BUILD-NOTES).
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Node: load the checkout's own native build (`npm run build` -> bindings-node/native/), not a prebuilt
# platform package (see bindings-node/js/native.cjs; the package smoke test unsets it).
export LLMLEDGER_NATIVE="${LLMLEDGER_NATIVE:-local}"
# A CI build starts cold and is never rebuilt in place: incremental compilation would only add work.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
