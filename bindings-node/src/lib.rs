//! Node.js bindings of llmledger (napi-rs): only glue between the JS layer (`bindings-node/js/`) and
//! `llmledger_core::tracker`.
//!
//! Owns: the native classes `NativeTracker` / `NativeStream` and the free functions the JS layer calls,
//! the conversions of their arguments and results ([`convert`]), the one mapping of core errors to JS
//! errors ([`error`]), and moving blocking work (flush, close, usage reports) onto libuv's thread pool.
//! Recording itself never blocks: the core queues events for its writer thread. No accounting logic lives
//! here; the SDK wrappers live in the JS layer.

mod convert;
pub mod cost;
mod error;

use chrono::Utc;
use napi::bindgen_prelude::{AsyncTask, Float64ArraySlice};
use napi::{Env, Task};
use napi_derive::napi;
use rust_decimal::Decimal;

use convert::{
    call_info, num, EstimateResult, Money, TokenCountResult, TokenUsage, TrackerOptions, UsageQueryInput, UsageRow,
};
use error::{to_js_error, OrThrow};

pub(crate) use llmledger_core as core;

use crate::core::args::count_from_f64;
use crate::core::estimate::EstimateRequest;
use crate::core::tracker::{self, TrackedStream, Tracker};
use crate::core::{tokens, Error, PriceDb, Rates, Result};

/// The Rust tracker: parses, prices and records calls; answers usage reports.
#[napi]
#[derive(Debug)]
pub struct NativeTracker {
    /// A handle: clones share the ledger, so background tasks take one.
    inner: Tracker,
    /// The configured time zone: the default of usage reports' day/month groups.
    timezone: String,
}

#[napi]
impl NativeTracker {
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<TrackerOptions>) -> napi::Result<Self> {
        let options = options.unwrap_or_default();
        let timezone = options.timezone.clone().unwrap_or_else(|| "UTC".to_string());
        let inner = options.into_config().and_then(Tracker::new).or_throw(&env)?;
        Ok(NativeTracker { inner, timezone })
    }

    /// ISO 4217 code of the costs this tracker reports.
    #[napi(getter)]
    pub fn currency(&self) -> String {
        self.inner.currency().to_string()
    }

    /// `"error"`: an unpriced call is also reported to the caller (the JS layer's `onError`); `"flag"`: not.
    #[napi(getter)]
    pub fn unknown_model(&self) -> String {
        match self.inner.unknown_model_policy() {
            tracker::UnknownModelPolicy::Error => "error".to_string(),
            tracker::UnknownModelPolicy::Flag => "flag".to_string(),
        }
    }

    /// Records a finished non-streaming call from its (reduced) response JSON. Returns the recorded call
    /// as `TokenUsage` JSON.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn record_response(
        &self,
        env: Env,
        provider: String,
        api: String,
        model: String,
        attribution_json: Option<String>,
        service_tier: Option<String>,
        request_json: Option<String>,
        response_json: String,
        latency_ms: f64,
    ) -> napi::Result<String> {
        // A number from the public `record()` too: checked by core's rule, never wrapped around.
        let latency_ms = count_from_f64("latencyMs", latency_ms).or_throw(&env)?;
        let call = call_info(&provider, &api, model, attribution_json.as_deref(), service_tier).or_throw(&env)?;
        let tracked =
            self.inner.record_response(&call, request_json.as_deref(), &response_json, latency_ms).or_throw(&env)?;
        Ok(TokenUsage::json(tracked))
    }

    /// Records a provider error (HTTP status, connection failure) as a failed event; `TokenUsage` JSON.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn record_failure(
        &self,
        env: Env,
        provider: String,
        api: String,
        model: String,
        attribution_json: Option<String>,
        service_tier: Option<String>,
        error_class: String,
        latency_ms: u32,
    ) -> napi::Result<String> {
        let call = call_info(&provider, &api, model, attribution_json.as_deref(), service_tier).or_throw(&env)?;
        let tracked = self.inner.record_failure(&call, &error_class, u64::from(latency_ms)).or_throw(&env)?;
        Ok(TokenUsage::json(tracked))
    }

    /// Starts accumulating a stream. `hideUsageChunk`: the JS layer injected `include_usage`, so the
    /// usage-only chunk is reported by `push` for hiding.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn start_stream(
        &self,
        env: Env,
        provider: String,
        api: String,
        model: String,
        attribution_json: Option<String>,
        service_tier: Option<String>,
        request_json: Option<String>,
        hide_usage_chunk: bool,
    ) -> napi::Result<NativeStream> {
        let call = call_info(&provider, &api, model, attribution_json.as_deref(), service_tier).or_throw(&env)?;
        let mut stream = self.inner.start_stream(call, request_json.as_deref());
        stream.hide_usage_chunk(hide_usage_chunk);
        Ok(NativeStream { inner: Some(stream) })
    }

    /// A usage report, computed off the main thread.
    #[napi(ts_return_type = "Promise<Array<UsageRow>>")]
    pub fn usage(&self, env: Env, query: Option<UsageQueryInput>) -> napi::Result<AsyncTask<UsageTask>> {
        let query = query.unwrap_or_default().into_query(&self.timezone).or_throw(&env)?;
        Ok(AsyncTask::new(UsageTask { tracker: self.inner.clone(), query }))
    }

    /// Waits until every event recorded so far is stored, off the main thread.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush(&self) -> AsyncTask<LedgerTask> {
        AsyncTask::new(LedgerTask { tracker: self.inner.clone(), close: false })
    }

    /// Flushes and closes the ledger, off the main thread. Later recordings fail with code `closed`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<LedgerTask> {
        AsyncTask::new(LedgerTask { tracker: self.inner.clone(), close: true })
    }

    /// `flush()` on the calling thread, for the `exit` hook where nothing asynchronous can run.
    /// The ledger's health as `LedgerHealth` JSON (the JS layer parses it).
    #[napi]
    pub fn health_json(&self, env: Env) -> napi::Result<String> {
        serde_json::to_string(&self.inner.health()).map_err(Error::from).or_throw(&env)
    }

    /// Operator notices queued since the last call, as a JSON array (never waits: the JS layer polls).
    #[napi]
    pub fn take_notices_json(&self, env: Env) -> napi::Result<String> {
        serde_json::to_string(&self.inner.take_notices(None)).map_err(Error::from).or_throw(&env)
    }

    #[napi]
    pub fn flush_sync(&self, env: Env) -> napi::Result<()> {
        self.inner.flush().or_throw(&env)
    }

    /// `close()` on the calling thread, for the `exit` hook.
    #[napi]
    pub fn close_sync(&self, env: Env) -> napi::Result<()> {
        self.inner.close().or_throw(&env)
    }

    /// A pre-flight estimate in the tracker's currency.
    #[napi]
    pub fn estimate(
        &self,
        env: Env,
        model: String,
        messages_json: String,
        tools_json: Option<String>,
        max_output_tokens: Option<f64>,
        expected_cache_hit: Option<String>,
    ) -> napi::Result<EstimateResult> {
        let est = estimate_with(
            |req| self.inner.estimate(req),
            &model,
            &messages_json,
            tools_json.as_deref(),
            max_output_tokens,
            expected_cache_hit,
        )
        .or_throw(&env)?;
        Ok(estimate_result(est))
    }

    /// The cost of a given usage with this tracker's prices, in its currency (see [`cost`]: the counts
    /// in one array, the compact result).
    #[napi]
    pub fn cost(
        &self,
        env: Env,
        model: String,
        counts: Float64ArraySlice,
        extras: Option<cost::CostExtras>,
    ) -> napi::Result<String> {
        let to = Some((self.inner.rates(), self.inner.currency()));
        cost::price_compact(self.inner.prices(), &model, &counts, extras, to).or_throw(&env)
    }
}

/// One stream being accumulated; `finish` records it.
#[napi]
#[derive(Debug)]
pub struct NativeStream {
    inner: Option<TrackedStream>,
}

fn finished() -> Error {
    Error::new(crate::core::ErrorCode::Closed, "the stream was already finished")
}

#[napi]
impl NativeStream {
    /// One SSE event: `event` = its `event:` field (or null), `data` = its `data:` payload. Returns true
    /// when the event is the injected usage-only chunk, which the caller should not see.
    #[napi]
    pub fn push(&mut self, env: Env, event: Option<String>, data: String) -> napi::Result<bool> {
        match self.inner.as_mut() {
            Some(stream) => stream.push(event.as_deref(), &data).or_throw(&env),
            None => Err(to_js_error(&env, &finished())),
        }
    }

    /// Records the stream. `aborted`: stopped early by the caller or broken by an error. `TokenUsage` JSON.
    #[napi]
    pub fn finish(&mut self, env: Env, latency_ms: u32, aborted: bool) -> napi::Result<String> {
        let stream = self.inner.take().ok_or_else(|| to_js_error(&env, &finished()))?;
        let tracked = stream.finish(u64::from(latency_ms), aborted).or_throw(&env)?;
        Ok(TokenUsage::json(tracked))
    }
}

/// Background `flush` / `close`.
#[derive(Debug)]
pub struct LedgerTask {
    tracker: Tracker,
    close: bool,
}

impl Task for LedgerTask {
    type Output = Result<()>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(if self.close { self.tracker.close() } else { self.tracker.flush() })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        output.or_throw(&env)
    }
}

/// Background usage report.
#[derive(Debug)]
pub struct UsageTask {
    tracker: Tracker,
    query: crate::core::report::UsageQuery,
}

impl Task for UsageTask {
    type Output = Result<Vec<crate::core::report::ReportRow>>;
    type JsValue = Vec<UsageRow>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.tracker.usage(&self.query))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Vec<UsageRow>> {
        let currency = self.tracker.currency();
        // Report rows are USD; the tracker's rate converts them (1 for USD; a non-USD tracker always has one).
        let rate = self.tracker.rates().get(currency).unwrap_or(Decimal::ONE);
        Ok(output.or_throw(&env)?.into_iter().map(|row| UsageRow::new(row, currency, rate)).collect())
    }
}

/// Parses the JSON arguments of an estimate and runs `run` on the request.
fn estimate_with(
    run: impl FnOnce(&EstimateRequest<'_>) -> Result<tracker::Estimate>,
    model: &str,
    messages_json: &str,
    tools_json: Option<&str>,
    max_output_tokens: Option<f64>,
    expected_cache_hit: Option<String>,
) -> Result<tracker::Estimate> {
    let messages: serde_json::Value = serde_json::from_str(messages_json)?;
    let tools: Option<serde_json::Value> = tools_json.map(serde_json::from_str).transpose()?;
    let request = EstimateRequest {
        model,
        messages: &messages,
        tools: tools.as_ref(),
        max_output_tokens: max_output_tokens.map(|v| count_from_f64("maxOutputTokens", v)).transpose()?,
        expected_cache_hit: parse_fraction(expected_cache_hit)?,
    };
    run(&request)
}

fn parse_fraction(s: Option<String>) -> Result<Option<Decimal>> {
    s.map(|s| {
        s.parse::<Decimal>()
            .map_err(|_| Error::invalid_value("expectedCacheHit", &s, "expected a decimal between 0 and 1"))
    })
    .transpose()
}

fn estimate_result(e: tracker::Estimate) -> EstimateResult {
    EstimateResult {
        input_tokens: num(e.input_tokens),
        exact: e.exact,
        input_cost: Money::new(e.input_cost, &e.currency),
        max_output_tokens: num(e.max_output_tokens),
        min_cost: Money::new(e.min_cost, &e.currency),
        max_cost: Money::new(e.max_cost, &e.currency),
        model: e.model,
        currency: e.currency,
    }
}

/// The provider behind an OpenAI-compatible base URL (core's one rule for every binding).
#[napi]
pub fn provider_for_base_url(url: String) -> &'static str {
    crate::core::Provider::from_base_url(&url).as_str()
}

/// Tokens of `text` as `model` counts them.
#[napi]
pub fn count_tokens(env: Env, model: String, text: String) -> napi::Result<TokenCountResult> {
    let c = tokens::count_text(&model, &text).or_throw(&env)?;
    Ok(TokenCountResult { tokens: num(c.tokens), exact: c.exact })
}

/// Tokens of a chat request (`messages` and optional `tools` as JSON), with the model's message overhead.
#[napi]
pub fn count_chat(
    env: Env,
    model: String,
    messages_json: String,
    tools_json: Option<String>,
) -> napi::Result<TokenCountResult> {
    let messages: serde_json::Value = serde_json::from_str(&messages_json).map_err(Error::from).or_throw(&env)?;
    let tools: Option<serde_json::Value> =
        tools_json.as_deref().map(serde_json::from_str).transpose().map_err(Error::from).or_throw(&env)?;
    let c = tokens::count_chat(&model, &messages, tools.as_ref()).or_throw(&env)?;
    Ok(TokenCountResult { tokens: num(c.tokens), exact: c.exact })
}

/// A pre-flight estimate with the embedded prices, USD.
#[napi]
pub fn estimate(
    env: Env,
    model: String,
    messages_json: String,
    tools_json: Option<String>,
    max_output_tokens: Option<f64>,
    expected_cache_hit: Option<String>,
) -> napi::Result<EstimateResult> {
    let est = estimate_with(
        |req| tracker::estimate(embedded_prices(), &Rates::new(), "USD", req, Utc::now()),
        &model,
        &messages_json,
        tools_json.as_deref(),
        max_output_tokens,
        expected_cache_hit,
    )
    .or_throw(&env)?;
    Ok(estimate_result(est))
}

/// The embedded prices, loaded once (module-level `cost()` and `estimate()`).
pub(crate) fn embedded_prices() -> &'static PriceDb {
    static EMBEDDED: std::sync::OnceLock<PriceDb> = std::sync::OnceLock::new();
    EMBEDDED.get_or_init(PriceDb::embedded)
}
