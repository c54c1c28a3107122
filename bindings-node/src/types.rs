//! Conversions between the JS-facing objects (`#[napi(object)]`, camelCase in JS) and core types.
//!
//! Money leaves Rust as exact decimal strings; the `amount` number beside each is parsed from that
//! string (the nearest double), for display and convenience only.
//!
//! Hot paths cross as strings and plain numbers, not objects: napi reads and writes object properties one
//! V8 lookup at a time (~0.2 µs each), so a recorded call goes back as core's record JSON, which the JS
//! layer parses only when it is looked at (and `cost()` has its own compact form, see `cost.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi_derive::napi;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::core::args::optional_count_from_f64 as count;
use crate::core::ledger::{Attribution, Durability};
use crate::core::report::{GroupBy, Timeframe, UsageFilter, UsageQuery};
use crate::core::tracker::{CallInfo, TrackerConfig, TrackerOptions as CoreOptions, UnknownModelPolicy};
use crate::core::{Api, Error, PriceOptions, Provider, Result, Usage, UsageSource};

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
    /// Core's `TrackerOptions` as JSON (`spend`, `webhooks`, `alert_poll_ms`): one object read by core,
    /// so both bindings accept the same keys and give the same errors.
    pub options_json: Option<String>,
}

impl TrackerOptions {
    /// The tracker's configuration and its options (spend control, webhooks).
    pub(crate) fn into_config(self) -> Result<(TrackerConfig, CoreOptions)> {
        let defaults = TrackerConfig::default();
        let options = match self.options_json.as_deref() {
            Some(json) => CoreOptions::from_json(json)?,
            None => CoreOptions::default(),
        };
        let config = TrackerConfig {
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
            // Streams dropped unfinished reach `onRecord` too (`takeDropped`).
            keep_dropped_records: true,
        };
        Ok((config, options))
    }
}

/// Who a call is billed to, as the JS layer sends it.
#[napi(object)]
#[derive(Debug, Default)]
pub struct AttributionInput {
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub project: Option<String>,
    pub session_id: Option<String>,
    pub conversation_id: Option<String>,
    pub tags: Option<HashMap<String, String>>,
}

/// `AttributionInput` → core's `Attribution`.
pub(crate) fn attribution(a: AttributionInput) -> Attribution {
    Attribution {
        user_id: a.user_id,
        workspace_id: a.workspace_id,
        project: a.project,
        session_id: a.session_id,
        conversation_id: a.conversation_id,
        tags: a.tags.unwrap_or_default().into_iter().collect(),
    }
}

/// A call recorded by `Tracker.record()`.
pub(crate) fn call_info(provider: &str, api: &str, model: String, attribution: Attribution) -> Result<CallInfo> {
    Ok(CallInfo {
        provider: provider.parse::<Provider>()?,
        api: api.parse::<Api>()?,
        model,
        attribution,
        batch: false,
        service_tier: None,
    })
}

/// What the JS layer knows about an SDK client at wrap time (`new NativeClient(spec)`).
#[napi(object)]
#[derive(Debug, Default)]
pub struct ClientSpecInput {
    /// `openai` or `anthropic`.
    pub sdk: String,
    pub base_url: Option<String>,
    /// The SDK's Azure client class.
    pub azure: Option<bool>,
    /// The Anthropic Bedrock client class.
    pub bedrock: Option<bool>,
    /// The caller's explicit provider.
    pub provider: Option<String>,
    /// The Azure client's fixed deployment.
    pub azure_deployment: Option<String>,
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

/// Token counts cross as JS numbers: exact up to 2^53, far above any real count.
pub(crate) fn num(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
    /// `today`, `week` or `month`: only the current one, in the query's zone or the tracker's.
    pub timeframe: Option<String>,
}

pub(crate) fn parse_instant(field: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| Error::invalid_value(field, s, "expected an RFC 3339 date-time"))
}

impl UsageQueryInput {
    /// The query, and the current period it is limited to.
    pub(crate) fn into_query(self) -> Result<(UsageQuery, Option<Timeframe>)> {
        let timeframe = self.timeframe.as_deref().map(str::parse::<Timeframe>).transpose()?;
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
        Ok((UsageQuery { filter, group_by, timezone: self.timezone, p95: self.p95.unwrap_or(false) }, timeframe))
    }
}

/// A usage to price with `cost()`; every count defaults to 0. The JS layer passes the numbers
/// positionally, in this order (`costWith` in js/cost.cjs).
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

/// `estimate(request)`: the chat request's parts as JSON text.
#[napi(object)]
#[derive(Debug)]
pub struct EstimateInput {
    pub model: String,
    /// The `messages` array (OpenAI or Anthropic shape).
    pub messages_json: String,
    pub tools_json: Option<String>,
    pub max_output_tokens: Option<f64>,
    /// Expected share of the prompt read from cache, decimal string `0`…`1`.
    pub expected_cache_hit: Option<String>,
}

/// `Tracker.record(call)`: a call made outside a wrapped client.
#[napi(object)]
#[derive(Debug)]
pub struct RecordInput {
    pub provider: String,
    pub api: String,
    pub model: String,
    /// The request body as JSON text, when it matters (streams, images, speech, tools).
    pub request_json: Option<String>,
    /// The response body as received.
    pub response_json: String,
    pub latency_ms: Option<f64>,
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
