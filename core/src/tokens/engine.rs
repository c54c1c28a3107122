//! The BPE engines behind every local count, per encoding: the fast engine for everything once it is
//! built, and the cold-start engine ([`super::cold`]) for the first counts of a process while it is not.
//! Both count with ranks compiled into the binary (no files, no network at run time) and count alike.
//!
//! Engine choice is measured, not assumed: `bench/` compares `tiktoken-rs` (the baseline), the `tiktoken`
//! 3.x crate and `bpe-openai` on the peers' 2 MiB corpus (identical counts required, whole and per
//! message), and `bench/README.md` records the figures. Adopted: the `tiktoken` 3.8 crate — identical
//! counts, ~4-5× the throughput of `tiktoken-rs` on one core. It is pinned to an exact version because
//! its 3.6/3.8 releases changed token ids for some inputs; re-run `tokens-engines verify` before bumping.
//! Building it decompresses and hashes every rank (~0.1 s for o200k_base, more under load), which is why
//! a first count does not wait for it unless its text is large.

use std::sync::{LazyLock, Once, OnceLock};

use super::cold::ColdEngine;
use super::Encoding;

/// Above this size a first count waits for the fast engine: the cold engine (several times slower)
/// would take about as long as the build.
const COLD_MAX_BYTES: usize = 64 * 1024;

// Calling the constructors directly (not `tiktoken::get_encoding(name)`) keeps only these two rank
// tables in the binary; the crate embeds a dozen.
static O200K: OnceLock<tiktoken::CoreBpe> = OnceLock::new();
static CL100K: OnceLock<tiktoken::CoreBpe> = OnceLock::new();
static O200K_COLD: LazyLock<Option<ColdEngine>> = LazyLock::new(|| ColdEngine::new(Encoding::O200kBase));
static CL100K_COLD: LazyLock<Option<ColdEngine>> = LazyLock::new(|| ColdEngine::new(Encoding::Cl100kBase));

/// The fast engine for `encoding`, built now if it is not yet.
pub(crate) fn fast(encoding: Encoding) -> &'static tiktoken::CoreBpe {
    match encoding {
        Encoding::O200kBase => O200K.get_or_init(tiktoken::encoding::o200k_base),
        Encoding::Cl100kBase => CL100K.get_or_init(tiktoken::encoding::cl100k_base),
    }
}

/// Builds the fast engine for `encoding` on a background thread, once per process and encoding.
pub(crate) fn build_in_background(encoding: Encoding) {
    static O200K_ONCE: Once = Once::new();
    static CL100K_ONCE: Once = Once::new();
    let once = match encoding {
        Encoding::O200kBase => &O200K_ONCE,
        Encoding::Cl100kBase => &CL100K_ONCE,
    };
    once.call_once(|| {
        // If the thread cannot be spawned, the next large count (or `warm_up`) builds the engine instead.
        let _ = std::thread::Builder::new().name("llmledger-warm-up".into()).spawn(move || fast(encoding));
    });
}

/// Counts the tokens of ordinary text (special-token-like text such as `<|endoftext|>` is plain text).
pub(crate) fn count(encoding: Encoding, text: &str) -> usize {
    let (built, cold) = match encoding {
        Encoding::O200kBase => (O200K.get(), &O200K_COLD),
        Encoding::Cl100kBase => (CL100K.get(), &CL100K_COLD),
    };
    if let Some(bpe) = built {
        return bpe.count(text);
    }
    if text.len() <= COLD_MAX_BYTES {
        build_in_background(encoding);
        if let Some(n) = cold.as_ref().and_then(|c| c.count(text)) {
            return n;
        }
    }
    fast(encoding).count(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::tests::MIXED;

    #[test]
    fn cold_engine_matches_tiktoken_rs() {
        let reference = [
            (Encoding::O200kBase, tiktoken_rs::o200k_base_singleton()),
            (Encoding::Cl100kBase, tiktoken_rs::cl100k_base_singleton()),
        ];
        // Long runs exercise the merge loop beyond single-token pieces.
        let long = format!("{}{}", "a".repeat(300), "😀".repeat(50));
        let pieces = MIXED.split("\n\n").chain(MIXED.lines()).chain([MIXED, "", " ", "x", long.as_str()]);
        for piece in pieces {
            for (encoding, bpe) in &reference {
                let cold = ColdEngine::new(*encoding).and_then(|c| c.count(piece));
                assert_eq!(cold, Some(bpe.encode_ordinary(piece).len()), "{encoding:?} {piece:?}");
            }
        }
    }
}
