//! The BPE engine behind every local count: one small trait, one adopted implementation, built lazily
//! per encoding from ranks compiled into the binary (no files, no network at run time).
//!
//! Engine choice is measured, not assumed: `bench/` compares `tiktoken-rs` (the baseline), the `tiktoken`
//! 3.x crate and `bpe-openai` on the peers' 2 MiB corpus (identical counts required, whole and per
//! message), and `bench/README.md` records the figures. Adopted: the `tiktoken` 3.8 crate — identical
//! counts, ~4-5× the throughput of `tiktoken-rs` on one core. It is pinned to an exact version because
//! its 3.6/3.8 releases changed token ids for some inputs; re-run `tokens-engines verify` before bumping.

use std::sync::LazyLock;

use super::Encoding;

/// Counts the tokens of ordinary text (special-token-like text such as `<|endoftext|>` is plain text).
pub(crate) trait Engine: Send + Sync {
    fn count(&self, text: &str) -> usize;
}

impl Engine for tiktoken::CoreBpe {
    fn count(&self, text: &str) -> usize {
        // `count` is ordinary-text counting (no special tokens), without building the token vector.
        tiktoken::CoreBpe::count(self, text)
    }
}

// Calling the constructors directly (not `tiktoken::get_encoding(name)`) keeps only these two rank
// tables in the binary; the crate embeds a dozen.
static O200K: LazyLock<tiktoken::CoreBpe> = LazyLock::new(tiktoken::encoding::o200k_base);
static CL100K: LazyLock<tiktoken::CoreBpe> = LazyLock::new(tiktoken::encoding::cl100k_base);

/// The engine for `encoding`, built on first use (later calls are a pointer load).
pub(crate) fn engine(encoding: Encoding) -> &'static dyn Engine {
    match encoding {
        Encoding::O200kBase => &*O200K,
        Encoding::Cl100kBase => &*CL100K,
    }
}
