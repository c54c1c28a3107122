//! Lays out the o200k_base and cl100k_base rank tables at compile time, so that the first token count in
//! a new process reads them straight from the binary (`include_bytes!`, zero parsing) instead of waiting
//! for the `tiktoken` crate to decompress and hash 200k ranks (~0.1–0.3 s). The ranks come from that same
//! pinned crate, so both engines count with identical data.
//!
//! Per encoding, three little-endian files in `OUT_DIR` (read by `src/tokens/cold.rs`):
//! - `{enc}.arena`: every token's bytes, in rank order;
//! - `{enc}.offsets`: `u32` start of rank r's bytes in the arena, for r = 0..=n (the last is the end);
//! - `{enc}.slots`: an open-addressing table (linear probing, power-of-two size), `u32` rank + 1 per slot,
//!   0 = empty, placed by `rank_hash` of the token's bytes.

#[path = "src/tokens/rank_hash.rs"]
mod rank_hash;

use std::path::Path;

fn write_tables(out: &Path, name: &str, bpe: &tiktoken::CoreBpe) {
    let n = bpe.vocab_size();
    let mut arena = Vec::new();
    let mut offsets = Vec::with_capacity(4 * (n + 1));
    let mut starts = Vec::with_capacity(n + 1);
    for rank in 0..n {
        let rank = u32::try_from(rank).expect("rank fits u32");
        let token = bpe.decode(&[rank]);
        assert!(!token.is_empty(), "{name}: rank {rank} missing (ranks must be contiguous)");
        starts.push(arena.len());
        arena.extend_from_slice(&token);
    }
    starts.push(arena.len());
    for s in &starts {
        offsets.extend_from_slice(&u32::try_from(*s).expect("arena fits u32").to_le_bytes());
    }
    // ~75 % load factor at most: short probe chains without doubling the table's size.
    let size = (n + n / 3).next_power_of_two();
    let mask = size - 1;
    let mut slots = vec![0u32; size];
    for rank in 0..n {
        let token = &arena[starts[rank]..starts[rank + 1]];
        let mut i = usize::try_from(rank_hash::rank_hash(token) & mask as u64).expect("slot fits usize");
        while slots[i] != 0 {
            i = (i + 1) & mask;
        }
        slots[i] = u32::try_from(rank + 1).expect("rank fits u32");
    }
    let slots: Vec<u8> = slots.iter().flat_map(|s| s.to_le_bytes()).collect();
    for (ext, bytes) in [("arena", &arena), ("offsets", &offsets), ("slots", &slots)] {
        std::fs::write(out.join(format!("{name}.{ext}")), bytes).expect("write rank table");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/tokens/rank_hash.rs");
    let out = std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo");
    let out = Path::new(&out);
    write_tables(out, "o200k_base", &tiktoken::encoding::o200k_base());
    write_tables(out, "cl100k_base", &tiktoken::encoding::cl100k_base());
}
