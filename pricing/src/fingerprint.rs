//! A stable fingerprint of price data (FNV-1a, 64 bit; not a security hash), used for the
//! price-data version that every priced event records. Compiled into the crate and into `build.rs`
//! via `#[path]`, like `schema.rs`.

/// FNV-1a over `text`'s bytes, as 16 lowercase hex digits.
pub fn fingerprint(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}
