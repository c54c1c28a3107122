//! The hash that places a token's bytes in the compile-time rank tables. `build.rs` lays the tables out
//! with it and [`super::cold`] probes them with it, so both sides share this one definition.

/// FNV-1a (64-bit) over `bytes`: simple, stable across builds and platforms, and good enough for
/// linear probing at a load factor of at most 75 % on BPE tokens.
pub(crate) fn rank_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
