//! The cost engine: model resolution and exact pricing of a [`Usage`].
//!
//! Owns the run-time price database ([`PriceDb`]: the embedded `llmledger-pricing` data, extended or
//! replaced at run time from our format, from LiteLLM's `model_prices_and_context_window.json`, or by a
//! custom price), resolution of a model name to a priced model ([`PriceDb::resolve`]), and
//! [`PriceDb::price`]. Money is `rust_decimal::Decimal` end to end; nothing here rounds (rounding is for
//! display only).
//!
//! Pricing rules, beyond the per-field fallbacks documented in [`TokenRates`]:
//! - **Version**: the last `effective_from` on or before the event's UTC date; none → `MissingPrice`.
//!   A custom price ([`PriceDb::set_custom`]) applies at every date.
//! - **Long-context tier**: the sum of the tier's `counted` classes (cache reads include cached audio)
//!   strictly above `above_prompt_tokens` — or at least `at_least_prompt_tokens` — bills the whole
//!   request at the tier's rates.
//! - **Service tier**: what the response reports wins over what was requested: a reported
//!   [`Usage::speed`] other than `standard` (Anthropic fast mode) is the tier of that name, else a
//!   reported [`Usage::service_tier`] (OpenAI reports `priority` for a `fast` request), else
//!   [`PriceOptions::service_tier`]. `default`, `standard` (Anthropic's word) and `auto` are the base
//!   rates; `batch` (what Anthropic reports for a batch call) means the batch API. A tier the data has
//!   no rates for is billed at the base rates and the cost is marked [`Cost::uncertain`], never an
//!   error. With a long-context tier too, rates stack base ← long-context tier ← service tier ← the
//!   long-context tier's own rates for that service tier (`tiers[].service_tiers`, e.g. priority above 200k).
//! - **Batch**: `batch_multiplier` on every token component; a batch call on a model without one →
//!   `MissingPrice` (field `batch_multiplier`).
//! - **Regional**: the region the provider reports ([`Usage::region`]) or the caller names
//!   ([`PriceOptions::region`]) picks a multiplier from `regional_multipliers`; a region not listed has
//!   no uplift. Without a listed region, [`PriceOptions::regional`] applies `regional_multiplier`. The
//!   multiplier applies to every component.
//! - **Per-call fees**: web searches at `web_search_per_1k_by_context[size]` when the usage names a
//!   context size the data prices, else `web_search_per_1k`, plus `web_search_tokens_per_call` input
//!   tokens per call at the input rate in force; Gemini grounding per query (`grounding_per_1k`) or per
//!   grounded request (`grounding_per_1k_prompts`, else `web_search_per_1k`, as the Gemini 2.x data
//!   writes it). Free allowances (`grounding_free_per_day` / `_per_month`) are account-level and never
//!   applied to an event.
//! - **Units**: video seconds (`per_video_second`), cache storage token-hours (`cache_storage_per_hour`,
//!   per 1M tokens per hour) and media items by kind (`per_item`).
//! - **Images**: per-image prices apply when the usage has images but no image output tokens (a model
//!   billed by image tokens is not billed twice).
//! - A non-zero bucket without any rate → `MissingPrice` naming the rate field; never a silent $0.

pub mod diff;
mod litellm;
mod resolve;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use llmledger_pricing::schema::{ImagePrice, ModelMode, PriceFile, PriceVersion, Tier, TokenClass, TokenRates};
pub use resolve::ResolvedModel;

use crate::error::{Error, ErrorCode, Result};
use crate::usage::{Provider, Usage};

/// How a call was billed beyond its usage. Kept with the ledger event (`UsageEvent::price_options`)
/// so a re-price bills the call the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriceOptions {
    /// Sent through the provider's batch API (discounted where the data has `batch_multiplier`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    /// `flex`, `priority`, …; `None` or `default` = the base rates. The tier in [`Usage::service_tier`]
    /// wins when set, since it is what the provider says it actually used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// A regional / data-residency endpoint that carries an uplift where the data has one
    /// (`regional_multiplier`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub regional: bool,
    /// The region the call was sent to (`us`, `eu`, …), priced from `regional_multipliers`; a region
    /// the response reports ([`Usage::region`]) wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Cost per component, USD. Each field is `quantity × rate` for one bucket of [`Usage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    pub input: Decimal,
    pub cache_read: Decimal,
    pub cache_write_5m: Decimal,
    pub cache_write_1h: Decimal,
    #[serde(default)]
    pub cache_write_12h: Decimal,
    /// Output that is not reasoning, audio or image.
    pub output: Decimal,
    pub reasoning: Decimal,
    /// Audio input, cached audio input (`audio_cache_read` rate) included.
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
    /// Web-search calls, with their fixed search-content tokens.
    pub web_search: Decimal,
    pub request: Decimal,
    /// Grounded queries / prompts (Gemini).
    #[serde(default)]
    pub grounding: Decimal,
    /// Per-second video.
    #[serde(default)]
    pub video: Decimal,
    /// Context-cache storage.
    #[serde(default)]
    pub cache_storage: Decimal,
    /// Per-item media charges.
    #[serde(default)]
    pub items: Decimal,
}

/// How many of [`Breakdown::parts_mut`] (the first ones) are token components, which batch discounts.
const TOKEN_PARTS: usize = 11;

impl Breakdown {
    /// Every component with its field name, in field order (what the bindings show).
    pub fn components(&self) -> [(&'static str, Decimal); 20] {
        [
            ("input", self.input),
            ("cache_read", self.cache_read),
            ("cache_write_5m", self.cache_write_5m),
            ("cache_write_1h", self.cache_write_1h),
            ("cache_write_12h", self.cache_write_12h),
            ("output", self.output),
            ("reasoning", self.reasoning),
            ("audio_input", self.audio_input),
            ("audio_output", self.audio_output),
            ("image_input", self.image_input),
            ("image_output", self.image_output),
            ("images", self.images),
            ("audio_duration", self.audio_duration),
            ("characters", self.characters),
            ("web_search", self.web_search),
            ("request", self.request),
            ("grounding", self.grounding),
            ("video", self.video),
            ("cache_storage", self.cache_storage),
            ("items", self.items),
        ]
    }

    /// The components, in field order, for summing and scaling; the first [`TOKEN_PARTS`] are tokens.
    fn parts_mut(&mut self) -> [&mut Decimal; 20] {
        [
            &mut self.input,
            &mut self.cache_read,
            &mut self.cache_write_5m,
            &mut self.cache_write_1h,
            &mut self.cache_write_12h,
            &mut self.output,
            &mut self.reasoning,
            &mut self.audio_input,
            &mut self.audio_output,
            &mut self.image_input,
            &mut self.image_output,
            &mut self.images,
            &mut self.audio_duration,
            &mut self.characters,
            &mut self.web_search,
            &mut self.request,
            &mut self.grounding,
            &mut self.video,
            &mut self.cache_storage,
            &mut self.items,
        ]
    }
}

/// The exact cost of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    pub provider: Provider,
    /// The canonical id of the priced model.
    pub model: String,
    /// `effective_from` of the price version used.
    pub price_version: NaiveDate,
    /// The version of the whole price database used ([`PriceDb::data_version`]); empty when unknown
    /// (events stored before it was recorded).
    #[serde(default)]
    pub price_data: String,
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
    /// Long-context tier applied: its threshold as the data writes it (`above_prompt_tokens` or
    /// `at_least_prompt_tokens`).
    pub tier_above: Option<u64>,
    /// True when some price in the version used is marked uncertain in the data, or the service tier
    /// used has no rates in the data (billed at the base rates).
    pub uncertain: bool,
}

/// One model as [`PriceDb::models`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo<'a> {
    pub provider: Provider,
    pub id: &'a str,
    pub mode: ModelMode,
    /// The other names that resolve to this model.
    pub aliases: Vec<&'a str>,
    /// The version in force today (UTC), or the earliest one when all are in the future.
    pub current: &'a PriceVersion,
    /// When the provider retired the model; its prices stay for past events.
    pub retired: Option<NaiveDate>,
    /// True when the prices are a caller's custom price.
    pub custom: bool,
}

/// The price database in force: embedded data plus run-time overrides. Cloning is cheap (shared data,
/// copied on the first write).
#[derive(Debug, Clone)]
pub struct PriceDb {
    inner: Arc<DbInner>,
}

#[derive(Debug, Clone, Default)]
struct DbInner {
    models: Vec<CompiledModel>,
    /// Every id and alias → index in `models`.
    index: resolve::Index,
    /// Custom prices in the order set; re-applied after every `extend` so they keep winning.
    customs: Vec<(Provider, String, PriceVersion)>,
    /// See [`PriceDb::data_version`].
    data_version: String,
}

/// A model with its prices precompiled for the hot path.
#[derive(Debug, Clone)]
struct CompiledModel {
    provider: Provider,
    id: String,
    mode: ModelMode,
    aliases: Vec<String>,
    /// When the provider retired the model (see the schema's `ModelEntry::retired`).
    retired: Option<NaiveDate>,
    /// Sorted by `effective_from`, oldest first.
    versions: Vec<CompiledVersion>,
    /// A caller's custom price: one version, applied at every date.
    custom: bool,
}

/// Per-token rates (USD per token) with every documented fallback already applied.
#[derive(Debug, Clone, Default, PartialEq)]
struct RateSet {
    input: Option<Decimal>,
    cache_read: Option<Decimal>,
    cache_write_5m: Option<Decimal>,
    cache_write_1h: Option<Decimal>,
    cache_write_12h: Option<Decimal>,
    output: Option<Decimal>,
    reasoning: Option<Decimal>,
    audio_input: Option<Decimal>,
    audio_cache_read: Option<Decimal>,
    audio_output: Option<Decimal>,
    image_input: Option<Decimal>,
    image_output: Option<Decimal>,
}

/// A long-context tier threshold and which usage buckets count towards it.
#[derive(Debug, Clone)]
struct CompiledTier {
    /// The smallest prompt the tier applies to.
    min: u64,
    /// The threshold as written, for [`Cost::tier_above`].
    threshold: u64,
    counted: Vec<TokenClass>,
}

impl CompiledTier {
    fn prompt(&self, u: &Usage) -> u64 {
        self.counted.iter().fold(0u64, |acc, class| {
            acc.saturating_add(match class {
                TokenClass::Input => u.input_tokens,
                TokenClass::CacheRead => u.cache_read_tokens.saturating_add(u.audio_cache_read_tokens),
                TokenClass::CacheWrite => u.cache_write_tokens,
                TokenClass::AudioInput => u.audio_input_tokens,
                TokenClass::ImageInput => u.image_input_tokens,
            })
        })
    }
}

#[derive(Debug, Clone)]
struct CompiledVersion {
    src: PriceVersion,
    tiers: Vec<CompiledTier>,
    /// Service tier names; `sets` row `i + 1` belongs to `service_names[i]`.
    service_names: Vec<String>,
    /// Rate sets, row-major: row 0 = no service tier, row `s + 1` = service tier `s`; column 0 = no
    /// long-context tier, column `t + 1` = long-context tier `t`.
    sets: Vec<RateSet>,
    per_character: Option<Decimal>,
    per_search: Option<Decimal>,
    /// Per-call web-search rates by search context size.
    per_search_by_context: Vec<(String, Option<Decimal>)>,
    per_grounded_query: Option<Decimal>,
    per_grounded_prompt: Option<Decimal>,
}

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
const THOUSAND: Decimal = Decimal::from_parts(1_000, 0, 0, false, 0);
const SIXTY: Decimal = Decimal::from_parts(60, 0, 0, false, 0);

/// `rate / divisor`, exact for the powers of ten used here, normalized so results carry no trailing zeros.
fn per_unit(rate: Option<Decimal>, divisor: Decimal) -> Option<Decimal> {
    rate.and_then(|r| r.checked_div(divisor)).map(|r| r.normalize())
}

fn overlay(base: &TokenRates, over: &TokenRates) -> TokenRates {
    TokenRates {
        input: over.input.or(base.input),
        output: over.output.or(base.output),
        cache_read: over.cache_read.or(base.cache_read),
        cache_write_5m: over.cache_write_5m.or(base.cache_write_5m),
        cache_write_1h: over.cache_write_1h.or(base.cache_write_1h),
        cache_write_12h: over.cache_write_12h.or(base.cache_write_12h),
        reasoning_output: over.reasoning_output.or(base.reasoning_output),
        audio_input: over.audio_input.or(base.audio_input),
        audio_cache_read: over.audio_cache_read.or(base.audio_cache_read),
        audio_output: over.audio_output.or(base.audio_output),
        image_input: over.image_input.or(base.image_input),
        image_cache_read: over.image_cache_read.or(base.image_cache_read),
        image_output: over.image_output.or(base.image_output),
    }
}

impl RateSet {
    /// Per-token rates from per-1M rates, with the schema's fallbacks. `image_cache_read` has no usage
    /// bucket (cached image input is not reported apart by any provider) and is not used.
    fn compile(r: &TokenRates) -> Self {
        let pt = |d: Option<Decimal>| per_unit(d, MILLION);
        let input = pt(r.input);
        let output = pt(r.output);
        let cache_write_5m = pt(r.cache_write_5m).or(input);
        let audio_input = pt(r.audio_input);
        let mut set = Self {
            input,
            cache_read: pt(r.cache_read).or(input),
            cache_write_5m,
            cache_write_1h: pt(r.cache_write_1h).or(cache_write_5m),
            cache_write_12h: pt(r.cache_write_12h).or(cache_write_5m),
            output,
            reasoning: pt(r.reasoning_output).or(output),
            audio_input,
            audio_cache_read: pt(r.audio_cache_read).or(audio_input),
            audio_output: pt(r.audio_output),
            // Vision input is billed as text input unless a model prices it apart (gpt-image-1).
            image_input: pt(r.image_input).or(input),
            image_output: pt(r.image_output),
        };
        set.align_scales();
        set
    }

    fn rates_mut(&mut self) -> [&mut Option<Decimal>; 12] {
        [
            &mut self.input,
            &mut self.cache_read,
            &mut self.cache_write_5m,
            &mut self.cache_write_1h,
            &mut self.cache_write_12h,
            &mut self.output,
            &mut self.reasoning,
            &mut self.audio_input,
            &mut self.audio_cache_read,
            &mut self.audio_output,
            &mut self.image_input,
            &mut self.image_output,
        ]
    }

    /// Gives every rate the same scale, so the per-bucket products share one scale and summing them is
    /// the decimal fast path (no rescaling per addition). Only ever scales up, which is exact; a rate
    /// that cannot reach the common scale keeps its own (still exact, just slower to add).
    fn align_scales(&mut self) {
        let scale = self.rates_mut().into_iter().filter_map(|r| r.map(|d| d.scale())).max().unwrap_or(0);
        for rate in self.rates_mut().into_iter().flatten() {
            let mut scaled = *rate;
            scaled.rescale(scale);
            if scaled == *rate {
                *rate = scaled;
            }
        }
    }
}

impl CompiledVersion {
    fn compile(src: PriceVersion) -> Self {
        let tiers: Vec<CompiledTier> = src
            .tiers
            .iter()
            .map(|t| CompiledTier {
                // Validated data has exactly one threshold; `u64::MAX` keeps a tier without one unused.
                min: t.min_prompt_tokens().unwrap_or(u64::MAX),
                threshold: t.threshold(),
                counted: t.counted.clone(),
            })
            .collect();
        let service_names: Vec<String> = src.service_tiers.keys().cloned().collect();
        let mut sets = Vec::with_capacity((service_names.len() + 1) * (tiers.len() + 1));
        // Base ← long-context tier ← service tier ← the long-context tier's own rates for that
        // service tier (see module docs).
        let mut push_row = |service: Option<(&String, &TokenRates)>| {
            let with_service = |r: TokenRates, tier: Option<&Tier>| match service {
                Some((name, s)) => {
                    let r = overlay(&r, s);
                    match tier.and_then(|t| t.service_tiers.get(name)) {
                        Some(combo) => overlay(&r, combo),
                        None => r,
                    }
                }
                None => r,
            };
            sets.push(RateSet::compile(&with_service(src.rates.clone(), None)));
            for t in &src.tiers {
                sets.push(RateSet::compile(&with_service(overlay(&src.rates, &t.rates), Some(t))));
            }
        };
        push_row(None);
        for service in &src.service_tiers {
            push_row(Some(service));
        }
        Self {
            per_character: per_unit(src.per_million_characters, MILLION),
            per_search: per_unit(src.web_search_per_1k, THOUSAND),
            per_search_by_context: src
                .web_search_per_1k_by_context
                .iter()
                .map(|(size, rate)| (size.clone(), per_unit(Some(*rate), THOUSAND)))
                .collect(),
            per_grounded_query: per_unit(src.grounding_per_1k, THOUSAND),
            per_grounded_prompt: per_unit(src.grounding_per_1k_prompts, THOUSAND),
            tiers,
            service_names,
            sets,
            src,
        }
    }
}

impl CompiledModel {
    fn compile(provider: Provider, entry: llmledger_pricing::schema::ModelEntry) -> Self {
        Self {
            provider,
            id: entry.id,
            mode: entry.mode,
            aliases: entry.aliases,
            retired: entry.retired,
            versions: entry.prices.into_iter().map(CompiledVersion::compile).collect(),
            custom: false,
        }
    }

    /// The version in force on `date`.
    fn version_at(&self, date: NaiveDate) -> Result<&CompiledVersion> {
        let found = if self.custom {
            self.versions.first()
        } else {
            self.versions.iter().rev().find(|v| v.src.effective_from <= date)
        };
        found.ok_or_else(|| {
            let first = self.versions.first().map_or_else(|| "none".to_string(), |v| v.src.effective_from.to_string());
            Error::new(
                ErrorCode::MissingPrice,
                format!("model `{}` has no price in force on {date} (first price: {first})", self.id),
            )
            .with_field("effective_from")
            .with_value(date.to_string())
        })
    }
}

fn invalid_price_data(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidPriceData, message)
}

fn read_price_file(field: &str, path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::config(field, path.display(), &e.to_string()))
}

/// `e` with the file it is about in front of its message.
fn in_file(path: &std::path::Path, e: Error) -> Error {
    let mut out = Error::new(e.code(), format!("{}: {}", path.display(), e.message()));
    if let Some(field) = e.field() {
        out = out.with_field(field);
    }
    if let Some(value) = e.value() {
        out = out.with_value(value);
    }
    out
}

impl PriceOptions {
    /// True for the standard options (not batch, no service tier, no region).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl PriceDb {
    /// No models at all (to be filled with [`PriceDb::extend`] / [`PriceDb::set_custom`]).
    pub fn empty() -> Self {
        Self { inner: Arc::new(DbInner::default()) }
    }

    /// The built-in price data, parsed once per process; later calls are a reference-count increment.
    pub fn embedded() -> Self {
        static EMBEDDED: OnceLock<PriceDb> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                // Validated by the pricing crate's build script (not input): a failure is a build defect.
                let mut db =
                    Self::build(llmledger_pricing::embedded()).expect("embedded price data names known providers");
                Arc::make_mut(&mut db.inner).data_version = llmledger_pricing::DATA_VERSION.to_string();
                db
            })
            .clone()
    }

    /// The version of the price data in force, recorded with every cost (`Cost::price_data`) so a
    /// ledger can tell which figures a later correction changes. The embedded data's version is
    /// `<newest checked date>.<fingerprint>` ([`llmledger_pricing::DATA_VERSION`]); data loaded at run
    /// time is `file.<fingerprint>`; an extended database joins its parts with `+` (`custom.<fp>`
    /// for a custom price), and a version longer than 96 characters is folded into `mix.<fingerprint>`.
    pub fn data_version(&self) -> &str {
        &self.inner.data_version
    }

    /// Price files in our format (see `llmledger_pricing::schema`): one `PriceFile` object or an array
    /// of them, validated like the embedded data.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let files: Vec<PriceFile> = if value.is_array() {
            serde_json::from_value(value)
        } else {
            serde_json::from_value(value).map(|f| vec![f])
        }
        .map_err(|e| invalid_price_data(format!("price data does not match the schema: {e}")))?;
        Self::from_files(files)
    }

    /// [`PriceDb::from_json`] of a file; every error names the file (then provider, model and field).
    pub fn from_json_file(path: &std::path::Path) -> Result<Self> {
        Self::from_json(&read_price_file("prices", path)?).map_err(|e| in_file(path, e))
    }

    /// [`PriceDb::from_litellm_json`] of a file; every error names the file.
    pub fn from_litellm_file(path: &std::path::Path) -> Result<Self> {
        Self::from_litellm_json(&read_price_file("litellm_prices", path)?).map_err(|e| in_file(path, e))
    }

    /// LiteLLM's `model_prices_and_context_window.json`, converted exactly (the JSON number text is
    /// read as a decimal, never as a float). Models of providers llmledger does not know, and entries
    /// with no price we can represent, are skipped.
    pub fn from_litellm_json(text: &str) -> Result<Self> {
        Self::from_files(litellm::convert(text)?)
    }

    /// Validated price files → a database.
    pub fn from_files(files: Vec<PriceFile>) -> Result<Self> {
        llmledger_pricing::validate::validate(&files).map_err(|problems| invalid_price_data(problems.join("; ")))?;
        Self::build(files)
    }

    fn build(files: Vec<PriceFile>) -> Result<Self> {
        let text = serde_json::to_string(&files)?;
        let mut inner =
            DbInner { data_version: format!("file.{}", llmledger_pricing::fingerprint(&text)), ..DbInner::default() };
        for file in files {
            let provider: Provider = file
                .provider
                .parse()
                .map_err(|_| invalid_price_data(format!("unknown provider `{}`", file.provider)))?;
            inner.models.extend(file.models.into_iter().map(|m| CompiledModel::compile(provider, m)));
        }
        inner.rebuild_index();
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Adds `other`'s models; a model of `other` replaces every model of `self` whose id it takes, and
    /// takes over the ids and aliases it shares with `self`. Custom prices of both are kept (`other`'s
    /// win on the same name) and keep winning.
    pub fn extend(&mut self, other: PriceDb) {
        let other = Arc::try_unwrap(other.inner).unwrap_or_else(|shared| (*shared).clone());
        let inner = Arc::make_mut(&mut self.inner);
        let taken: HashSet<&str> = other
            .models
            .iter()
            .flat_map(|m| std::iter::once(m.id.as_str()).chain(m.aliases.iter().map(String::as_str)))
            .collect();
        inner.models.retain(|m| !taken.contains(m.id.as_str()));
        inner.models.extend(other.models);
        inner.add_version(&other.data_version);
        inner.rebuild_index();
        for custom in other.customs {
            inner.customs.retain(|(_, name, _)| *name != custom.1);
            inner.customs.push(custom);
        }
        inner.apply_customs();
    }

    /// A caller's own price for `model`, winning over everything else and applied at every date. When
    /// `model` resolves to a known model, that model (all its names) takes this price; otherwise a new
    /// chat model named `model` is added.
    pub fn set_custom(&mut self, provider: Provider, model: &str, price: PriceVersion) -> Result<()> {
        let probe = PriceFile {
            provider: provider.as_str().to_string(),
            tier_rule: None,
            models: vec![llmledger_pricing::schema::ModelEntry {
                id: model.to_string(),
                mode: ModelMode::Chat,
                aliases: Vec::new(),
                retired: None,
                prices: vec![price.clone()],
            }],
        };
        llmledger_pricing::validate::validate(std::slice::from_ref(&probe))
            .map_err(|problems| invalid_price_data(problems.join("; ")))?;
        let inner = Arc::make_mut(&mut self.inner);
        let text = format!("{provider}/{model}/{}", serde_json::to_string(&price)?);
        inner.add_version(&format!("custom.{}", llmledger_pricing::fingerprint(&text)));
        inner.customs.retain(|(_, name, _)| name != model);
        inner.customs.push((provider, model.to_string(), price));
        inner.apply_customs();
        Ok(())
    }

    /// Every model, sorted by provider then id, optionally of one provider.
    pub fn models(&self, provider: Option<Provider>) -> Vec<ModelInfo<'_>> {
        let today = Utc::now().date_naive();
        let inner = &*self.inner;
        let mut out: Vec<ModelInfo<'_>> = inner
            .models
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                (provider.is_none() || provider == Some(m.provider)) && inner.index.get(m.id.as_str()) == Some(i)
            })
            .filter_map(|(i, m)| {
                let current = m.version_at(today).ok().or_else(|| m.versions.first())?;
                Some(ModelInfo {
                    provider: m.provider,
                    id: &m.id,
                    mode: m.mode,
                    aliases: m
                        .aliases
                        .iter()
                        .filter(|a| inner.index.get(a.as_str()) == Some(&i))
                        .map(String::as_str)
                        .collect(),
                    current: &current.src,
                    retired: m.retired,
                    custom: m.custom,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.provider, a.id).cmp(&(b.provider, b.id)));
        out
    }

    /// The number of models.
    pub fn len(&self) -> usize {
        self.inner.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.models.is_empty()
    }

    /// Resolves `model` and prices `usage` at `at`. See the module docs for the rules.
    pub fn price(&self, usage: &Usage, model: &str, at: DateTime<Utc>, opts: &PriceOptions) -> Result<Cost> {
        self.resolve(model)?.price(usage, at, opts)
    }
}

impl DbInner {
    /// Joins `part` to the data version (see [`PriceDb::data_version`]).
    fn add_version(&mut self, part: &str) {
        let joined = match (self.data_version.is_empty(), part.is_empty()) {
            (true, _) => part.to_string(),
            (false, true) => return,
            (false, false) => format!("{}+{part}", self.data_version),
        };
        self.data_version =
            if joined.len() > 96 { format!("mix.{}", llmledger_pricing::fingerprint(&joined)) } else { joined };
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        for (i, m) in self.models.iter().enumerate() {
            self.index.insert(m.id.as_str().into(), i);
            for alias in &m.aliases {
                self.index.insert(alias.as_str().into(), i);
            }
        }
        // Canonical ids win over another model's alias of the same text.
        for (i, m) in self.models.iter().enumerate() {
            self.index.insert(m.id.as_str().into(), i);
        }
    }

    fn apply_customs(&mut self) {
        for idx in 0..self.customs.len() {
            let (provider, name, price) = self.customs[idx].clone();
            let version = CompiledVersion::compile(price);
            match resolve::lookup(&self.index, &name) {
                Some(i) => {
                    let m = &mut self.models[i];
                    m.provider = provider;
                    m.versions = vec![version];
                    m.custom = true;
                }
                None => {
                    self.index.insert(name.as_str().into(), self.models.len());
                    self.models.push(CompiledModel {
                        provider,
                        id: name,
                        mode: ModelMode::Chat,
                        aliases: Vec::new(),
                        retired: None,
                        versions: vec![version],
                        custom: true,
                    });
                }
            }
        }
    }
}

/// `n × rate` for a bucket; `None` when a non-zero bucket has no rate or the product overflows (the caller
/// then builds the error in [`bucket_error`], off the hot path).
#[inline(always)]
fn charge(n: u64, rate: &Option<Decimal>) -> Option<Decimal> {
    if n == 0 {
        return Some(Decimal::ZERO);
    }
    Decimal::from(n).checked_mul(*rate.as_ref()?)
}

#[cold]
fn bucket_error(model: &str, field: &'static str, n: u64, rate: &Option<Decimal>) -> Error {
    match rate {
        None => missing_rate(model, field, n),
        Some(_) => overflow(field, n),
    }
}

#[cold]
fn missing_rate(model: &str, field: &str, n: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::MissingPrice, format!("model `{model}` has no `{field}` price, but the usage has {n} of it"))
        .with_field(field)
        .with_value(n.to_string())
}

#[cold]
fn overflow(field: &str, n: impl std::fmt::Display) -> Error {
    Error::invalid_value(field, n, "cost overflows the decimal range")
}

impl ResolvedModel<'_> {
    /// Prices `usage` at `at` with this model (resolve once, price many).
    pub fn price(&self, usage: &Usage, at: DateTime<Utc>, opts: &PriceOptions) -> Result<Cost> {
        let m = self.compiled();
        let data_version = self.data_version();
        let id = m.id.as_str();
        let v = m.version_at(at.date_naive())?;
        let p = &v.src;

        // Service tier: what the provider reported wins over what the caller asked for.
        let mut batch = opts.batch;
        let mut uncertain = p.uncertain.is_some();
        let mut row = 0;
        let speed = usage.speed.as_deref().filter(|s| *s != "standard");
        match speed.or(usage.service_tier.as_deref()).or(opts.service_tier.as_deref()) {
            None | Some("default" | "standard" | "auto") => {}
            Some("batch") => batch = true,
            Some(name) => match v.service_names.iter().position(|s| s == name) {
                Some(s) => row = s + 1,
                None => uncertain = true,
            },
        }
        // Long-context tier: the highest one whose threshold the prompt reaches.
        let tier = v.tiers.iter().rposition(|t| t.prompt(usage) >= t.min);
        let cols = v.tiers.len() + 1;
        let r = &v.sets[row * cols + tier.map_or(0, |t| t + 1)];

        // The output side is inclusive: text output is what is left after its priced parts.
        let parts = usage
            .reasoning_tokens
            .checked_add(usage.audio_output_tokens)
            .and_then(|s| s.checked_add(usage.image_output_tokens))
            .filter(|&s| s <= usage.output_tokens)
            .ok_or_else(|| {
                Error::invalid_value(
                    "usage.output_tokens",
                    usage.output_tokens,
                    "smaller than reasoning + audio output + image output tokens, which are parts of it",
                )
            })?;
        let default_ttl_writes = usage
            .cache_write_1h_tokens
            .checked_add(usage.cache_write_12h_tokens)
            .and_then(|long| usage.cache_write_tokens.checked_sub(long))
            .ok_or_else(|| {
                Error::invalid_value(
                    "usage.cache_write_1h_tokens",
                    usage.cache_write_1h_tokens,
                    "with cache_write_12h_tokens larger than cache_write_tokens, of which they are parts",
                )
            })?;

        // Inlined: the error is built off the hot path.
        let bucket = |field: &'static str, n: u64, rate: &Option<Decimal>| {
            charge(n, rate).ok_or_else(|| bucket_error(id, field, n, rate))
        };
        let mut b = Breakdown {
            input: bucket("input", usage.input_tokens, &r.input)?,
            cache_read: bucket("cache_read", usage.cache_read_tokens, &r.cache_read)?,
            cache_write_5m: bucket("cache_write_5m", default_ttl_writes, &r.cache_write_5m)?,
            cache_write_1h: bucket("cache_write_1h", usage.cache_write_1h_tokens, &r.cache_write_1h)?,
            cache_write_12h: bucket("cache_write_12h", usage.cache_write_12h_tokens, &r.cache_write_12h)?,
            output: bucket("output", usage.output_tokens - parts, &r.output)?,
            reasoning: bucket("reasoning_output", usage.reasoning_tokens, &r.reasoning)?,
            audio_input: bucket("audio_input", usage.audio_input_tokens, &r.audio_input)?
                .checked_add(bucket("audio_cache_read", usage.audio_cache_read_tokens, &r.audio_cache_read)?)
                .ok_or_else(|| overflow("audio_input", usage.audio_input_tokens))?,
            audio_output: bucket("audio_output", usage.audio_output_tokens, &r.audio_output)?,
            image_input: bucket("image_input", usage.image_input_tokens, &r.image_input)?,
            image_output: bucket("image_output", usage.image_output_tokens, &r.image_output)?,
            ..Breakdown::default()
        };

        if batch {
            let mult = p.batch_multiplier.ok_or_else(|| {
                Error::new(ErrorCode::MissingPrice, format!("model `{id}` has no batch API price"))
                    .with_field("batch_multiplier")
                    .with_value("batch")
            })?;
            for part in b.parts_mut().into_iter().take(TOKEN_PARTS) {
                if !part.is_zero() {
                    *part = part.checked_mul(mult).ok_or_else(|| overflow("batch_multiplier", mult))?;
                }
            }
        }

        // Priced per unit rather than per token (batch does not apply to these).
        if let Some(images) = usage.images.as_ref().filter(|i| i.count > 0 && usage.image_output_tokens == 0) {
            let found = p.per_image.iter().find(|x| x.size == images.size && x.quality == images.quality);
            let price = found.ok_or_else(|| {
                let available: Vec<String> = p.per_image.iter().map(|x| format!("{}/{}", x.size, x.quality)).collect();
                Error::new(
                    ErrorCode::MissingPrice,
                    format!(
                        "model `{id}` has no per-image price for {}/{}; available: [{}]",
                        images.size,
                        images.quality,
                        available.join(", ")
                    ),
                )
                .with_field("per_image")
                .with_value(format!("{}/{}", images.size, images.quality))
            })?;
            b.images = Decimal::from(images.count)
                .checked_mul(price.price)
                .ok_or_else(|| overflow("usage.images.count", images.count))?;
        }
        if let Some(seconds) = usage.audio_seconds.filter(|s| !s.is_zero()) {
            if seconds.is_sign_negative() {
                return Err(Error::invalid_value("usage.audio_seconds", seconds, "must not be negative"));
            }
            let per_minute = p.per_audio_minute.ok_or_else(|| missing_rate(id, "per_audio_minute", seconds))?;
            b.audio_duration = per_quantity("usage.audio_seconds", seconds, per_minute, SIXTY)?;
        }
        b.characters = bucket("per_million_characters", usage.input_characters, &v.per_character)?;
        per_call_fees(&mut b, usage, v, r, id)?;
        b.request = p.per_request.unwrap_or_default();

        let region = usage.region.as_deref().or(opts.region.as_deref());
        let regional = match region.and_then(|name| p.regional_multipliers.get(name)) {
            Some(mult) => Some(*mult),
            None if opts.regional => p.regional_multiplier,
            None => None,
        };
        let mut total = Decimal::ZERO;
        for part in b.parts_mut() {
            if part.is_zero() {
                continue;
            }
            if let Some(mult) = regional {
                *part = part.checked_mul(mult).ok_or_else(|| overflow("regional_multiplier", mult))?;
            }
            total = total.checked_add(*part).ok_or_else(|| overflow("total", *part))?;
        }

        Ok(Cost {
            provider: m.provider,
            model: m.id.clone(),
            price_version: p.effective_from,
            price_data: data_version.to_string(),
            breakdown: b,
            total_usd: total,
            currency: String::from("USD"),
            rate: Decimal::ONE,
            total,
            tier_above: tier.map(|t| v.tiers[t].threshold),
            uncertain,
        })
    }
}

/// `seconds × rate / divisor` for a per-second / per-minute quantity, exact when representable.
fn per_quantity(field: &'static str, q: Decimal, rate: Decimal, divisor: Decimal) -> Result<Decimal> {
    if q.is_sign_negative() {
        return Err(Error::invalid_value(field, q, "must not be negative"));
    }
    // Multiply first so the one division is exact whenever the result is representable.
    q.checked_mul(rate).and_then(|x| x.checked_div(divisor)).map(|x| x.normalize()).ok_or_else(|| overflow(field, q))
}

/// Web searches, grounding and the per-unit media charges (see the module docs).
fn per_call_fees(b: &mut Breakdown, usage: &Usage, v: &CompiledVersion, r: &RateSet, id: &str) -> Result<()> {
    let p = &v.src;
    let searches = usage.web_search_requests;
    if searches > 0 {
        let by_context = usage
            .web_search_context_size
            .as_deref()
            .and_then(|size| v.per_search_by_context.iter().find(|(s, _)| s == size))
            .map(|(_, rate)| *rate);
        let field = if by_context.is_some() { "web_search_per_1k_by_context" } else { "web_search_per_1k" };
        let rate = by_context.unwrap_or(v.per_search);
        b.web_search = charge(searches, &rate).ok_or_else(|| bucket_error(id, field, searches, &rate))?;
        if let Some(per_call) = p.web_search_tokens_per_call {
            let tokens =
                searches.checked_mul(per_call).ok_or_else(|| overflow("usage.web_search_requests", searches))?;
            let content = charge(tokens, &r.input).ok_or_else(|| bucket_error(id, "input", tokens, &r.input))?;
            b.web_search = b.web_search.checked_add(content).ok_or_else(|| overflow("web_search", searches))?;
        }
    }
    let queries = usage.grounding_queries;
    if queries > 0 {
        // Per query; else per grounded request, however many queries it issued — which is also how a
        // model priced before the grounding fields carries it, as `web_search_per_1k` (Gemini 2.x data).
        b.grounding = match (v.per_grounded_query, v.per_grounded_prompt.or(v.per_search)) {
            (Some(rate), _) => {
                charge(queries, &Some(rate)).ok_or_else(|| overflow("usage.grounding_queries", queries))?
            }
            (None, Some(rate)) => rate,
            (None, None) => return Err(missing_rate(id, "grounding_per_1k", queries)),
        };
    }
    if let Some(seconds) = usage.video_seconds.filter(|s| !s.is_zero()) {
        let rate = p.per_video_second.ok_or_else(|| missing_rate(id, "per_video_second", seconds))?;
        b.video = per_quantity("usage.video_seconds", seconds, rate, Decimal::ONE)?;
    }
    if let Some(token_hours) = usage.cache_storage_token_hours.filter(|s| !s.is_zero()) {
        let rate = p.cache_storage_per_hour.ok_or_else(|| missing_rate(id, "cache_storage_per_hour", token_hours))?;
        b.cache_storage = per_quantity("usage.cache_storage_token_hours", token_hours, rate, MILLION)?;
    }
    for (kind, &n) in usage.media_items.iter().filter(|(_, &n)| n > 0) {
        let price = p.per_item.get(kind).ok_or_else(|| missing_rate(id, &format!("per_item.{kind}"), n))?;
        let cost = Decimal::from(n).checked_mul(*price).ok_or_else(|| overflow("usage.media_items", n))?;
        b.items = b.items.checked_add(cost).ok_or_else(|| overflow("usage.media_items", n))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
