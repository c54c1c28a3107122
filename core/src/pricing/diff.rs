//! The sync check: our price database against the two public price maps, LiteLLM's
//! `model_prices_and_context_window.json` and genai-prices' provider data (as JSON).
//!
//! Owns reading both files into comparable *figures* (exactly: JSON number text is read as a decimal,
//! never through a float), mapping each of their entries onto our models with our resolver, and the
//! report: entries we do not resolve, figures that disagree with ours, and figures we hold that
//! neither source has. `llmledger prices diff` prints it; `core/tests/prices_sync.rs` runs it against
//! the committed snapshot in `pricing/snapshots/` and fails on any disagreement that is not explained.
//!
//! A figure is named by a *component*: `input`, `cache_write_1h`, … (the schema's rate fields, USD per
//! 1M tokens); `tier>N.<field>` (the rate for a prompt of N+1 tokens, so a "≥ 200k" threshold written
//! as 199999 is told apart from our "> 200000"); `<service>.<field>` (`flex`, `priority`, …);
//! `batch.<field>`; `per_audio_minute`, `per_million_characters`, `per_request`, `web_search_per_1k`,
//! `web_search_per_1k.<size>` (`low`, `medium`, `high`), `per_video_second`, `regional_multiplier`,
//! `regional.<region>` (the multiplier a call in that region gets);
//! `per_image.<size>.<quality>`. Our side of a component is the rate our engine would charge, in the
//! engine's order: the schema's fallbacks apply (an absent `cache_read` is `input`, an absent
//! `cache_write_12h` is `cache_write_5m`), the long-context tier is the highest of ours whose threshold
//! (`above_prompt_tokens` + 1, or `at_least_prompt_tokens`) a prompt of N + 1 tokens reaches, then the
//! service tier, then the long-context tier's own rates for that service tier (`tiers[].service_tiers`);
//! `batch.` is the rate × `batch_multiplier`; a search size the version does not price falls back to
//! `web_search_per_1k`. A Bedrock regional inference profile (`us.…`, `us-gov.…`, not `global.…`) or a
//! LiteLLM `bedrock/us-gov-…/…` route is the region it names: × `regional_multipliers[region]` when the
//! version lists it, else × `regional_multiplier`.
//!
//! A disagreement is *explained* when an entry of the accepted list (`pricing/snapshots/accepted.json`,
//! each with its reason) covers it, or else when the price version it was compared with has an
//! `uncertain` note naming the source (`litellm`, `genai-prices`). Figures a source has and we
//! hold no rate for at all (a service tier, a batch discount, an output modality) are reported as
//! `missing`: our engine never prices those silently (it errors, or marks the cost uncertain).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::litellm::number;
use super::resolve::strip_routes;
use super::{PriceDb, PriceVersion, ResolvedModel, Tier, TokenRates};
use crate::error::{Error, ErrorCode, Result};

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
const THOUSAND: Decimal = Decimal::from_parts(1_000, 0, 0, false, 0);
const SIXTY: Decimal = Decimal::from_parts(60, 0, 0, false, 0);

/// Where a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    #[serde(rename = "litellm")]
    LiteLlm,
    #[serde(rename = "genai-prices")]
    GenaiPrices,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LiteLlm => "litellm",
            Self::GenaiPrices => "genai-prices",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source entry that names none of our models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unresolved {
    pub source: Source,
    /// The source's provider, grouped: `openai`, `anthropic`, `gemini`/`google`, `xai`/`x-ai`, `azure`,
    /// `bedrock`, `vertex`.
    pub provider: String,
    pub key: String,
    /// The source's mode, when it says one (LiteLLM).
    pub mode: Option<String>,
    /// Priced per token for input and output (a chat, reasoning or completion model).
    pub chat: bool,
    /// Not deprecated by the source (LiteLLM: no `deprecation_date` on or before the check date).
    pub current: bool,
    /// The reason from the accepted list, when one covers it.
    pub accepted: Option<String>,
}

/// How a figure of theirs compares with ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// We charge a different amount.
    Differs,
    /// We hold no rate for it at all (the engine errors or marks the cost uncertain, never guesses).
    Missing,
    /// We have no price version in force on that date.
    NoVersion,
}

/// One figure of theirs that is not ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    pub source: Source,
    pub key: String,
    /// Our canonical id the key resolved to.
    pub model: String,
    /// The date compared at (the check date, or a dated price of theirs).
    pub date: NaiveDate,
    pub component: String,
    pub theirs: Option<Decimal>,
    pub ours: Option<Decimal>,
    pub kind: Kind,
    /// `uncertain: …` (our note naming the source) or `accepted: …` (the accepted list's reason).
    pub explained: Option<String>,
}

/// A figure we hold for a model that no source entry mapped to that model has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnlyOurs {
    pub model: String,
    pub component: String,
    pub ours: Decimal,
}

/// Entries read per source.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceSummary {
    /// Entries of the providers we cover (first-party, and the platforms' models of those families).
    pub entries: usize,
    pub resolved: usize,
    /// Figures compared, and how many of them agree.
    pub figures: usize,
    pub agreed: usize,
    /// Entries of a mode we do not price (video, moderation, rerank, …), not compared.
    pub out_of_scope: usize,
}

/// The outcome of [`diff`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiffReport {
    pub at: Option<NaiveDate>,
    pub sources: BTreeMap<Source, SourceSummary>,
    pub unresolved: Vec<Unresolved>,
    pub disagreements: Vec<Disagreement>,
    pub only_ours: Vec<OnlyOurs>,
    /// Our models (canonical ids) that no source entry maps to.
    pub unpriced_by_sources: Vec<String>,
    /// Source fields with no counterpart in our schema (`litellm: output_cost_per_video_token`), and
    /// how many entries carry each.
    pub unmapped_fields: BTreeMap<String, usize>,
}

impl DiffReport {
    /// Differences and missing versions with neither an `uncertain` note nor an accepted reason.
    pub fn unexplained(&self) -> impl Iterator<Item = &Disagreement> {
        self.disagreements.iter().filter(|d| d.kind != Kind::Missing && d.explained.is_none())
    }

    /// Current chat models of the four first-party providers that we do not resolve and nobody accepted.
    pub fn unresolved_current_chat(&self) -> impl Iterator<Item = &Unresolved> {
        self.unresolved
            .iter()
            .filter(|u| u.chat && u.current && u.accepted.is_none() && FIRST_PARTY.contains(&u.provider.as_str()))
    }

    /// `(source, provider)` → (unresolved entries, of which current chat models).
    pub fn unresolved_counts(&self) -> BTreeMap<(Source, String), (usize, usize)> {
        let mut out: BTreeMap<(Source, String), (usize, usize)> = BTreeMap::new();
        for u in &self.unresolved {
            let c = out.entry((u.source, u.provider.clone())).or_default();
            c.0 += 1;
            c.1 += usize::from(u.chat && u.current);
        }
        out
    }
}

const FIRST_PARTY: [&str; 6] = ["openai", "anthropic", "gemini", "google", "xai", "x-ai"];

/// Explanations the data cannot carry itself: `pricing/snapshots/accepted.json`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    #[serde(default)]
    pub disagreements: Vec<AcceptedDisagreement>,
    #[serde(default)]
    pub unresolved: Vec<AcceptedUnresolved>,
}

/// Accepts disagreements: of `source` (any when absent), for our `model`, their `key` or keys starting
/// with `prefix` (each given one must match), on `component` (`*` for every component).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedDisagreement {
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    pub component: String,
    pub reason: String,
}

/// Accepts unresolved entries of `source` whose key is `key` or starts with `prefix`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedUnresolved {
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    pub reason: String,
}

impl Accepted {
    /// Parses the accepted list; every entry needs a reason and something to match.
    pub fn from_json(text: &str) -> Result<Self> {
        let accepted: Self = serde_json::from_str(text)
            .map_err(|e| invalid(format!("accepted list does not match its format: {e}"), "accepted", ""))?;
        for d in &accepted.disagreements {
            if d.reason.trim().is_empty() || (d.model.is_none() && d.key.is_none() && d.prefix.is_none()) {
                return Err(invalid(
                    "an accepted disagreement needs a reason and a model, key or prefix".to_string(),
                    "disagreements",
                    d.model.as_deref().or(d.key.as_deref()).unwrap_or(""),
                ));
            }
        }
        for u in &accepted.unresolved {
            if u.reason.trim().is_empty() || (u.key.is_none() && u.prefix.is_none()) {
                return Err(invalid(
                    "an accepted unresolved entry needs a reason and a key or prefix".to_string(),
                    "unresolved",
                    u.key.as_deref().or(u.prefix.as_deref()).unwrap_or(""),
                ));
            }
        }
        Ok(accepted)
    }

    fn disagreement(&self, source: Source, key: &str, model: &str, component: &str) -> Option<&str> {
        self.disagreements
            .iter()
            .find(|a| {
                a.source.is_none_or(|s| s == source)
                    && a.model.as_deref().is_none_or(|m| m == model)
                    && a.key.as_deref().is_none_or(|k| k == key)
                    && a.prefix.as_deref().is_none_or(|p| key.starts_with(p))
                    && (a.component == "*" || a.component == component)
            })
            .map(|a| a.reason.as_str())
    }

    fn unresolved(&self, source: Source, key: &str) -> Option<&str> {
        self.unresolved
            .iter()
            .find(|a| {
                a.source.is_none_or(|s| s == source)
                    && (a.key.as_deref() == Some(key) || a.prefix.as_deref().is_some_and(|p| key.starts_with(p)))
            })
            .map(|a| a.reason.as_str())
    }
}

fn invalid(message: String, field: &str, value: &str) -> Error {
    Error::new(ErrorCode::InvalidPriceData, message).with_field(field.to_string()).with_value(value)
}

/// One entry of a source, as figures to compare at dates.
#[derive(Debug)]
struct Entry {
    source: Source,
    provider: String,
    key: String,
    /// Other names to try when `key` does not resolve: the model of a LiteLLM per-image key
    /// (`low/1024-x-1024/gpt-image-1` → `gpt-image-1`), the names genai-prices' match clauses spell out.
    alt_names: Vec<String>,
    mode: Option<String>,
    chat: bool,
    current: bool,
    /// `(date, figures)`: the figures in force on that date; `None` = the check date.
    checks: Vec<(Option<NaiveDate>, BTreeMap<String, Decimal>)>,
}

/// Compares `db` with LiteLLM's JSON and/or genai-prices' JSON at `at` (prices in force that day).
pub fn diff(
    db: &PriceDb,
    litellm: Option<&str>,
    genai_prices: Option<&str>,
    at: NaiveDate,
    accepted: &Accepted,
) -> Result<DiffReport> {
    let mut report = DiffReport { at: Some(at), ..DiffReport::default() };
    let mut entries = Vec::new();
    if let Some(text) = litellm {
        entries.extend(read_litellm(text, at, &mut report)?);
    }
    if let Some(text) = genai_prices {
        entries.extend(read_genai(text, at, &mut report)?);
    }
    // Our components each source touched, per model id.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in &entries {
        let source = entry.source;
        report.sources.entry(source).or_default().entries += 1;
        let found = std::iter::once(&entry.key)
            .chain(&entry.alt_names)
            .find_map(|name| db.resolve(name).ok().map(|m| (name, m)));
        let Some((name, model)) = found else {
            report.unresolved.push(Unresolved {
                source,
                provider: entry.provider.clone(),
                key: entry.key.clone(),
                mode: entry.mode.clone(),
                chat: entry.chat,
                current: entry.current,
                accepted: accepted.unresolved(source, &entry.key).map(str::to_string),
            });
            continue;
        };
        report.sources.entry(source).or_default().resolved += 1;
        let region = region_of(&entry.key).or_else(|| region_of(name));
        let touched = seen.entry(model.id().to_string()).or_default();
        for (date, figures) in &entry.checks {
            let date = date.unwrap_or(at);
            compare(&mut report, source, entry, model, date, figures, region, accepted, touched);
        }
    }
    for info in db.models(None) {
        let Some(touched) = seen.get(info.id) else {
            report.unpriced_by_sources.push(info.id.to_string());
            continue;
        };
        let Ok(model) = db.resolve(info.id) else { continue };
        let Ok(version) = model.version_at(at) else { continue };
        for (component, value) in held(version) {
            if !touched.contains(&component) {
                report.only_ours.push(OnlyOurs { model: info.id.to_string(), component, ours: value });
            }
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn compare(
    report: &mut DiffReport,
    source: Source,
    entry: &Entry,
    model: ResolvedModel<'_>,
    date: NaiveDate,
    figures: &BTreeMap<String, Decimal>,
    region: Option<&str>,
    accepted: &Accepted,
    touched: &mut BTreeSet<String>,
) {
    // An accepted entry names the key and component, a note only the version: the specific reason wins.
    let explain = |version: Option<&PriceVersion>, component: &str| -> Option<String> {
        if let Some(reason) = accepted.disagreement(source, &entry.key, model.id(), component) {
            return Some(format!("accepted: {reason}"));
        }
        let note = version.and_then(|v| v.uncertain.as_deref()).filter(|n| n.to_lowercase().contains(source.as_str()));
        note.map(|n| format!("uncertain: {n}"))
    };
    let mut push =
        |component: &str, theirs: Option<Decimal>, ours: Option<Decimal>, kind: Kind, v: Option<&PriceVersion>| {
            report.disagreements.push(Disagreement {
                source,
                key: entry.key.clone(),
                model: model.id().to_string(),
                date,
                component: component.to_string(),
                theirs,
                ours,
                kind,
                explained: explain(v, component),
            });
        };
    let Ok(version) = model.version_at(date) else {
        push("(version)", None, None, Kind::NoVersion, None);
        return;
    };
    // The engine's order: a region the version lists, else the generic regional uplift.
    let uplift = region.and_then(|r| version.regional_multipliers.get(r).copied().or(version.regional_multiplier));
    let summary = report.sources.entry(source).or_default();
    for (component, &theirs) in figures {
        summary.figures += 1;
        touched.extend(touches(version, component));
        let is_multiplier = component == "regional_multiplier" || component.starts_with("regional.");
        let ours = ours(version, component).map(|o| match uplift {
            Some(m) if !is_multiplier => (o * m).normalize(),
            _ => o,
        });
        match ours {
            Some(o) if o == theirs => summary.agreed += 1,
            Some(o) => push(component, Some(theirs), Some(o), Kind::Differs, Some(version)),
            None => push(component, Some(theirs), None, Kind::Missing, Some(version)),
        }
    }
}

/// The region a name is served in: a Bedrock regional inference profile (`us.anthropic.…` → `us`,
/// `us-gov.…` → `us-gov`), LiteLLM's `bedrock/us-gov-west-1/…` route (→ `us-gov`; its other in-region
/// routes are list price), genai-prices' `regional.…` (a region it does not name: `regional`).
/// `global.…` is none.
fn region_of(name: &str) -> Option<&'static str> {
    const PROFILES: [(&str, &str); 8] = [
        ("us-gov.", "us-gov"),
        ("us.", "us"),
        ("eu.", "eu"),
        ("apac.", "apac"),
        ("jp.", "jp"),
        ("au.", "au"),
        ("ca.", "ca"),
        ("regional.", "regional"),
    ];
    // In-region routes are list price, except GovCloud's.
    if name.strip_prefix("bedrock/").is_some_and(|route| route.starts_with("us-gov-")) {
        return Some("us-gov");
    }
    let s = strip_routes(name);
    PROFILES.iter().find(|(p, _)| s.starts_with(p)).map(|(_, r)| *r)
}

/// The rate fields of the schema, by component name.
const RATE_FIELDS: [&str; 13] = [
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "cache_write_12h",
    "reasoning_output",
    "audio_input",
    "audio_cache_read",
    "audio_output",
    "image_input",
    "image_cache_read",
    "image_output",
];

fn field(r: &TokenRates, name: &str) -> Option<Decimal> {
    match name {
        "input" => r.input,
        "output" => r.output,
        "cache_read" => r.cache_read,
        "cache_write_5m" => r.cache_write_5m,
        "cache_write_1h" => r.cache_write_1h,
        "cache_write_12h" => r.cache_write_12h,
        "reasoning_output" => r.reasoning_output,
        "audio_input" => r.audio_input,
        "audio_cache_read" => r.audio_cache_read,
        "audio_output" => r.audio_output,
        "image_input" => r.image_input,
        "image_cache_read" => r.image_cache_read,
        "image_output" => r.image_output,
        _ => None,
    }
}

/// The rate charged for `name`, with the schema's documented fallbacks.
fn effective(r: &TokenRates, name: &str) -> Option<Decimal> {
    let own = field(r, name);
    let fallback = match name {
        "cache_read" | "cache_write_5m" | "image_input" => "input",
        "cache_write_1h" | "cache_write_12h" => "cache_write_5m",
        "reasoning_output" => "output",
        "audio_cache_read" => "audio_input",
        "image_cache_read" => "image_input",
        _ => return own,
    };
    own.or_else(|| effective(r, fallback))
}

fn overlay(base: &TokenRates, over: &TokenRates) -> TokenRates {
    let pick = |name: &str| field(over, name).or_else(|| field(base, name));
    TokenRates {
        input: pick("input"),
        output: pick("output"),
        cache_read: pick("cache_read"),
        cache_write_5m: pick("cache_write_5m"),
        cache_write_1h: pick("cache_write_1h"),
        cache_write_12h: pick("cache_write_12h"),
        reasoning_output: pick("reasoning_output"),
        audio_input: pick("audio_input"),
        audio_cache_read: pick("audio_cache_read"),
        audio_output: pick("audio_output"),
        image_input: pick("image_input"),
        image_cache_read: pick("image_cache_read"),
        image_output: pick("image_output"),
    }
}

/// A component name split: `batch`, service tier, long-context probe (prompt above N), field.
struct Parsed<'a> {
    batch: bool,
    service: Option<&'a str>,
    tier: Option<u64>,
    field: &'a str,
}

fn parse(component: &str) -> Parsed<'_> {
    let mut parts: Vec<&str> = component.split('.').collect();
    let field = parts.pop().unwrap_or_default();
    let mut p = Parsed { batch: false, service: None, tier: None, field };
    for part in parts {
        if part == "batch" {
            p.batch = true;
        } else if let Some(n) = part.strip_prefix("tier>") {
            p.tier = n.parse().ok();
        } else {
            p.service = Some(part);
        }
    }
    p
}

/// What our engine charges for `component` under `version` (before any regional uplift).
fn ours(version: &PriceVersion, component: &str) -> Option<Decimal> {
    if let Some(rest) = component.strip_prefix("per_image.") {
        let (size, quality) = rest.rsplit_once('.')?;
        return version.per_image.iter().find(|p| p.size == size && p.quality == quality).map(|p| p.price);
    }
    if let Some(region) = component.strip_prefix("regional.") {
        // A region the version does not list gets the generic uplift of a call marked regional.
        return version.regional_multipliers.get(region).copied().or(version.regional_multiplier);
    }
    if let Some(size) = component.strip_prefix("web_search_per_1k.") {
        // A size the version does not price is billed at the flat rate, as the engine does.
        return version.web_search_per_1k_by_context.get(size).copied().or(version.web_search_per_1k);
    }
    match component {
        "per_audio_minute" => return version.per_audio_minute,
        "per_million_characters" => return version.per_million_characters,
        "per_request" => return version.per_request,
        "web_search_per_1k" => return version.web_search_per_1k,
        "per_video_second" => return version.per_video_second,
        "regional_multiplier" => return version.regional_multiplier,
        _ => {}
    }
    let p = parse(component);
    if !RATE_FIELDS.contains(&p.field) {
        return None;
    }
    // Base ← long-context tier ← service tier ← the long-context tier's own rates for that service
    // tier: the engine's stacking (`CompiledVersion::compile`).
    let tier = p.tier.and_then(|n| tier_at(version, n));
    let mut rates = version.rates.clone();
    if let Some(t) = tier {
        rates = overlay(&rates, &t.rates);
    }
    if let Some(s) = p.service {
        rates = overlay(&rates, version.service_tiers.get(s)?);
        if let Some(combo) = tier.and_then(|t| t.service_tiers.get(s)) {
            rates = overlay(&rates, combo);
        }
    }
    let rate = effective(&rates, p.field)?;
    if p.batch {
        Some((rate * version.batch_multiplier?).normalize())
    } else {
        Some(rate)
    }
}

/// Our long-context tier billing a prompt of `n + 1` tokens: the highest whose threshold it reaches.
fn tier_at(version: &PriceVersion, n: u64) -> Option<&Tier> {
    version.tiers.iter().rfind(|t| t.min_prompt_tokens().is_some_and(|min| min <= n.saturating_add(1)))
}

/// A tier's component name: `tier>N.` with N + 1 the smallest prompt it bills (`at_least: 200000`
/// is `tier>199999.`).
fn tier_name(t: &Tier) -> String {
    format!("tier>{}.", t.min_prompt_tokens().unwrap_or(u64::MAX).saturating_sub(1))
}

/// Our held components a compared `component` stands for (for "figures only we hold").
fn touches(version: &PriceVersion, component: &str) -> Vec<String> {
    if component.starts_with("web_search_per_1k.") {
        return vec![component.to_string(), "web_search_per_1k".to_string()];
    }
    if component.starts_with("regional.") {
        return vec![component.to_string(), "regional_multiplier".to_string()];
    }
    let p = parse(component);
    let mut out = vec![component.to_string()];
    if p.batch {
        out.push("batch_multiplier".to_string());
    }
    out.push(p.field.to_string());
    if let Some(s) = p.service {
        out.push(format!("{s}.{}", p.field));
    }
    if let Some(t) = p.tier.and_then(|n| tier_at(version, n)) {
        out.push(format!("{}{}", tier_name(t), p.field));
        if let Some(s) = p.service {
            out.push(format!("{s}.{}{}", tier_name(t), p.field));
        }
    }
    out
}

/// Every figure a version states, by component name.
fn held(version: &PriceVersion) -> Vec<(String, Decimal)> {
    let mut out = Vec::new();
    let rates = |prefix: &str, r: &TokenRates, out: &mut Vec<(String, Decimal)>| {
        for name in RATE_FIELDS {
            if let Some(d) = field(r, name) {
                out.push((format!("{prefix}{name}"), d));
            }
        }
    };
    rates("", &version.rates, &mut out);
    for t in &version.tiers {
        rates(&tier_name(t), &t.rates, &mut out);
        for (name, r) in &t.service_tiers {
            rates(&format!("{name}.{}", tier_name(t)), r, &mut out);
        }
    }
    for (name, r) in &version.service_tiers {
        rates(&format!("{name}."), r, &mut out);
    }
    let units = [
        ("batch_multiplier", version.batch_multiplier),
        ("per_audio_minute", version.per_audio_minute),
        ("per_million_characters", version.per_million_characters),
        ("per_request", version.per_request),
        ("web_search_per_1k", version.web_search_per_1k),
        ("per_video_second", version.per_video_second),
        ("regional_multiplier", version.regional_multiplier),
    ];
    out.extend(units.into_iter().filter_map(|(n, d)| d.map(|d| (n.to_string(), d))));
    out.extend(version.regional_multipliers.iter().map(|(region, m)| (format!("regional.{region}"), *m)));
    out.extend(version.web_search_per_1k_by_context.iter().map(|(size, d)| (format!("web_search_per_1k.{size}"), *d)));
    out.extend(version.per_image.iter().map(|p| (format!("per_image.{}.{}", p.size, p.quality), p.price)));
    out
}

/// Model families of the four providers, for the platforms that also list other vendors.
fn ours_family(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "gpt-",
        "gpt_",
        "claude",
        "gemini",
        "grok",
        "o1",
        "o3",
        "o4-",
        "dall-e",
        "text-embedding-3",
        "text-embedding-ada",
        "whisper",
        "tts-",
        "chatgpt",
        "codex",
    ]
    .iter()
    .any(|f| k.contains(f))
}

const LITELLM_FIELDS: [(&str, &str); 14] = [
    // Longest first, so `…_above_1hr` is not read as a suffix of the 5-minute write.
    ("cache_creation_input_token_cost_above_12hr", "cache_write_12h"),
    ("cache_creation_input_token_cost_above_1hr", "cache_write_1h"),
    ("cache_read_input_audio_token_cost", "audio_cache_read"),
    ("cache_read_input_image_token_cost", "image_cache_read"),
    ("cache_creation_input_token_cost", "cache_write_5m"),
    ("output_cost_per_reasoning_token", "reasoning_output"),
    ("cache_read_input_token_cost", "cache_read"),
    ("output_cost_per_audio_token", "audio_output"),
    ("output_cost_per_image_token", "image_output"),
    ("input_cost_per_audio_token", "audio_input"),
    ("input_cost_per_image_token", "image_input"),
    ("output_cost_per_token", "output"),
    ("input_cost_per_token", "input"),
    ("cache_creation_input_audio_token_cost", ""),
];

/// `_above_272k_tokens_priority` → `priority.tier>272000.`; `None` for a suffix we cannot name.
fn litellm_suffix(rest: &str) -> Option<String> {
    let mut batch = false;
    let mut service = None;
    let mut tier = None;
    let mut rest = rest;
    while !rest.is_empty() {
        rest = rest.strip_prefix('_')?;
        if let Some(r) = rest.strip_prefix("above_") {
            let (n, tail) = r.split_once("k_tokens")?;
            tier = Some(n.parse::<u64>().ok()?.checked_mul(1000)?);
            rest = tail;
            continue;
        }
        let (word, tail) = rest.find('_').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
        match word {
            "batches" => batch = true,
            "flex" | "priority" | "fast" | "ultrafast" => service = Some(word),
            _ => return None,
        }
        rest = tail;
    }
    let mut out = String::new();
    if batch {
        out.push_str("batch.");
    }
    if let Some(s) = service {
        out.push_str(s);
        out.push('.');
    }
    if let Some(n) = tier {
        out.push_str(&format!("tier>{n}."));
    }
    Some(out)
}

fn json_str(raw: Option<&&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

fn read_litellm(text: &str, at: NaiveDate, report: &mut DiffReport) -> Result<Vec<Entry>> {
    let all: BTreeMap<String, &RawValue> = serde_json::from_str(text)?;
    let mut out = Vec::new();
    for (key, raw) in &all {
        let Ok(fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else { continue };
        let provider = match json_str(fields.get("litellm_provider")).as_deref() {
            Some("openai" | "text-completion-openai") => "openai",
            Some("anthropic") => "anthropic",
            Some("gemini") => "gemini",
            Some("xai") => "xai",
            Some("azure" | "azure_text" | "azure_ai") if ours_family(key) => "azure",
            Some("bedrock" | "bedrock_converse") if ours_family(key) => "bedrock",
            Some(p) if p.starts_with("vertex_ai") && ours_family(key) => "vertex",
            _ => continue,
        };
        let mode = json_str(fields.get("mode"));
        let in_scope = matches!(
            mode.as_deref(),
            None | Some(
                "chat"
                    | "completion"
                    | "responses"
                    | "realtime"
                    | "embedding"
                    | "image_generation"
                    | "audio_transcription"
                    | "audio_speech"
                    | "video_generation"
            )
        );
        if !in_scope {
            report.sources.entry(Source::LiteLlm).or_default().out_of_scope += 1;
            continue;
        }
        let deprecated = json_str(fields.get("deprecation_date")).and_then(|d| d.parse::<NaiveDate>().ok());
        // `low/1024-x-1024/gpt-image-1`: a per-image price of that model.
        let (model_key, image) = match key.rsplit_once('/') {
            Some((head, model)) if head.contains("-x-") => {
                let (quality, size) = head.rsplit_once('/').unwrap_or(("standard", head));
                (model.to_string(), Some(format!("per_image.{}.{}", size.replace("-x-", "x"), quality)))
            }
            _ => (key.clone(), None),
        };
        let mut figures = BTreeMap::new();
        for (name, value) in &fields {
            let name = name.as_str();
            let mut unit = |component: String, by: Option<Decimal>, divide: bool| -> Result<()> {
                if let Some(d) = number(key, name, value)? {
                    let d = match by {
                        Some(b) if divide => d.checked_div(b),
                        Some(b) => d.checked_mul(b),
                        None => Some(d),
                    }
                    .ok_or_else(|| invalid(format!("LiteLLM `{key}`.{name}: out of range"), name, key))?;
                    figures.insert(component, d.normalize());
                }
                Ok(())
            };
            match name {
                "input_cost_per_image" if image.is_some() => unit(image.clone().unwrap_or_default(), None, false)?,
                "input_cost_per_second" if mode.as_deref() == Some("audio_transcription") => {
                    unit("per_audio_minute".into(), Some(SIXTY), false)?
                }
                "input_cost_per_character" => unit("per_million_characters".into(), Some(MILLION), false)?,
                "input_cost_per_request" => unit("per_request".into(), None, false)?,
                "output_cost_per_video_per_second" => unit("per_video_second".into(), None, false)?,
                "regional_endpoint_uplift_multiplier" => unit("regional_multiplier".into(), None, false)?,
                "regional_processing_uplift_multiplier_us" => unit("regional.us".into(), None, false)?,
                "regional_processing_uplift_multiplier_eu" => unit("regional.eu".into(), None, false)?,
                "search_context_cost_per_query" => {
                    let sizes: BTreeMap<String, &RawValue> = serde_json::from_str(value.get()).unwrap_or_default();
                    for (size_key, per_query) in &sizes {
                        let Some(size) = size_key.strip_prefix("search_context_size_") else { continue };
                        if let Some(d) = number(key, name, per_query)? {
                            figures.insert(format!("web_search_per_1k.{size}"), (d * THOUSAND).normalize());
                        }
                    }
                }
                _ if name.contains("cost") => {
                    let mapped = LITELLM_FIELDS.iter().find_map(|(prefix, ours)| {
                        let rest = name.strip_prefix(prefix)?;
                        let suffix = litellm_suffix(rest)?;
                        Some((ours, suffix))
                    });
                    match mapped {
                        Some((ours, suffix)) if !ours.is_empty() => {
                            unit(format!("{suffix}{ours}"), Some(MILLION), false)?;
                        }
                        _ => *report.unmapped_fields.entry(format!("litellm: {name}")).or_default() += 1,
                    }
                }
                _ => {}
            }
        }
        // Zero-priced entries (free previews, moderation) and entries with nothing we can compare.
        if figures.is_empty() || figures.values().all(Decimal::is_zero) {
            continue;
        }
        let chat = matches!(mode.as_deref(), None | Some("chat" | "completion" | "responses"))
            && figures.contains_key("input")
            && figures.contains_key("output");
        out.push(Entry {
            source: Source::LiteLlm,
            provider: provider.to_string(),
            key: key.clone(),
            alt_names: if model_key == *key { Vec::new() } else { vec![model_key] },
            mode,
            chat,
            current: deprecated.is_none_or(|d| d > at),
            checks: vec![(None, figures)],
        });
    }
    Ok(out)
}

/// A genai-prices price: a string or a number, read exactly.
fn genai_decimal(model: &str, field: &str, raw: &serde_json::Value) -> Result<Option<Decimal>> {
    match raw {
        serde_json::Value::String(s) => Decimal::from_str_exact(s)
            .map(|d| Some(d.normalize()))
            .map_err(|_| invalid(format!("genai-prices `{model}`.{field} = {s}: not a price"), field, s)),
        serde_json::Value::Number(n) => {
            let raw = RawValue::from_string(n.to_string())?;
            number(model, field, &raw)
        }
        _ => Ok(None),
    }
}

const GENAI_FIELDS: [(&str, &str); 14] = [
    ("input_mtok", "input"),
    ("output_mtok", "output"),
    ("cache_read_mtok", "cache_read"),
    ("cache_write_mtok", "cache_write_5m"),
    ("cache_write_1h_mtok", "cache_write_1h"),
    ("input_audio_mtok", "audio_input"),
    ("cache_audio_read_mtok", "audio_cache_read"),
    ("output_audio_mtok", "audio_output"),
    ("input_image_mtok", "image_input"),
    ("cache_image_read_mtok", "image_cache_read"),
    ("output_image_mtok", "image_output"),
    ("web_searches_kcount", "web_search_per_1k"),
    ("input_mchars", "per_million_characters"),
    ("audio_hours", "per_audio_minute"),
];

/// One genai-prices `prices` object → figures, under `prefix` (`batch.`, `flex.`, …).
fn genai_figures(
    model: &str,
    prices: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    figures: &mut BTreeMap<String, Decimal>,
    unmapped: &mut BTreeMap<String, usize>,
) -> Result<()> {
    for (name, value) in prices {
        let name = if name == "input_audio_hours" { "audio_hours" } else { name.as_str() };
        let Some((_, ours)) = GENAI_FIELDS.iter().find(|(n, _)| *n == name) else {
            *unmapped.entry(format!("genai-prices: {name}")).or_default() += 1;
            continue;
        };
        let scale = |d: Decimal| if *ours == "per_audio_minute" { (d / SIXTY).normalize() } else { d };
        match value {
            serde_json::Value::Object(tiered) => {
                if let Some(base) = tiered.get("base") {
                    if let Some(d) = genai_decimal(model, name, base)? {
                        figures.insert(format!("{prefix}{ours}"), scale(d));
                    }
                }
                for tier in tiered.get("tiers").and_then(|t| t.as_array()).into_iter().flatten() {
                    let start = tier.get("start").and_then(serde_json::Value::as_u64);
                    let price = match tier.get("price") {
                        Some(p) => genai_decimal(model, name, p)?,
                        None => None,
                    };
                    if let (Some(start), Some(d)) = (start, price) {
                        figures.insert(format!("{prefix}tier>{start}.{ours}"), scale(d));
                    }
                }
            }
            other => {
                if let Some(d) = genai_decimal(model, name, other)? {
                    figures.insert(format!("{prefix}{ours}"), scale(d));
                }
            }
        }
    }
    Ok(())
}

/// The names a genai-prices match clause spells out in full (`equals`, and the stems of
/// `starts_with` / `contains`), to try against our resolver.
fn match_names(clause: &serde_json::Value, out: &mut Vec<String>) {
    for kind in ["equals", "starts_with", "contains"] {
        if let Some(name) = clause.get(kind).and_then(|v| v.as_str()) {
            out.push(name.to_string());
        }
    }
    for kind in ["or", "and"] {
        for inner in clause.get(kind).and_then(|v| v.as_array()).into_iter().flatten() {
            match_names(inner, out);
        }
    }
}

fn start_date(v: &serde_json::Value) -> Option<NaiveDate> {
    v.get("constraint")?.get("start_date")?.as_str()?.get(..10)?.parse().ok()
}

fn read_genai(text: &str, at: NaiveDate, report: &mut DiffReport) -> Result<Vec<Entry>> {
    let providers: Vec<serde_json::Value> = serde_json::from_str(text)?;
    let mut out = Vec::new();
    for provider in &providers {
        let id = provider.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        let (group, all) = match id {
            "openai" | "anthropic" | "x-ai" => (id, true),
            "google" => ("google", true),
            "aws" => ("bedrock", false),
            "azure" => ("azure", false),
            _ => continue,
        };
        for m in provider.get("models").and_then(|v| v.as_array()).into_iter().flatten() {
            let key = m.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
            if !all && !ours_family(&key) {
                continue;
            }
            let mut alt_names = Vec::new();
            if let Some(clause) = m.get("match") {
                match_names(clause, &mut alt_names);
            }
            // Base prices: one object, or conditional prices tried last to first by start date.
            let conditional: Vec<(Option<NaiveDate>, &serde_json::Map<String, serde_json::Value>)> =
                match m.get("prices") {
                    Some(serde_json::Value::Object(p)) => vec![(None, p)],
                    Some(serde_json::Value::Array(list)) => {
                        list.iter().filter_map(|c| Some((start_date(c), c.get("prices")?.as_object()?))).collect()
                    }
                    _ => Vec::new(),
                };
            let variants: Vec<&serde_json::Value> =
                m.get("price_variants").and_then(|v| v.as_array()).into_iter().flatten().collect();
            let mut dates: BTreeSet<NaiveDate> = [at].into();
            dates.extend(conditional.iter().filter_map(|(d, _)| *d));
            dates.extend(variants.iter().filter_map(|v| start_date(v)));
            // The undated first price: checked the day before the first dated one takes over.
            if let Some(first) = conditional.iter().filter_map(|(d, _)| *d).min() {
                dates.extend(first.pred_opt());
            }
            let mut checks = Vec::new();
            for date in dates {
                let base = conditional.iter().rev().find(|(d, _)| d.is_none_or(|d| d <= date)).or(conditional.first());
                let Some((_, prices)) = base else { continue };
                let mut figures = BTreeMap::new();
                genai_figures(&key, prices, "", &mut figures, &mut report.unmapped_fields)?;
                for v in &variants {
                    if start_date(v).is_some_and(|d| d > date) {
                        continue;
                    }
                    let when = v.get("when");
                    let prefix = match (
                        when.and_then(|w| w.get("processing")).and_then(|x| x.as_str()),
                        when.and_then(|w| w.get("service_tier").or_else(|| w.get("speed"))).and_then(|x| x.as_str()),
                    ) {
                        (Some("batch"), _) => "batch.".to_string(),
                        (_, Some("default" | "standard" | "auto")) => continue,
                        (_, Some(tier)) => format!("{tier}."),
                        _ => continue,
                    };
                    if let Some(p) = v.get("prices").and_then(|p| p.as_object()) {
                        genai_figures(&key, p, &prefix, &mut figures, &mut report.unmapped_fields)?;
                    }
                }
                if !figures.is_empty() && !figures.values().all(Decimal::is_zero) {
                    checks.push((Some(date), figures));
                }
            }
            let Some((_, latest)) = checks.iter().rev().find(|(d, _)| d.is_some_and(|d| d <= at)) else {
                continue;
            };
            let chat = latest.contains_key("input") && latest.contains_key("output");
            let deprecated = m.get("deprecated").and_then(|d| d.as_bool()).unwrap_or(false);
            out.push(Entry {
                source: Source::GenaiPrices,
                provider: group.to_string(),
                key,
                alt_names,
                mode: None,
                chat,
                current: !deprecated,
                checks,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn litellm_suffixes_name_components() {
        assert_eq!(litellm_suffix(""), Some(String::new()));
        assert_eq!(litellm_suffix("_above_200k_tokens").as_deref(), Some("tier>200000."));
        assert_eq!(litellm_suffix("_above_272k_tokens_priority").as_deref(), Some("priority.tier>272000."));
        assert_eq!(litellm_suffix("_batches").as_deref(), Some("batch."));
        assert_eq!(litellm_suffix("_above_272k_tokens_batches").as_deref(), Some("batch.tier>272000."));
        assert_eq!(litellm_suffix("_above_12hr"), None);
        assert_eq!(litellm_suffix("x"), None);
    }

    const OURS: &str = r#"[{"provider": "openai", "tier_rule": "t", "models": [
        {"id": "m", "mode": "chat", "prices": [
          {"effective_from": "2025-01-01", "source": "s", "checked": "2025-01-01",
           "input": "2", "output": "8", "batch_multiplier": "0.5",
           "tiers": [{"above_prompt_tokens": 200000, "counted": ["input"], "rates": {"input": "4"},
                      "service_tiers": {"priority": {"input": "7"}}}],
           "service_tiers": {"priority": {"input": "3.5"}}},
          {"effective_from": "2026-01-01", "source": "s", "checked": "2026-01-01",
           "uncertain": "genai-prices lists output 9", "input": "2", "output": "8", "cache_read": "0.5"}]}]}]"#;

    fn db() -> PriceDb {
        PriceDb::from_json(OURS).expect("valid")
    }

    #[test]
    fn litellm_figures_compare_with_fallbacks_tiers_services_and_batch() {
        let litellm = r#"{
          "m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2e-06,
                "output_cost_per_token": 8e-06, "cache_read_input_token_cost": 2e-06,
                "input_cost_per_token_above_200k_tokens": 4e-06, "input_cost_per_token_above_199k_tokens": 4e-06,
                "input_cost_per_token_priority": 3.5e-06, "input_cost_per_token_batches": 1e-06,
                "input_cost_per_token_above_200k_tokens_priority": 7e-06,
                "cache_creation_input_token_cost_above_12hr": 2e-06,
                "output_cost_per_video_token": 1e-06},
          "openai/gone": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06,
                "output_cost_per_token": 1e-06},
          "omni-moderation-latest": {"litellm_provider": "openai", "mode": "moderation", "input_cost_per_token": 0}
        }"#;
        let at = NaiveDate::from_ymd_opt(2025, 6, 1).expect("date");
        let r = diff(&db(), Some(litellm), None, at, &Accepted::default()).expect("diff");
        // cache_read and the 12-hour write fall back to input (2); tier 200000 applies above 200k, and
        // priority there is the tier's own priority rate (7), not the flat priority rate (3.5); the 199k
        // probe (a prompt of 199,001 tokens) is billed at our base rate 2, not 4.
        let bad: Vec<(&str, Option<Decimal>)> =
            r.disagreements.iter().map(|d| (d.component.as_str(), d.ours)).collect();
        assert_eq!(bad, [("tier>199000.input", Some(dec!(2)))]);
        assert!(r.unexplained().count() == 1);
        let s = &r.sources[&Source::LiteLlm];
        assert_eq!((s.entries, s.resolved, s.figures, s.agreed, s.out_of_scope), (2, 1, 9, 8, 1));
        assert_eq!(r.unresolved.len(), 1);
        assert_eq!(r.unresolved_current_chat().count(), 1);
        assert_eq!(r.unmapped_fields.get("litellm: output_cost_per_video_token"), Some(&1));
    }

    #[test]
    fn genai_dated_prices_compare_at_their_dates_and_notes_explain() {
        let genai = r#"[{"id": "openai", "models": [{"id": "m", "match": {"or": [{"equals": "m"}]},
          "prices": [{"prices": {"input_mtok": "2", "output_mtok": "8"}},
                     {"constraint": {"start_date": "2026-01-01"}, "prices": {"input_mtok": "2", "output_mtok": "9"}}],
          "price_variants": [{"when": {"processing": "batch"}, "prices": {"input_mtok": 1}}]}]}]"#;
        let at = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        let r = diff(&db(), None, Some(genai), at, &Accepted::default()).expect("diff");
        // 2026-01-01 and 2026-06-01: output 9 vs our 8, explained by the note; batch input is missing in
        // the 2026 version (no batch_multiplier), which never fails.
        let kinds: Vec<(NaiveDate, &str, Kind, bool)> =
            r.disagreements.iter().map(|d| (d.date, d.component.as_str(), d.kind, d.explained.is_some())).collect();
        let jan = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        assert_eq!(
            kinds,
            [
                (jan, "batch.input", Kind::Missing, true),
                (jan, "output", Kind::Differs, true),
                (at, "batch.input", Kind::Missing, true),
                (at, "output", Kind::Differs, true),
            ]
        );
        assert_eq!(r.unexplained().count(), 0);
        // Only we hold cache_read.
        assert_eq!(r.only_ours.iter().map(|o| o.component.as_str()).collect::<Vec<_>>(), ["cache_read"]);
    }

    #[test]
    fn at_least_thresholds_and_region_maps_price_like_the_engine() {
        let ours = r#"[{"provider": "anthropic", "models": [{"id": "claude-x", "mode": "chat", "prices": [
          {"effective_from": "2025-01-01", "source": "s", "checked": "2025-01-01", "input": "2", "output": "8",
           "regional_multiplier": "1.1", "regional_multipliers": {"us-gov": "1.2"},
           "tiers": [{"at_least_prompt_tokens": 200000, "counted": ["input"], "rates": {"input": "4"}}]}]}]}]"#;
        let db = PriceDb::from_json(ours).expect("valid");
        // `above_199k` is a prompt of 199,001 tokens: base; `above_200k` reaches "at least 200000".
        let litellm = r#"{
          "claude-x": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 2e-06,
                "output_cost_per_token": 8e-06, "input_cost_per_token_above_199k_tokens": 2e-06,
                "input_cost_per_token_above_200k_tokens": 4e-06, "regional_endpoint_uplift_multiplier": 1.1,
                "regional_processing_uplift_multiplier_us": 1.1, "regional_processing_uplift_multiplier_eu": 1.2},
          "us.anthropic.claude-x": {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 2.2e-06,
                "output_cost_per_token": 8.8e-06},
          "us-gov.anthropic.claude-x": {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 2.4e-06,
                "output_cost_per_token": 9.6e-06}
        }"#;
        let at = NaiveDate::from_ymd_opt(2025, 6, 1).expect("date");
        let r = diff(&db, Some(litellm), None, at, &Accepted::default()).expect("diff");
        // `eu` is not in our map: a call marked regional there gets the generic 1.1, not their 1.2.
        let bad: Vec<(&str, Option<Decimal>)> =
            r.disagreements.iter().map(|d| (d.component.as_str(), d.ours)).collect();
        assert_eq!(bad, [("regional.eu", Some(dec!(1.1)))]);
        assert_eq!(r.sources[&Source::LiteLlm].agreed, 10);
        // Our tier is named by the smallest prompt it bills, less one.
        let held: Vec<String> = held(db.resolve("claude-x").expect("claude-x").version_at(at).expect("v"))
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert!(held.contains(&"tier>199999.input".to_string()), "{held:?}");
    }

    #[test]
    fn regions_come_from_profiles_and_govcloud_routes() {
        assert_eq!(region_of("us.anthropic.claude-x"), Some("us"));
        assert_eq!(region_of("bedrock/us-gov.anthropic.claude-x"), Some("us-gov"));
        assert_eq!(region_of("bedrock/us-gov-west-1/anthropic.claude-x"), Some("us-gov"));
        assert_eq!(region_of("bedrock/us-east-1/anthropic.claude-x"), None);
        assert_eq!(region_of("global.anthropic.claude-x"), None);
        assert_eq!(region_of("claude-x"), None);
    }

    #[test]
    fn accepted_list_needs_reasons() {
        let ok = r#"{"disagreements": [{"model": "m", "component": "*", "reason": "r"},
                                       {"prefix": "azure/", "component": "input", "reason": "azure"}],
                     "unresolved": [{"prefix": "azure/eu/", "reason": "regional"}]}"#;
        let a = Accepted::from_json(ok).expect("valid");
        assert_eq!(a.disagreement(Source::LiteLlm, "k", "m", "input"), Some("r"));
        assert_eq!(a.disagreement(Source::LiteLlm, "azure/x", "x", "input"), Some("azure"));
        assert_eq!(a.disagreement(Source::LiteLlm, "azure/x", "x", "output"), None);
        assert_eq!(a.disagreement(Source::LiteLlm, "x", "x", "input"), None);
        assert_eq!(a.unresolved(Source::GenaiPrices, "azure/eu/gpt-4o"), Some("regional"));
        let no_reason = r#"{"disagreements": [{"model": "m", "component": "*", "reason": " "}]}"#;
        assert_eq!(Accepted::from_json(no_reason).map_err(|e| e.code()), Err(ErrorCode::InvalidPriceData));
        let unknown = r#"{"disagreement": []}"#;
        assert_eq!(Accepted::from_json(unknown).map_err(|e| e.code()), Err(ErrorCode::InvalidPriceData));
    }
}
