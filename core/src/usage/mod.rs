//! Usage normalization: every provider's usage JSON becomes one [`Usage`].
//!
//! The buckets are chosen so that each one has exactly one price:
//! - Input side, **disjoint** (they add up to the prompt): `input_tokens` (uncached text),
//!   `cache_read_tokens`, `cache_write_tokens` (of which `cache_write_1h_tokens` were written with a
//!   1-hour TTL; the rest with 5 minutes), `audio_input_tokens`, `image_input_tokens`.
//! - Output side, **inclusive**: `output_tokens` is all billed output; `reasoning_tokens`,
//!   `audio_output_tokens` and `image_output_tokens` are the parts of it with their own meaning/rate.
//!
//! Provider traps handled here (each pinned by a vector in `tests/vectors/`): OpenAI `prompt_tokens`
//! includes cached tokens, Anthropic `input_tokens` excludes cache reads and writes; OpenAI reasoning
//! is inside `completion_tokens`, Gemini `thoughtsTokenCount` is outside `candidatesTokenCount`.
//!
//! Units beyond tokens: an OpenAI video job ([`Api::Videos`]) gives seconds of video; a Gemini context
//! cache ([`Api::CachedContents`]) gives storage token-hours; Gemini grounding gives search queries.
//!
//! [`parse_response`] / [`parse_response_value`] turn one non-streamed response body into a [`Usage`];
//! the response shape is chosen by [`Api`], the provider decides provider quirks (xAI reasoning). The
//! per-provider modules document each convention. Where a provider reports a total, the buckets are
//! checked against it and a mismatch is flagged ([`UsageFlag::TotalMismatch`]), never corrected.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};

mod anthropic;
mod bedrock;
mod gemini;
mod openai;
pub(crate) mod raw;

pub(crate) use anthropic::{AnthropicUsage, Message as AnthropicMessage};
pub(crate) use bedrock::ConverseUsage;
pub(crate) use gemini::UsageMetadata;
pub(crate) use openai::{responses as openai_responses, ChatUsage, ResponsesBody};

/// Who served the call. Azure and Bedrock are providers of their own (their ids, their regions),
/// resolving to the same priced models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Bedrock,
    Xai,
}

impl Provider {
    pub const ALL: [Provider; 6] = [Self::OpenAi, Self::Azure, Self::Anthropic, Self::Gemini, Self::Bedrock, Self::Xai];

    /// The stable name used in the ledger, the price data and the bindings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure => "azure",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Bedrock => "bedrock",
            Self::Xai => "xai",
        }
    }
}

impl Provider {
    /// The provider behind an OpenAI-compatible client's base URL, by host: `*.x.ai` is xAI, Azure
    /// OpenAI / AI Foundry hosts are Azure, `generativelanguage.googleapis.com` is Gemini's OpenAI
    /// endpoint; any other host is taken as OpenAI-compatible. Both bindings call this, so a client is
    /// recognised the same way in every language.
    pub fn from_base_url(url: &str) -> Provider {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host_port.split(':').next().unwrap_or("").to_ascii_lowercase();
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if under("x.ai") {
            Self::Xai
        } else if under("openai.azure.com") || under("services.ai.azure.com") || under("cognitiveservices.azure.com") {
            Self::Azure
        } else if host == "generativelanguage.googleapis.com" {
            Self::Gemini
        } else {
            Self::OpenAi
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            Error::invalid_value("provider", s, "expected one of openai, azure, anthropic, gemini, bedrock, xai")
        })
    }
}

/// The API surface a call went through; decides which response shape is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// OpenAI-shaped `/chat/completions` (OpenAI, Azure OpenAI, xAI).
    ChatCompletions,
    /// OpenAI Responses API `/responses`.
    Responses,
    Embeddings,
    /// Image generation (`/images/generations`).
    Images,
    /// Speech to text (`/audio/transcriptions`, `/audio/translations`).
    AudioTranscription,
    /// Text to speech (`/audio/speech`); priced from the request's input characters.
    AudioSpeech,
    /// Anthropic `/v1/messages` (also through Bedrock's InvokeModel).
    Messages,
    /// Gemini `generateContent` / `streamGenerateContent`.
    GenerateContent,
    /// Bedrock `Converse` / `ConverseStream`.
    Converse,
    /// OpenAI video generation (`/videos`): the job object, priced per second of video.
    Videos,
    /// Gemini context caches (`cachedContents` create / update): storage priced per token-hour.
    CachedContents,
}

impl Api {
    pub const ALL: [Api; 11] = [
        Self::ChatCompletions,
        Self::Responses,
        Self::Embeddings,
        Self::Images,
        Self::AudioTranscription,
        Self::AudioSpeech,
        Self::Messages,
        Self::GenerateContent,
        Self::Converse,
        Self::Videos,
        Self::CachedContents,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Responses => "responses",
            Self::Embeddings => "embeddings",
            Self::Images => "images",
            Self::AudioTranscription => "audio_transcription",
            Self::AudioSpeech => "audio_speech",
            Self::Messages => "messages",
            Self::GenerateContent => "generate_content",
            Self::Converse => "converse",
            Self::Videos => "videos",
            Self::CachedContents => "cached_contents",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Api {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::invalid_value("api", s, "unknown API surface"))
    }
}

/// How much of a [`Usage`] the provider reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The provider reported final usage; the counts are exact.
    Reported,
    /// Some counts were reported (e.g. input from a stream's start event) and the rest estimated.
    Partial,
    /// Nothing was reported; counts were computed locally.
    Estimated,
    /// No usage at all (e.g. a failed call before any token was processed).
    #[default]
    None,
}

impl UsageSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::Partial => "partial",
            Self::Estimated => "estimated",
            Self::None => "none",
        }
    }

    /// True unless the provider reported every count.
    pub const fn is_estimate(self) -> bool {
        !matches!(self, Self::Reported)
    }
}

/// Images generated by one call, priced per image when the model has no token usage (DALL·E).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageGeneration {
    pub count: u64,
    /// `1024x1024`, …
    pub size: String,
    /// `standard`, `hd`, `low`, `medium`, `high`.
    pub quality: String,
}

/// Something about a usage that a reader must know; kept with the event, never hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageFlag {
    /// The provider's total does not equal the sum of the buckets.
    TotalMismatch,
    /// The stream ended before final usage arrived (abort, error event, lost connection).
    StreamAborted,
    /// The stream finished without usage (e.g. `stream_options.include_usage` was off).
    StreamWithoutUsage,
    /// Token counts come from an approximate tokenizer (Claude, Gemini have no public local one).
    ApproximateTokenizer,
}

/// Normalized usage of one call. See the module docs for which buckets are disjoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached text input tokens.
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    /// All cache-write tokens, whatever their TTL.
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written with a 1-hour TTL (Anthropic).
    pub cache_write_1h_tokens: u64,
    /// The part of `cache_write_tokens` written with 12-hour retention (OpenAI). The rest of
    /// `cache_write_tokens` was written at the provider's default retention (5 or 30 minutes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_12h_tokens: u64,
    /// All billed output tokens, reasoning, audio and image output included.
    pub output_tokens: u64,
    /// The part of `output_tokens` that is reasoning, when reported.
    pub reasoning_tokens: u64,
    /// Uncached audio input tokens (disjoint from `input_tokens`).
    pub audio_input_tokens: u64,
    /// Cached audio input tokens (disjoint from `cache_read_tokens`).
    pub audio_cache_read_tokens: u64,
    /// The part of `output_tokens` that is audio.
    pub audio_output_tokens: u64,
    /// Uncached image input tokens (disjoint from `input_tokens`).
    pub image_input_tokens: u64,
    /// The part of `output_tokens` that is image tokens (gpt-image-1).
    pub image_output_tokens: u64,
    pub web_search_requests: u64,
    /// The search context size of the web searches (`low`, `medium`, `high`), when the request set
    /// one; it picks the per-call rate where the price depends on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_context_size: Option<String>,
    /// Grounded search queries (Gemini `groundingMetadata.webSearchQueries`), priced per query.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub grounding_queries: u64,
    /// Seconds of generated video, for per-second pricing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_seconds: Option<Decimal>,
    /// Context-cache storage, in token-hours (cached tokens × hours kept), for per-hour storage prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_storage_token_hours: Option<Decimal>,
    /// Media items by kind (`image`, `video`, `audio`, …), for per-item prices.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub media_items: BTreeMap<String, u64>,
    /// Images generated, for per-image pricing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageGeneration>,
    /// Seconds of input audio, for per-minute pricing (whisper-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_seconds: Option<Decimal>,
    /// Input characters, for per-character pricing (tts-1).
    pub input_characters: u64,
    /// The provider's own total, when it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_total_tokens: Option<u64>,
    /// The service tier the provider says it used (`default`, `flex`, `priority`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// The speed mode the provider says it used (Anthropic `usage.speed`: `standard`, `fast`); a
    /// speed other than `standard` is priced as the service tier of that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
    /// The region the provider says it served the call in (Anthropic `usage.inference_geo`), which
    /// picks a regional multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub usage_source: UsageSource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<UsageFlag>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// All prompt-side tokens (the disjoint input buckets added up).
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.audio_input_tokens
            + self.audio_cache_read_tokens
            + self.image_input_tokens
    }

    /// Prompt plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens() + self.output_tokens
    }

    /// Adds `flag` once.
    pub fn flag(&mut self, flag: UsageFlag) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }
}

/// Flags a mismatch between the provider's total and the normalized buckets.
pub(crate) fn check_total(u: &mut Usage) {
    if let Some(total) = u.provider_total_tokens {
        if u.total_tokens() != total {
            u.flag(UsageFlag::TotalMismatch);
        }
    }
}

/// Parses one (non-streamed) response body of `api` from `provider` into a normalized [`Usage`].
///
/// `request` is the request body, needed where the response carries no usage: DALL·E (`model`, `n`,
/// `size`, `quality`) and speech (`input`). For [`Api::AudioSpeech`] the body (audio bytes) is not read.
///
/// Errors: [`ErrorCode::InvalidJson`] for a body that is not a JSON object (a Gemini stream array is
/// accepted), [`ErrorCode::MissingField`] when the usage is missing, [`ErrorCode::InvalidValue`] for
/// negative, non-integer or absurd (> 10^12) counts and for parts that exceed their whole.
pub fn parse_response(provider: Provider, api: Api, body: &str, request: Option<&serde_json::Value>) -> Result<Usage> {
    if api == Api::AudioSpeech {
        return openai::speech(request);
    }
    let first = body.trim_start().as_bytes().first().copied();
    let is_list = first == Some(b'[') && api == Api::GenerateContent;
    if first != Some(b'{') && !is_list {
        return Err(Error::new(ErrorCode::InvalidJson, "response body is not a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(body);
    let usage = if is_list {
        let list = raw::objs(&mut de).map_err(raw::from_serde)?.unwrap_or_default();
        de.end().map_err(raw::from_serde)?;
        gemini::response_list(&list)
    } else {
        let usage = dispatch(provider, api, &mut de, request)?;
        de.end().map_err(raw::from_serde)?;
        Ok(usage)
    }?;
    Ok(usage)
}

/// [`parse_response`] for a body already parsed into a `serde_json::Value`.
pub fn parse_response_value(
    provider: Provider,
    api: Api,
    body: &serde_json::Value,
    request: Option<&serde_json::Value>,
) -> Result<Usage> {
    if api == Api::AudioSpeech {
        return openai::speech(request);
    }
    match body {
        serde_json::Value::Object(_) => dispatch(provider, api, body, request),
        serde_json::Value::Array(_) if api == Api::GenerateContent => {
            let list = raw::objs(body).map_err(raw::from_serde)?.unwrap_or_default();
            gemini::response_list(&list)
        }
        _ => Err(Error::new(ErrorCode::InvalidJson, "response body is not a JSON object")),
    }
}

/// Deserializes the typed shape of `api` from `de` and normalizes it.
fn dispatch<'de, D>(provider: Provider, api: Api, de: D, request: Option<&serde_json::Value>) -> Result<Usage>
where
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    fn typed<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de, Error = serde_json::Error>>(
        d: D,
    ) -> Result<T> {
        T::deserialize(d).map_err(raw::from_serde)
    }
    match api {
        Api::ChatCompletions => openai::chat(&typed(de)?, provider, request),
        Api::Responses => openai::responses(&typed(de)?, provider, "usage").map(|mut u| {
            u.web_search_context_size = openai::search_context_size(request);
            u
        }),
        Api::Embeddings => openai::embeddings(&typed(de)?),
        Api::Images => openai::images(&typed(de)?, request),
        Api::AudioTranscription => openai::transcription(&typed(de)?),
        Api::AudioSpeech => openai::speech(request),
        Api::Messages => anthropic::message(&typed(de)?),
        Api::GenerateContent => gemini::response(&typed(de)?),
        Api::Converse => bedrock::converse(&typed(de)?),
        Api::Videos => openai::video(&typed(de)?),
        Api::CachedContents => gemini::cached_content(&typed(de)?),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn providers_are_recognised_by_base_url_host() {
        let cases = [
            ("https://api.x.ai/v1", Provider::Xai),
            ("https://user@EU.X.AI:443/v1", Provider::Xai),
            ("https://my-res.openai.azure.com/openai", Provider::Azure),
            ("https://my-res.services.ai.azure.com/models", Provider::Azure),
            ("https://my-res.cognitiveservices.azure.com", Provider::Azure),
            ("https://generativelanguage.googleapis.com/v1beta/openai/", Provider::Gemini),
            ("https://api.openai.com/v1", Provider::OpenAi),
            ("http://127.0.0.1:8080/v1", Provider::OpenAi),
            ("https://notx.ai.example.com", Provider::OpenAi),
        ];
        for (url, want) in cases {
            assert_eq!(Provider::from_base_url(url), want, "{url}");
        }
    }

    fn codes(r: Result<Usage>) -> std::result::Result<Usage, ErrorCode> {
        r.map_err(|e| e.code())
    }

    #[test]
    fn openai_subtracts_cached_and_audio_from_prompt() {
        let body = json!({"usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
            "prompt_tokens_details": {"cached_tokens": 600, "audio_tokens": 100}}});
        let u = parse_response_value(Provider::OpenAi, Api::ChatCompletions, &body, None);
        let u = codes(u).unwrap_or_default();
        assert_eq!((u.input_tokens, u.cache_read_tokens, u.audio_input_tokens), (300, 600, 100));
        assert_eq!(u.prompt_tokens(), 1000);
        assert!(u.flags.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_response(
            Provider::Anthropic,
            Api::Messages,
            r#"{"usage":{"input_tokens":-1,"output_tokens":1}}"#,
            None,
        )
        .err();
        assert_eq!(e.as_ref().map(Error::code), Some(ErrorCode::InvalidValue));
        assert_eq!(e.as_ref().and_then(Error::field), Some("usage.input_tokens"));
        let e = parse_response(Provider::OpenAi, Api::ChatCompletions, "{}", None).err();
        assert_eq!(e.as_ref().and_then(Error::field), Some("usage.prompt_tokens"));
        let e = parse_response(Provider::Gemini, Api::GenerateContent, "not json", None).err();
        assert_eq!(e.map(|e| e.code()), Some(ErrorCode::InvalidJson));
    }

    #[test]
    fn speech_ignores_the_audio_body() {
        let req = json!({"model": "tts-1", "input": "héllo"});
        let u = codes(parse_response(Provider::OpenAi, Api::AudioSpeech, "\u{0}ID3 binary", Some(&req)));
        assert_eq!(u.map(|u| u.input_characters), Ok(5));
    }

    /// Field names the parsers read, so generated JSON actually reaches them.
    const KEYS: &[&str] = &[
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "cached_tokens",
        "audio_tokens",
        "completion_tokens_details",
        "reasoning_tokens",
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
        "output_tokens_details",
        "input_token_details",
        "text_tokens",
        "image_tokens",
        "type",
        "seconds",
        "duration",
        "data",
        "output",
        "service_tier",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation",
        "ephemeral_5m_input_tokens",
        "ephemeral_1h_input_tokens",
        "server_tool_use",
        "web_search_requests",
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        "totalTokenCount",
        "cachedContentTokenCount",
        "thoughtsTokenCount",
        "toolUsePromptTokenCount",
        "promptTokensDetails",
        "cacheTokensDetails",
        "candidatesTokensDetails",
        "modality",
        "tokenCount",
        "inputTokens",
        "outputTokens",
        "totalTokens",
        "cacheReadInputTokens",
        "cacheWriteInputTokens",
        "cache_write_tokens",
        "cache_write_tokens_details",
        "ttl_12h_tokens",
        "speed",
        "inference_geo",
        "candidates",
        "groundingMetadata",
        "webSearchQueries",
        "createTime",
        "updateTime",
        "expireTime",
        "n",
        "size",
        "quality",
        "model",
        "input",
    ];

    pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (0u64..2000).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop_oneof![Just("AUDIO"), Just("IMAGE"), Just("TEXT"), Just("duration"), Just("tokens"), Just("dall-e-3")]
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let text = String::from_utf8_lossy(&bytes);
            for p in Provider::ALL {
                for a in Api::ALL {
                    let _ = parse_response(p, a, &text, None);
                }
            }
        }

        #[test]
        fn parsers_never_panic_on_json(body in arb_json(), request in arb_json()) {
            let text = body.to_string();
            for p in Provider::ALL {
                for a in Api::ALL {
                    let by_value = parse_response_value(p, a, &body, Some(&request)).map_err(|e| e.code());
                    let by_str = parse_response(p, a, &text, Some(&request)).map_err(|e| e.code());
                    prop_assert_eq!(by_value, by_str);
                }
            }
        }

        #[test]
        fn openai_buckets_add_up_to_total(
            prompt in 0u64..1_000_000, cached_pct in 0u64..=100, audio_pct in 0u64..=100,
            completion in 0u64..1_000_000, reasoning_pct in 0u64..=100,
        ) {
            let cached = prompt * cached_pct / 100;
            let audio = (prompt - cached) * audio_pct / 100;
            let reasoning = completion * reasoning_pct / 100;
            let total = prompt + completion;
            let body = json!({"usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": audio},
                "completion_tokens_details": {"reasoning_tokens": reasoning}}});
            for p in [Provider::OpenAi, Provider::Azure] {
                let u = parse_response_value(p, Api::ChatCompletions, &body, None).map_err(|e| e.code());
                prop_assert_eq!(u.as_ref().map(Usage::total_tokens), Ok(total));
                prop_assert_eq!(u.map(|u| u.flags), Ok(vec![]));
            }
            // xAI reports the same call with reasoning outside completion_tokens.
            let xai = json!({"usage": {"prompt_tokens": prompt, "completion_tokens": completion - reasoning,
                "total_tokens": total, "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": audio},
                "completion_tokens_details": {"reasoning_tokens": reasoning}}});
            let u = parse_response_value(Provider::Xai, Api::ChatCompletions, &xai, None).map_err(|e| e.code());
            prop_assert_eq!(u.as_ref().map(|u| (u.total_tokens(), u.output_tokens)), Ok((total, completion)));
            prop_assert_eq!(u.map(|u| u.flags), Ok(vec![]));
        }

        #[test]
        fn gemini_and_bedrock_buckets_add_up_to_total(
            prompt in 0u64..1_000_000, cached_pct in 0u64..=100, cand in 0u64..100_000,
            thoughts in 0u64..100_000, tool in 0u64..10_000, cw in 0u64..100_000,
        ) {
            let cached = prompt * cached_pct / 100;
            let total = prompt + cand + thoughts + tool;
            let body = json!({"usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": cand,
                "thoughtsTokenCount": thoughts, "toolUsePromptTokenCount": tool, "cachedContentTokenCount": cached,
                "totalTokenCount": total}});
            let u = parse_response_value(Provider::Gemini, Api::GenerateContent, &body, None).map_err(|e| e.code());
            prop_assert_eq!(u.as_ref().map(|u| (u.total_tokens(), u.cache_read_tokens)), Ok((total, cached)));
            prop_assert_eq!(u.map(|u| u.flags), Ok(vec![]));

            let total = prompt + cand + cached + cw;
            let body = json!({"usage": {"inputTokens": prompt, "outputTokens": cand, "cacheReadInputTokens": cached,
                "cacheWriteInputTokens": cw, "totalTokens": total}});
            let u = parse_response_value(Provider::Bedrock, Api::Converse, &body, None).map_err(|e| e.code());
            prop_assert_eq!(u.as_ref().map(Usage::total_tokens), Ok(total));
            prop_assert_eq!(u.map(|u| u.flags), Ok(vec![]));
        }

        #[test]
        fn anthropic_input_side_is_disjoint(i in 0u64..1_000_000, cr in 0u64..1_000_000, m5 in 0u64..100_000, h1 in 0u64..100_000, o in 0u64..100_000) {
            let body = json!({"usage": {"input_tokens": i, "output_tokens": o, "cache_read_input_tokens": cr,
                "cache_creation_input_tokens": m5 + h1,
                "cache_creation": {"ephemeral_5m_input_tokens": m5, "ephemeral_1h_input_tokens": h1}}});
            let u = parse_response_value(Provider::Anthropic, Api::Messages, &body, None).map_err(|e| e.code());
            prop_assert_eq!(u.as_ref().map(|u| (u.prompt_tokens(), u.cache_write_1h_tokens)), Ok((i + cr + m5 + h1, h1)));
            prop_assert_eq!(u.map(|u| u.flags), Ok(vec![]));
        }
    }
}
