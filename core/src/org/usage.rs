//! Billed usage per bucket from the providers' admin usage APIs: OpenAI
//! `GET /v1/organization/usage/{completions,embeddings,images,audio_speeches,audio_transcriptions,
//! moderations,vector_stores,code_interpreter_sessions}` and Anthropic
//! `GET /v1/organizations/usage_report/messages`, in 1m, 1h or 1d buckets.
//!
//! Owns: which endpoints a provider has and what each is grouped by, the query of a page, and reading
//! a page into [`BilledUsage`] rows. The requests themselves (key, retries, pagination cursor) are
//! [`super::billing::fetch`]; resume and idempotent replace are [`super::Org::pull_usage`].
//!
//! Rows are long: one per bucket × group × metric, so every endpoint's metrics (tokens, images,
//! characters, seconds, bytes, sessions, web searches) fit one table without a column per metric.
//! A nested object is flattened with a dot: Anthropic's cache writes split by TTL become
//! `cache_creation.ephemeral_5m_input_tokens` and `cache_creation.ephemeral_1h_input_tokens`, its
//! server tool use `server_tool_use.web_search_requests`. Quantities are read from the JSON number's
//! text (exact). Group fields become the row's dimensions; string fields that are not a dimension
//! (OpenAI images' `size` and `source`, `user_id`) are kept in `detail` as `k=v,…` sorted by name.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::billing::{exact, fetch, midnight, rfc3339, BillingProvider, Page, PullOptions};
use crate::error::{Error, Result};

/// The width of a usage bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketWidth {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl BucketWidth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "1m",
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }

    /// The most buckets one page may hold (both providers' documented maxima).
    fn page_limit(self) -> &'static str {
        match self {
            Self::Minute => "1440",
            Self::Hour => "168",
            Self::Day => "31",
        }
    }
}

impl std::str::FromStr for BucketWidth {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "1m" => Ok(Self::Minute),
            "1h" => Ok(Self::Hour),
            "1d" => Ok(Self::Day),
            other => Err(Error::invalid_value("bucket_width", other, "expected 1m, 1h or 1d")),
        }
    }
}

/// OpenAI's usage endpoints, each with the groupings it accepts among project, model, API key and
/// batch (plus `size` and `source` for images).
const OPENAI_ENDPOINTS: &[(&str, &[&str])] = &[
    ("completions", &["project_id", "model", "api_key_id", "batch"]),
    ("embeddings", &["project_id", "model", "api_key_id"]),
    ("images", &["project_id", "model", "api_key_id", "size", "source"]),
    ("audio_speeches", &["project_id", "model", "api_key_id"]),
    ("audio_transcriptions", &["project_id", "model", "api_key_id"]),
    ("moderations", &["project_id", "model", "api_key_id"]),
    ("vector_stores", &["project_id"]),
    ("code_interpreter_sessions", &["project_id"]),
];

const ANTHROPIC_GROUPS: &[&str] = &["model", "workspace_id", "api_key_id", "service_tier", "context_window"];

/// The usage endpoints a provider has (`messages` is Anthropic's one).
pub fn endpoints(p: BillingProvider) -> Vec<&'static str> {
    match p {
        BillingProvider::Openai => OPENAI_ENDPOINTS.iter().map(|(e, _)| *e).collect(),
        BillingProvider::Anthropic => vec!["messages"],
        BillingProvider::Google => vec![],
    }
}

/// One billed quantity: a bucket, a group and a metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledUsage {
    pub provider: BillingProvider,
    /// `completions`, `embeddings`, … (OpenAI) or `messages` (Anthropic).
    pub endpoint: String,
    pub width: BucketWidth,
    /// The bucket's start, UTC.
    pub bucket_start: DateTime<Utc>,
    /// OpenAI `project_id`, Anthropic `workspace_id`; empty when none (the default workspace).
    pub workspace: String,
    pub model: String,
    pub api_key_id: String,
    /// `true` / `false` when grouped by batch (OpenAI completions), else empty.
    pub batch: String,
    /// Anthropic `service_tier` (`standard`, `batch`, `priority`), else empty.
    pub service_tier: String,
    /// Anthropic `context_window` (`0-200k`, `200k-1m`), else empty.
    pub context_window: String,
    /// Other string fields of the result, `k=v,…` sorted by name.
    pub detail: String,
    /// `input_tokens`, `cache_creation.ephemeral_1h_input_tokens`, `images`, …
    pub metric: String,
    pub quantity: Decimal,
}

/// Fetches one page of `endpoint`'s usage in `width` buckets (with the shared retries).
pub(crate) async fn fetch_usage_page(
    client: &reqwest::Client,
    opts: &PullOptions,
    endpoint: &str,
    width: BucketWidth,
    cursor: Option<&str>,
) -> Result<Page<BilledUsage>> {
    let p = opts.provider;
    let (since, until) = (midnight(opts.since), midnight(opts.until));
    let (path, mut query): (String, Vec<(&str, String)>) = match p {
        BillingProvider::Openai => {
            let groups = OPENAI_ENDPOINTS
                .iter()
                .find(|(e, _)| *e == endpoint)
                .map(|(_, g)| *g)
                .ok_or_else(|| Error::invalid_value("endpoint", endpoint, "not an OpenAI usage endpoint"))?;
            let mut q =
                vec![("start_time", since.timestamp().to_string()), ("end_time", until.timestamp().to_string())];
            q.extend(groups.iter().map(|g| ("group_by", (*g).to_string())));
            (format!("/v1/organization/usage/{endpoint}"), q)
        }
        BillingProvider::Anthropic => {
            let mut q = vec![("starting_at", rfc3339(since)), ("ending_at", rfc3339(until))];
            q.extend(ANTHROPIC_GROUPS.iter().map(|g| ("group_by[]", (*g).to_string())));
            ("/v1/organizations/usage_report/messages".to_string(), q)
        }
        BillingProvider::Google => return Err(super::billing::no_api()),
    };
    query.push(("bucket_width", width.as_str().into()));
    query.push(("limit", width.page_limit().into()));
    parse_usage_page(p, endpoint, width, &fetch(client, opts, &path, query, cursor).await?)
}

#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    data: Vec<RawBucket<'a>>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page: Option<String>,
}

#[derive(Deserialize)]
struct RawBucket<'a> {
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    starting_at: Option<String>,
    #[serde(borrow)]
    results: Vec<BTreeMap<&'a str, &'a RawValue>>,
}

/// Reads one page of a usage endpoint into long rows.
pub(crate) fn parse_usage_page(
    p: BillingProvider,
    endpoint: &str,
    width: BucketWidth,
    body: &[u8],
) -> Result<Page<BilledUsage>> {
    let page: RawPage<'_> = serde_json::from_slice(body)?;
    let mut rows = Vec::new();
    for bucket in &page.data {
        let start = match (bucket.start_time, &bucket.starting_at) {
            (Some(t), _) => Utc.timestamp_opt(t, 0).single(),
            (None, Some(s)) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
        .ok_or_else(|| Error::missing_field("data[].start_time"))?;
        for result in &bucket.results {
            let mut row = BilledUsage {
                provider: p,
                endpoint: endpoint.to_string(),
                width,
                bucket_start: start,
                workspace: String::new(),
                model: String::new(),
                api_key_id: String::new(),
                batch: String::new(),
                service_tier: String::new(),
                context_window: String::new(),
                detail: String::new(),
                metric: String::new(),
                quantity: Decimal::ZERO,
            };
            let mut details = Vec::new();
            let mut metrics = Vec::new();
            for (name, raw) in result {
                read_field(name, raw, &mut row, &mut details, &mut metrics)?;
            }
            row.detail = details.join(",");
            for (metric, quantity) in metrics {
                rows.push(BilledUsage { metric, quantity, ..row.clone() });
            }
        }
    }
    let next = if page.has_more { page.next_page } else { None };
    Ok(Page { rows, next })
}

/// Sorts one field of a result into a dimension, a detail or metrics (nested objects flattened).
fn read_field(
    name: &str,
    raw: &RawValue,
    row: &mut BilledUsage,
    details: &mut Vec<String>,
    metrics: &mut Vec<(String, Decimal)>,
) -> Result<()> {
    let text = raw.get().trim();
    if name == "object" || text == "null" {
        return Ok(());
    }
    if text.starts_with('{') {
        let inner: BTreeMap<&str, &RawValue> = serde_json::from_str(text)?;
        for (k, v) in inner {
            let t = v.get().trim();
            if t != "null" && !t.starts_with('"') && !t.starts_with('{') {
                metrics.push((format!("{name}.{k}"), exact(&format!("{name}.{k}"), t)?.normalize()));
            }
        }
        return Ok(());
    }
    if text == "true" || text == "false" {
        if name == "batch" {
            row.batch = text.to_string();
        } else {
            details.push(format!("{name}={text}"));
        }
        return Ok(());
    }
    if text.starts_with('"') {
        let value: String = serde_json::from_str(text)?;
        match name {
            "project_id" | "workspace_id" => row.workspace = value,
            "model" => row.model = value,
            "api_key_id" => row.api_key_id = value,
            "service_tier" => row.service_tier = value,
            "context_window" => row.context_window = value,
            _ => details.push(format!("{name}={value}")),
        }
        return Ok(());
    }
    metrics.push((name.to_string(), exact(name, text)?.normalize()));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_cache_writes_split_by_ttl_and_server_tools_are_metrics() {
        let body = br#"{"data":[{"starting_at":"2026-11-01T10:00:00Z","ending_at":"2026-11-01T11:00:00Z",
            "results":[{"uncached_input_tokens":1500,"cache_creation":{"ephemeral_1h_input_tokens":1000,
            "ephemeral_5m_input_tokens":300},"cache_read_input_tokens":5000,"output_tokens":700,
            "server_tool_use":{"web_search_requests":2},"api_key_id":"apikey_1","workspace_id":null,
            "model":"claude-sonnet-4-20250514","service_tier":"standard","context_window":"0-200k"}]}],
            "has_more":false,"next_page":null}"#;
        let page = parse_usage_page(BillingProvider::Anthropic, "messages", BucketWidth::Hour, body).unwrap();
        let got: Vec<(&str, Decimal)> = page.rows.iter().map(|r| (r.metric.as_str(), r.quantity)).collect();
        assert_eq!(
            got,
            vec![
                ("cache_creation.ephemeral_1h_input_tokens", Decimal::from(1000)),
                ("cache_creation.ephemeral_5m_input_tokens", Decimal::from(300)),
                ("cache_read_input_tokens", Decimal::from(5000)),
                ("output_tokens", Decimal::from(700)),
                ("server_tool_use.web_search_requests", Decimal::from(2)),
                ("uncached_input_tokens", Decimal::from(1500)),
            ]
        );
        let r = &page.rows[0];
        assert_eq!(r.bucket_start.to_rfc3339(), "2026-11-01T10:00:00+00:00");
        assert_eq!(
            (r.workspace.as_str(), r.api_key_id.as_str(), r.service_tier.as_str(), r.context_window.as_str()),
            ("", "apikey_1", "standard", "0-200k")
        );
    }

    #[test]
    fn openai_images_keep_size_and_source_as_detail_and_fractions_exact() {
        let body = br#"{"object":"page","data":[{"object":"bucket","start_time":1793491200,"end_time":1793577600,
            "results":[{"object":"organization.usage.images.result","images":2,"num_model_requests":2,
            "size":"1024x1024","source":"image.generation","project_id":"proj_b","model":"gpt-image-1",
            "api_key_id":null,"seconds":0.1}]}],"has_more":true,"next_page":"page_1"}"#;
        let page = parse_usage_page(BillingProvider::Openai, "images", BucketWidth::Day, body).unwrap();
        assert_eq!(page.next.as_deref(), Some("page_1"));
        assert_eq!(page.rows.len(), 3);
        assert_eq!(page.rows[0].detail, "size=1024x1024,source=image.generation");
        assert_eq!(page.rows[2].quantity, Decimal::new(1, 1));
        assert_eq!(BucketWidth::Minute, "1m".parse().unwrap());
        assert!("2d".parse::<BucketWidth>().is_err());
    }
}
