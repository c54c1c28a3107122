//! The native classes behind the JS `Tracker` and the SDK wrappers: `NativeTracker` (recording, reports,
//! the ledger's lifecycle), `NativeClient` (one wrapped SDK client: its provider and which calls are
//! tracked), `NativeAttribution` (who a call is billed to), `NativeCall` (one call in flight) and
//! `NativeStream` (one streamed response). Glue over `llmledger_core::tracker`; blocking work (flush,
//! close, reports) runs on libuv's thread pool.

use napi::bindgen_prelude::{AsyncTask, Buffer, Either, Float64ArraySlice, Uint8ArraySlice, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Task};
use napi_derive::napi;

use crate::core::alert::AlertEvent;
use crate::core::alert_pump::AlertSink;
use crate::core::args::count_from_f64;
use crate::core::call::{CallStream, Client, ClientSpec, PendingCall, RequestFacts, Sdk};
use crate::core::ledger::Attribution;
use crate::core::tracker::{self, Tracked, Tracker};
use crate::core::{Api, Error, Result};
use crate::error::OrThrow;
use crate::spend::NativeSpend;
use crate::types::{
    attribution, call_info, AttributionInput, ClientSpecInput, EstimateInput, EstimateResult, RecordInput,
    TrackerOptions, UsageQueryInput,
};
use crate::{estimate_result, estimate_with};

/// The Rust tracker: parses, prices and records calls; answers usage reports.
#[napi]
#[derive(Debug)]
pub struct NativeTracker {
    /// A handle: clones share the ledger, so background tasks take one.
    inner: Tracker,
}

#[napi]
impl NativeTracker {
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<TrackerOptions>) -> napi::Result<Self> {
        let inner = options
            .unwrap_or_default()
            .into_config()
            .and_then(|(config, options)| Tracker::with_options(config, options))
            .or_throw(&env)?;
        Ok(NativeTracker { inner })
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

    /// Starts one tracked call of `client` (`api` from `client.classify`, `path` as the SDK requests it).
    /// Positional, not one object: this is the per-call path, and napi reads arguments several times
    /// faster than object properties (~0.2 µs per property read, see `types.rs`).
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &self,
        env: Env,
        client: &NativeClient,
        api: String,
        path: String,
        model: Option<String>,
        stream: bool,
        service_tier: Option<String>,
        include_usage: Option<bool>,
        has_tools: bool,
        attribution: Option<&NativeAttribution>,
    ) -> napi::Result<NativeCall> {
        let api = api.parse::<Api>().or_throw(&env)?;
        let facts = RequestFacts {
            path: &path,
            model: model.as_deref(),
            stream,
            service_tier: service_tier.as_deref(),
            include_usage,
            has_tools,
        };
        let attribution = attribution.map(|a| a.inner.clone()).unwrap_or_default();
        Ok(NativeCall { inner: Some(self.inner.begin(&client.inner, api, &facts, attribution)), recorded: None })
    }

    /// Records (JSON) of streams dropped unfinished — recorded by core when collected — since the last
    /// call: the JS layer hands them to `onRecord` when it polls.
    #[napi]
    pub fn take_dropped(&self) -> Vec<String> {
        self.inner.take_dropped().into_iter().map(record_json).collect()
    }

    /// Records a finished call made outside a wrapped client (`Tracker.record()`), from its response body;
    /// the record's JSON.
    #[napi]
    pub fn record_response(
        &self,
        env: Env,
        input: RecordInput,
        attribution: &NativeAttribution,
    ) -> napi::Result<String> {
        // A number from the caller: checked by core's rule, never wrapped around.
        let latency_ms = count_from_f64("latencyMs", input.latency_ms.unwrap_or(0.0)).or_throw(&env)?;
        let call = call_info(&input.provider, &input.api, input.model, attribution.inner.clone()).or_throw(&env)?;
        let tracked = self
            .inner
            .record_response(&call, input.request_json.as_deref(), &input.response_json, latency_ms)
            .or_throw(&env)?;
        Ok(record_json(tracked))
    }

    /// A usage report, computed off the main thread: core's report rows as one JSON array (group keys at
    /// the top of each row; day/month groups in the tracker's zone unless the query names one).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn usage(&self, env: Env, query: Option<UsageQueryInput>) -> napi::Result<AsyncTask<UsageTask>> {
        let (query, timeframe) = query.unwrap_or_default().into_query().or_throw(&env)?;
        Ok(AsyncTask::new(UsageTask { tracker: self.inner.clone(), query, timeframe }))
    }

    /// Tracked against billed, off the main thread: `query` is core's `ReconcileQuery` as JSON; the rows
    /// (`ReconcileRow::flat`: group keys at the top, decimals as strings) as one JSON array.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn reconcile(&self, env: Env, query: String) -> napi::Result<AsyncTask<ReconcileTask>> {
        let query = crate::core::org::reconcile::ReconcileQuery::from_json(&query).or_throw(&env)?;
        Ok(AsyncTask::new(ReconcileTask { tracker: self.inner.clone(), query }))
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

    /// Spend control over the tracker's store (`unsupported` when disabled or the store cannot hold it).
    #[napi]
    pub fn spend(&self, env: Env) -> napi::Result<NativeSpend> {
        Ok(NativeSpend::new(self.inner.spend().or_throw(&env)?.clone()))
    }

    /// Sets (null: removes) the receiver of spend alerts: core's alert pump calls `callback(json)` — one
    /// `AlertEvent` as JSON — on the main thread, at least once per alert (see core's `alert_pump`). Weak:
    /// it never keeps the process alive. `unsupported` without spend control.
    #[napi]
    pub fn set_alert_sink(
        &self,
        env: Env,
        callback: Option<ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>>,
    ) -> napi::Result<()> {
        let sink = callback.map(|tsfn| -> AlertSink {
            Box::new(move |alert: &AlertEvent| {
                // Queued to the main thread, never waited for: the pump's thread does not block on JS.
                if let Ok(json) = serde_json::to_string(alert) {
                    tsfn.call(json, ThreadsafeFunctionCallMode::NonBlocking);
                }
            })
        });
        self.inner.set_alert_sink(sink).or_throw(&env)
    }

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

    /// `close()` on the calling thread, for the `exit` hook where nothing asynchronous can run.
    #[napi]
    pub fn close_sync(&self, env: Env) -> napi::Result<()> {
        self.inner.close().or_throw(&env)
    }

    /// A pre-flight estimate in the tracker's currency.
    #[napi]
    pub fn estimate(&self, env: Env, input: EstimateInput) -> napi::Result<EstimateResult> {
        let est = estimate_with(|req| self.inner.estimate(req), input).or_throw(&env)?;
        Ok(estimate_result(est))
    }

    /// The cost of a given usage with this tracker's prices, in its currency (see [`crate::cost`]: the
    /// counts in one array, the compact result).
    #[napi]
    pub fn cost(
        &self,
        env: Env,
        model: String,
        counts: Float64ArraySlice,
        extras: Option<crate::cost::CostExtras>,
    ) -> napi::Result<String> {
        let to = Some((self.inner.rates(), self.inner.currency()));
        crate::cost::price_compact(self.inner.prices(), &model, &counts, extras, to).or_throw(&env)
    }
}

/// One wrapped SDK client as core sees it: its provider (decided once, at wrap time) and which of its
/// calls are tracked.
#[napi]
#[derive(Debug)]
pub struct NativeClient {
    inner: Client,
}

#[napi]
impl NativeClient {
    #[napi(constructor)]
    pub fn new(env: Env, spec: ClientSpecInput) -> napi::Result<Self> {
        let spec = ClientSpec {
            sdk: spec.sdk.parse::<Sdk>().or_throw(&env)?,
            base_url: spec.base_url.unwrap_or_default(),
            azure: spec.azure.unwrap_or(false),
            bedrock: spec.bedrock.unwrap_or(false),
            provider: spec.provider,
            azure_deployment: spec.azure_deployment,
        };
        Ok(NativeClient { inner: Client::new(&spec).or_throw(&env)? })
    }

    /// The provider every call of this client is recorded under.
    #[napi(getter)]
    pub fn provider(&self) -> &'static str {
        self.inner.provider().as_str()
    }

    /// The API of a request (`method`, `path` as the SDK builds it), or null: not tracked, pass it through.
    #[napi]
    pub fn classify(&self, method: String, path: String) -> Option<&'static str> {
        self.inner.classify(&method, &path).map(Api::as_str)
    }
}

/// Who calls are billed to: the wrap's attribution, or a `run()` scope's over it.
#[napi]
#[derive(Debug, Default)]
pub struct NativeAttribution {
    inner: Attribution,
}

#[napi]
impl NativeAttribution {
    #[napi(constructor)]
    pub fn new(input: Option<AttributionInput>) -> Self {
        NativeAttribution { inner: input.map(attribution).unwrap_or_default() }
    }

    /// The attribution as the caller gave it (`tracker.currentAttribution()`).
    #[napi]
    pub fn to_object(&self) -> AttributionInput {
        let a = self.inner.clone();
        AttributionInput {
            user_id: a.user_id,
            workspace_id: a.workspace_id,
            project: a.project,
            session_id: a.session_id,
            conversation_id: a.conversation_id,
            tags: (!a.tags.is_empty()).then(|| a.tags.into_iter().collect()),
        }
    }

    /// `top` over this one: its set fields win, tags are merged (core's rule).
    #[napi]
    pub fn overlay(&self, top: &NativeAttribution) -> NativeAttribution {
        NativeAttribution { inner: self.inner.overlay(&top.inner) }
    }
}

/// One tracked call between `begin` and its response. Ends in exactly one of `finish`, `fail` or
/// `intoStream`; later calls are quiet no-ops returning null.
#[napi]
#[derive(Debug)]
pub struct NativeCall {
    inner: Option<PendingCall>,
    /// The call's record once `finish` or `fail` made it: serialized only when the JS layer looks at it
    /// (`recordJson`), which most callers never do.
    recorded: Option<Tracked>,
}

/// `NativeCall.needs` bits: what the binding must do before sending the request.
const NEEDS_REQUEST_BODY: u32 = 1;
const NEEDS_INCLUDE_USAGE: u32 = 2;
/// Spend control is on: `admit` before sending, and end the call with `finishAsync` / `failAsync`.
const NEEDS_ADMIT: u32 = 4;

/// `NativeCall.finish` / `fail` results: recorded, priced or not (`unknownModel: "error"` reports the latter).
const RECORDED_PRICED: u32 = 1;
const RECORDED_UNPRICED: u32 = 2;

/// A recorded call → core's one record shape as JSON (the JS layer parses it only when looked at).
fn record_json(tracked: Tracked) -> String {
    tracked.to_json()
}

#[napi]
impl NativeCall {
    /// What the binding must do before sending, in one crossing (the per-call path): bit 1 — hand core
    /// the request body (`setRequestBody`); bit 2 — send `stream_options.include_usage = true` (core
    /// hides the chunk it adds); bit 4 — spend control is on: `admit` first, and end the call with the
    /// `…Async` methods (they settle or release a reservation, a store transaction).
    #[napi(getter)]
    pub fn needs(&self) -> u32 {
        self.inner.as_ref().map_or(0, |call| {
            let body = if call.wants_request_body() { NEEDS_REQUEST_BODY } else { 0 };
            let admit = if call.checks_spend() { NEEDS_ADMIT } else { 0 };
            body | admit | if call.inject_include_usage() { NEEDS_INCLUDE_USAGE } else { 0 }
        })
    }

    /// Reserves the call's maximum cost (after `setRequestBody`), off the main thread: resolves to the
    /// admitted call, which replaces this one (now spent), or rejects with `budget_exceeded` — then the
    /// request must not be sent.
    #[napi(ts_return_type = "Promise<NativeCall>")]
    pub fn admit(&mut self) -> AsyncTask<AdmitTask> {
        AsyncTask::new(AdmitTask { call: self.inner.take() })
    }

    /// `finish` off the main thread, for an admitted call (its settlement is a store transaction):
    /// resolves to the record's JSON, or null when already ended.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn finish_async(&mut self, body: Either<String, Buffer>) -> AsyncTask<EndTask> {
        let body = match body {
            Either::A(s) => s.into_bytes(),
            Either::B(b) => b.to_vec(),
        };
        AsyncTask::new(EndTask { end: self.inner.take().map(|call| End::Finish(call, body)) })
    }

    /// `fail` off the main thread, for an admitted call (its release is a store transaction).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn fail_async(&mut self, error_class: String) -> AsyncTask<EndTask> {
        AsyncTask::new(EndTask { end: self.inner.take().map(|call| End::Fail(call, error_class)) })
    }

    /// The request body as JSON text.
    #[napi]
    pub fn set_request_body(&mut self, json: String) {
        if let Some(call) = self.inner.as_mut() {
            call.set_request_body(&json);
        }
    }

    /// Records the call from its raw response body: 1 (priced) or 2 (unpriced), null when already ended.
    /// The record itself is read with `recordJson`.
    #[napi]
    pub fn finish(&mut self, env: Env, body: Either<String, Buffer>) -> napi::Result<Option<u32>> {
        let Some(call) = self.inner.take() else { return Ok(None) };
        let bytes: &[u8] = match &body {
            Either::A(s) => s.as_bytes(),
            Either::B(b) => b,
        };
        let tracked = call.finish(bytes).or_throw(&env)?;
        Ok(Some(self.keep(tracked)))
    }

    /// Records a provider or connection error (`errorClass`: the SDK's error class) as `finish` does.
    #[napi]
    pub fn fail(&mut self, env: Env, error_class: String) -> napi::Result<Option<u32>> {
        let Some(call) = self.inner.take() else { return Ok(None) };
        let tracked = call.fail(&error_class).or_throw(&env)?;
        Ok(Some(self.keep(tracked)))
    }

    /// The record's JSON (core's one record shape), or null before `finish` or `fail`.
    #[napi]
    pub fn record_json(&self) -> Option<String> {
        self.recorded.as_ref().map(Tracked::to_json)
    }

    /// The call's response is a stream: its events go to the returned object (null when already ended).
    #[napi(js_name = "intoStream")]
    pub fn take_stream(&mut self) -> Option<NativeStream> {
        self.inner.take().map(|call| NativeStream { inner: Some(call.into_stream()) })
    }
}

impl NativeCall {
    fn keep(&mut self, tracked: Tracked) -> u32 {
        let status = if tracked.pricing_error.is_some() { RECORDED_UNPRICED } else { RECORDED_PRICED };
        self.recorded = Some(tracked);
        status
    }
}

/// One streamed response being accumulated. `finish` records it once; collected unfinished, core
/// records it as aborted (`NativeTracker.takeDropped`).
#[napi]
#[derive(Debug)]
pub struct NativeStream {
    /// `None` once `finishAsync` took it to the thread pool.
    inner: Option<CallStream>,
}

#[napi]
impl NativeStream {
    /// One SSE event as the SDK split it: `event` = its `event:` field (or null), `data` = its `data:`
    /// payload. Returns true when it is the usage chunk core asked for, which the caller must not see.
    /// Positional: the per-chunk path. After `finish`, a quiet no-op returning false.
    #[napi]
    pub fn push_event(&mut self, env: Env, event: Option<String>, data: String) -> napi::Result<bool> {
        let Some(stream) = self.inner.as_mut() else { return Ok(false) };
        stream.push_event(event.as_deref(), &data).or_throw(&env)
    }

    /// Raw response bytes as the SDK (or a clone of its response) reads them, in any chunking: the
    /// per-chunk path, so a typed-array view (no copy, no reference kept). Returns the ordinal of the SDK
    /// item the caller must not see — the usage chunk core asked for, one item per event before it — when
    /// these bytes completed it, otherwise -1.
    #[napi]
    pub fn push_bytes(&mut self, env: Env, bytes: Uint8ArraySlice) -> napi::Result<i64> {
        let Some(stream) = self.inner.as_mut() else { return Ok(-1) };
        let hidden = stream.push_bytes(&bytes).or_throw(&env)?;
        Ok(hidden.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)))
    }

    /// Records the stream; `aborted`: stopped early or broken. The record's JSON, or null when already
    /// finished.
    #[napi]
    pub fn finish(&mut self, env: Env, aborted: bool) -> napi::Result<Option<String>> {
        let Some(stream) = self.inner.as_mut() else { return Ok(None) };
        stream.finish(aborted).map(|t| t.map(record_json)).or_throw(&env)
    }

    /// `finish` off the main thread, for a stream under spend control (its settlement is a store
    /// transaction). Later calls on this object are quiet no-ops.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn finish_async(&mut self, aborted: bool) -> AsyncTask<EndTask> {
        AsyncTask::new(EndTask { end: self.inner.take().map(|stream| End::Stream(Box::new(stream), aborted)) })
    }
}

/// Background `admit`: the call goes to the thread pool and comes back as a new `NativeCall`.
#[derive(Debug)]
pub struct AdmitTask {
    call: Option<PendingCall>,
}

impl Task for AdmitTask {
    type Output = Result<()>;
    type JsValue = NativeCall;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.call.as_mut().map_or(Ok(()), PendingCall::admit))
    }

    /// Refused: the call is dropped here (it holds nothing) and never recorded — it was never sent.
    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeCall> {
        output.or_throw(&env)?;
        Ok(NativeCall { inner: self.call.take(), recorded: None })
    }
}

/// How a call under spend control ends, on the thread pool.
#[derive(Debug)]
enum End {
    Finish(PendingCall, Vec<u8>),
    Fail(PendingCall, String),
    Stream(Box<CallStream>, bool),
}

/// Background `finishAsync` / `failAsync`: records the call and settles or releases its reservation.
#[derive(Debug)]
pub struct EndTask {
    end: Option<End>,
}

impl Task for EndTask {
    type Output = Result<Option<String>>;
    type JsValue = Option<String>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(match self.end.take() {
            None => Ok(None),
            Some(End::Finish(call, body)) => call.finish(&body).map(|t| Some(record_json(t))),
            Some(End::Fail(call, error_class)) => call.fail(&error_class).map(|t| Some(record_json(t))),
            Some(End::Stream(mut stream, aborted)) => stream.finish(aborted).map(|t| t.map(record_json)),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Option<String>> {
        output.or_throw(&env)
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
    timeframe: Option<crate::core::report::Timeframe>,
}

impl Task for UsageTask {
    type Output = Result<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let rows = match self.timeframe {
            Some(timeframe) => self.tracker.usage_rows_in(&self.query, timeframe),
            None => self.tracker.usage_rows(&self.query),
        };
        Ok(rows.and_then(|rows| Ok(serde_json::to_string(&rows)?)))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<String> {
        output.or_throw(&env)
    }
}

/// Background reconciliation.
#[derive(Debug)]
pub struct ReconcileTask {
    tracker: Tracker,
    query: crate::core::org::reconcile::ReconcileQuery,
}

impl Task for ReconcileTask {
    type Output = Result<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let rows = self.tracker.reconcile(&self.query);
        Ok(rows.and_then(|rows| {
            let flat: Vec<_> = rows.iter().map(crate::core::org::reconcile::ReconcileRow::flat).collect();
            Ok(serde_json::to_string(&flat)?)
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<String> {
        output.or_throw(&env)
    }
}
