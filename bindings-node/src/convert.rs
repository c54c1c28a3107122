//! Conversions between the JS-facing objects (`#[napi(object)]`, camelCase in JS) and core types.
//!
//! Money leaves Rust as exact decimal strings; the `amount` number beside each is parsed from that
//! string (the nearest double), for display and convenience only.
//!
//! Hot paths cross as strings and plain numbers, not objects: napi reads and writes object properties one
//! V8 lookup at a time (~0.2 µs each), so a recorded call ([`TokenUsage`]) and a price ([`CallCost`]) go
//! back as one JSON string that the JS layer parses only when they are looked at.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi_derive::napi;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::core::args::optional_count_from_f64 as count;
use crate::core::ledger::{Attribution, Durability};
use crate::core::report::{GroupBy, ReportRow, UsageFilter, UsageQuery};
use crate::core::tracker::{CallInfo, Tracked, TrackerConfig, UnknownModelPolicy};
use crate::core::{Api, Breakdown, Cost, Error, PriceOptions, Provider, Result, Usage, UsageSource};

/// Options of `new NativeTracker(options)`; every field optional (defaults: `sqlite:./llmledger.db`, USD, UTC).
#[napi(object)]
#[derive(Debug, Default)]
pub struct TrackerOptions {
    /// Ledger URL: `sqlite:///path.db`, `postgres://…`, `jsonl:///path.jsonl`, `memory:`.
    pub store: Option<String>,
    /// ISO 4217 code costs are reported in; needs a rate unless USD.
    pub currency: Option<String>,
    /// Units of each currency per USD, as decimal strings: `{ KRW: "1391.50" }`.
    pub rates: Option<HashMap<String, String>>,
    /// IANA time zone for day/month report groups.
    pub timezone: Option<String>,
    /// `"flag"` (default: record the call unpriced, flagged) or `"error"`.
    pub unknown_model: Option<String>,
    /// `"batch"` (default) or `"sync"`.
    pub durability: Option<String>,
    /// A price file in llmledger's format, extending the embedded data.
    pub prices_path: Option<String>,
    /// LiteLLM's `model_prices_and_context_window.json`, extending the embedded data.
    pub litellm_prices_path: Option<String>,
    /// Azure deployment name → model id.
    pub azure_deployments: Option<HashMap<String, String>>,
    /// Where events wait while the store is down (default: see the core ledger docs).
    pub spill_dir: Option<String>,
}

impl TrackerOptions {
    pub(crate) fn into_config(self) -> Result<TrackerConfig> {
        let defaults = TrackerConfig::default();
        Ok(TrackerConfig {
            store: self.store,
            currency: self.currency.unwrap_or(defaults.currency),
            rates: self.rates.map(|r| r.into_iter().collect()).unwrap_or(defaults.rates),
            timezone: self.timezone.unwrap_or(defaults.timezone),
            unknown_model: match self.unknown_model {
                Some(policy) => policy.parse::<UnknownModelPolicy>()?,
                None => defaults.unknown_model,
            },
            durability: match self.durability {
                Some(durability) => durability.parse::<Durability>()?,
                None => defaults.durability,
            },
            prices_path: self.prices_path.map(Into::into),
            litellm_prices_path: self.litellm_prices_path.map(Into::into),
            azure_deployments: self.azure_deployments.map(|d| d.into_iter().collect()).unwrap_or_default(),
            spill_dir: self.spill_dir.map(Into::into),
            keep_dropped_records: false,
        })
    }
}

/// Who a call is billed to, as the JS layer sends it (JSON, camelCase).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttributionInput {
    user_id: Option<String>,
    workspace_id: Option<String>,
    project: Option<String>,
    session_id: Option<String>,
    conversation_id: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Parses the attribution JSON of a call (`null`/absent = none).
pub(crate) fn attribution(json: Option<&str>) -> Result<Attribution> {
    let Some(json) = json else { return Ok(Attribution::default()) };
    let a: AttributionInput = serde_json::from_str(json)
        .map_err(|e| Error::invalid_value("attribution", json, &format!("expected an attribution object: {e}")))?;
    Ok(Attribution {
        user_id: a.user_id,
        workspace_id: a.workspace_id,
        project: a.project,
        session_id: a.session_id,
        conversation_id: a.conversation_id,
        tags: a.tags,
    })
}

/// What the JS layer knows about a call before it is sent.
pub(crate) fn call_info(
    provider: &str,
    api: &str,
    model: String,
    attribution_json: Option<&str>,
    service_tier: Option<String>,
) -> Result<CallInfo> {
    Ok(CallInfo {
        provider: provider.parse::<Provider>()?,
        api: api.parse::<Api>()?,
        model,
        attribution: attribution(attribution_json)?,
        batch: false,
        service_tier,
    })
}

/// An amount of money: `exact` is the unrounded decimal, `amount` the nearest double of it.
#[napi(object)]
#[derive(Debug, Clone, Serialize)]
pub struct Money {
    pub amount: f64,
    pub exact: String,
    pub currency: String,
}

impl Money {
    pub(crate) fn new(value: Decimal, currency: &str) -> Self {
        let exact = value.normalize().to_string();
        // Parsing the decimal string gives the correctly rounded double; no float arithmetic.
        let amount = exact.parse::<f64>().unwrap_or(f64::NAN);
        Money { amount, exact, currency: currency.to_string() }
    }
}

/// The cost of one call in the tracker's currency, with its USD total and the priced model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCost {
    pub amount: f64,
    pub exact: String,
    pub currency: String,
    /// Exact USD total.
    pub usd: String,
    /// Units of `currency` per USD used.
    pub rate: String,
    /// Canonical id of the priced model.
    pub model: String,
    /// `YYYY-MM-DD` the price version used took effect.
    pub price_version: String,
    /// Some price used is marked uncertain in the data.
    pub uncertain: bool,
    /// USD per component, exact decimal strings; components that are zero are left out.
    pub breakdown: std::collections::BTreeMap<String, String>,
}

impl From<&Cost> for CallCost {
    fn from(c: &Cost) -> Self {
        let m = Money::new(c.total, &c.currency);
        CallCost {
            amount: m.amount,
            exact: m.exact,
            currency: m.currency,
            usd: c.total_usd.normalize().to_string(),
            rate: c.rate.normalize().to_string(),
            model: c.model.clone(),
            price_version: c.price_version.to_string(),
            uncertain: c.uncertain,
            breakdown: breakdown_map(&c.breakdown),
        }
    }
}

/// The non-zero components, named in camelCase (`cache_write_5m` → `cacheWrite5m`).
fn breakdown_map(b: &Breakdown) -> std::collections::BTreeMap<String, String> {
    let camel = |name: &str| {
        let mut out = String::with_capacity(name.len());
        let mut upper = false;
        for c in name.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    };
    b.components()
        .into_iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (camel(k), v.normalize().to_string()))
        .collect()
}

/// An error kept with a recorded event (e.g. an unknown model: the call is recorded unpriced, flagged).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        ErrorInfo { code: e.code().as_str().to_string(), message: e.to_string() }
    }
}

/// One recorded call as the caller sees it (`result._tokenUsage`); crosses to JS as JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub event_id: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub provider: String,
    pub api: String,
    /// The model as requested.
    pub model: String,
    /// The canonical priced id, when the model resolved.
    pub resolved_model: Option<String>,
    /// Uncached text input tokens (the input buckets are disjoint).
    pub input_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cache_write_1h_tokens: i64,
    pub audio_input_tokens: i64,
    pub audio_cache_read_tokens: i64,
    pub image_input_tokens: i64,
    /// All billed output tokens (reasoning, audio and image output included).
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub audio_output_tokens: i64,
    pub image_output_tokens: i64,
    pub web_search_requests: i64,
    /// All prompt-side tokens.
    pub prompt_tokens: i64,
    pub total_tokens: i64,
    /// `null` when the call could not be priced (see `pricingError`).
    pub cost: Option<CallCost>,
    /// `reported`, `partial`, `estimated` or `none`.
    pub usage_source: String,
    /// True when some counts were estimated locally rather than reported by the provider.
    pub estimated: bool,
    /// `total_mismatch`, `stream_aborted`, `stream_without_usage`, `approximate_tokenizer`.
    pub flags: Vec<String>,
    pub pricing_error: Option<ErrorInfo>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub project: Option<String>,
    pub session_id: Option<String>,
    pub conversation_id: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    pub latency_ms: i64,
    pub success: bool,
    pub error_class: Option<String>,
}

impl TokenUsage {
    pub(crate) fn json(t: Tracked) -> String {
        // Serializing plain strings, numbers and maps cannot fail; an empty object is the impossible fallback.
        serde_json::to_string(&TokenUsage::from(t)).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Token counts cross as JS numbers: exact up to 2^53, far above any real count.
pub(crate) fn num(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn usage_source_is_estimate(source: UsageSource) -> bool {
    matches!(source, UsageSource::Partial | UsageSource::Estimated)
}

impl From<Tracked> for TokenUsage {
    fn from(t: Tracked) -> Self {
        let u: &Usage = &t.usage;
        let a = t.attribution;
        TokenUsage {
            event_id: t.event_id,
            timestamp: t.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            provider: t.provider.as_str().to_string(),
            api: t.api.as_str().to_string(),
            model: t.model,
            resolved_model: t.resolved_model,
            input_tokens: num(u.input_tokens),
            cache_read_tokens: num(u.cache_read_tokens),
            cache_write_tokens: num(u.cache_write_tokens),
            cache_write_1h_tokens: num(u.cache_write_1h_tokens),
            audio_input_tokens: num(u.audio_input_tokens),
            audio_cache_read_tokens: num(u.audio_cache_read_tokens),
            image_input_tokens: num(u.image_input_tokens),
            output_tokens: num(u.output_tokens),
            reasoning_tokens: num(u.reasoning_tokens),
            audio_output_tokens: num(u.audio_output_tokens),
            image_output_tokens: num(u.image_output_tokens),
            web_search_requests: num(u.web_search_requests),
            prompt_tokens: num(u.prompt_tokens()),
            total_tokens: num(u.total_tokens()),
            cost: t.cost.as_ref().map(CallCost::from),
            usage_source: u.usage_source.as_str().to_string(),
            estimated: usage_source_is_estimate(u.usage_source),
            flags: u.flags.iter().map(|f| flag_name(*f).to_string()).collect(),
            pricing_error: t.pricing_error.as_ref().map(ErrorInfo::from),
            request_id: t.request_id,
            user_id: a.user_id,
            workspace_id: a.workspace_id,
            project: a.project,
            session_id: a.session_id,
            conversation_id: a.conversation_id,
            tags: a.tags,
            latency_ms: num(t.latency_ms),
            success: t.success,
            error_class: t.error_class,
        }
    }
}

fn flag_name(f: crate::core::UsageFlag) -> &'static str {
    use crate::core::UsageFlag as F;
    match f {
        F::TotalMismatch => "total_mismatch",
        F::StreamAborted => "stream_aborted",
        F::StreamWithoutUsage => "stream_without_usage",
        F::ApproximateTokenizer => "approximate_tokenizer",
    }
}

/// `tracker.usage(query)`: filters (all optional), grouping and time zone.
#[napi(object)]
#[derive(Debug, Default)]
pub struct UsageQueryInput {
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub project: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub session_id: Option<String>,
    /// RFC 3339 instant, inclusive.
    pub since: Option<String>,
    /// RFC 3339 instant, exclusive.
    pub until: Option<String>,
    /// `user`, `workspace`, `project`, `provider`, `model`, `session`, `day`, `month`.
    pub group_by: Option<Vec<String>>,
    /// IANA zone of `day`/`month` groups; default: the tracker's.
    pub timezone: Option<String>,
    /// Also compute the 95th percentile latency.
    pub p95: Option<bool>,
}

fn parse_instant(field: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| Error::invalid_value(field, s, "expected an RFC 3339 date-time"))
}

impl UsageQueryInput {
    pub(crate) fn into_query(self, default_tz: &str) -> Result<UsageQuery> {
        let filter = UsageFilter {
            user_id: self.user_id,
            workspace_id: self.workspace_id,
            project: self.project,
            provider: self.provider,
            model: self.model,
            session_id: self.session_id,
            since: self.since.as_deref().map(|s| parse_instant("since", s)).transpose()?,
            until: self.until.as_deref().map(|s| parse_instant("until", s)).transpose()?,
        };
        let group_by =
            self.group_by.unwrap_or_default().iter().map(|g| g.parse::<GroupBy>()).collect::<Result<Vec<_>>>()?;
        Ok(UsageQuery {
            filter,
            group_by,
            timezone: self.timezone.unwrap_or_else(|| default_tz.to_string()),
            p95: self.p95.unwrap_or(false),
        })
    }
}

/// One row of a usage report.
#[napi(object)]
#[derive(Debug)]
pub struct UsageRow {
    /// The group's value per `groupBy` dimension (absent attribution is `""`).
    pub key: HashMap<String, String>,
    pub requests: i64,
    pub successful: i64,
    pub failed: i64,
    pub input_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    /// Calls recorded without a cost (unknown model, missing price).
    pub unpriced: i64,
    /// Total in the tracker's currency.
    pub cost: Money,
    /// Exact USD total.
    pub cost_usd: String,
    pub avg_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<i64>,
}

impl UsageRow {
    pub(crate) fn new(row: ReportRow, currency: &str, rate: Decimal) -> Self {
        UsageRow {
            key: row.key.iter().map(|(g, v)| (g.as_str().to_string(), v.clone())).collect(),
            requests: num(row.requests),
            successful: num(row.successful),
            failed: num(row.failed),
            unpriced: num(row.unpriced),
            input_tokens: num(row.input_tokens),
            cache_read_tokens: num(row.cache_read_tokens),
            cache_write_tokens: num(row.cache_write_tokens),
            output_tokens: num(row.output_tokens),
            reasoning_tokens: num(row.reasoning_tokens),
            cost: Money::new(row.cost_usd * rate, currency),
            cost_usd: row.cost_usd.normalize().to_string(),
            avg_latency_ms: row.avg_latency_ms.and_then(|d| d.to_string().parse::<f64>().ok()),
            p95_latency_ms: row.p95_latency_ms.map(num),
        }
    }
}

/// A usage to price with `cost()`; every count defaults to 0. The JS layer passes the numbers
/// positionally, in this order (`costWith` in js/index.cjs).
#[derive(Debug, Default)]
pub struct UsageInput {
    pub input_tokens: Option<f64>,
    pub cache_read_tokens: Option<f64>,
    pub cache_write_tokens: Option<f64>,
    pub cache_write_1h_tokens: Option<f64>,
    pub output_tokens: Option<f64>,
    pub reasoning_tokens: Option<f64>,
    pub audio_input_tokens: Option<f64>,
    pub audio_output_tokens: Option<f64>,
    pub image_input_tokens: Option<f64>,
    pub image_output_tokens: Option<f64>,
    pub web_search_requests: Option<f64>,
    pub input_characters: Option<f64>,
    /// Seconds of input audio, decimal string (whisper-1).
    pub audio_seconds: Option<String>,
    /// The service tier used (`flex`, `priority`, …).
    pub service_tier: Option<String>,
}

impl UsageInput {
    pub(crate) fn into_usage(self) -> Result<Usage> {
        let audio_seconds = match self.audio_seconds {
            None => None,
            Some(s) => Some(
                s.parse::<Decimal>()
                    .map_err(|_| Error::invalid_value("audioSeconds", &s, "expected a decimal string"))?,
            ),
        };
        Ok(Usage {
            input_tokens: count("inputTokens", self.input_tokens)?,
            cache_read_tokens: count("cacheReadTokens", self.cache_read_tokens)?,
            cache_write_tokens: count("cacheWriteTokens", self.cache_write_tokens)?,
            cache_write_1h_tokens: count("cacheWrite1hTokens", self.cache_write_1h_tokens)?,
            output_tokens: count("outputTokens", self.output_tokens)?,
            reasoning_tokens: count("reasoningTokens", self.reasoning_tokens)?,
            audio_input_tokens: count("audioInputTokens", self.audio_input_tokens)?,
            audio_output_tokens: count("audioOutputTokens", self.audio_output_tokens)?,
            image_input_tokens: count("imageInputTokens", self.image_input_tokens)?,
            image_output_tokens: count("imageOutputTokens", self.image_output_tokens)?,
            web_search_requests: count("webSearchRequests", self.web_search_requests)?,
            input_characters: count("inputCharacters", self.input_characters)?,
            audio_seconds,
            service_tier: self.service_tier,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        })
    }
}

/// Pricing options of `cost()`.
#[derive(Debug, Default)]
pub struct CostOptions {
    /// RFC 3339 instant whose prices apply; default now.
    pub at: Option<String>,
    pub batch: Option<bool>,
    pub service_tier: Option<String>,
    pub regional: Option<bool>,
}

impl CostOptions {
    pub(crate) fn split(self) -> Result<(DateTime<Utc>, PriceOptions)> {
        let at = match self.at.as_deref() {
            Some(s) => parse_instant("at", s)?,
            None => Utc::now(),
        };
        let opts = PriceOptions {
            batch: self.batch.unwrap_or(false),
            service_tier: self.service_tier,
            regional: self.regional.unwrap_or(false),
            ..PriceOptions::default()
        };
        Ok((at, opts))
    }
}

/// A local token count.
#[napi(object)]
#[derive(Debug)]
pub struct TokenCountResult {
    pub tokens: i64,
    /// False when the model has no public tokenizer and the count is an approximation.
    pub exact: bool,
}

/// A pre-flight estimate of a request's cost.
#[napi(object)]
#[derive(Debug)]
pub struct EstimateResult {
    pub model: String,
    pub input_tokens: i64,
    pub exact: bool,
    pub input_cost: Money,
    pub max_output_tokens: i64,
    pub min_cost: Money,
    pub max_cost: Money,
    pub currency: String,
}
