//! The native classes behind the JS `Tracker` and the SDK wrappers: `NativeTracker` (recording, reports,
//! the ledger's lifecycle), `NativeClient` (one wrapped SDK client: its provider and which calls are
//! tracked), `NativeAttribution` (who a call is billed to), `NativeCall` (one call in flight) and
//! `NativeStream` (one streamed response). Glue over `llmledger_core::tracker`; blocking work (flush,
//! close, reports) runs on libuv's thread pool.

use std::time::Instant;

use napi::bindgen_prelude::{AsyncTask, Buffer, Either};
use napi::{Env, Task};
use napi_derive::napi;
use rust_decimal::Decimal;

use crate::core::args::count_from_f64;
use crate::core::ledger::Attribution;
use crate::core::tracker::{self, CallInfo, TrackedStream, Tracker};
use crate::core::{Api, Error, ErrorCode, Provider, Result};
use crate::error::OrThrow;
use crate::types::{
    attribution, call_info, AttributionInput, ClientSpecInput, CostOptions, EstimateResult, TokenUsage,
    TrackerOptions, UsageInput, UsageQueryInput, UsageRow,
};
use crate::{estimate_result, estimate_with, price};

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

    /// Starts one tracked call of `client` (`api` from `client.classify`). Positional, not one object: this
    /// is the per-call path, and napi reads arguments several times faster than object properties.
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
        let _ = path;
        let call = CallInfo {
            provider: client.provider,
            api,
            model: client.deployment.clone().or(model).unwrap_or_default(),
            attribution: attribution.map(|a| a.inner.clone()).unwrap_or_default(),
            batch: false,
            service_tier,
        };
        let inject = api == Api::ChatCompletions && stream && include_usage != Some(true);
        let wants_body = stream || has_tools || matches!(api, Api::Images | Api::AudioSpeech | Api::AudioTranscription);
        Ok(NativeCall {
            tracker: self.inner.clone(),
            call: Some(call),
            request_json: None,
            inject,
            wants_body,
            start: Instant::now(),
        })
    }

    /// Records a finished call made outside a wrapped client, from its response body; `TokenUsage` JSON.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn record_response(
        &self,
        env: Env,
        provider: String,
        api: String,
        model: String,
        attribution: &NativeAttribution,
        request_json: Option<String>,
        response_json: String,
        latency_ms: f64,
    ) -> napi::Result<String> {
        // A number from the public `record()`: checked by core's rule, never wrapped around.
        let latency_ms = count_from_f64("latencyMs", latency_ms).or_throw(&env)?;
        let call = call_info(&provider, &api, model, attribution.inner.clone()).or_throw(&env)?;
        let tracked =
            self.inner.record_response(&call, request_json.as_deref(), &response_json, latency_ms).or_throw(&env)?;
        Ok(TokenUsage::json(tracked))
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

    /// The cost of a given usage with this tracker's prices, in its currency; `CallCost` JSON. Arguments
    /// as the module-level `cost`.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn cost(
        &self,
        env: Env,
        model: String,
        input_tokens: Option<f64>,
        cache_read_tokens: Option<f64>,
        cache_write_tokens: Option<f64>,
        cache_write_1h_tokens: Option<f64>,
        output_tokens: Option<f64>,
        reasoning_tokens: Option<f64>,
        audio_input_tokens: Option<f64>,
        audio_output_tokens: Option<f64>,
        image_input_tokens: Option<f64>,
        image_output_tokens: Option<f64>,
        web_search_requests: Option<f64>,
        input_characters: Option<f64>,
        audio_seconds: Option<String>,
        service_tier: Option<String>,
        at: Option<String>,
        batch: Option<bool>,
        regional: Option<bool>,
    ) -> napi::Result<String> {
        let usage = UsageInput {
            input_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
            output_tokens,
            reasoning_tokens,
            audio_input_tokens,
            audio_output_tokens,
            image_input_tokens,
            image_output_tokens,
            web_search_requests,
            input_characters,
            audio_seconds,
            service_tier: service_tier.clone(),
        };
        let options = CostOptions { at, batch, service_tier, regional };
        let currency = self.inner.currency().to_string();
        price(self.inner.prices(), &model, usage, options, Some((self.inner.rates(), &currency))).or_throw(&env)
    }
}

/// One wrapped SDK client as core sees it: its provider (decided once, at wrap time) and which of its
/// calls are tracked.
#[napi]
#[derive(Debug)]
pub struct NativeClient {
    provider: Provider,
    sdk_openai: bool,
    /// The Azure client's fixed deployment: the model of every call.
    deployment: Option<String>,
}

#[napi]
impl NativeClient {
    #[napi(constructor)]
    pub fn new(env: Env, spec: ClientSpecInput) -> napi::Result<Self> {
        let sdk_openai = match spec.sdk.as_str() {
            "openai" => true,
            "anthropic" => false,
            other => return Err(Error::invalid_value("sdk", other, "expected openai or anthropic")).or_throw(&env),
        };
        let provider = match spec.provider.as_deref() {
            Some(p) => p.parse::<Provider>().or_throw(&env)?,
            None if spec.azure.unwrap_or(false) => Provider::Azure,
            None if spec.bedrock.unwrap_or(false) => Provider::Bedrock,
            None if !sdk_openai => Provider::Anthropic,
            None => Provider::from_base_url(spec.base_url.as_deref().unwrap_or("")),
        };
        let deployment = if provider == Provider::Azure { spec.azure_deployment } else { None };
        Ok(NativeClient { provider, sdk_openai, deployment })
    }

    /// The provider every call of this client is recorded under.
    #[napi(getter)]
    pub fn provider(&self) -> &'static str {
        self.provider.as_str()
    }

    /// The API of a request (`method`, `path` as the SDK builds it), or null: not tracked, pass it through.
    #[napi]
    pub fn classify(&self, method: String, path: String) -> Option<&'static str> {
        if !method.eq_ignore_ascii_case("post") {
            return None;
        }
        let path = path.split('?').next().unwrap_or_default().trim_end_matches('/');
        let api = if self.sdk_openai {
            match path {
                "/chat/completions" => Api::ChatCompletions,
                "/responses" => Api::Responses,
                "/embeddings" => Api::Embeddings,
                "/images/generations" | "/images/edits" => Api::Images,
                "/audio/transcriptions" | "/audio/translations" => Api::AudioTranscription,
                "/audio/speech" => Api::AudioSpeech,
                _ => return None,
            }
        } else if path == "/v1/messages" {
            Api::Messages
        } else {
            return None;
        };
        Some(api.as_str())
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

    /// `top` over this one: its set fields win, tags are merged (its win per key).
    #[napi]
    pub fn overlay(&self, top: &NativeAttribution) -> NativeAttribution {
        let (base, top) = (&self.inner, &top.inner);
        let mut tags = base.tags.clone();
        tags.extend(top.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        NativeAttribution {
            inner: Attribution {
                user_id: top.user_id.clone().or_else(|| base.user_id.clone()),
                workspace_id: top.workspace_id.clone().or_else(|| base.workspace_id.clone()),
                project: top.project.clone().or_else(|| base.project.clone()),
                session_id: top.session_id.clone().or_else(|| base.session_id.clone()),
                conversation_id: top.conversation_id.clone().or_else(|| base.conversation_id.clone()),
                tags,
            },
        }
    }
}

/// One tracked call between `begin` and its response. Ends in exactly one of `finish`, `fail` or
/// `intoStream`; later calls are quiet no-ops returning null.
#[napi]
#[derive(Debug)]
pub struct NativeCall {
    tracker: Tracker,
    call: Option<CallInfo>,
    request_json: Option<String>,
    inject: bool,
    wants_body: bool,
    start: Instant,
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[napi]
impl NativeCall {
    /// Whether the binding must send `stream_options.include_usage = true` (and hide the chunk it adds).
    #[napi(getter)]
    pub fn inject_include_usage(&self) -> bool {
        self.inject
    }

    /// Whether core reads the request body (`setRequestBody`): streams, images, speech, tools.
    #[napi(getter)]
    pub fn wants_request_body(&self) -> bool {
        self.wants_body
    }

    /// The request body as JSON text.
    #[napi]
    pub fn set_request_body(&mut self, json: String) {
        self.request_json = Some(json);
    }

    /// Records the call from its raw response body; `TokenUsage` JSON (null when already ended).
    #[napi]
    pub fn finish(&mut self, env: Env, body: Either<String, Buffer>) -> napi::Result<Option<String>> {
        let Some(call) = self.call.take() else { return Ok(None) };
        let text = match &body {
            Either::A(s) => s.as_str(),
            Either::B(b) => std::str::from_utf8(b).unwrap_or(""),
        };
        let tracked = self
            .tracker
            .record_response(&call, self.request_json.as_deref(), text, elapsed_ms(self.start))
            .or_throw(&env)?;
        Ok(Some(TokenUsage::json(tracked)))
    }

    /// Records a provider or connection error; `TokenUsage` JSON (null when already ended).
    #[napi]
    pub fn fail(&mut self, env: Env, error_class: String) -> napi::Result<Option<String>> {
        let Some(call) = self.call.take() else { return Ok(None) };
        let tracked = self.tracker.record_failure(&call, &error_class, elapsed_ms(self.start)).or_throw(&env)?;
        Ok(Some(TokenUsage::json(tracked)))
    }

    /// The call's response is a stream: its events go to the returned object (null when already ended).
    #[napi]
    pub fn into_stream(&mut self) -> Option<NativeStream> {
        let call = self.call.take()?;
        let mut stream = self.tracker.start_stream(call, self.request_json.as_deref());
        stream.hide_usage_chunk(self.inject);
        Some(NativeStream { inner: Some(stream), start: self.start })
    }
}

/// One streamed response being accumulated; `finish` records it once.
#[napi]
#[derive(Debug)]
pub struct NativeStream {
    inner: Option<TrackedStream>,
    start: Instant,
}

#[napi]
impl NativeStream {
    /// One SSE event: `event` = its `event:` field (or null), `data` = its `data:` payload. Returns true
    /// when the event is the injected usage-only chunk, which the caller should not see. Positional: the
    /// per-chunk path. After `finish`, a quiet no-op returning false.
    #[napi]
    pub fn push_event(&mut self, env: Env, event: Option<String>, data: String) -> napi::Result<bool> {
        match self.inner.as_mut() {
            Some(stream) => stream.push(event.as_deref(), &data).or_throw(&env),
            None => Ok(false),
        }
    }

    /// Raw response bytes as they arrive (a body the binding never sees split into events).
    #[napi]
    pub fn push_bytes(&mut self, env: Env, bytes: Buffer) -> napi::Result<()> {
        let _ = bytes;
        Err(Error::new(ErrorCode::Unsupported, "push_bytes needs core's SSE splitter")).or_throw(&env)
    }

    /// Records the stream; `aborted`: stopped early or broken. `TokenUsage` JSON, or null when already
    /// finished.
    #[napi]
    pub fn finish(&mut self, env: Env, aborted: bool) -> napi::Result<Option<String>> {
        let Some(stream) = self.inner.take() else { return Ok(None) };
        let tracked = stream.finish(elapsed_ms(self.start), aborted).or_throw(&env)?;
        Ok(Some(TokenUsage::json(tracked)))
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
