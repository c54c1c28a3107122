//! The facade the language bindings call: one finished call (or stream) in, one priced, attributed,
//! recorded [`Tracked`] out.
//!
//! Everything the Python and Node packages would otherwise both implement lives here once: parsing
//! the provider's response, pricing it in the tracker's currency, applying the unknown-model policy,
//! minting the event id and handing the event to the ledger. A pricing or parsing failure never fails
//! the call: the event is recorded flagged (no cost, `pricing_error` set) so nothing is lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::alert_pump::{AlertPump, AlertSink};
use crate::currency::Rates;
use crate::error::{Error, Result};
use crate::estimate::{estimate_usage, EstimateRequest};
use crate::event::Attribution;
use crate::ledger::{Durability, Ledger, LedgerConfig, LedgerHealth, Notice};
use crate::org::reconcile::{ReconcileQuery, ReconcileRow};
use crate::org::Org;
use crate::pricing::{PriceDb, PriceOptions};
pub use crate::record::Tracked;
use crate::report::{ReportRow, ReportRowView, UsageQuery};
use crate::spend::{Spend, SpendConfig};
use crate::stream::StreamAccumulator;
use crate::tokens;
use crate::usage::{self, Api, Provider, Usage};
use crate::webhook::{WebhookConfig, WebhookSpec, Webhooks};

/// What to do with a model that has no price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownModelPolicy {
    /// Record the event flagged as unpriced and report the error to the caller's logger.
    Error,
    /// Record the event flagged as unpriced, quietly.
    #[default]
    Flag,
}

impl FromStr for UnknownModelPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "error" => Ok(Self::Error),
            "flag" => Ok(Self::Flag),
            other => Err(Error::config("unknown_model", other, "expected \"error\" or \"flag\"")),
        }
    }
}

/// How a [`Tracker`] is set up. `Default` gives the embedded SQLite ledger, USD and UTC.
#[derive(Debug, Clone, Default)]
pub struct TrackerConfig {
    /// Ledger store URL; `None` means [`Ledger::DEFAULT_URL`].
    pub store: Option<String>,
    /// ISO 4217 code costs are reported in; empty means USD.
    pub currency: String,
    /// Units of each currency per USD, as decimal strings (`{"KRW": "1391.50"}`).
    pub rates: BTreeMap<String, String>,
    /// IANA time zone of the ledger's daily and monthly rollups and the default zone of reports'
    /// day/month groups ([`Tracker::usage`]); empty means UTC.
    pub timezone: String,
    pub unknown_model: UnknownModelPolicy,
    pub durability: Durability,
    /// A price file in our format that extends (and overrides) the embedded prices.
    pub prices_path: Option<PathBuf>,
    /// A LiteLLM `model_prices_and_context_window.json` that extends the embedded prices.
    pub litellm_prices_path: Option<PathBuf>,
    /// Azure deployment name → model id.
    pub azure_deployments: BTreeMap<String, String>,
    /// Where spilled events wait for the store; `None` means the ledger's default (see
    /// [`crate::ledger`]).
    pub spill_dir: Option<PathBuf>,
    /// Keep the records of streams recorded because they were dropped unfinished, for
    /// [`Tracker::take_dropped`] (a binding that calls hooks with every record sets this).
    pub keep_dropped_records: bool,
}

/// The tracker settings a binding passes as one JSON object (`{"spend": {…}, "webhooks": [{"url": …,
/// "secret": …}], "alert_poll_ms": 5000}`), read by core so both bindings accept the same keys and
/// give the same errors. Missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerOptions {
    /// Spend control ([`SpendConfig`]).
    pub spend: SpendConfig,
    /// Where spend alerts are sent as signed webhooks (see [`crate::webhook`]); each URL must be
    /// http(s). Needs spend control on a SQLite or PostgreSQL store (the outbox lives there).
    pub webhooks: Vec<WebhookSpec>,
    /// How often the alert pump looks for alerts it was not woken for — fired by another process, or
    /// left pending by one that died (5,000 ms). See [`crate::alert_pump`].
    pub alert_poll_ms: u64,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        Self {
            spend: SpendConfig::default(),
            webhooks: Vec::new(),
            alert_poll_ms: crate::alert_pump::DEFAULT_POLL.as_millis() as u64,
        }
    }
}

impl TrackerOptions {
    /// Parses the bindings' JSON object; a bad key or value is an [`crate::ErrorCode::Config`] error.
    /// A misplaced value is never shown (serde would quote it, and it may be a webhook URL or secret):
    /// only unknown and missing keys are named.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| {
            let text = e.to_string();
            let shown = if text.starts_with("unknown field") || text.starts_with("missing field") {
                text
            } else {
                format!("a value of the wrong type or form at line {} column {} (not shown)", e.line(), e.column())
            };
            Error::config("options", shown, "not valid tracker options")
        })
    }
}

/// What the binding knows about one call before its response arrives.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub provider: Provider,
    pub api: Api,
    /// The model as requested (for Azure, the deployment name).
    pub model: String,
    pub attribution: Attribution,
    pub batch: bool,
    /// The requested service tier; the one the response reports wins.
    pub service_tier: Option<String>,
}

/// A pre-flight estimate of one request.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub model: String,
    pub input_tokens: u64,
    /// False when the tokenizer is an approximation (Claude, Gemini).
    pub exact: bool,
    pub input_cost: Decimal,
    pub max_output_tokens: u64,
    /// Cost of the prompt alone (nothing generated).
    pub min_cost: Decimal,
    /// Cost with `max_output_tokens` generated: the worst case.
    pub max_cost: Decimal,
    pub currency: String,
}

/// Prices a pre-flight request: the prompt's tokens and the cost range up to `max_output_tokens`.
pub fn estimate(
    db: &PriceDb,
    rates: &Rates,
    currency: &str,
    request: &EstimateRequest<'_>,
    at: DateTime<Utc>,
) -> Result<Estimate> {
    let est = estimate_usage(request)?;
    let opts = PriceOptions::default();
    let low = db.price(&est.input_usage, request.model, at, &opts)?.convert(rates, currency)?;
    let high = db.price(&est.worst_case_usage, request.model, at, &opts)?.convert(rates, currency)?;
    Ok(Estimate {
        model: low.model.to_string(),
        input_tokens: est.input_tokens,
        exact: est.exact,
        input_cost: low.total,
        max_output_tokens: est.worst_case_usage.output_tokens,
        min_cost: low.total,
        max_cost: high.total,
        currency: low.currency.clone(),
    })
}

/// Prices, attributes and records calls. A handle: clones share one ledger and price set, and every
/// method takes `&self`, so one tracker serves all threads.
#[derive(Debug, Clone)]
pub struct Tracker {
    inner: Arc<TrackerInner>,
}

#[derive(Debug)]
struct TrackerInner {
    prices: PriceDb,
    rates: Rates,
    currency: String,
    /// Units of `currency` per USD (1 for USD).
    rate: Decimal,
    /// The zone reports group days and months in unless the query names one.
    timezone: String,
    unknown_model: UnknownModelPolicy,
    azure_deployments: BTreeMap<String, String>,
    /// The store's URL, for the organisation-cost tables beside the ledger ([`Tracker::reconcile`]).
    store_url: String,
    ledger: Ledger,
    /// `None` when spend control is disabled or the store has no spend tables (JSONL).
    spend: Option<Spend>,
    /// Hands fired alerts to the webhooks and the binding's sink (with `spend`).
    alerts: Option<AlertPump>,
    /// Records of dropped streams, kept when `keep_dropped_records` is set.
    dropped: Option<Mutex<Vec<Tracked>>>,
}

impl Tracker {
    /// Opens the ledger and loads prices; bad configuration is an [`crate::ErrorCode::Config`] error here,
    /// never later on a call. Spend control runs with [`SpendConfig::default`] (see
    /// [`Tracker::with_spend`]).
    pub fn new(config: TrackerConfig) -> Result<Self> {
        Self::with_spend(config, SpendConfig::default())
    }

    /// [`Tracker::new`] with spend-control settings: reservation lifetime, the output reserved for a
    /// request without a cap, the policy for calls without a price, or `disabled`. (A separate
    /// argument rather than a `TrackerConfig` field, so the bindings' struct literals keep building
    /// until they pass it.)
    pub fn with_spend(config: TrackerConfig, spend_config: SpendConfig) -> Result<Self> {
        Self::with_options(config, TrackerOptions { spend: spend_config, ..TrackerOptions::default() })
    }

    /// [`Tracker::new`] with spend control and alert delivery ([`TrackerOptions`]): the webhook
    /// endpoints are validated here (a URL that is not http(s) is `invalid_value` naming
    /// `webhooks[i].url`) and the alert pump starts when there are any.
    pub fn with_options(config: TrackerConfig, options: TrackerOptions) -> Result<Self> {
        let TrackerOptions { spend: spend_config, webhooks, alert_poll_ms } = options;
        let endpoints = webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| {
                w.endpoint().map_err(|e| {
                    let field = format!("webhooks[{i}].{}", e.field().unwrap_or("url"));
                    e.with_field(field)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if alert_poll_ms == 0 {
            return Err(Error::config("alert_poll_ms", 0, "must be positive"));
        }
        let currency = if config.currency.is_empty() { "USD".to_string() } else { config.currency.to_uppercase() };
        let rates = config.rates.iter().try_fold(Rates::new(), |rates, (code, rate)| rates.with(code, rate))?;
        let Some(rate) = rates.get(&currency) else {
            return Err(Error::config("currency", &currency, "no rate configured for this currency (pass rates)"));
        };
        let timezone = if config.timezone.is_empty() { "UTC".to_string() } else { config.timezone.clone() };
        let mut prices = PriceDb::embedded();
        if let Some(path) = &config.prices_path {
            prices.extend(PriceDb::from_json_file(path)?);
        }
        if let Some(path) = &config.litellm_prices_path {
            prices.extend(PriceDb::from_litellm_file(path)?);
        }
        let ledger_config = LedgerConfig {
            timezone: timezone.clone(),
            durability: config.durability,
            spill_dir: config.spill_dir.clone(),
            ..LedgerConfig::default()
        };
        let url = config.store.as_deref().unwrap_or(Ledger::DEFAULT_URL);
        let ledger = Ledger::open(url, ledger_config)?;
        let spend = match spend_config.disabled {
            true => None,
            false => match Spend::open(url, &currency, rates.clone(), &timezone, spend_config) {
                Ok(spend) => Some(spend),
                Err(e) if e.code() == crate::ErrorCode::Unsupported => None,
                Err(e) => return Err(e),
            },
        };
        let alerts = match &spend {
            Some(spend) => {
                let webhooks = match endpoints.is_empty() {
                    true => None,
                    false => Some(Webhooks::open(url, WebhookConfig { endpoints, ..WebhookConfig::default() })?),
                };
                Some(AlertPump::new(spend.clone(), webhooks, std::time::Duration::from_millis(alert_poll_ms))?)
            }
            None if !endpoints.is_empty() => {
                return Err(Error::config(
                    "webhooks",
                    endpoints.len(),
                    "webhooks deliver spend alerts: they need spend control on a SQLite or PostgreSQL store",
                ))
            }
            None => None,
        };
        tokens::warm_up_in_background();
        let inner = TrackerInner {
            prices,
            rates,
            currency,
            rate,
            timezone,
            unknown_model: config.unknown_model,
            azure_deployments: config.azure_deployments,
            store_url: url.to_string(),
            ledger,
            spend,
            alerts,
            dropped: config.keep_dropped_records.then(Mutex::default),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn prices(&self) -> &PriceDb {
        &self.inner.prices
    }

    pub fn rates(&self) -> &Rates {
        &self.inner.rates
    }

    pub fn currency(&self) -> &str {
        &self.inner.currency
    }

    /// The IANA zone of the ledger's rollups and the default zone of reports.
    pub fn timezone(&self) -> &str {
        &self.inner.timezone
    }

    pub fn unknown_model_policy(&self) -> UnknownModelPolicy {
        self.inner.unknown_model
    }

    /// Spend control over the tracker's store: limits, balances, reservations, alerts.
    /// [`crate::ErrorCode::Unsupported`] when it is disabled or the store cannot hold it (JSONL).
    pub fn spend(&self) -> Result<&Spend> {
        self.inner.spend.as_ref().ok_or_else(|| {
            Error::new(
                crate::ErrorCode::Unsupported,
                "spend control is not available: disabled, or the store is not SQLite, PostgreSQL or memory://",
            )
        })
    }

    /// Sets the in-process receiver of spend alerts (the bindings' `on_alert` / `onAlert`), or removes
    /// it with `None`; see [`crate::alert_pump`] for when it is called and the delivery guarantee.
    /// [`crate::ErrorCode::Unsupported`] without spend control.
    pub fn set_alert_sink(&self, sink: Option<AlertSink>) -> Result<()> {
        self.alert_pump()?.set_sink(sink)
    }

    /// Hands every pending alert to the webhook outbox and the sink now, on this thread; returns how
    /// many. Nothing to do without a sink or webhooks (or spend control).
    pub fn deliver_alerts(&self) -> Result<usize> {
        match &self.inner.alerts {
            Some(pump) => pump.deliver_now(),
            None => Ok(0),
        }
    }

    /// The webhook sender, when endpoints are configured: its deliveries and stats.
    pub fn webhooks(&self) -> Option<&Webhooks> {
        self.inner.alerts.as_ref().and_then(AlertPump::webhooks)
    }

    fn alert_pump(&self) -> Result<&AlertPump> {
        self.spend()?;
        self.inner.alerts.as_ref().ok_or_else(|| Error::new(crate::ErrorCode::Unsupported, "no alert pump"))
    }

    /// The spend handle when a call must be checked: some limit or account exists (one atomic load
    /// on the fast path, see [`Spend::is_active`]).
    pub(crate) fn active_spend(&self) -> Option<&Spend> {
        self.inner.spend.as_ref().filter(|s| s.is_active())
    }

    /// The model a call is priced as (an Azure deployment mapped to its model).
    pub(crate) fn priced_model<'a>(&'a self, call: &'a CallInfo) -> &'a str {
        self.model_for(call)
    }

    /// Parses, prices and records a finished non-streaming call.
    pub fn record_response(
        &self,
        call: &CallInfo,
        request_json: Option<&str>,
        response_json: &str,
        latency_ms: u64,
    ) -> Result<Tracked> {
        let request = request_json.map(serde_json::from_str::<serde_json::Value>).transpose()?;
        let parsed = usage::parse_response(call.provider, call.api, response_json, request.as_ref());
        let request_id = response_id(response_json);
        let (usage, parse_error) = match parsed {
            Ok(u) => (u, None),
            Err(e) => (Usage::default(), Some(e)),
        };
        self.record(call, usage, parse_error, true, None, request_id, latency_ms)
    }

    /// Records a call the provider failed (4xx/5xx, connection error) as a failed event.
    pub(crate) fn record_failure(&self, call: &CallInfo, error_class: &str, latency_ms: u64) -> Result<Tracked> {
        self.record(call, Usage::default(), None, false, Some(error_class.to_string()), None, latency_ms)
    }

    /// Starts accumulating a stream. The prompt is counted locally from the request's messages so an
    /// aborted stream that never reported input still gets an (estimated, flagged) input count.
    pub(crate) fn start_stream(&self, call: CallInfo, request_json: Option<&str>) -> TrackedStream {
        let model = self.model_for(&call).to_string();
        let mut acc = StreamAccumulator::new(call.provider, call.api, &model);
        if let Some(estimate) = request_json.and_then(|r| prompt_estimate(&model, r)) {
            acc = acc.with_prompt_estimate(estimate);
        }
        TrackedStream {
            tracker: self.clone(),
            call,
            acc,
            hide_usage_chunk: false,
            request_id: None,
            id_looked_up: false,
        }
    }

    /// The records of streams recorded because they were dropped unfinished (see
    /// [`crate::call::CallStream`]), since the last call; empty unless `keep_dropped_records` is set.
    pub fn take_dropped(&self) -> Vec<Tracked> {
        match &self.inner.dropped {
            Some(dropped) => std::mem::take(&mut *dropped.lock().unwrap_or_else(|p| p.into_inner())),
            None => Vec::new(),
        }
    }

    pub(crate) fn note_dropped(&self, tracked: Tracked) {
        if let Some(dropped) = &self.inner.dropped {
            dropped.lock().unwrap_or_else(|p| p.into_inner()).push(tracked);
        }
    }

    /// [`Tracker::usage`] over the current day, week (from Monday) or month in the tracker's zone
    /// (or the query's).
    pub fn usage_in(&self, query: &UsageQuery, timeframe: crate::report::Timeframe) -> Result<Vec<ReportRow>> {
        let zone = query.timezone.clone().unwrap_or_else(|| self.inner.timezone.clone());
        let query = UsageQuery { timezone: Some(zone), ..query.clone() }.within(timeframe, Utc::now())?;
        self.usage(&query)
    }

    /// Report rows from the ledger, costs in USD. A query without a time zone groups days and months in
    /// the tracker's zone.
    pub fn usage(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        if query.timezone.is_some() {
            return self.inner.ledger.query(query);
        }
        let query = UsageQuery { timezone: Some(self.inner.timezone.clone()), ..query.clone() };
        self.inner.ledger.query(&query)
    }

    /// [`Tracker::usage_rows`] over the current day, week or month (see [`Tracker::usage_in`]).
    pub fn usage_rows_in(&self, query: &UsageQuery, timeframe: crate::report::Timeframe) -> Result<Vec<ReportRowView>> {
        let rows = self.usage_in(query, timeframe)?;
        Ok(rows.into_iter().map(|r| r.in_currency(&self.inner.currency, self.inner.rate)).collect())
    }

    /// Report rows as the bindings return them ([`ReportRowView`]): [`Tracker::usage`] with each cost
    /// also in the tracker's currency.
    pub fn usage_rows(&self, query: &UsageQuery) -> Result<Vec<ReportRowView>> {
        let rows = self.usage(query)?;
        Ok(rows.into_iter().map(|r| r.in_currency(&self.inner.currency, self.inner.rate)).collect())
    }

    /// Tracked against billed ([`crate::org`]): the ledger's events (flushed first) beside the cost
    /// reports pulled into the same store (`llmledger pull`), per group, with the difference and its
    /// likely cause. In USD, UTC days.
    pub fn reconcile(&self, query: &ReconcileQuery) -> Result<Vec<ReconcileRow>> {
        self.flush()?;
        let until = query.until.unwrap_or_else(|| Utc::now().date_naive());
        // The org tables take days `[since, until)`; the query's `until` is inclusive.
        let end = until.succ_opt().unwrap_or(until);
        let org = Org::open(&self.inner.store_url)?;
        org.reconcile(&self.inner.ledger, query.since, end, &query.by, query.threshold_pct, &self.inner.prices)
    }

    /// Returns when every event recorded so far is durable in the store.
    pub fn flush(&self) -> Result<()> {
        self.inner.ledger.flush()
    }

    /// The ledger's state, for an operator or a `/health` endpoint (cheap).
    pub fn health(&self) -> LedgerHealth {
        self.inner.ledger.health()
    }

    /// Operator notices (store down, still down, recovered) queued since the last call; with `wait`,
    /// waits up to that long for one. The bindings route them to their loggers.
    pub fn take_notices(&self, wait: Option<std::time::Duration>) -> Vec<Notice> {
        let spend = self.inner.spend.as_ref().map(Spend::take_notices).unwrap_or_default();
        // Spend notices waiting: no reason to wait for a ledger one as well.
        let mut notices = self.inner.ledger.take_notices(if spend.is_empty() { wait } else { None });
        notices.extend(spend);
        notices
    }

    /// Delivers the pending alerts and stops the alert pump (the webhooks send what is due now), then
    /// flushes and stops the ledger writer.
    pub fn close(&self) -> Result<()> {
        let alerts = self.inner.alerts.as_ref().map_or(Ok(()), AlertPump::close);
        let ledger = self.inner.ledger.close();
        alerts.and(ledger)
    }

    /// The pre-flight estimate of a request, in the tracker's currency.
    pub fn estimate(&self, request: &EstimateRequest<'_>) -> Result<Estimate> {
        estimate(&self.inner.prices, &self.inner.rates, &self.inner.currency, request, Utc::now())
    }

    fn model_for<'a>(&'a self, call: &'a CallInfo) -> &'a str {
        match call.provider {
            Provider::Azure => self.inner.azure_deployments.get(&call.model).map(String::as_str).unwrap_or(&call.model),
            _ => &call.model,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        call: &CallInfo,
        usage: Usage,
        parse_error: Option<Error>,
        success: bool,
        error_class: Option<String>,
        request_id: Option<String>,
        latency_ms: u64,
    ) -> Result<Tracked> {
        let timestamp = Utc::now();
        let model = self.model_for(call);
        let options =
            PriceOptions { batch: call.batch, service_tier: call.service_tier.clone(), ..PriceOptions::default() };
        let priced = match parse_error {
            Some(e) => Err(e),
            // A failed call with no usage costs nothing, exactly; there is nothing to price.
            None if !success && usage == Usage::default() => Ok(None),
            None => self
                .inner
                .prices
                .price(&usage, model, timestamp, &options)
                .and_then(|c| c.convert(&self.inner.rates, &self.inner.currency))
                .map(Some),
        };
        let (cost, pricing_error) = match priced {
            Ok(c) => (c, None),
            Err(e) => (None, Some(e)),
        };
        let event_id = request_id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let tracked = Tracked {
            event_id,
            timestamp,
            provider: call.provider,
            api: call.api,
            model: call.model.clone(),
            resolved_model: cost.as_ref().map(|c| c.model.to_string()),
            usage,
            cost,
            currency: self.inner.currency.clone(),
            pricing_error,
            attribution: call.attribution.clone(),
            latency_ms,
            success,
            error_class,
            request_id,
        };
        self.inner.ledger.record(tracked.to_event(options))?;
        Ok(tracked)
    }
}

/// The provider's response id, used as the idempotency key: `id` at the top level (OpenAI, Anthropic
/// messages), Gemini's `responseId`, or the `id` of the object a stream's first event wraps
/// (Anthropic `message_start.message`, Responses `response.created.response`). An id the ledger would
/// reject (empty, > 256 bytes) falls back to a minted one: the event is kept.
fn response_id(response_json: &str) -> Option<String> {
    leading_id(response_json).or_else(|| any_id(response_json)).filter(|id| !id.is_empty() && id.len() <= 256)
}

/// `id` when it is the object's first key, as OpenAI and Anthropic send it: read without a second pass
/// over the whole body (the usage parse already made one).
fn leading_id(response_json: &str) -> Option<String> {
    let rest = response_json.trim_start().strip_prefix('{')?.trim_start().strip_prefix("\"id\"")?;
    let value = rest.trim_start().strip_prefix(':')?;
    serde_json::Deserializer::from_str(value).into_iter::<String>().next()?.ok()
}

fn any_id(response_json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Inner {
        id: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Ids {
        id: Option<String>,
        #[serde(rename = "responseId")]
        response_id: Option<String>,
        message: Option<Inner>,
        response: Option<Inner>,
    }
    let ids = serde_json::from_str::<Ids>(response_json).ok()?;
    let nested = ids.message.and_then(|m| m.id).or_else(|| ids.response.and_then(|r| r.id));
    ids.id.or(ids.response_id).or(nested)
}

/// A local count of a request's prompt, from its `messages` (or `input`), when it has any.
fn prompt_estimate(model: &str, request_json: &str) -> Option<u64> {
    let request: serde_json::Value = serde_json::from_str(request_json).ok()?;
    let messages = request.get("messages").or_else(|| request.get("input"))?;
    match messages {
        serde_json::Value::String(text) => tokens::count_text(model, text).ok().map(|c| c.tokens),
        _ => tokens::count_chat(model, messages, request.get("tools")).ok().map(|c| c.tokens),
    }
}

/// One stream being accumulated. Feed every raw SSE event to [`TrackedStream::push`], then
/// [`TrackedStream::finish`] once, when the stream ended or the caller abandoned it.
#[derive(Debug)]
pub(crate) struct TrackedStream {
    tracker: Tracker,
    call: CallInfo,
    acc: StreamAccumulator,
    hide_usage_chunk: bool,
    request_id: Option<String>,
    id_looked_up: bool,
}

impl TrackedStream {
    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Asks [`push`](Self::push) to report the usage-only chunk (OpenAI chat with `include_usage`
    /// injected by the binding) so the binding can hide it from the caller.
    pub fn hide_usage_chunk(&mut self, hide: bool) {
        self.hide_usage_chunk = hide;
    }

    /// Feeds one raw event; `Ok(true)` means "this is the injected usage-only chunk: hide it".
    pub fn push(&mut self, event: Option<&str>, data: &str) -> Result<bool> {
        // Only the first event names the response; looking further would parse every chunk twice.
        if !self.id_looked_up && !data.trim().is_empty() {
            self.id_looked_up = true;
            self.request_id = response_id(data);
        }
        self.acc.push(event, data)?;
        Ok(self.hide_usage_chunk && self.acc.last_was_usage_only())
    }

    /// Records the stream. `aborted`: the caller stopped early or an error broke the stream.
    pub fn finish(self, latency_ms: u64, aborted: bool) -> Result<Tracked> {
        let usage = if aborted { self.acc.finish_aborted() } else { self.acc.finish() };
        self.tracker.record(&self.call, usage, None, true, None, self.request_id, latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::event::UsageEvent;
    use crate::report::GroupBy;
    use crate::ErrorCode;

    fn tracker(currency: &str) -> Tracker {
        let mut config = TrackerConfig { store: Some("memory://".into()), ..TrackerConfig::default() };
        if currency != "USD" {
            config.currency = currency.into();
            config.rates.insert(currency.into(), "1391.50".into());
        }
        Tracker::new(config).expect("valid config")
    }

    fn call(provider: Provider, api: Api, model: &str, user: &str) -> CallInfo {
        CallInfo {
            provider,
            api,
            model: model.into(),
            attribution: Attribution { user_id: Some(user.into()), ..Attribution::default() },
            batch: false,
            service_tier: None,
        }
    }

    const CHAT: &str = r#"{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","usage":{"prompt_tokens":1200,
        "completion_tokens":350,"total_tokens":1550,"prompt_tokens_details":{"cached_tokens":1024}}}"#;

    #[test]
    fn a_response_is_priced_attributed_and_recorded_once() {
        let t = tracker("USD");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", "u1");
        let tracked = t.record_response(&c, None, CHAT, 12).expect("recorded");
        assert_eq!(tracked.event_id, "chatcmpl-1");
        assert_eq!(tracked.usage.input_tokens, 176);
        assert_eq!(tracked.cost.as_ref().map(|c| c.total), Some(dec!(0.00522)));
        // The same response recorded again (a retry) is stored once: the id is the idempotency key.
        t.record_response(&c, None, CHAT, 12).expect("recorded");
        t.flush().expect("flushed");
        let query = UsageQuery { group_by: vec![GroupBy::User], ..UsageQuery::default() };
        let rows = t.usage(&query).expect("report");
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].requests, rows[0].cost_usd), (1, dec!(0.00522)));
        assert_eq!(rows[0].get(GroupBy::User), Some("u1"));
    }

    #[test]
    fn an_unusable_response_id_gets_a_minted_one() {
        let t = tracker("USD");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", "u1");
        let long = CHAT.replace("chatcmpl-1", &"x".repeat(300));
        let tracked = t.record_response(&c, None, &long, 1).expect("recorded");
        assert_eq!(tracked.event_id.len(), 36, "a UUIDv7");
        assert_eq!(tracked.request_id, None);
    }

    #[test]
    fn costs_are_converted_with_the_rate_kept() {
        let t = tracker("KRW");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", "u1");
        let cost = t.record_response(&c, None, CHAT, 1).expect("recorded").cost.expect("priced");
        assert_eq!((cost.currency.as_str(), cost.rate, cost.total), ("KRW", dec!(1391.50), dec!(7.263630)));
    }

    #[test]
    fn the_record_shows_the_breakdown_and_currency_of_the_tracker() {
        let t = tracker("KRW");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", "u1");
        let record: serde_json::Value =
            serde_json::from_str(&t.record_response(&c, None, CHAT, 1).expect("recorded").to_json()).expect("JSON");
        // 176 × $2.50/M = 0.00044, 1,024 × $1.25/M = 0.00128, 350 × $10/M = 0.0035; each × 1,391.5.
        let krw = serde_json::json!({"input": "0.61226", "cache_read": "1.78112", "output": "4.87025"});
        assert_eq!((&record["breakdown"], &record["cost"]["total"]), (&krw, &serde_json::json!("7.26363")));
        assert_eq!(record.as_object().map(|o| o.len()), Some(Tracked::KEYS.len()));
        let unknown = call(Provider::OpenAi, Api::ChatCompletions, "gpt-9-imaginary", "u1");
        let record: serde_json::Value =
            serde_json::from_str(&t.record_response(&unknown, None, CHAT, 1).expect("recorded").to_json())
                .expect("JSON");
        assert_eq!((&record["currency"], &record["cost"]), (&serde_json::json!("KRW"), &serde_json::Value::Null));
        assert_eq!(record["pricing_error"]["code"], "unknown_model");
    }

    #[test]
    fn unknown_models_are_recorded_flagged_never_free() {
        let t = tracker("USD");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-9-imaginary", "u1");
        let tracked = t.record_response(&c, None, CHAT, 1).expect("recorded");
        assert!(tracked.cost.is_none());
        assert_eq!(tracked.pricing_error.as_ref().map(Error::code), Some(ErrorCode::UnknownModel));
        t.flush().expect("flushed");
        let rows = t.usage(&UsageQuery::default()).expect("report");
        assert_eq!((rows[0].requests, rows[0].unpriced), (1, 1));
    }

    #[test]
    fn unparseable_responses_and_failures_are_still_recorded() {
        let t = tracker("USD");
        let c = call(Provider::Anthropic, Api::Messages, "claude-sonnet-4-5", "u2");
        let bad = t.record_response(&c, None, "not json", 3).expect("recorded");
        assert_eq!(bad.pricing_error.as_ref().map(Error::code), Some(ErrorCode::InvalidJson));
        let failed = t.record_failure(&c, "RateLimitError", 5).expect("recorded");
        assert!(!failed.success && failed.cost.is_none() && failed.pricing_error.is_none());
        t.flush().expect("flushed");
        let rows = t.usage(&UsageQuery::default()).expect("report");
        assert_eq!((rows[0].requests, rows[0].failed), (2, 1));
    }

    #[test]
    fn the_injected_usage_chunk_is_reported_for_hiding() {
        let t = tracker("USD");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-4o-mini", "u3");
        let mut stream = t.start_stream(c, Some(r#"{"messages":[{"role":"user","content":"hi"}]}"#));
        stream.hide_usage_chunk(true);
        let delta = r#"{"id":"c2","choices":[{"index":0,"delta":{"content":"Hello"}}]}"#;
        let usage = r#"{"id":"c2","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#;
        assert_eq!(stream.push(None, delta), Ok(false));
        assert_eq!(stream.push(None, usage), Ok(true));
        assert_eq!(stream.push(None, "[DONE]"), Ok(false));
        let tracked = stream.finish(40, false).expect("recorded");
        assert_eq!((tracked.usage.input_tokens, tracked.usage.output_tokens), (9, 1));
        assert_eq!(tracked.event_id, "c2");
        assert_eq!(tracked.cost.map(|c| c.total_usd), Some(dec!(0.00000195)));
    }

    #[test]
    fn a_running_usage_beside_content_is_never_hidden() {
        let t = tracker("USD");
        let mut stream = t.start_stream(call(Provider::Xai, Api::ChatCompletions, "grok-4", "u3"), None);
        stream.hide_usage_chunk(true);
        let both =
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        assert_eq!(stream.push(None, both), Ok(false));
    }

    #[test]
    fn an_anthropic_stream_is_keyed_by_its_message_id() {
        let t = tracker("USD");
        let mut stream = t.start_stream(call(Provider::Anthropic, Api::Messages, "claude-haiku-4-5", "u4"), None);
        let start =
            r#"{"type":"message_start","message":{"id":"msg_01","usage":{"input_tokens":10,"output_tokens":1}}}"#;
        let delta = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#;
        stream.push(Some("message_start"), start).expect("ok");
        stream.push(Some("message_delta"), delta).expect("ok");
        stream.push(Some("message_stop"), r#"{"type":"message_stop"}"#).expect("ok");
        let tracked = stream.finish(3, false).expect("recorded");
        assert_eq!(tracked.event_id, "msg_01");
        // 10 input at $1/M + 5 output at $5/M.
        assert_eq!(tracked.cost.map(|c| c.total_usd), Some(dec!(0.000035)));
    }

    #[test]
    fn an_abandoned_stream_is_estimated_and_flagged() {
        let t = tracker("USD");
        let c = call(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", "u3");
        let mut stream = t.start_stream(c, Some(r#"{"messages":[{"role":"user","content":"Say hello"}]}"#));
        stream.push(None, r#"{"id":"c3","choices":[{"index":0,"delta":{"content":"Hello there"}}]}"#).expect("ok");
        let tracked = stream.finish(7, true).expect("recorded");
        assert_eq!(tracked.usage.usage_source, crate::UsageSource::Estimated);
        assert!(tracked.usage.flags.contains(&crate::UsageFlag::StreamAborted));
        assert_eq!(tracked.usage.output_tokens, 2);
        assert!(tracked.usage.input_tokens > 0);
    }

    /// A priced gpt-4o event at `at` (RFC 3339) costing `usd`, or unpriced when `usd` is `None`.
    fn event_at(id: &str, at: &str, usd: Option<Decimal>, latency_ms: u64) -> UsageEvent {
        let timestamp = DateTime::parse_from_rfc3339(at).expect("RFC 3339").with_timezone(&Utc);
        let usage = Usage { input_tokens: 100, output_tokens: 10, ..Usage::default() };
        let event = UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", usage)
            .with_id(id)
            .with_timestamp(timestamp)
            .with_latency_ms(latency_ms);
        match usd {
            None => event.unpriced("unknown_model"),
            Some(usd) => event.with_cost(crate::Cost {
                provider: Provider::OpenAi,
                model: "gpt-4o".into(),
                price_version: chrono::NaiveDate::default(),
                price_data: String::new(),
                breakdown: crate::Breakdown { input: usd, ..crate::Breakdown::default() },
                total_usd: usd,
                currency: "USD".into(),
                rate: Decimal::ONE,
                total: usd,
                tier_above: None,
                uncertain: false,
            }),
        }
    }

    #[test]
    fn reports_group_days_in_the_trackers_zone_and_convert_costs() {
        let config = TrackerConfig {
            store: Some("memory://".into()),
            currency: "KRW".into(),
            rates: [("KRW".to_string(), "1391.50".to_string())].into(),
            timezone: "Asia/Seoul".into(),
            ..TrackerConfig::default()
        };
        let t = Tracker::new(config).expect("valid config");
        // Seoul is UTC+9: 14:59:59Z is 23:59:59 on 1 Nov in Seoul, 15:00Z and 20:00Z are 2 Nov.
        for e in [
            event_at("e1", "2026-11-01T14:59:59Z", Some(dec!(0.004)), 100),
            event_at("e2", "2026-11-01T15:00:00Z", Some(dec!(0.00522)), 300),
            event_at("e3", "2026-11-01T20:00:00Z", None, 200),
        ] {
            t.inner.ledger.record(e).expect("recorded");
        }
        t.flush().expect("flushed");
        let by_day = UsageQuery { group_by: vec![GroupBy::Day], ..UsageQuery::default() };
        let rows: Vec<serde_json::Value> =
            t.usage_rows(&by_day).expect("report").iter().map(|r| serde_json::to_value(r).expect("JSON")).collect();
        // 1 Nov: $0.004 × 1,391.5 = ₩5.566. 2 Nov: $0.00522 × 1,391.5 = ₩7.26363 (e3 unpriced);
        // mean latency (300 + 200) / 2 = 250.
        let expected = serde_json::json!([
            {"day": "2026-11-01", "requests": 1, "successful": 1, "failed": 0, "unpriced": 0, "input_tokens": 100,
             "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 10, "reasoning_tokens": 0,
             "cost": "5.566", "cost_usd": "0.004", "currency": "KRW", "avg_latency_ms": "100",
             "p95_latency_ms": null},
            {"day": "2026-11-02", "requests": 2, "successful": 2, "failed": 0, "unpriced": 1, "input_tokens": 200,
             "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 20, "reasoning_tokens": 0,
             "cost": "7.26363", "cost_usd": "0.00522", "currency": "KRW", "avg_latency_ms": "250",
             "p95_latency_ms": null},
        ]);
        assert_eq!(serde_json::Value::Array(rows), expected);
        // The same events in UTC days: one day, $0.00922 × 1,391.5 = ₩12.82963; p95 of
        // [100, 200, 300] is the 3rd (nearest rank ⌈0.95 × 3⌉ = 3): 300.
        let utc = UsageQuery { timezone: Some("UTC".into()), p95: true, ..by_day };
        let rows = t.usage_rows(&utc).expect("report");
        assert_eq!(rows.len(), 1);
        let row = serde_json::to_value(&rows[0]).expect("JSON");
        assert_eq!(
            (&row["day"], &row["cost"], &row["cost_usd"]),
            (&"2026-11-01".into(), &"12.82963".into(), &"0.00922".into())
        );
        assert_eq!(row["p95_latency_ms"], 300);
        let keys: Vec<&str> = row.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        let mut documented = ReportRowView::KEYS.to_vec();
        documented.push("day");
        documented.sort_unstable();
        assert_eq!(keys, documented);
    }

    #[test]
    fn bad_configuration_fails_at_construction() {
        let code = |config: TrackerConfig| Tracker::new(config).err().map(|e| e.code());
        let base = || TrackerConfig { store: Some("memory://".into()), ..TrackerConfig::default() };
        assert_eq!(code(TrackerConfig { currency: "KRW".into(), ..base() }), Some(ErrorCode::Config));
        assert_eq!(code(TrackerConfig { store: Some("mysql://x".into()), ..base() }), Some(ErrorCode::Config));
        assert_eq!(code(TrackerConfig { timezone: "Mars/Base".into(), ..base() }), Some(ErrorCode::Config));
        assert_eq!("loud".parse::<UnknownModelPolicy>().map_err(|e| e.code()), Err(ErrorCode::Config));
    }

    #[test]
    fn estimates_price_the_prompt_and_the_worst_case() {
        let t = tracker("USD");
        let messages = serde_json::json!([{"role": "user", "content": "Hello"}]);
        let request = EstimateRequest { max_output_tokens: Some(1000), ..EstimateRequest::new("gpt-4o", &messages) };
        let e = t.estimate(&request).expect("estimated");
        // 3 (message) + 1 ("user") + 1 ("Hello") + 3 (reply priming) = 8 tokens at $2.50/M.
        assert_eq!((e.input_tokens, e.min_cost), (8, dec!(0.00002)));
        assert_eq!(e.max_cost, dec!(0.01002));
    }
}
