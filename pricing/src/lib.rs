//! The llmledger price database, as data.
//!
//! `data/*.json` (one file per provider, format in [`schema`]) is validated by `build.rs` — a bad
//! schema, a duplicate id or alias, unsorted versions or tiers, or a negative price fails the build —
//! and embedded here as one JSON array of [`schema::PriceFile`]. Resolution of model names and the
//! cost engine live in `llmledger-core`; this crate holds the facts and nothing else.

pub mod schema;

/// All embedded price files, as one JSON array of [`schema::PriceFile`] (validated at build time).
pub const EMBEDDED_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/prices.json"));

/// The embedded price files, parsed.
pub fn embedded() -> Vec<schema::PriceFile> {
    // Validated by build.rs with the same types, so this cannot fail for a built crate.
    serde_json::from_str(EMBEDDED_JSON).expect("embedded price data was validated at build time")
}
