//! One API call as a binding sees it: which call it is, what to change in the request, and how its
//! result is recorded. Every per-call decision the Python and Node wrappers would otherwise both make
//! lives here; the bindings only hook the SDK's HTTP request layer, read a few request keys and hand
//! over bytes.
//!
//! The life of a call:
//! 1. at `wrap` time the binding describes the client once ([`ClientSpec`] → [`Client`]): the provider
//!    is decided there, from the SDK, the client class and the base URL;
//! 2. for every HTTP request the SDK sends, [`Client::classify`] says whether it is tracked and as
//!    which [`Api`] (untracked requests pass through untouched);
//! 3. [`Tracker::begin`](crate::tracker::Tracker::begin) takes the request's [`RequestFacts`] and
//!    returns a [`PendingCall`], which says whether to ask for stream usage
//!    ([`PendingCall::inject_include_usage`]) and whether it needs the request body; latency is
//!    measured from here;
//! 4. with spend control on (a limit or balance exists), the binding hands over the request body and
//!    calls [`PendingCall::admit`] before sending: the call's maximum cost is reserved, or the call is
//!    refused with [`crate::ErrorCode::BudgetExceeded`] and never sent;
//! 5. the call ends once: [`PendingCall::finish`] with the response body, [`PendingCall::fail`] with
//!    the SDK's error class, or [`PendingCall::into_stream`] → [`CallStream`], fed the stream's events
//!    (already split by the SDK, or raw bytes split here) and finished once — or recorded as abandoned
//!    when it is dropped unfinished. The reservation is settled to the recorded cost (finish, stream
//!    end, abandoned stream) or released (a failure, or a call dropped before it ended).

use std::time::Instant;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::event::Attribution;
use crate::spend::max_cost::{max_cost, CallRequest};
use crate::spend::{store_failed_notice, ReserveRequest, SettleRequest, Spend};
use crate::sse::SseSplitter;
use crate::tracker::{CallInfo, Tracked, TrackedStream, Tracker};
use crate::usage::{Api, Provider};

/// The official SDK family a client belongs to; it decides which endpoints exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sdk {
    /// `openai` (Python and Node), including its Azure clients and OpenAI-compatible endpoints.
    #[default]
    #[serde(rename = "openai")]
    OpenAi,
    /// `anthropic` / `@anthropic-ai/sdk`, including the Bedrock and Vertex clients.
    Anthropic,
}

impl std::str::FromStr for Sdk {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "openai" => Ok(Self::OpenAi),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(Error::invalid_value("sdk", other, "expected \"openai\" or \"anthropic\"")),
        }
    }
}

/// What a binding knows about a client when it wraps it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientSpec {
    pub sdk: Sdk,
    /// The client's base URL (its host decides OpenAI-compatible providers).
    pub base_url: String,
    /// The SDK's Azure client class (`AzureOpenAI`).
    pub azure: bool,
    /// The Anthropic SDK's Bedrock client class.
    pub bedrock: bool,
    /// The caller's explicit provider, which wins over everything else.
    pub provider: Option<String>,
    /// The Azure client's fixed deployment, when it was built with one.
    pub azure_deployment: Option<String>,
}

/// A wrapped client as core sees it. Cheap to keep; one per wrapped client.
#[derive(Debug, Clone)]
pub struct Client {
    sdk: Sdk,
    provider: Provider,
    azure_deployment: Option<String>,
}

impl Client {
    /// Decides the provider: the explicit one, else the client class (Azure, Bedrock), else the base
    /// URL's host for OpenAI-compatible clients ([`Provider::from_base_url`]).
    pub fn new(spec: &ClientSpec) -> Result<Client> {
        let provider = match (&spec.provider, spec.sdk) {
            (Some(p), _) => p.parse()?,
            (None, Sdk::OpenAi) if spec.azure => Provider::Azure,
            (None, Sdk::OpenAi) => Provider::from_base_url(&spec.base_url),
            (None, Sdk::Anthropic) if spec.bedrock => Provider::Bedrock,
            (None, Sdk::Anthropic) => Provider::Anthropic,
        };
        let azure_deployment = spec.azure_deployment.clone().filter(|d| !d.is_empty());
        Ok(Client { sdk: spec.sdk, provider, azure_deployment })
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn sdk(&self) -> Sdk {
        self.sdk
    }

    /// The API of one HTTP request, or `None` when it is not a tracked endpoint (listing models,
    /// retrieving a response, counting tokens, files, batches, …): those pass through untouched.
    ///
    /// `path` is what the SDK requests: relative to the base URL (`/chat/completions`), or a full URL;
    /// a query string is ignored, and an Azure deployment prefix (`/deployments/{name}/…`) is skipped.
    pub fn classify(&self, method: &str, path: &str) -> Option<Api> {
        if !method.eq_ignore_ascii_case("post") {
            return None;
        }
        let table: &[(&str, Api)] = match self.sdk {
            Sdk::OpenAi => &[
                ("/chat/completions", Api::ChatCompletions),
                ("/responses", Api::Responses),
                ("/embeddings", Api::Embeddings),
                ("/images/generations", Api::Images),
                ("/images/edits", Api::Images),
                ("/audio/transcriptions", Api::AudioTranscription),
                ("/audio/translations", Api::AudioTranscription),
                ("/audio/speech", Api::AudioSpeech),
            ],
            Sdk::Anthropic => &[("/v1/messages", Api::Messages)],
        };
        // By suffix: whatever prefix the base URL or an Azure deployment puts before the endpoint.
        let path = endpoint(path);
        table.iter().find(|(suffix, _)| path.ends_with(suffix)).map(|&(_, api)| api)
    }

    /// The model an Azure request runs on: the client's fixed deployment, else the deployment named in
    /// the request path.
    fn deployment<'a>(&'a self, path: &'a str) -> Option<&'a str> {
        self.azure_deployment.as_deref().or_else(|| deployment_in_path(path))
    }
}

/// The path part of a request: no scheme and host, no query, no trailing slash.
fn endpoint(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => path,
    };
    path.trim_end_matches('/')
}

fn deployment_in_path(path: &str) -> Option<&str> {
    let rest = path.split(['?', '#']).next()?.split_once("/deployments/")?.1;
    rest.split('/').next().filter(|d| !d.is_empty())
}

/// The few request facts a binding reads with key lookups; core decides everything else from them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The request path as the SDK sent it (for the Azure deployment in it); may be empty.
    pub path: &'a str,
    /// The body's `model`.
    pub model: Option<&'a str>,
    /// The body's `stream` is `true`.
    pub stream: bool,
    /// The body's `service_tier`, when it is a string.
    pub service_tier: Option<&'a str>,
    /// The body's `stream_options.include_usage`, when present and a boolean.
    pub include_usage: Option<bool>,
    /// The body has `tools` or `web_search_options` (a web search's context size is priced).
    pub has_tools: bool,
}

impl Tracker {
    /// Starts one tracked call of `api` (from [`Client::classify`]). The call's latency runs from here.
    pub fn begin(&self, client: &Client, api: Api, facts: &RequestFacts<'_>, attribution: Attribution) -> PendingCall {
        let model = match client.provider {
            Provider::Azure => client.deployment(facts.path).or(facts.model),
            _ => facts.model,
        };
        // Only OpenAI-shaped chat streams report usage on request, in one extra chunk; when we asked for
        // it the caller did not, so that chunk is hidden from them. An explicit `false` is overridden
        // too: the caller still sees exactly the stream they asked for, and the bill is exact.
        let inject_include_usage = client.sdk == Sdk::OpenAi
            && api == Api::ChatCompletions
            && facts.stream
            && facts.include_usage != Some(true);
        // The one spend-control cost on the fast path: an atomic load (see `Spend::is_active`).
        let check_spend = self.active_spend().is_some();
        let wants_request_body = check_spend
            || facts.stream
            || facts.has_tools
            || matches!(api, Api::Images | Api::AudioSpeech | Api::AudioTranscription);
        PendingCall {
            tracker: self.clone(),
            call: CallInfo {
                provider: client.provider,
                api,
                model: model.unwrap_or("").to_string(),
                attribution,
                batch: false,
                service_tier: facts.service_tier.map(str::to_string),
            },
            inject_include_usage,
            wants_request_body,
            request_body: None,
            check_spend,
            hold: None,
            started: Instant::now(),
        }
    }
}

/// A call's open reservation: settled to the recorded cost, or released; dropped unsettled (the call
/// never ended), released. A spend-store failure here is reported as a notice, never to the call.
#[derive(Debug)]
struct SpendHold {
    spend: Spend,
    id: String,
    done: bool,
}

impl SpendHold {
    /// Settles to the record's cost and tokens. An unpriced success settles at the reserved maximum:
    /// the call was billed, by an amount we cannot know.
    fn settle(mut self, tracked: &Tracked, reserved: Option<rust_decimal::Decimal>) {
        self.done = true;
        let cost = match (&tracked.cost, tracked.success) {
            (Some(c), _) => c.total,
            (None, true) => reserved.unwrap_or_default(),
            (None, false) => rust_decimal::Decimal::ZERO,
        };
        let req = SettleRequest {
            reservation_id: std::mem::take(&mut self.id),
            actual_cost: cost,
            currency: None,
            actual_tokens: tracked.usage.total_tokens(),
            at: None,
        };
        if let Err(e) = self.spend.settle(&req) {
            self.spend.notice(store_failed_notice("settle a call", &e));
        }
    }

    fn release(mut self) {
        self.done = true;
        if let Err(e) = self.spend.release(&self.id) {
            self.spend.notice(store_failed_notice("release a reservation", &e));
        }
    }
}

impl Drop for SpendHold {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.spend.release(&self.id) {
                self.spend.notice(store_failed_notice("release a reservation", &e));
            }
        }
    }
}

/// A call sent and not yet answered. Ends exactly once: [`finish`](Self::finish),
/// [`fail`](Self::fail) or [`into_stream`](Self::into_stream).
#[derive(Debug)]
pub struct PendingCall {
    tracker: Tracker,
    call: CallInfo,
    inject_include_usage: bool,
    wants_request_body: bool,
    request_body: Option<String>,
    /// Spend control was active at `begin`: [`PendingCall::admit`] reserves.
    check_spend: bool,
    /// The reservation and its maximum cost, once admitted.
    hold: Option<(SpendHold, Option<rust_decimal::Decimal>)>,
    started: Instant,
}

impl PendingCall {
    pub fn api(&self) -> Api {
        self.call.api
    }

    pub fn provider(&self) -> Provider {
        self.call.provider
    }

    /// Set `stream_options.include_usage = true` in the request before it is sent.
    pub fn inject_include_usage(&self) -> bool {
        self.inject_include_usage
    }

    /// Whether [`set_request_body`](Self::set_request_body) is needed: for streams (the prompt is
    /// estimated if no usage comes), images and speech (priced from the request), and requests with
    /// tools (a web search's context size is priced). Otherwise the binding skips serializing it.
    pub fn wants_request_body(&self) -> bool {
        self.wants_request_body
    }

    /// Whether [`admit`](Self::admit) has a reservation to make (spend control was active at
    /// `begin`): a binding that would pay to call it (a GIL release, a thread hop) skips it otherwise.
    pub fn checks_spend(&self) -> bool {
        self.check_spend
    }

    /// The request body as JSON text (only read when [`wants_request_body`](Self::wants_request_body)).
    pub fn set_request_body(&mut self, json: &str) {
        if self.wants_request_body {
            self.request_body = Some(json.to_string());
        }
    }

    /// Checks the call against spend control before it is sent, after
    /// [`set_request_body`](Self::set_request_body): reserves its maximum cost (prompt counted locally,
    /// the request's output cap or the configured default, at the long-context tier the prompt falls
    /// in) against every limit and balance that applies. `Err` with
    /// [`crate::ErrorCode::BudgetExceeded`]: do not send the call. Nothing to check (no limit or
    /// balance exists) costs nothing; a spend-store failure is reported as a notice and the call goes
    /// ahead. Calling it again does nothing.
    pub fn admit(&mut self) -> Result<()> {
        if !self.check_spend || self.hold.is_some() {
            return Ok(());
        }
        let Some(spend) = self.tracker.spend().ok() else { return Ok(()) };
        let body = self
            .request_body
            .as_deref()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .unwrap_or(serde_json::Value::Null);
        let model = self.tracker.priced_model(&self.call);
        let request = CallRequest {
            provider: self.call.provider,
            api: self.call.api,
            model,
            body: &body,
            default_max_output_tokens: spend.config().default_max_output_tokens,
        };
        let max = max_cost(
            self.tracker.prices(),
            self.tracker.rates(),
            self.tracker.currency(),
            &request,
            chrono::Utc::now(),
        );
        let req = ReserveRequest {
            attribution: self.call.attribution.clone(),
            max_cost: max.max_cost,
            currency: None,
            max_tokens: max.max_tokens(),
            model: model.to_string(),
            at: None,
        };
        match spend.reserve(&req) {
            Ok(r) if r.holds > 0 => {
                let hold = SpendHold { spend: spend.clone(), id: r.id, done: false };
                self.hold = Some((hold, Some(r.max_cost)));
            }
            Ok(_) => {}
            Err(e) if e.code() == crate::ErrorCode::BudgetExceeded => return Err(e),
            Err(e) => spend.notice(store_failed_notice("check a call", &e)),
        }
        Ok(())
    }

    /// Milliseconds since [`Tracker::begin`].
    pub fn elapsed_ms(&self) -> u64 {
        elapsed_ms(self.started)
    }

    /// Records a non-streaming response from its body as received (JSON bytes; for text to speech the
    /// audio, which is ignored: speech is priced from the request).
    pub fn finish(self, response_body: &[u8]) -> Result<Tracked> {
        let body = match self.call.api {
            Api::AudioSpeech => "{}",
            _ => std::str::from_utf8(response_body)
                .map_err(|e| Error::invalid_value("response", e, "the response body is not UTF-8"))?,
        };
        let latency = self.elapsed_ms();
        let tracked = self.tracker.record_response(&self.call, self.request_body.as_deref(), body, latency)?;
        if let Some((hold, reserved)) = self.hold {
            hold.settle(&tracked, reserved);
        }
        Ok(tracked)
    }

    /// Records a call the provider or the connection failed; `error_class` is the SDK's error class name.
    pub fn fail(self, error_class: &str) -> Result<Tracked> {
        let latency = self.elapsed_ms();
        // The provider refused or the connection failed: nothing was billed.
        if let Some((hold, _)) = self.hold {
            hold.release();
        }
        self.tracker.record_failure(&self.call, error_class, latency)
    }

    /// The call's response is a stream: accumulate it.
    pub fn into_stream(self) -> CallStream {
        let mut inner = self.tracker.start_stream(self.call, self.request_body.as_deref());
        inner.hide_usage_chunk(self.inject_include_usage);
        CallStream {
            inner: Some(inner),
            started: self.started,
            sse: SseSplitter::default(),
            byte_events: 0,
            hold: self.hold,
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A stream in flight. Feed it the stream's events, then [`finish`](Self::finish) it; finishing again,
/// or pushing after the end, does nothing. Dropped unfinished (the caller abandoned the stream), it is
/// recorded as aborted: the provider bills the request all the same.
#[derive(Debug)]
pub struct CallStream {
    inner: Option<TrackedStream>,
    started: Instant,
    sse: SseSplitter,
    /// Events split from [`push_bytes`](Self::push_bytes) so far (the ordinal of the next one).
    byte_events: u64,
    /// Settled to what the stream counted when it is recorded (finished or abandoned).
    hold: Option<(SpendHold, Option<rust_decimal::Decimal>)>,
}

impl CallStream {
    /// One server-sent event as the SDK split it (`event:` name, `data:` payload). `Ok(true)`: this is
    /// the usage-only chunk core asked for; the caller must not see it.
    pub fn push_event(&mut self, event: Option<&str>, data: &str) -> Result<bool> {
        match self.inner.as_mut() {
            Some(stream) => stream.push(event, data),
            None => Ok(false),
        }
    }

    /// Raw response bytes as they arrive, in any chunking (for bindings that read the body as bytes).
    /// `Ok(Some(n))`: the `n`-th event (0-based, counting every event split from these bytes) is the
    /// usage-only chunk core asked for, which the caller must not see; the SDK yields one item per event
    /// before it, so the binding skips its `n`-th item.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<Option<u64>> {
        let Some(stream) = self.inner.as_mut() else { return Ok(None) };
        // Every event is pushed; the first error is reported.
        let mut result = Ok(None);
        let events = &mut self.byte_events;
        self.sse.feed(bytes, |event, data| {
            match (stream.push(event, data), &result) {
                (Ok(true), Ok(_)) => result = Ok(Some(*events)),
                (Err(e), Ok(_)) => result = Err(e),
                _ => {}
            }
            *events += 1;
        });
        result
    }

    /// Whether the stream was already recorded.
    pub fn is_finished(&self) -> bool {
        self.inner.is_none()
    }

    /// Records the stream, once: `Ok(None)` when it already was. `aborted`: the caller stopped early
    /// or an error broke the stream.
    pub fn finish(&mut self, aborted: bool) -> Result<Option<Tracked>> {
        let Some(mut stream) = self.inner.take() else { return Ok(None) };
        let sse = std::mem::take(&mut self.sse);
        // An event the body ended in without its blank line still counts.
        sse.end(|event, data| {
            let _ = stream.push(event, data);
        });
        let tracked = stream.finish(elapsed_ms(self.started), aborted)?;
        if let Some((hold, reserved)) = self.hold.take() {
            hold.settle(&tracked, reserved);
        }
        Ok(Some(tracked))
    }
}

impl Drop for CallStream {
    fn drop(&mut self) {
        let Some(stream) = self.inner.take() else { return };
        let tracker = stream.tracker().clone();
        // A failure here (the ledger closed) has no caller to go to; the binding hears of the record,
        // if it asked to, through `Tracker::take_dropped`.
        if let Ok(tracked) = stream.finish(elapsed_ms(self.started), true) {
            if let Some((hold, reserved)) = self.hold.take() {
                hold.settle(&tracked, reserved);
            }
            tracker.note_dropped(tracked);
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::tracker::TrackerConfig;
    use crate::UsageFlag;

    fn tracker() -> Tracker {
        Tracker::new(TrackerConfig {
            store: Some("memory://".into()),
            keep_dropped_records: true,
            ..TrackerConfig::default()
        })
        .expect("valid config")
    }

    fn client(sdk: Sdk, base_url: &str) -> Client {
        Client::new(&ClientSpec { sdk, base_url: base_url.into(), ..ClientSpec::default() }).expect("client")
    }

    #[test]
    fn providers_are_decided_once_per_client() {
        let provider = |spec: ClientSpec| Client::new(&spec).map(|c| c.provider());
        let openai = |url: &str| ClientSpec { base_url: url.into(), ..ClientSpec::default() };
        assert_eq!(provider(openai("https://api.openai.com/v1")), Ok(Provider::OpenAi));
        assert_eq!(provider(openai("https://api.x.ai/v1")), Ok(Provider::Xai));
        assert_eq!(provider(openai("https://r.openai.azure.com/openai/v1")), Ok(Provider::Azure));
        assert_eq!(provider(ClientSpec { azure: true, ..openai("http://127.0.0.1:9") }), Ok(Provider::Azure));
        let anthropic = ClientSpec { sdk: Sdk::Anthropic, ..ClientSpec::default() };
        assert_eq!(provider(anthropic.clone()), Ok(Provider::Anthropic));
        assert_eq!(provider(ClientSpec { bedrock: true, ..anthropic.clone() }), Ok(Provider::Bedrock));
        assert_eq!(provider(ClientSpec { provider: Some("xai".into()), ..anthropic }), Ok(Provider::Xai));
        let bad = Client::new(&ClientSpec { provider: Some("acme".into()), ..ClientSpec::default() });
        assert_eq!(bad.err().and_then(|e| e.field().map(str::to_string)), Some("provider".to_string()));
    }

    #[test]
    fn requests_are_classified_by_method_and_path() {
        let openai = client(Sdk::OpenAi, "https://api.openai.com/v1");
        let cases = [
            ("POST", "/chat/completions", Some(Api::ChatCompletions)),
            ("post", "/chat/completions?api-version=2024-10-21", Some(Api::ChatCompletions)),
            ("POST", "/deployments/my-gpt/chat/completions", Some(Api::ChatCompletions)),
            ("POST", "https://r.openai.azure.com/openai/deployments/d/embeddings?x=1", Some(Api::Embeddings)),
            ("POST", "/openai/v1/responses", Some(Api::Responses)),
            ("POST", "/responses", Some(Api::Responses)),
            ("POST", "/images/edits", Some(Api::Images)),
            ("POST", "/audio/translations", Some(Api::AudioTranscription)),
            ("POST", "/audio/speech", Some(Api::AudioSpeech)),
            ("GET", "/chat/completions", None),
            ("POST", "/responses/resp_1/cancel", None),
            ("POST", "/responses/input_tokens", None),
            ("GET", "/models", None),
            ("POST", "/files", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(openai.classify(method, path), want, "{method} {path}");
        }
        let anthropic = client(Sdk::Anthropic, "https://api.anthropic.com");
        assert_eq!(anthropic.classify("POST", "/v1/messages"), Some(Api::Messages));
        assert_eq!(anthropic.classify("POST", "/v1/messages?beta=true"), Some(Api::Messages));
        assert_eq!(anthropic.classify("POST", "/v1/messages/count_tokens"), None);
        assert_eq!(anthropic.classify("POST", "/v1/messages/batches"), None);
        assert_eq!(anthropic.classify("POST", "/v1/chat/completions"), None);
    }

    #[test]
    fn include_usage_is_asked_for_unless_the_caller_asked() {
        let t = tracker();
        let c = client(Sdk::OpenAi, "");
        let ask = |stream: bool, include_usage: Option<bool>, api: Api| {
            let facts = RequestFacts { model: Some("gpt-4o"), stream, include_usage, ..RequestFacts::default() };
            t.begin(&c, api, &facts, Attribution::default()).inject_include_usage()
        };
        assert!(ask(true, None, Api::ChatCompletions));
        assert!(ask(true, Some(false), Api::ChatCompletions), "an explicit false is overridden (and hidden)");
        assert!(!ask(true, Some(true), Api::ChatCompletions));
        assert!(!ask(false, None, Api::ChatCompletions));
        assert!(!ask(true, None, Api::Responses));
        let anthropic = client(Sdk::Anthropic, "");
        let facts = RequestFacts { stream: true, ..RequestFacts::default() };
        assert!(!t.begin(&anthropic, Api::Messages, &facts, Attribution::default()).inject_include_usage());
    }

    #[test]
    fn the_request_body_is_wanted_only_where_it_is_priced_or_estimated() {
        let t = tracker();
        let c = client(Sdk::OpenAi, "");
        let wants = |api: Api, stream: bool, has_tools: bool| {
            let facts = RequestFacts { stream, has_tools, ..RequestFacts::default() };
            t.begin(&c, api, &facts, Attribution::default()).wants_request_body()
        };
        assert!(!wants(Api::ChatCompletions, false, false));
        assert!(wants(Api::ChatCompletions, true, false));
        assert!(wants(Api::ChatCompletions, false, true));
        assert!(wants(Api::Images, false, false));
        assert!(wants(Api::AudioSpeech, false, false));
        assert!(!wants(Api::Embeddings, false, false));
    }

    #[test]
    fn azure_calls_are_priced_as_their_deployment() {
        let t = Tracker::new(TrackerConfig {
            store: Some("memory://".into()),
            azure_deployments: [("prod-4o".to_string(), "gpt-4o".to_string())].into(),
            ..TrackerConfig::default()
        })
        .expect("valid config");
        let c = client(Sdk::OpenAi, "https://r.openai.azure.com/openai");
        let facts = RequestFacts {
            path: "/deployments/prod-4o/chat/completions",
            model: Some("ignored"),
            ..Default::default()
        };
        let body = br#"{"id":"az-1","usage":{"prompt_tokens":1000,"completion_tokens":100}}"#;
        let tracked = t.begin(&c, Api::ChatCompletions, &facts, Attribution::default()).finish(body).expect("ok");
        assert_eq!((tracked.provider, tracked.model.as_str()), (Provider::Azure, "prod-4o"));
        // 1000 × $2.50/M + 100 × $10/M.
        assert_eq!(tracked.cost.map(|c| c.total_usd), Some(dec!(0.0035)));
    }

    #[test]
    fn speech_is_priced_from_the_request_whatever_the_audio_bytes() {
        let t = tracker();
        let c = client(Sdk::OpenAi, "");
        let facts = RequestFacts { model: Some("tts-1"), ..RequestFacts::default() };
        let mut call = t.begin(&c, Api::AudioSpeech, &facts, Attribution::default());
        call.set_request_body(r#"{"model":"tts-1","input":"Hello world","voice":"alloy"}"#);
        let tracked = call.finish(&[0xff, 0xfb, 0x90, 0x00]).expect("recorded");
        // 11 characters at $15 per million characters.
        assert_eq!(tracked.cost.map(|c| c.total_usd), Some(dec!(0.000165)));
    }

    const CHAT_SSE: &[u8] = b"data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\n\
data: {\"id\":\"c9\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n\
: keep-alive comment\n\ndata: [DONE]\n\n";

    #[test]
    fn raw_sse_bytes_give_the_same_record_in_any_chunking() {
        let t = tracker();
        let c = client(Sdk::OpenAi, "");
        let facts = RequestFacts { model: Some("gpt-4o-mini"), stream: true, ..RequestFacts::default() };
        for size in [1, 2, 3, 7, CHAT_SSE.len()] {
            let mut stream = t.begin(&c, Api::ChatCompletions, &facts, Attribution::default()).into_stream();
            let hidden: Vec<u64> =
                CHAT_SSE.chunks(size).filter_map(|chunk| stream.push_bytes(chunk).expect("pushed")).collect();
            // The usage-only chunk core asked for (the second event) is the one to hide.
            assert_eq!(hidden, [1], "chunks of {size}");
            let tracked = stream.finish(false).expect("recorded").expect("first finish records");
            assert_eq!((tracked.usage.input_tokens, tracked.usage.output_tokens), (9, 1), "chunks of {size}");
            assert_eq!(tracked.event_id, "c9");
            assert!(stream.finish(false).expect("quiet").is_none(), "a second finish is a no-op");
            assert_eq!(stream.push_event(None, "{}"), Ok(false), "a push after the end is a no-op");
        }
    }

    #[test]
    fn a_dropped_stream_is_recorded_as_aborted_once() {
        let t = tracker();
        let c = client(Sdk::OpenAi, "");
        let facts = RequestFacts { model: Some("gpt-4o"), stream: true, ..RequestFacts::default() };
        let mut call = t.begin(&c, Api::ChatCompletions, &facts, Attribution::default());
        call.set_request_body(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}]}"#);
        let mut stream = call.into_stream();
        stream
            .push_event(None, r#"{"id":"c3","choices":[{"index":0,"delta":{"content":"Hello there"}}]}"#)
            .expect("ok");
        drop(stream);
        let dropped = t.take_dropped();
        assert_eq!(dropped.len(), 1);
        assert!(dropped[0].usage.flags.contains(&UsageFlag::StreamAborted));
        assert_eq!(dropped[0].usage.output_tokens, 2);
        assert!(t.take_dropped().is_empty());
        t.flush().expect("flushed");
        let rows = t.usage(&crate::report::UsageQuery::default()).expect("report");
        assert_eq!(rows[0].requests, 1);
    }

    #[test]
    fn a_finished_stream_is_not_recorded_again_when_dropped() {
        let t = tracker();
        let c = client(Sdk::Anthropic, "");
        let facts = RequestFacts { model: Some("claude-haiku-4-5"), stream: true, ..RequestFacts::default() };
        let mut stream = t.begin(&c, Api::Messages, &facts, Attribution::default()).into_stream();
        let start =
            r#"{"type":"message_start","message":{"id":"msg_9","usage":{"input_tokens":10,"output_tokens":1}}}"#;
        stream.push_event(Some("message_start"), start).expect("ok");
        assert!(stream.finish(true).expect("ok").is_some());
        drop(stream);
        assert!(t.take_dropped().is_empty());
    }
}
