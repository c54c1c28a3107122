//! Gemini `usageMetadata` (Gemini API and Vertex AI `generateContent` / `streamGenerateContent`).
//!
//! - `promptTokenCount` INCLUDES `cachedContentTokenCount`; `promptTokensDetails` /
//!   `cacheTokensDetails` split both by modality: AUDIO goes to the audio buckets, IMAGE to
//!   `image_input_tokens`, everything else (TEXT, VIDEO, DOCUMENT) is text-rate input.
//! - `toolUsePromptTokenCount` (tool results fed back, e.g. search) is outside the prompt count and
//!   billed as input.
//! - `candidatesTokenCount` EXCLUDES `thoughtsTokenCount`: output = candidates + thoughts,
//!   reasoning = thoughts.
//! - `totalTokenCount` = prompt + tool-use prompt + candidates + thoughts, checked.
//! - Protobuf JSON omits zero counts, so an absent count inside `usageMetadata` is 0.
//! - Grounding with Google Search: the queries the model issued are listed per candidate in
//!   `groundingMetadata.webSearchQueries`; their number is recorded as `grounding_queries`.

use serde::Deserialize;

use rust_decimal::Decimal;

use super::raw::{obj, objs, sub, Count, Len, Text};
use super::{check_total, Usage, UsageFlag, UsageSource};
use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ModalityCount<'a> {
    #[serde(borrow)]
    modality: Text<'a>,
    token_count: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct UsageMetadata<'a> {
    prompt_token_count: Count,
    candidates_token_count: Count,
    total_token_count: Count,
    cached_content_token_count: Count,
    thoughts_token_count: Count,
    tool_use_prompt_token_count: Count,
    #[serde(borrow, deserialize_with = "objs")]
    prompt_tokens_details: Option<Vec<ModalityCount<'a>>>,
    #[serde(borrow, deserialize_with = "objs")]
    cache_tokens_details: Option<Vec<ModalityCount<'a>>>,
    #[serde(borrow, deserialize_with = "objs")]
    candidates_tokens_details: Option<Vec<ModalityCount<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct GroundingMetadata {
    web_search_queries: Len,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(deserialize_with = "obj")]
    grounding_metadata: Option<GroundingMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse<'a> {
    #[serde(borrow, deserialize_with = "obj")]
    pub(crate) usage_metadata: Option<UsageMetadata<'a>>,
    #[serde(deserialize_with = "objs")]
    candidates: Option<Vec<Candidate>>,
}

/// Grounded search queries over a response's candidates.
pub(crate) fn grounding_queries(candidates: &Option<Vec<Candidate>>) -> u64 {
    candidates
        .iter()
        .flatten()
        .filter_map(|c| c.grounding_metadata.as_ref())
        .fold(0u64, |n, g| n.saturating_add(g.web_search_queries.0))
}

/// Totals of a modality list: (all, audio, image).
fn by_modality(list: &Option<Vec<ModalityCount<'_>>>, p: &str, name: &str) -> Result<(u64, u64, u64)> {
    let (mut all, mut audio, mut image) = (0u64, 0u64, 0u64);
    for m in list.iter().flatten() {
        let n = m.token_count.or_zero(p, name)?;
        // Saturating: a hostile list could hold millions of 10^12 entries.
        all = all.saturating_add(n);
        match m.modality.as_str() {
            Some("AUDIO") => audio = audio.saturating_add(n),
            Some("IMAGE") => image = image.saturating_add(n),
            _ => {}
        }
    }
    Ok((all, audio, image))
}

impl UsageMetadata<'_> {
    pub(crate) fn normalize(&self, p: &str) -> Result<Usage> {
        let prompt = self.prompt_token_count.or_zero(p, "promptTokenCount")?;
        let candidates = self.candidates_token_count.or_zero(p, "candidatesTokenCount")?;
        let cached = self.cached_content_token_count.or_zero(p, "cachedContentTokenCount")?;
        let thoughts = self.thoughts_token_count.or_zero(p, "thoughtsTokenCount")?;
        let tool = self.tool_use_prompt_token_count.or_zero(p, "toolUsePromptTokenCount")?;
        let total = self.total_token_count.get(p, "totalTokenCount")?;
        let (details_all, audio_p, image_p) =
            by_modality(&self.prompt_tokens_details, p, "promptTokensDetails.tokenCount")?;
        let (_, audio_c, image_c) = by_modality(&self.cache_tokens_details, p, "cacheTokensDetails.tokenCount")?;
        let (_, audio_out, image_out) =
            by_modality(&self.candidates_tokens_details, p, "candidatesTokensDetails.tokenCount")?;

        const PART: &str = "exceeds the count it is part of";
        sub(prompt, cached, p, "cachedContentTokenCount", PART)?;
        let cache_read = sub(cached, audio_c, p, "cacheTokensDetails", PART)?;
        let audio_input = sub(audio_p, audio_c, p, "cacheTokensDetails", PART)?;
        let image_input = sub(image_p, image_c, p, "cacheTokensDetails", PART)?;
        let input = sub(
            prompt,
            cached.saturating_add(audio_input).saturating_add(image_input),
            p,
            "promptTokensDetails",
            PART,
        )? + tool;
        let mut u = Usage {
            input_tokens: input,
            cache_read_tokens: cache_read,
            audio_cache_read_tokens: audio_c,
            audio_input_tokens: audio_input,
            image_input_tokens: image_input,
            output_tokens: candidates + thoughts,
            reasoning_tokens: thoughts,
            audio_output_tokens: audio_out,
            image_output_tokens: image_out,
            provider_total_tokens: total,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        let parts_exceed_output = audio_out.saturating_add(image_out) > candidates;
        if (self.prompt_tokens_details.is_some() && details_all != prompt) || parts_exceed_output {
            u.flag(UsageFlag::TotalMismatch);
        }
        check_total(&mut u);
        Ok(u)
    }
}

pub(crate) fn response(r: &GenerateContentResponse<'_>) -> Result<Usage> {
    let mut u =
        r.usage_metadata.as_ref().ok_or_else(|| Error::missing_field("usageMetadata"))?.normalize("usageMetadata")?;
    u.grounding_queries = grounding_queries(&r.candidates);
    Ok(u)
}

/// A non-SSE `streamGenerateContent` body is a JSON array of responses, each repeating the cumulative
/// usage: the last one that carries usage is the final count.
pub(crate) fn response_list(list: &[GenerateContentResponse<'_>]) -> Result<Usage> {
    match list.iter().rev().find(|r| r.usage_metadata.is_some()) {
        Some(r) => {
            let mut u = response(r)?;
            // Grounding metadata may sit in another element than the final usage.
            u.grounding_queries = list.iter().map(|r| grounding_queries(&r.candidates)).max().unwrap_or(0);
            Ok(u)
        }
        None => Err(Error::missing_field("usageMetadata")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct CacheUsage {
    total_token_count: Count,
}

/// A Gemini `cachedContents` resource as a create or update returns it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct CachedContent<'a> {
    #[serde(deserialize_with = "obj")]
    usage_metadata: Option<CacheUsage>,
    #[serde(borrow)]
    create_time: Text<'a>,
    #[serde(borrow)]
    update_time: Text<'a>,
    #[serde(borrow)]
    expire_time: Text<'a>,
}

fn instant(t: &Text<'_>, field: &str) -> Result<Option<chrono::DateTime<chrono::FixedOffset>>> {
    t.as_str()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s).map_err(|_| Error::invalid_value(field, s, "not an RFC 3339 time"))
        })
        .transpose()
}

/// Storage of a context cache: its cached tokens × the hours from this write (`updateTime`, else
/// `createTime`) to `expireTime`, as token-hours. Each create or TTL update is one event billing the
/// time it adds; an update that shortens the TTL does not refund (nothing negative is recorded).
pub(crate) fn cached_content(c: &CachedContent<'_>) -> Result<Usage> {
    let tokens = c
        .usage_metadata
        .as_ref()
        .ok_or_else(|| Error::missing_field("usageMetadata.totalTokenCount"))?
        .total_token_count
        .required("usageMetadata", "totalTokenCount")?;
    let from = instant(&c.update_time, "updateTime")?
        .or(instant(&c.create_time, "createTime")?)
        .ok_or_else(|| Error::missing_field("createTime"))?;
    let until = instant(&c.expire_time, "expireTime")?.ok_or_else(|| Error::missing_field("expireTime"))?;
    let millis = (until - from).num_milliseconds().max(0);
    let hours = Decimal::new(millis, 3) / Decimal::from(3600);
    let token_hours = Decimal::from(tokens)
        .checked_mul(hours)
        .ok_or_else(|| Error::invalid_value("usageMetadata.totalTokenCount", tokens, "storage overflows"))?;
    Ok(Usage {
        cache_storage_token_hours: Some(token_hours.normalize()),
        usage_source: UsageSource::Reported,
        ..Usage::default()
    })
}
