//! `llmledger serve`: the read-only dashboard over a ledger. Owns the HTTP surface only: the routes,
//! the bind/token rule, the query-string form of a [`UsageQuery`] and the security headers. Every
//! number comes from [`Ledger::query`], the engine behind `report` and the bindings' `tracker.usage()`
//! (rollups for day/month groups in the store's zone, raw events otherwise).
//!
//! The page and its scripts are compiled into the binary (no CDN): `assets/index.html`, `assets/app.js`
//! (which builds every label with `textContent`, never `innerHTML`) and the vendored Chart.js build.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use llmledger_core::currency::Rates;
use llmledger_core::ledger::health::redact_credentials;
use llmledger_core::ledger::{Ledger, LedgerConfig};
use llmledger_core::report::{GroupBy, UsageFilter, UsageQuery};
use llmledger_core::{Error, ErrorCode};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
/// Chart.js 4.6.1 (MIT, `cli/assets/vendor/chart.js-4.6.1/LICENSE.md`), the npm package's UMD build.
const CHART_JS: &str = include_str!("../assets/vendor/chart.js-4.6.1/chart.umd.min.js");

/// Only our own scripts and styles run: a label that slipped into markup still could not execute.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where and how to serve.
#[derive(Debug)]
pub struct ServeConfig {
    pub store: String,
    pub addr: SocketAddr,
    pub token: Option<String>,
}

/// Refuses a non-loopback address without a bearer token (anyone on the network could read the ledger).
pub fn check_bind(addr: &SocketAddr, token: Option<&str>) -> Result<(), Error> {
    match token {
        Some(t) if t.trim().is_empty() => Err(Error::config("token", "", "the bearer token must not be empty")),
        None if !addr.ip().is_loopback() => Err(Error::config(
            "addr",
            addr,
            "a non-loopback address needs --token (clients then send `Authorization: Bearer <token>`)",
        )),
        _ => Ok(()),
    }
}

#[derive(Debug)]
struct AppState {
    ledger: Ledger,
    token: Option<String>,
}

/// Binds, prints the dashboard's URL on stdout and serves until the process is stopped.
pub fn run(config: ServeConfig) -> Result<(), Error> {
    check_bind(&config.addr, config.token.as_deref())?;
    let ledger = Ledger::open(&config.store, LedgerConfig::default())?;
    let state = Arc::new(AppState { ledger, token: config.token });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .map_err(|e| Error::new(ErrorCode::Io, format!("cannot start the server runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::config("addr", config.addr, &e.to_string()))?;
        let bound = listener.local_addr().map_err(|e| Error::config("addr", config.addr, &e.to_string()))?;
        // One line a script can read: the URL (the token, when there is one, goes in the fragment).
        println!("llmledger dashboard on http://{bound}/ (store {})", redact_credentials(&config.store));
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(state))
            .await
            .map_err(|e| Error::new(ErrorCode::Io, format!("server stopped: {e}")))
    })
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/vendor/chart.umd.min.js", get(|| async { asset("text/javascript; charset=utf-8", CHART_JS) }))
        .route("/api/usage", get(usage))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    with_headers(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn with_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `/api/usage`'s query string. `since` (inclusive) and `until` (exclusive) are local dates
/// `YYYY-MM-DD` in `tz` or RFC 3339 instants; `currency` other than USD needs `rate` (units per USD).
#[derive(Debug, Default, Deserialize)]
struct UsageParams {
    group_by: Option<String>,
    since: Option<String>,
    until: Option<String>,
    user_id: Option<String>,
    workspace_id: Option<String>,
    project: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    session_id: Option<String>,
    tz: Option<String>,
    p95: Option<bool>,
    currency: Option<String>,
    rate: Option<String>,
}

impl UsageParams {
    fn query(self) -> Result<(UsageQuery, String, Decimal), Error> {
        let group_by = match self.group_by.as_deref() {
            None | Some("") => Vec::new(),
            Some(list) => list.split(',').map(|g| g.trim().parse::<GroupBy>()).collect::<Result<Vec<_>, _>>()?,
        };
        let currency = self.currency.unwrap_or_else(|| "USD".to_string()).to_uppercase();
        let rates = match &self.rate {
            Some(rate) => Rates::new().with(&currency, rate)?,
            None => Rates::new(),
        };
        let rate = rates.get(&currency).ok_or_else(|| {
            Error::new(ErrorCode::UnknownCurrency, format!("currency {currency} needs a rate (units per USD)"))
                .with_field("currency")
                .with_value(currency.clone())
        })?;
        let mut query = UsageQuery {
            filter: UsageFilter {
                user_id: self.user_id,
                workspace_id: self.workspace_id,
                project: self.project,
                provider: self.provider,
                model: self.model,
                session_id: self.session_id,
                ..UsageFilter::default()
            },
            group_by,
            timezone: Some(self.tz.unwrap_or_else(|| "UTC".to_string())),
            p95: self.p95.unwrap_or(false),
        };
        let tz = query.tz()?;
        let instant = |field: &str, value: Option<String>| -> Result<Option<DateTime<Utc>>, Error> {
            let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
            if let Ok(date) = v.parse::<NaiveDate>() {
                return Ok(Some(llmledger_core::report::local_midnight(date, tz)));
            }
            DateTime::parse_from_rfc3339(&v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| Error::invalid_value(field, &v, "expected a date YYYY-MM-DD or an RFC 3339 instant"))
        };
        query.filter.since = instant("since", self.since)?;
        query.filter.until = instant("until", self.until)?;
        Ok((query, currency, rate))
    }
}

async fn usage(State(state): State<Arc<AppState>>, headers: HeaderMap, params: Query<UsageParams>) -> Response {
    if !authorized(state.token.as_deref(), &headers) {
        let mut r = (StatusCode::UNAUTHORIZED, "a bearer token is required").into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return with_headers(r);
    }
    let Query(params) = params;
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Error> {
        let (query, currency, rate) = params.query()?;
        let rows = state.ledger.query(&query)?;
        let views: Vec<_> = rows.into_iter().map(|r| r.in_currency(&currency, rate)).collect();
        Ok(serde_json::to_vec(&views)?)
    })
    .await;
    let response = match result {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("query task failed: {e}")).into_response(),
    };
    with_headers(response)
}

fn error_response(e: &Error) -> Response {
    let status = match e.code() {
        ErrorCode::Store | ErrorCode::Io | ErrorCode::Closed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({
        "code": e.code().as_str(),
        "message": redact_credentials(&e.to_string()),
        "field": e.field(),
        "value": e.value(),
    });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// True without a configured token, or when the request carries `Authorization: Bearer <token>`
/// (compared in constant time).
fn authorized(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(token) = token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:8787".parse().unwrap_or_else(|_| unreachable!());
        let local: SocketAddr = "127.0.0.1:8787".parse().unwrap_or_else(|_| unreachable!());
        let v6: SocketAddr = "[::1]:8787".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(check_bind(&any, None).map_err(|e| e.field().map(str::to_string)), Err(Some("addr".into())));
        assert!(check_bind(&any, Some("s3cret")).is_ok());
        assert!(check_bind(&local, None).is_ok());
        assert!(check_bind(&v6, None).is_ok());
        assert_eq!(check_bind(&local, Some(" ")).map_err(|e| e.field().map(str::to_string)), Err(Some("token".into())));
    }

    #[test]
    fn bearer_token_is_checked() {
        let mut h = HeaderMap::new();
        assert!(authorized(None, &h));
        assert!(!authorized(Some("abc"), &h));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abd"));
        assert!(!authorized(Some("abc"), &h));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(authorized(Some("abc"), &h));
        assert!(!authorized(Some("abcd"), &h));
    }
}
