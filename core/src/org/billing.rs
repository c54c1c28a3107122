//! Pulling what the providers billed from their admin cost APIs: OpenAI `GET /v1/organization/costs`
//! and Anthropic `GET /v1/organizations/cost_report`, daily buckets; and the one request path every
//! admin API call (costs and [`super::usage`]) goes through.
//!
//! Owns: the admin-key check (a normal API key is refused before anything is sent, naming the kind of
//! key needed; keys are never printed, logged or stored), the requests ([`fetch`]) and their pagination
//! (`next_page` / `has_more`), retries of 429 and 5xx honouring `retry-after` (seconds) or
//! `retry-after-ms`, else exponential backoff, and reading each cost result into a [`BilledCost`] with an
//! exact amount (the JSON number's text, never a float). The store side (resume from the saved cursor,
//! replacing a period idempotently) is [`super::Org::pull`].
//!
//! Amounts: OpenAI reports `amount.value` in the currency's units (USD); Anthropic reports `amount` as
//! a decimal string in the currency's lowest unit (cents), divided by 100 here.
//! xAI and Google have no cost API for API keys; Google's bill comes from a file ([`super::gcp_billing`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::backoff::Backoff;
use crate::error::{Error, ErrorCode, Result};

/// A provider whose bill is stored: OpenAI and Anthropic through their admin APIs, Google from a
/// Cloud Billing export file ([`super::gcp_billing`]; Google has no billing API for API keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingProvider {
    Openai,
    Anthropic,
    Google,
}

impl BillingProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Google => "google",
        }
    }

    /// Reads a provider name as stored (`google` included, which [`str::parse`] refuses: it cannot
    /// be pulled).
    pub fn from_stored(s: &str) -> Result<Self> {
        match s {
            "google" => Ok(Self::Google),
            other => other.parse(),
        }
    }

    /// The environment variable the CLI reads the admin key from (none for Google).
    pub fn key_env(self) -> &'static str {
        match self {
            Self::Openai => "OPENAI_ADMIN_KEY",
            Self::Anthropic => "ANTHROPIC_ADMIN_KEY",
            Self::Google => "",
        }
    }

    /// None for Google.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Openai => "https://api.openai.com",
            Self::Anthropic => "https://api.anthropic.com",
            Self::Google => "",
        }
    }

    fn admin_prefix(self) -> &'static str {
        match self {
            Self::Openai => "sk-admin-",
            Self::Anthropic => "sk-ant-admin",
            Self::Google => "",
        }
    }

    fn key_kind_needed(self) -> &'static str {
        match self {
            Self::Openai => {
                "an OpenAI organization Admin key (sk-admin-…, created under Organization settings → Admin keys)"
            }
            Self::Anthropic => "an Anthropic Admin API key (sk-ant-admin…, created in the Console under Admin keys)",
            Self::Google => "no key: Google has no billing API for API keys",
        }
    }

    /// Refuses a key that is not an admin key, without ever showing it; refuses Google, which has
    /// no billing API to pull from (its bill is imported from a file).
    pub fn check_key(self, key: &str) -> Result<()> {
        if self == Self::Google {
            return Err(no_api());
        }
        if key.trim().is_empty() {
            return Err(Error::config(
                self.key_env(),
                "",
                &format!("not set: the cost API needs {}", self.key_kind_needed()),
            ));
        }
        if !key.starts_with(self.admin_prefix()) {
            let kind = match (self, key) {
                (Self::Anthropic, k) if k.starts_with("sk-ant-api") => "a normal API key",
                (Self::Openai, k) if k.starts_with("sk-proj-") => "a project API key",
                (Self::Openai, k) if k.starts_with("sk-svcacct-") => "a service-account key",
                (_, k) if k.starts_with("sk-") => "a normal API key",
                _ => "not a key this provider issues",
            };
            return Err(Error::config(
                self.key_env(),
                "<redacted>",
                &format!("this is {kind}; the cost API needs {}", self.key_kind_needed()),
            ));
        }
        Ok(())
    }
}

impl std::str::FromStr for BillingProvider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "openai" => Ok(Self::Openai),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(Error::invalid_value(
                "provider",
                other,
                "expected openai or anthropic (xAI and Google have no cost API for API keys; import Google \
                 Cloud's billing export with `llmledger import gcp-billing FILE`)",
            )),
        }
    }
}

/// The error of asking Google's bill from an API.
pub(crate) fn no_api() -> Error {
    Error::invalid_value(
        "provider",
        "google",
        "Google has no billing API for API keys: import the Cloud Billing export (`llmledger import gcp-billing FILE`)",
    )
}

/// One billed amount: a day, a workspace/project and a line item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledCost {
    pub provider: BillingProvider,
    /// The UTC day of the bucket.
    pub day: NaiveDate,
    /// OpenAI `project_id`, Anthropic `workspace_id`; empty when the provider gives none (the default
    /// workspace, or ungrouped).
    pub workspace: String,
    /// OpenAI `line_item` (`gpt-4o-2024-08-06, input`), Anthropic `description`.
    pub item: String,
    /// The model, when the provider names it (Anthropic `model`).
    pub model: Option<String>,
    pub amount: Decimal,
    /// `USD` as reported.
    pub currency: String,
}

/// How a pull talks to the provider.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub provider: BillingProvider,
    /// Without a trailing `/v1`; the provider's default unless testing.
    pub base_url: String,
    /// The admin key (never shown).
    pub key: String,
    pub since: NaiveDate,
    /// Exclusive.
    pub until: NaiveDate,
    /// Retries per request on 429, 5xx and connection errors (5).
    pub max_retries: u32,
    /// First backoff when the server names no delay (1 s), doubled each retry, at most 60 s.
    pub initial_backoff: Duration,
    pub request_timeout: Duration,
}

impl PullOptions {
    pub fn new(provider: BillingProvider, key: String, since: NaiveDate, until: NaiveDate) -> Self {
        Self {
            provider,
            base_url: provider.default_base_url().to_string(),
            key,
            since,
            until,
            max_retries: 5,
            initial_backoff: Duration::from_secs(1),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// A page of results and the cursor of the next one.
#[derive(Debug)]
pub(crate) struct Page<T = BilledCost> {
    pub(crate) rows: Vec<T>,
    pub(crate) next: Option<String>,
}

/// The HTTP client: rustls with the `ring` provider given to this client only, as for webhooks.
pub(crate) fn http_client(opts: &PullOptions) -> Result<reqwest::Client> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let tls_err = |e: rustls::Error| Error::new(ErrorCode::Config, format!("cannot set up TLS: {e}"));
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_platform_verifier()
            .map_err(tls_err)?
            .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(opts.request_timeout)
        .user_agent(concat!("llmledger/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::new(ErrorCode::Config, format!("cannot build the HTTP client: {}", e.without_url())))
}

pub(crate) fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
}

/// Fetches one page of the cost report (with retries); `cursor` is the `next_page` of the previous one.
pub(crate) async fn fetch_page(client: &reqwest::Client, opts: &PullOptions, cursor: Option<&str>) -> Result<Page> {
    let p = opts.provider;
    let query: Vec<(&str, String)> = match p {
        BillingProvider::Openai => vec![
            ("start_time", midnight(opts.since).timestamp().to_string()),
            ("end_time", midnight(opts.until).timestamp().to_string()),
            ("bucket_width", "1d".into()),
            ("group_by", "project_id".into()),
            ("group_by", "line_item".into()),
            ("limit", "31".into()),
        ],
        BillingProvider::Anthropic => vec![
            ("starting_at", rfc3339(midnight(opts.since))),
            ("ending_at", rfc3339(midnight(opts.until))),
            ("group_by[]", "workspace_id".into()),
            ("group_by[]", "description".into()),
        ],
        BillingProvider::Google => return Err(no_api()),
    };
    let path = match p {
        BillingProvider::Openai => "/v1/organization/costs",
        _ => "/v1/organizations/cost_report",
    };
    parse_page(p, &fetch(client, opts, path, query, cursor).await?)
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// GETs `path` of an admin API with `query` (plus `page=cursor`) and returns the 200 body: the one
/// place that sends the admin key, retries 429/5xx/connection errors and maps a refused key.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    opts: &PullOptions,
    path: &str,
    mut query: Vec<(&str, String)>,
    cursor: Option<&str>,
) -> Result<Vec<u8>> {
    let p = opts.provider;
    let base = opts.base_url.trim_end_matches('/');
    if let Some(c) = cursor {
        query.push(("page", c.to_string()));
    }
    let url = format!("{base}{path}");
    let schedule = Backoff { initial: opts.initial_backoff, multiplier: 2, max: Duration::from_secs(60), jitter: true };
    let mut rng = u64::from(std::process::id()) ^ 0x5deece66d;
    let mut attempt = 0u32;
    loop {
        let mut req = client.get(with_query(&url, &query));
        req = match p {
            BillingProvider::Openai => req.bearer_auth(&opts.key),
            BillingProvider::Anthropic => req.header("x-api-key", &opts.key).header("anthropic-version", "2023-06-01"),
            BillingProvider::Google => return Err(no_api()),
        };
        let outcome = req.send().await;
        let retry_in = match outcome {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if status == 200 {
                    let body = resp.bytes().await.map_err(|e| {
                        Error::new(
                            ErrorCode::Store,
                            format!("{} admin API {path}: reading the body: {}", p.as_str(), e.without_url()),
                        )
                    })?;
                    return Ok(body.to_vec());
                }
                if status == 401 || status == 403 {
                    return Err(Error::config(
                        p.key_env(),
                        "<redacted>",
                        &format!(
                            "the {} admin API {path} refused the key (HTTP {status}); it needs {}",
                            p.as_str(),
                            p.key_kind_needed()
                        ),
                    ));
                }
                if status != 429 && status < 500 {
                    return Err(Error::new(
                        ErrorCode::InvalidValue,
                        format!("{} admin API {path} answered HTTP {status}", p.as_str()),
                    ));
                }
                let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                let named = header("retry-after-ms")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_millis)
                    .or_else(|| {
                        header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs)
                    });
                (format!("HTTP {status}"), named)
            }
            Err(e) => (format!("{}", e.without_url()), None),
        };
        if attempt >= opts.max_retries {
            return Err(Error::new(
                ErrorCode::Store,
                format!("{} admin API {path}: {} after {} retries", p.as_str(), retry_in.0, opts.max_retries),
            ));
        }
        tokio::time::sleep(retry_in.1.unwrap_or_else(|| schedule.delay(attempt, &mut rng))).await;
        attempt += 1;
    }
}

/// `url?k=v&…` with keys and values percent-encoded (everything but unreserved characters).
fn with_query(url: &str, query: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
    format!("{url}?{}", pairs.join("&"))
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
    results: Vec<RawResult<'a>>,
}

#[derive(Deserialize)]
struct RawResult<'a> {
    /// OpenAI: `{"value": 0.06, "currency": "usd"}`; Anthropic: `"123.45"` (cents).
    #[serde(borrow)]
    amount: &'a RawValue,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    line_item: Option<String>,
    #[serde(default)]
    workspace_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct RawAmount<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(default)]
    currency: Option<String>,
}

pub(crate) fn exact(field: &str, text: &str) -> Result<Decimal> {
    let t = text.trim().trim_matches('"');
    t.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| Error::invalid_value(field, t, "not a decimal amount"))
}

pub(crate) fn parse_page(p: BillingProvider, body: &[u8]) -> Result<Page> {
    let page: RawPage<'_> = serde_json::from_slice(body)?;
    let mut rows = Vec::new();
    for bucket in &page.data {
        let day = match (bucket.start_time, &bucket.starting_at) {
            (Some(t), _) => Utc.timestamp_opt(t, 0).single().map(|t| t.date_naive()),
            (None, Some(s)) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc).date_naive()),
            _ => None,
        }
        .ok_or_else(|| Error::missing_field("data[].start_time"))?;
        for r in &bucket.results {
            let (amount, currency) = match p {
                BillingProvider::Openai => {
                    let a: RawAmount<'_> = serde_json::from_str(r.amount.get())?;
                    (exact("amount.value", a.value.get())?, a.currency.unwrap_or_else(|| "usd".into()))
                }
                BillingProvider::Anthropic => (
                    exact("amount", r.amount.get())? / Decimal::ONE_HUNDRED,
                    r.currency.clone().unwrap_or_else(|| "USD".into()),
                ),
                BillingProvider::Google => return Err(no_api()),
            };
            rows.push(BilledCost {
                provider: p,
                day,
                workspace: r.project_id.clone().or_else(|| r.workspace_id.clone()).unwrap_or_default(),
                item: r.line_item.clone().or_else(|| r.description.clone()).unwrap_or_default(),
                model: r.model.clone(),
                amount: amount.normalize(),
                currency: currency.to_ascii_uppercase(),
            });
        }
    }
    let next = if page.has_more { page.next_page } else { None };
    Ok(Page { rows, next })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_key_is_refused_naming_the_kind_needed_and_never_shown() {
        let e = BillingProvider::Openai.check_key("sk-proj-SECRET123").unwrap_err();
        assert_eq!((e.code(), e.field(), e.value()), (ErrorCode::Config, Some("OPENAI_ADMIN_KEY"), Some("<redacted>")));
        assert!(e.message().contains("project API key") && e.message().contains("Admin key"));
        assert!(!e.to_string().contains("SECRET123"));
        let e = BillingProvider::Anthropic.check_key("sk-ant-api03-SECRET").unwrap_err();
        assert!(e.message().contains("normal API key") && !e.to_string().contains("SECRET"));
        assert!(BillingProvider::Anthropic.check_key("sk-ant-admin01-x").is_ok());
    }

    #[test]
    fn amounts_are_read_exactly() {
        let openai = br#"{"object":"page","data":[{"object":"bucket","start_time":1793491200,"end_time":1793577600,
            "results":[{"object":"organization.costs.result","amount":{"value":0.1,"currency":"usd"},"line_item":"gpt-4o, input","project_id":"proj_a"}]}],
            "has_more":true,"next_page":"page_2"}"#;
        let page = parse_page(BillingProvider::Openai, openai).unwrap();
        assert_eq!(page.next.as_deref(), Some("page_2"));
        assert_eq!(page.rows[0].amount, Decimal::new(1, 1));
        assert_eq!(page.rows[0].day.to_string(), "2026-11-01");
        let anthropic = br#"{"data":[{"starting_at":"2026-11-02T00:00:00Z","ending_at":"2026-11-03T00:00:00Z",
            "results":[{"currency":"USD","amount":"1234.5","workspace_id":"wrk_1","description":"Claude Sonnet 4 Usage - Input Tokens","model":"claude-sonnet-4-20250514"}]}],
            "has_more":false,"next_page":"ignored"}"#;
        let page = parse_page(BillingProvider::Anthropic, anthropic).unwrap();
        assert_eq!((page.rows[0].amount, page.next), (Decimal::new(12345, 3), None));
    }
}
