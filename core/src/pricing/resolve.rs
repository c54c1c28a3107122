//! Model-name resolution: exact id → alias / dated snapshot → provider and Bedrock prefixes stripped →
//! dated-snapshot fallback → `UnknownModel` with close matches.
//!
//! The exact hit is one hash lookup with no allocation; everything else is the miss path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::NaiveDate;

use super::{CompiledModel, ModelMode, PriceDb, PriceVersion};
use crate::error::{Error, Result};
use crate::usage::Provider;

/// A model name resolved against a [`PriceDb`]; prices with [`ResolvedModel::price`].
#[derive(Debug, Clone, Copy)]
pub struct ResolvedModel<'a> {
    model: &'a CompiledModel,
    data_version: &'a str,
}

impl<'a> ResolvedModel<'a> {
    pub(super) fn compiled(&self) -> &'a CompiledModel {
        self.model
    }

    /// The data version of the database it was resolved in ([`PriceDb::data_version`]).
    pub fn data_version(&self) -> &'a str {
        self.data_version
    }

    pub fn provider(&self) -> Provider {
        self.model.provider
    }

    /// The canonical id.
    pub fn id(&self) -> &'a str {
        &self.model.id
    }

    pub fn mode(&self) -> ModelMode {
        self.model.mode
    }

    /// True when the model carries a caller's custom price.
    pub fn is_custom(&self) -> bool {
        self.model.custom
    }

    /// Every price version, oldest first.
    pub fn versions(&self) -> impl Iterator<Item = &'a PriceVersion> + 'a {
        self.model.versions.iter().map(|v| &v.src)
    }

    /// The price version in force on `date` (UTC); `MissingPrice` when none is.
    pub fn version_at(&self, date: NaiveDate) -> Result<&'a PriceVersion> {
        self.model.version_at(date).map(|v| &v.src)
    }
}

/// Name → model index. Keys are model names from the price data, so a fast non-keyed hash is fine
/// (callers only look up; nothing they pass is inserted).
pub(super) type Index = HashMap<Box<str>, usize, BuildHasherDefault<NameHasher>>;

/// FxHash (the rustc hasher) over 8-byte words: a few nanoseconds for a model name, against ~20 ns
/// for the default SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct NameHasher(u64);

impl NameHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Route prefixes that name a provider (LiteLLM style, Gemini's `models/`) in front of a model id.
const ROUTE_PREFIXES: [&str; 10] =
    ["openai/", "anthropic/", "azure/", "azure_ai/", "gemini/", "xai/", "bedrock/", "vertex_ai/", "google/", "models/"];

/// Bedrock cross-region inference-profile prefixes (`us.anthropic.claude-…`).
const PROFILE_PREFIXES: [&str; 8] = ["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca."];

/// Bedrock model vendors in front of a model id (`anthropic.claude-…-v1:0`).
const VENDOR_PREFIXES: [&str; 1] = ["anthropic."];

impl PriceDb {
    /// Resolves a model name as a provider or SDK reports it. See the module docs for the order.
    pub fn resolve(&self, model: &str) -> Result<ResolvedModel<'_>> {
        let inner = &*self.inner;
        match lookup(&inner.index, model) {
            Some(i) => Ok(ResolvedModel { model: &inner.models[i], data_version: &inner.data_version }),
            None => Err(Error::unknown_model(model, suggest(&inner.index, &inner.models, model))),
        }
    }
}

/// The model index `name` resolves to.
pub(super) fn lookup(index: &Index, name: &str) -> Option<usize> {
    if let Some(&i) = index.get(name) {
        return Some(i);
    }
    lookup_variants(index, name).or_else(|| {
        // Names are lower case in every provider's API; tolerate a caller's capitals.
        let lower = name.to_ascii_lowercase();
        if lower == name {
            None
        } else {
            index.get(lower.as_str()).copied().or_else(|| lookup_variants(index, &lower))
        }
    })
}

fn lookup_variants(index: &Index, name: &str) -> Option<usize> {
    let get = |s: &str| index.get(s).copied().or_else(|| strip_date(s).and_then(|d| index.get(d).copied()));
    let mut s = strip_routes(name);
    if let Some(i) = get(s) {
        return Some(i);
    }
    if let Some(rest) = PROFILE_PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
        s = rest;
        if let Some(i) = get(s) {
            return Some(i);
        }
    }
    if let Some(rest) = VENDOR_PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
        // Aliases in the data cover Bedrock ids; this catches snapshots the data does not list.
        return get(strip_bedrock_version(rest));
    }
    None
}

/// `openai/azure/gpt-4o` → `gpt-4o`.
pub(super) fn strip_routes(mut s: &str) -> &str {
    while let Some(rest) = ROUTE_PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
        s = rest;
    }
    s
}

/// `claude-…-20250514-v1:0` → `claude-…-20250514`; `…-v2` → `…`.
fn strip_bedrock_version(s: &str) -> &str {
    let Some(pos) = s.rfind("-v") else { return s };
    let tail = &s[pos + 2..];
    let (major, minor) = tail.split_once(':').unwrap_or((tail, "0"));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if digits(major) && digits(minor) {
        &s[..pos]
    } else {
        s
    }
}

/// Strips a trailing dated-snapshot suffix: `-YYYY-MM-DD`, `-YYYYMMDD` or Vertex's `@YYYYMMDD`.
fn strip_date(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let n = b.len();
    // `-2024-08-06`: dashes at n-11, n-6 and n-3.
    if n > 11
        && b[n - 11] == b'-'
        && b[n - 6] == b'-'
        && b[n - 3] == b'-'
        && digits(n - 10..n - 6)
        && digits(n - 5..n - 3)
        && digits(n - 2..n)
    {
        return Some(&s[..n - 11]);
    }
    if n > 9 && matches!(b[n - 9], b'-' | b'@') && digits(n - 8..n) {
        return Some(&s[..n - 9]);
    }
    None
}

/// Up to three names of distinct models closest to `name` by edit distance.
fn suggest(index: &Index, models: &[CompiledModel], name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let target = strip_routes(&lower);
    let limit = (target.chars().count() / 3).max(2);
    // Best (distance, name) per model.
    let mut best: HashMap<usize, (usize, &str)> = HashMap::new();
    for (key, &i) in index {
        let d = levenshtein(target, key);
        if d <= limit {
            let entry = best.entry(i).or_insert((d, key));
            if (d, key.len()) < (entry.0, entry.1.len()) {
                *entry = (d, key);
            }
        }
    }
    let mut ranked: Vec<(usize, usize, &str)> = best.into_iter().map(|(i, (d, key))| (d, i, key)).collect();
    // Prefer the closer name, then the canonical id, then the shorter name.
    ranked.sort_by(|a, b| {
        let canon = |x: &(usize, usize, &str)| models[x.1].id != x.2;
        (a.0, canon(a), a.2.len(), a.2).cmp(&(b.0, canon(b), b.2.len(), b.2))
    });
    ranked.into_iter().take(3).map(|(_, _, key)| key.to_string()).collect()
}

/// Edit distance (insertions, deletions, substitutions), two rows.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("gpt-4oo", "gpt-4o"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn date_suffixes() {
        assert_eq!(strip_date("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(strip_date("claude-sonnet-4-20250514"), Some("claude-sonnet-4"));
        assert_eq!(strip_date("claude-3-5-sonnet@20240620"), Some("claude-3-5-sonnet"));
        assert_eq!(strip_date("gpt-4o"), None);
        assert_eq!(strip_date("o1-2024-8-06"), None);
        assert_eq!(strip_date("x-12345678a"), None);
    }

    #[test]
    fn bedrock_versions() {
        assert_eq!(strip_bedrock_version("claude-sonnet-4-20250514-v1:0"), "claude-sonnet-4-20250514");
        assert_eq!(strip_bedrock_version("claude-instant-v1"), "claude-instant");
        assert_eq!(strip_bedrock_version("claude-vx"), "claude-vx");
    }

    #[test]
    fn routes() {
        assert_eq!(strip_routes("openai/gpt-4o"), "gpt-4o");
        assert_eq!(strip_routes("models/gemini-2.5-pro"), "gemini-2.5-pro");
        assert_eq!(strip_routes("gpt-4o"), "gpt-4o");
    }
}
