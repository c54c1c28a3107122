//! The cold-start engine: counts with the rank tables laid out at compile time by `build.rs`
//! (`include_bytes!`, nothing parsed or hashed at start-up) and tiktoken's own split patterns, so that
//! the first counts in a new process take milliseconds while [`super::engine`] builds the fast engine
//! on a background thread. It implements the reference algorithm of `tiktoken` (OpenAI's
//! `byte_pair_merge`, lowest rank first, leftmost on ties), so its counts are tiktoken's; it is several
//! times slower than the fast engine, which takes over as soon as it is built.

use super::rank_hash::rank_hash;
use super::Encoding;

/// tiktoken's o200k_base split pattern (as in OpenAI's `tiktoken_ext/openai_public.py`).
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);

/// tiktoken's cl100k_base split pattern.
const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// One encoding's ranks as laid out by `build.rs` (see its docs for the format).
#[derive(Debug)]
struct RankTable {
    arena: &'static [u8],
    offsets: &'static [u8],
    slots: &'static [u8],
}

macro_rules! rank_table {
    ($name:literal) => {
        RankTable {
            arena: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".arena")),
            offsets: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".offsets")),
            slots: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".slots")),
        }
    };
}

fn read_u32(bytes: &[u8], index: usize) -> Option<usize> {
    let word = bytes.get(4 * index..4 * index + 4)?;
    Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]) as usize)
}

impl RankTable {
    fn token(&self, rank: usize) -> Option<&'static [u8]> {
        self.arena.get(read_u32(self.offsets, rank)?..read_u32(self.offsets, rank + 1)?)
    }

    /// The rank of `bytes`, or `None` when they are not a token.
    fn rank(&self, bytes: &[u8]) -> Option<usize> {
        let mask = self.slots.len() / 4 - 1;
        // Truncation is the point: the low bits pick the slot.
        let mut i = (rank_hash(bytes) as usize) & mask;
        loop {
            let rank = read_u32(self.slots, i)?.checked_sub(1)?;
            if self.token(rank)? == bytes {
                return Some(rank);
            }
            i = (i + 1) & mask;
        }
    }

    /// The number of tokens `piece` merges into (OpenAI's `byte_pair_merge`).
    fn count_piece(&self, piece: &[u8]) -> usize {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1);
        }
        // parts[i] = (start of part i, rank of merging part i with part i + 1).
        let rank_of = |parts: &[(usize, usize)], i: usize| match parts.get(i + 2) {
            Some(&(end, _)) => self.rank(&piece[parts[i].0..end]).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let mut parts: Vec<(usize, usize)> = (0..=piece.len()).map(|i| (i, usize::MAX)).collect();
        for i in 0..parts.len() {
            parts[i].1 = rank_of(&parts, i);
        }
        loop {
            let (i, best) =
                parts.iter().enumerate().fold((0, usize::MAX), |m, (i, p)| if p.1 < m.1 { (i, p.1) } else { m });
            if best == usize::MAX {
                return parts.len() - 1;
            }
            parts.remove(i + 1);
            parts[i].1 = rank_of(&parts, i);
            if i > 0 {
                parts[i - 1].1 = rank_of(&parts, i - 1);
            }
        }
    }
}

/// Split pattern plus ranks for one encoding.
#[derive(Debug)]
pub(crate) struct ColdEngine {
    split: fancy_regex::Regex,
    ranks: RankTable,
}

impl ColdEngine {
    /// Compiles the split pattern (a few ms); `None` if it does not compile (the caller then waits for
    /// the fast engine).
    pub(crate) fn new(encoding: Encoding) -> Option<Self> {
        let (pattern, ranks) = match encoding {
            Encoding::O200kBase => (O200K_PATTERN, rank_table!("o200k_base")),
            Encoding::Cl100kBase => (CL100K_PATTERN, rank_table!("cl100k_base")),
        };
        Some(Self { split: fancy_regex::Regex::new(pattern).ok()?, ranks })
    }

    /// Counts ordinary text; `None` if the split pattern gives up (backtracking limit), so that the
    /// caller counts with the fast engine instead of returning a wrong count.
    pub(crate) fn count(&self, text: &str) -> Option<usize> {
        let mut total = 0;
        for piece in self.split.find_iter(text) {
            total += self.ranks.count_piece(piece.ok()?.as_str().as_bytes());
        }
        Some(total)
    }
}
