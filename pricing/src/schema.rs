//! The schema of the price data files in `pricing/data/*.json`.
//!
//! This file is compiled twice: into the crate (so `llmledger-core` can read the embedded data) and
//! into `build.rs` via `#[path]` (so bad data fails the build). Keep it free of anything but
//! serde types and plain std.
//!
//! Money is `rust_decimal::Decimal`, written in the JSON as a string (`"2.50"`) so no price ever
//! passes through a float. Token rates are USD per 1,000,000 tokens; every other unit is named in
//! its field.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One data file: all models of one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceFile {
    /// `openai`, `anthropic`, `gemini`, `xai`, `azure`, `bedrock`.
    pub provider: String,
    /// How this provider's long-context tiers are decided, in words, for the docs and the next engineer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_rule: Option<String>,
    pub models: Vec<ModelEntry>,
}

/// What a model is used through; decides which components are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelMode {
    Chat,
    Embedding,
    ImageGeneration,
    AudioTranscription,
    AudioSpeech,
    /// Video generation (OpenAI Sora): priced per second or per item.
    VideoGeneration,
}

/// One model: its canonical id, the other names it answers to, and its price history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Canonical id, e.g. `gpt-4o`, `claude-sonnet-4-5`.
    pub id: String,
    pub mode: ModelMode,
    /// Dated snapshots and other names (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The date the provider retires (shuts down) the model: past, it is retired; future, the retirement
    /// is announced. The price versions stay so past events still price; the date is for listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<NaiveDate>,
    /// Price versions sorted by `effective_from`, oldest first. An event is priced with the last
    /// version whose `effective_from` is on or before the event's date (UTC).
    pub prices: Vec<PriceVersion>,
}

/// Per-token rates, USD per 1,000,000 tokens. Absent means "not billed separately": the engine
/// falls back as documented on each field, and errors when a used bucket has no rate at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRates {
    /// Uncached text input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Decimal>,
    /// All billed output (text; reasoning too unless `reasoning_output` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Decimal>,
    /// Cache reads / cached input. Absent: billed at `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<Decimal>,
    /// Cache writes at the provider's default (shortest) retention: Anthropic's 5 minutes, OpenAI's
    /// 30 minutes; other providers' only write rate. Absent: billed at `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_5m: Option<Decimal>,
    /// Cache writes with a 1-hour TTL (Anthropic). Absent: billed at `cache_write_5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<Decimal>,
    /// Cache writes with 12-hour retention (OpenAI's extended retention). Absent: billed at `cache_write_5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_12h: Option<Decimal>,
    /// Reasoning output where it is priced apart from output. Absent: billed at `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_output: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_input: Option<Decimal>,
    /// Cached audio input. Absent: billed at `audio_input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_cache_read: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_output: Option<Decimal>,
    /// Image input tokens. Absent: billed at `input` (how chat models bill vision input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_input: Option<Decimal>,
    /// Cached image input. Absent: billed at `image_input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_cache_read: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_output: Option<Decimal>,
}

/// Which token classes count towards a long-context tier threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenClass {
    Input,
    CacheRead,
    CacheWrite,
    AudioInput,
    ImageInput,
}

/// A long-context tier: when the prompt (the sum of `counted` classes) is strictly above
/// `above_prompt_tokens` — or, for a provider that words it "N or more", at least
/// `at_least_prompt_tokens` (exactly one of the two is set) — the whole request is billed at `rates`
/// (fields absent there keep the base rate). Tiers are sorted by their threshold, ascending; the
/// highest matching one wins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least_prompt_tokens: Option<u64>,
    pub counted: Vec<TokenClass>,
    pub rates: TokenRates,
    /// Rates of a service tier inside this long-context tier (e.g. `priority` above 200k), over
    /// this tier's rates and the version's `service_tiers` entry of the same name (which must exist).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_tiers: BTreeMap<String, TokenRates>,
}

impl Tier {
    /// The smallest prompt this tier applies to: `above + 1`, or `at_least`; `None` when neither or
    /// both are set (invalid data, reported by validation).
    pub fn min_prompt_tokens(&self) -> Option<u64> {
        match (self.above_prompt_tokens, self.at_least_prompt_tokens) {
            (Some(above), None) => Some(above.saturating_add(1)),
            (None, Some(at_least)) => Some(at_least),
            _ => None,
        }
    }

    /// The threshold as written in the data (`above_prompt_tokens` or `at_least_prompt_tokens`).
    pub fn threshold(&self) -> u64 {
        self.above_prompt_tokens.or(self.at_least_prompt_tokens).unwrap_or(0)
    }
}

/// Price of one generated image of a given size and quality (DALL·E, gpt-image-1 flat rates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePrice {
    /// `1024x1024`, `1024x1792`, …
    pub size: String,
    /// `standard`, `hd`, `low`, `medium`, `high`; `standard` when the provider has one quality.
    pub quality: String,
    /// USD per image.
    pub price: Decimal,
}

/// One dated version of a model's prices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceVersion {
    pub effective_from: NaiveDate,
    /// Where the price was read: the provider's pricing page URL, or a named package file.
    pub source: String,
    /// The date someone last checked `source` against this entry.
    pub checked: NaiveDate,
    /// Set when a price is not confirmed; says what is uncertain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<String>,
    #[serde(flatten)]
    pub rates: TokenRates,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// USD per generated image by size and quality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_image: Vec<ImagePrice>,
    /// USD per minute of input audio (whisper-1), billed per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_audio_minute: Option<Decimal>,
    /// USD per 1,000,000 input characters (tts-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_million_characters: Option<Decimal>,
    /// USD per request, on top of tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_request: Option<Decimal>,
    /// USD per 1,000 web-search calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_per_1k: Option<Decimal>,
    /// USD per 1,000 web-search calls by search context size (`low`, `medium`, `high`), for the
    /// calls whose usage names one; others fall back to `web_search_per_1k`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub web_search_per_1k_by_context: BTreeMap<String, Decimal>,
    /// Input tokens billed per web-search call on top of the reported usage, at the `input` rate in
    /// force (a fixed search-content charge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_tokens_per_call: Option<u64>,
    /// USD per 1,000 grounded search queries (Gemini 3 grounding with Google Search: each search
    /// query the model issued). Applied to every query of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_per_1k: Option<Decimal>,
    /// USD per 1,000 grounded prompts (Gemini 2.x grounding: a request that used search counts once,
    /// however many queries it issued). Absent, with no `grounding_per_1k` either: `web_search_per_1k`
    /// is taken per grounded prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_per_1k_prompts: Option<Decimal>,
    /// Grounded queries free per day, as published. Informational only: an allowance is spent per
    /// account, across processes and keys, so it is never applied to a single event (the ledger
    /// prices every query; subtract the allowance from an account's report if it applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_free_per_day: Option<u64>,
    /// As `grounding_free_per_day`, per month. Informational only, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_free_per_month: Option<u64>,
    /// USD per second of generated video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_video_second: Option<Decimal>,
    /// USD per 1,000,000 cached tokens per hour of context-cache storage (Gemini).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_storage_per_hour: Option<Decimal>,
    /// USD per media item by kind (`image`, `video`, `audio`, …) for per-item prices.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_item: BTreeMap<String, Decimal>,
    /// Multiplier for the batch API on all token rates (`0.5` = 50 % off). Absent: no batch API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_multiplier: Option<Decimal>,
    /// Rates overriding the base for a service tier (`flex`, `priority`); absent fields keep the base.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_tiers: BTreeMap<String, TokenRates>,
    /// Multiplier on every component for regional / data-residency endpoints (`1.10` = +10 %), for a
    /// call marked regional without a region named in `regional_multipliers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regional_multiplier: Option<Decimal>,
    /// Multiplier on every component by region (`{"us": "1.10", "eu": "1.10"}`), for the region the
    /// provider reports (Anthropic `usage.inference_geo`) or the caller names; a region not listed
    /// has no uplift.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regional_multipliers: BTreeMap<String, Decimal>,
}
