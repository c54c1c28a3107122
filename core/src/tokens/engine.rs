//! The BPE engine behind every local count: one small trait, one adopted implementation, built lazily
//! per encoding from ranks compiled into the binary (no files, no network at run time).
//!
//! Engine choice is measured, not assumed: `bench/` compares `tiktoken-rs` (the baseline), the `tiktoken`
//! 3.x crate and `bpe-openai` on the peers' 2 MiB corpus (identical counts required, whole and per
//! message), and `bench/README.md` records why the engine below was adopted.

use std::sync::LazyLock;

use super::Encoding;

/// Counts the tokens of ordinary text (special-token-like text such as `<|endoftext|>` is plain text).
pub(crate) trait Engine: Send + Sync {
    fn count(&self, text: &str) -> usize;
}

impl Engine for tiktoken_rs::CoreBPE {
    fn count(&self, text: &str) -> usize {
        self.encode_ordinary(text).len()
    }
}

static O200K: LazyLock<tiktoken_rs::CoreBPE> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // the ranks are compiled in: this fails only if the crate is broken
    tiktoken_rs::o200k_base().expect("tiktoken-rs ships o200k_base")
});
static CL100K: LazyLock<tiktoken_rs::CoreBPE> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // as above
    tiktoken_rs::cl100k_base().expect("tiktoken-rs ships cl100k_base")
});

/// The engine for `encoding`, built on first use (later calls are a pointer load).
pub(crate) fn engine(encoding: Encoding) -> &'static dyn Engine {
    match encoding {
        Encoding::O200kBase => &*O200K,
        Encoding::Cl100kBase => &*CL100K,
    }
}
