//! OpenAI-shaped usage: chat completions (also Azure OpenAI and xAI), the Responses API, embeddings,
//! images (gpt-image token usage; DALL·E from the request), transcription and speech.
//!
//! Conventions pinned here:
//! - `prompt_tokens` includes `prompt_tokens_details.cached_tokens`, `.cache_write_tokens` (prompt
//!   tokens written to the cache, billed at the cache-write rate) and `.audio_tokens`; all are
//!   subtracted to get uncached text input. The Responses API reports the same under
//!   `input_tokens_details`, with `cache_write_tokens_details.ttl_12h_tokens` for extended retention
//!   (the rest were written with the default 30-minute retention).
//! - The response's `service_tier` is what served the call (a `fast` request is reported as
//!   `priority`); pricing uses it over the requested tier.
//! - The request's web-search context size (`web_search_options.search_context_size` for chat, a
//!   `web_search` tool's `search_context_size` for Responses) is recorded with the usage.
//! - OpenAI and Azure count `completion_tokens_details.reasoning_tokens` inside `completion_tokens`.
//!   xAI reports reasoning *outside* `completion_tokens` (its `total_tokens` = prompt + completion +
//!   reasoning). For xAI the parser adds reasoning to the output unless the reported total shows it is
//!   already inside (total = prompt + completion); without a total the documented xAI convention holds.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::raw::{obj, objs, sub, Count, Seconds, Text, MAX_TOKENS};
use super::{check_total, ImageGeneration, Provider, Usage, UsageSource};
use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PromptDetails {
    cached_tokens: Count,
    cache_write_tokens: Count,
    audio_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CompletionDetails {
    reasoning_tokens: Count,
    audio_tokens: Count,
}

/// `usage` of a chat completion (and of the final chunk of a chat stream).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count,
    #[serde(deserialize_with = "obj")]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(deserialize_with = "obj")]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatResponse<'a> {
    #[serde(deserialize_with = "obj")]
    usage: Option<ChatUsage>,
    #[serde(borrow)]
    service_tier: Text<'a>,
}

impl ChatUsage {
    pub(crate) fn normalize(&self, provider: Provider, p: &str) -> Result<Usage> {
        let prompt = self.prompt_tokens.required(p, "prompt_tokens")?;
        let completion = self.completion_tokens.required(p, "completion_tokens")?;
        let total = self.total_tokens.get(p, "total_tokens")?;
        let (cached, cache_write, audio_in) = match &self.prompt_tokens_details {
            Some(d) => (
                d.cached_tokens.or_zero(p, "prompt_tokens_details.cached_tokens")?,
                d.cache_write_tokens.or_zero(p, "prompt_tokens_details.cache_write_tokens")?,
                d.audio_tokens.or_zero(p, "prompt_tokens_details.audio_tokens")?,
            ),
            None => (0, 0, 0),
        };
        let (reasoning, audio_out) = match &self.completion_tokens_details {
            Some(d) => (
                d.reasoning_tokens.or_zero(p, "completion_tokens_details.reasoning_tokens")?,
                d.audio_tokens.or_zero(p, "completion_tokens_details.audio_tokens")?,
            ),
            None => (0, 0),
        };
        let uncached =
            sub(prompt, cached, p, "prompt_tokens_details.cached_tokens", "cached tokens exceed prompt_tokens")
                .and_then(|rest| {
                    sub(
                        rest,
                        cache_write,
                        p,
                        "prompt_tokens_details.cache_write_tokens",
                        "cache writes + cached exceed prompt_tokens",
                    )
                })
                .and_then(|rest| {
                    sub(rest, audio_in, p, "prompt_tokens_details.audio_tokens", "audio + cached exceed prompt_tokens")
                })?;
        let reasoning_outside = provider == Provider::Xai && total != Some(prompt + completion);
        let output = if reasoning_outside {
            completion + reasoning
        } else {
            sub(
                completion,
                reasoning + audio_out,
                p,
                "completion_tokens_details.reasoning_tokens",
                "reasoning + audio exceed completion_tokens",
            )?;
            completion
        };
        let mut u = Usage {
            input_tokens: uncached,
            cache_read_tokens: cached,
            cache_write_tokens: cache_write,
            audio_input_tokens: audio_in,
            output_tokens: output,
            reasoning_tokens: reasoning,
            audio_output_tokens: audio_out,
            provider_total_tokens: total,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        check_total(&mut u);
        Ok(u)
    }
}

pub(crate) fn chat(r: &ChatResponse<'_>, provider: Provider, request: Option<&Value>) -> Result<Usage> {
    let usage = r.usage.as_ref().ok_or_else(|| Error::missing_field("usage.prompt_tokens"))?;
    let mut u = usage.normalize(provider, "usage")?;
    u.service_tier = r.service_tier.as_str().map(str::to_owned);
    u.web_search_context_size = search_context_size(request);
    Ok(u)
}

/// The web-search context size a request asked for: chat's `web_search_options.search_context_size`,
/// or the `search_context_size` of a Responses `web_search` / `web_search_preview` tool.
pub(crate) fn search_context_size(request: Option<&Value>) -> Option<String> {
    let request = request?;
    let size = request.pointer("/web_search_options/search_context_size").or_else(|| {
        request.get("tools")?.as_array()?.iter().find_map(|tool| {
            let kind = tool.get("type")?.as_str()?;
            kind.starts_with("web_search").then(|| tool.get("search_context_size")).flatten()
        })
    })?;
    size.as_str().map(str::to_owned)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CacheWriteDetails {
    ttl_12h_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InputDetails {
    cached_tokens: Count,
    cache_write_tokens: Count,
    #[serde(deserialize_with = "obj")]
    cache_write_tokens_details: Option<CacheWriteDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OutputDetails {
    reasoning_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResponsesUsage {
    input_tokens: Count,
    #[serde(deserialize_with = "obj")]
    input_tokens_details: Option<InputDetails>,
    output_tokens: Count,
    #[serde(deserialize_with = "obj")]
    output_tokens_details: Option<OutputDetails>,
    total_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OutputItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
}

/// A Responses API `response` object (the body, or `response` inside a stream's terminal event).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResponsesBody<'a> {
    #[serde(deserialize_with = "obj")]
    pub(crate) usage: Option<ResponsesUsage>,
    #[serde(borrow)]
    service_tier: Text<'a>,
    #[serde(borrow, deserialize_with = "objs")]
    output: Option<Vec<OutputItem<'a>>>,
}

pub(crate) fn responses(r: &ResponsesBody<'_>, provider: Provider, p: &str) -> Result<Usage> {
    let usage = r.usage.as_ref().ok_or_else(|| Error::missing_field(format!("{p}.input_tokens")))?;
    let input = usage.input_tokens.required(p, "input_tokens")?;
    let output = usage.output_tokens.required(p, "output_tokens")?;
    let total = usage.total_tokens.get(p, "total_tokens")?;
    let (cached, cache_write, write_12h) = match &usage.input_tokens_details {
        Some(d) => (
            d.cached_tokens.or_zero(p, "input_tokens_details.cached_tokens")?,
            d.cache_write_tokens.or_zero(p, "input_tokens_details.cache_write_tokens")?,
            match &d.cache_write_tokens_details {
                Some(w) => {
                    w.ttl_12h_tokens.or_zero(p, "input_tokens_details.cache_write_tokens_details.ttl_12h_tokens")?
                }
                None => 0,
            },
        ),
        None => (0, 0, 0),
    };
    sub(
        cache_write,
        write_12h,
        p,
        "input_tokens_details.cache_write_tokens_details.ttl_12h_tokens",
        "exceeds cache_write_tokens",
    )?;
    let reasoning = match &usage.output_tokens_details {
        Some(d) => d.reasoning_tokens.or_zero(p, "output_tokens_details.reasoning_tokens")?,
        None => 0,
    };
    let uncached =
        sub(input, cached, p, "input_tokens_details.cached_tokens", "exceeds input_tokens").and_then(|rest| {
            sub(
                rest,
                cache_write,
                p,
                "input_tokens_details.cache_write_tokens",
                "cache writes + cached exceed input_tokens",
            )
        })?;
    let reasoning_outside = provider == Provider::Xai && total != Some(input + output);
    let output = if reasoning_outside {
        output + reasoning
    } else {
        sub(output, reasoning, p, "output_tokens_details.reasoning_tokens", "exceeds output_tokens")?;
        output
    };
    let searches = r
        .output
        .as_ref()
        .map_or(0, |items| items.iter().filter(|i| i.kind.as_str() == Some("web_search_call")).count() as u64);
    let mut u = Usage {
        input_tokens: uncached,
        cache_read_tokens: cached,
        cache_write_tokens: cache_write,
        cache_write_12h_tokens: write_12h,
        output_tokens: output,
        reasoning_tokens: reasoning,
        web_search_requests: searches,
        provider_total_tokens: total,
        service_tier: r.service_tier.as_str().map(str::to_owned),
        usage_source: UsageSource::Reported,
        ..Usage::default()
    };
    check_total(&mut u);
    Ok(u)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EmbeddingsUsage {
    prompt_tokens: Count,
    total_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EmbeddingsResponse {
    #[serde(deserialize_with = "obj")]
    usage: Option<EmbeddingsUsage>,
}

pub(crate) fn embeddings(r: &EmbeddingsResponse) -> Result<Usage> {
    let usage = r.usage.as_ref().ok_or_else(|| Error::missing_field("usage.prompt_tokens"))?;
    let mut u = Usage {
        input_tokens: usage.prompt_tokens.required("usage", "prompt_tokens")?,
        provider_total_tokens: usage.total_tokens.get("usage", "total_tokens")?,
        usage_source: UsageSource::Reported,
        ..Usage::default()
    };
    check_total(&mut u);
    Ok(u)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ModalityDetails {
    text_tokens: Count,
    image_tokens: Count,
    audio_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TokenUsage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    input_tokens: Count,
    #[serde(alias = "input_token_details")]
    #[serde(deserialize_with = "obj")]
    input_tokens_details: Option<ModalityDetails>,
    output_tokens: Count,
    #[serde(deserialize_with = "obj")]
    output_tokens_details: Option<ModalityDetails>,
    total_tokens: Count,
    seconds: Seconds,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ImagesResponse<'a> {
    #[serde(borrow, deserialize_with = "obj")]
    usage: Option<TokenUsage<'a>>,
    data: Option<Vec<IgnoredAny>>,
}

/// gpt-image-1: token usage (text and image input, image output). DALL·E reports nothing: the images
/// are counted from the response's `data` (or the request's `n`) with size and quality from the request.
pub(crate) fn images(r: &ImagesResponse<'_>, request: Option<&Value>) -> Result<Usage> {
    if let Some(usage) = &r.usage {
        let p = "usage";
        let input = usage.input_tokens.required(p, "input_tokens")?;
        let output = usage.output_tokens.required(p, "output_tokens")?;
        let (text, image) = match &usage.input_tokens_details {
            Some(d) => (
                d.text_tokens.get(p, "input_tokens_details.text_tokens")?,
                d.image_tokens.or_zero(p, "input_tokens_details.image_tokens")?,
            ),
            None => (None, 0),
        };
        let text = match text {
            Some(t) => t,
            None => sub(input, image, "usage", "input_tokens_details.image_tokens", "exceeds input_tokens")?,
        };
        let image_out = match &usage.output_tokens_details {
            Some(d) => d.image_tokens.get(p, "output_tokens_details.image_tokens")?.unwrap_or(output),
            None => output,
        };
        sub(output, image_out, "usage", "output_tokens_details.image_tokens", "exceeds output_tokens")?;
        let mut u = Usage {
            input_tokens: text,
            image_input_tokens: image,
            output_tokens: output,
            image_output_tokens: image_out,
            provider_total_tokens: usage.total_tokens.get(p, "total_tokens")?,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        if text + image != input {
            u.flag(super::UsageFlag::TotalMismatch);
        }
        check_total(&mut u);
        return Ok(u);
    }
    let req = request.ok_or_else(|| Error::missing_field("usage"))?;
    let model = req_str(req, "model")?.unwrap_or("dall-e-2");
    if !model.starts_with("dall-e") {
        // Token-priced image models must report usage; there is nothing exact to fall back on.
        return Err(Error::missing_field("usage"));
    }
    let count = match &r.data {
        Some(items) => items.len() as u64,
        None => match req.get("n") {
            None | Some(Value::Null) => 1,
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_TOKENS => n,
                _ => return Err(Error::invalid_value("request.n", v, "must be a non-negative integer")),
            },
        },
    };
    let size = req_str(req, "size")?.filter(|s| *s != "auto").unwrap_or("1024x1024");
    let quality = match req_str(req, "quality")? {
        Some(q) if model.starts_with("dall-e-3") && q != "auto" => q,
        _ => "standard",
    };
    Ok(Usage {
        images: Some(ImageGeneration { count, size: size.to_owned(), quality: quality.to_owned() }),
        usage_source: UsageSource::Reported,
        ..Usage::default()
    })
}

fn req_str<'v>(req: &'v Value, key: &str) -> Result<Option<&'v str>> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(Error::invalid_value(format!("request.{key}"), v, "must be a string")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TranscriptionResponse<'a> {
    #[serde(borrow, deserialize_with = "obj")]
    usage: Option<TokenUsage<'a>>,
    duration: Seconds,
}

/// gpt-4o(-mini)-transcribe report token usage (audio + text prompt in, text out) or a duration;
/// whisper-1 `verbose_json` reports `duration` in seconds.
pub(crate) fn transcription(r: &TranscriptionResponse<'_>) -> Result<Usage> {
    let p = "usage";
    if let Some(usage) = &r.usage {
        if usage.kind.as_str() == Some("duration") {
            let seconds = usage.seconds.get(p, "seconds")?.ok_or_else(|| Error::missing_field("usage.seconds"))?;
            return Ok(Usage { audio_seconds: Some(seconds), usage_source: UsageSource::Reported, ..Usage::default() });
        }
        let input = usage.input_tokens.required(p, "input_tokens")?;
        let output = usage.output_tokens.required(p, "output_tokens")?;
        let (audio, text) = match &usage.input_tokens_details {
            Some(d) => {
                let audio = d.audio_tokens.get(p, "input_token_details.audio_tokens")?;
                let text = d.text_tokens.get(p, "input_token_details.text_tokens")?;
                match (audio, text) {
                    (Some(a), Some(t)) => (a, t),
                    (Some(a), None) => {
                        (a, sub(input, a, "usage", "input_token_details.audio_tokens", "exceeds input_tokens")?)
                    }
                    (None, Some(t)) => {
                        (sub(input, t, "usage", "input_token_details.text_tokens", "exceeds input_tokens")?, t)
                    }
                    (None, None) => (input, 0),
                }
            }
            None => (input, 0),
        };
        let mut u = Usage {
            input_tokens: text,
            audio_input_tokens: audio,
            output_tokens: output,
            provider_total_tokens: usage.total_tokens.get(p, "total_tokens")?,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        if audio + text != input {
            u.flag(super::UsageFlag::TotalMismatch);
        }
        check_total(&mut u);
        return Ok(u);
    }
    match r.duration.get("", "duration")? {
        Some(seconds) => {
            Ok(Usage { audio_seconds: Some(seconds), usage_source: UsageSource::Reported, ..Usage::default() })
        }
        None => Err(Error::missing_field("usage")),
    }
}

/// Text to speech returns audio bytes with no usage: the characters of the request's `input` are the
/// billed quantity (tts-1, tts-1-hd), exact, so the source is `Reported`.
pub(crate) fn speech(request: Option<&Value>) -> Result<Usage> {
    let input = request.and_then(|r| r.get("input")).ok_or_else(|| Error::missing_field("request.input"))?;
    let text = input.as_str().ok_or_else(|| Error::invalid_value("request.input", input, "must be a string"))?;
    Ok(Usage { input_characters: text.chars().count() as u64, usage_source: UsageSource::Reported, ..Usage::default() })
}

/// An OpenAI video job (`/videos`): `seconds` of video requested, as a string (`"8"`) or a number.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VideoJob {
    seconds: Seconds,
}

pub(crate) fn video(r: &VideoJob) -> Result<Usage> {
    let seconds = r.seconds.get("video", "seconds")?.ok_or_else(|| Error::missing_field("seconds"))?;
    Ok(Usage { video_seconds: Some(seconds.normalize()), usage_source: UsageSource::Reported, ..Usage::default() })
}
