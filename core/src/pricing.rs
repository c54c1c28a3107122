//! The cost engine: model resolution and exact pricing of a [`Usage`].
//!
//! Owns the run-time price database ([`PriceDb`]: the embedded `llmledger-pricing` data, extended or
//! replaced at run time from our format, from LiteLLM's `model_prices_and_context_window.json`, or by a
//! custom price), resolution of a model name to a priced model, and [`PriceDb::price`]. Money is
//! `rust_decimal::Decimal` end to end; nothing here rounds (rounding is for display only).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::usage::{Provider, Usage};

/// How a call was billed beyond its usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceOptions {
    /// Sent through the provider's batch API (discounted where the data has `batch_multiplier`).
    pub batch: bool,
    /// `flex`, `priority`, …; `None` or `default` = the base rates. The tier in [`Usage::service_tier`]
    /// wins when set, since it is what the provider says it actually used.
    pub service_tier: Option<String>,
    /// A regional / data-residency endpoint that carries an uplift where the data has one.
    pub regional: bool,
}

/// Cost per component, USD. Each field is `quantity × rate` for one bucket of [`Usage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    pub input: Decimal,
    pub cache_read: Decimal,
    pub cache_write_5m: Decimal,
    pub cache_write_1h: Decimal,
    /// Output that is not reasoning, audio or image.
    pub output: Decimal,
    pub reasoning: Decimal,
    pub audio_input: Decimal,
    pub audio_output: Decimal,
    pub image_input: Decimal,
    pub image_output: Decimal,
    /// Per-image charges (DALL·E and flat-priced images).
    pub images: Decimal,
    /// Per-minute audio charges (whisper-1).
    pub audio_duration: Decimal,
    /// Per-character charges (tts-1).
    pub characters: Decimal,
    pub web_search: Decimal,
    pub request: Decimal,
}

/// The exact cost of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    pub provider: Provider,
    /// The canonical id of the priced model.
    pub model: String,
    /// `effective_from` of the price version used.
    pub price_version: NaiveDate,
    /// USD amounts per component (after tier, batch, service tier and regional rules).
    pub breakdown: Breakdown,
    /// Sum of `breakdown`, USD.
    pub total_usd: Decimal,
    /// ISO 4217 code of `total`.
    pub currency: String,
    /// Units of `currency` per USD used for `total` (1 for USD).
    pub rate: Decimal,
    /// `total_usd × rate`, unrounded.
    pub total: Decimal,
    /// Long-context tier applied: its `above_prompt_tokens` threshold.
    pub tier_above: Option<u64>,
    /// True when some price in the version used is marked uncertain in the data.
    pub uncertain: bool,
}

/// The price database in force: embedded data plus run-time overrides.
#[derive(Debug, Clone)]
pub struct PriceDb {
    // Owned by the cost-engine implementation.
}

/// Unused until the engine lands; silences the unused-import lint for the skeleton.
#[allow(dead_code)]
fn _skeleton(_: &Usage, _: DateTime<Utc>) {}
