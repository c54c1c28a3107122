//! Billing pulls over real HTTP against `tests/mock_provider/server.py` (its admin cost API section),
//! into a real SQLite file and (feature `postgres`, through scripts/with-postgres.sh) PostgreSQL.
//! Expected sums are the mock's fixed figures added by hand (see the section's comment there):
//! OpenAI 1.25 + 2.5 + 0.0375 + (0.1 + 0.2) = 4.0875 USD; Anthropic (1234.5 + 250 + 0.375) cents = 14.84875 USD.
//! Usage pulls: the mock's usage figures, summed by hand in its comment and below. Google Cloud's
//! billing export import (no HTTP) is here too, to keep one test binary for billed data.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::NaiveDate;
use llmledger_core::org::billing::{BillingProvider, PullOptions};
use llmledger_core::org::usage::BucketWidth;
use llmledger_core::org::UsagePullSummary;
use llmledger_core::org::{Org, OrgGroup};
use llmledger_core::ErrorCode;
use rust_decimal::Decimal;

struct Mock {
    child: Child,
    port: u16,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mock() -> Mock {
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/mock_provider/server.py");
    let mut child = Command::new("python3").args([server, "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    Mock { child, port }
}

/// The mock's request log for one key (by its last 8 characters): `(page, status)`.
fn admin_log(port: u16, key: &str) -> Vec<(String, u64)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /_mock/admin_requests HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body: serde_json::Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let tag = &key[key.len() - 8..];
    body.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key_tag"] == tag)
        .map(|r| (r["page"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap()))
        .collect()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn opts(m: &Mock, provider: BillingProvider, key: &str) -> PullOptions {
    let mut o = PullOptions::new(provider, key.to_string(), d("2026-11-01"), d("2026-11-04"));
    o.base_url = format!("http://127.0.0.1:{}", m.port);
    o.initial_backoff = Duration::from_millis(10);
    o
}

fn pulls(url: &str) {
    let m = mock();
    let org = Org::open(url).unwrap();
    // Each key ends in 8 characters of its own: the mock's log names a key by them.

    // OpenAI: three pages; the two 11-03 results of one key are summed; a re-pull replaces, never doubles.
    let key = "sk-admin-x-plain001";
    for _ in 0..2 {
        let s = org.pull(&opts(&m, BillingProvider::Openai, key)).unwrap();
        assert_eq!((s.pages, s.rows, s.total_usd, s.resumed), (3, 4, dec("4.0875"), false));
    }
    let billed = org.billed_costs(d("2026-11-01"), d("2026-11-04")).unwrap();
    assert_eq!(billed.len(), 4);
    assert_eq!(billed.iter().map(|b| b.amount).sum::<Decimal>(), dec("4.0875"));
    let nov3 = billed.iter().find(|b| b.day == d("2026-11-03")).unwrap();
    assert_eq!(
        (nov3.workspace.as_str(), nov3.item.as_str(), nov3.amount),
        ("proj_a", "gpt-4o-2024-08-06, input", dec("0.3"))
    );

    // Anthropic with a 429 (retry-after: 1) on page 1: retried after the named second, then complete.
    let key = "sk-ant-admin01-x-rate4291";
    let s = org.pull(&opts(&m, BillingProvider::Anthropic, key)).unwrap();
    assert_eq!((s.pages, s.rows, s.total_usd), (3, 3, dec("14.84875")));
    let pages: Vec<(String, u64)> = admin_log(m.port, key);
    assert_eq!(pages, vec![("".into(), 200), ("page_1".into(), 429), ("page_1".into(), 200), ("page_2".into(), 200)]);
    let wrk = org.billed_costs(d("2026-11-01"), d("2026-11-02")).unwrap();
    let sonnet = wrk.iter().find(|b| b.provider == BillingProvider::Anthropic).unwrap();
    assert_eq!((sonnet.amount, sonnet.model.as_deref()), (dec("12.345"), Some("claude-sonnet-4-20250514")));

    // Page 2 fails past the retries: the run fails; the next resumes at page 2's cursor.
    let key = "sk-ant-admin01-x-fail2key";
    let mut o = opts(&m, BillingProvider::Anthropic, key);
    o.max_retries = 1;
    assert_eq!(org.pull(&o).unwrap_err().code(), ErrorCode::Store);
    let s = org.pull(&o).unwrap();
    assert_eq!((s.pages, s.resumed, s.rows, s.total_usd), (3, true, 3, dec("14.84875")));
    assert_eq!(
        admin_log(m.port, key),
        vec![
            ("".into(), 200),
            ("page_1".into(), 200),
            ("page_2".into(), 500),
            ("page_2".into(), 500),
            ("page_2".into(), 500),
            ("page_2".into(), 200),
        ]
    );
    // Both providers' periods are stored side by side.
    let all = org.billed_costs(d("2026-11-01"), d("2026-11-04")).unwrap();
    assert_eq!(all.iter().map(|b| b.amount).sum::<Decimal>(), dec("18.93625"));

    // Wrong keys: a project key is refused before sending; a rejected admin key names the kind needed.
    let e = org.pull(&opts(&m, BillingProvider::Openai, "sk-proj-SECRETSECRET")).unwrap_err();
    assert_eq!((e.code(), e.field()), (ErrorCode::Config, Some("OPENAI_ADMIN_KEY")));
    assert!(admin_log(m.port, "SECRETSECRET").is_empty());
    let e = org.pull(&opts(&m, BillingProvider::Openai, "sk-admin-revoked-SECRET99")).unwrap_err();
    assert_eq!((e.code(), e.field()), (ErrorCode::Config, Some("OPENAI_ADMIN_KEY")));
    assert!(e.message().contains("HTTP 401") && e.message().contains("Admin key"), "{e}");
    assert!(!e.to_string().contains("SECRET99"));
}

#[test]
fn sqlite_pulls_paginate_retry_resume_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    pulls(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_pulls_paginate_retry_resume_and_replace() {
    let Some(server) = ledger_common::server("postgres_pulls_paginate_retry_resume_and_replace") else { return };
    pulls(&ledger_common::fresh_db(&server, "org_billing"));
}

/// The mock's request log for one key and path suffix: `(page, status, bucket_width)`.
fn usage_log(port: u16, key: &str, path: &str) -> Vec<(String, u64, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /_mock/admin_requests HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body: serde_json::Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let tag = &key[key.len() - 8..];
    body.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key_tag"] == tag && r["path"].as_str().unwrap().ends_with(path))
        .map(|r| {
            let page = r["page"].as_str().unwrap().to_string();
            (page, r["status"].as_u64().unwrap(), r["bucket_width"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Billed usage per bucket; figures are the mock's usage section added by hand.
fn usage_pulls(url: &str) {
    let m = mock();
    let org = Org::open(url).unwrap();
    let total = |s: &UsagePullSummary, endpoint: &str, metric: &str| {
        s.totals.iter().find(|(e, m, _)| e == endpoint && m == metric).map(|t| t.2).unwrap()
    };

    // OpenAI, daily: eight endpoints (completions two pages, the rest one) -> 9 pages, 28 metric rows;
    // a re-pull replaces the period, never doubles it.
    let key = "sk-admin-x-usage0001";
    for _ in 0..2 {
        let s = org.pull_usage(&opts(&m, BillingProvider::Openai, key), BucketWidth::Day).unwrap();
        assert_eq!((s.pages, s.rows, s.resumed, s.totals.len()), (9, 28, false, 16));
        assert_eq!(total(&s, "completions", "input_tokens"), dec("5250"));
        assert_eq!(total(&s, "completions", "output_tokens"), dec("650"));
        assert_eq!(total(&s, "completions", "input_cached_tokens"), dec("200"));
        assert_eq!(total(&s, "completions", "num_model_requests"), dec("6"));
        assert_eq!(total(&s, "embeddings", "input_tokens"), dec("7000"));
        assert_eq!(total(&s, "images", "images"), dec("2"));
        assert_eq!(total(&s, "audio_speeches", "characters"), dec("1200"));
        assert_eq!(total(&s, "audio_transcriptions", "seconds"), dec("95"));
        assert_eq!(total(&s, "vector_stores", "usage_bytes"), dec("1048576"));
        assert_eq!(total(&s, "code_interpreter_sessions", "num_sessions"), dec("3"));
    }
    let stored = org.billed_usage(d("2026-11-01"), d("2026-11-04")).unwrap();
    assert_eq!(stored.len(), 28);
    let batch: Vec<_> = stored.iter().filter(|u| u.batch == "true").collect();
    assert_eq!(batch.len(), 6);
    let input = batch.iter().find(|u| u.metric == "input_tokens").unwrap();
    assert_eq!(
        (input.workspace.as_str(), input.model.as_str(), input.api_key_id.as_str(), input.quantity),
        ("proj_a", "gpt-4o-2024-08-06", "key_1", dec("4000"))
    );
    let image = stored.iter().find(|u| u.metric == "images").unwrap();
    assert_eq!(
        (image.detail.as_str(), image.bucket_start.to_rfc3339().as_str()),
        ("size=1024x1024,source=image.generation", "2026-11-02T00:00:00+00:00")
    );
    assert_eq!(usage_log(m.port, key, "/usage/completions"), {
        let day = |p: &str| (p.to_string(), 200, "1d".to_string());
        vec![day(""), day("page_1"), day(""), day("page_1")]
    });

    // Anthropic, hourly, page 2 failing past the retries: the run fails, the next resumes at its cursor.
    let key = "sk-ant-admin01-x-fail2usag";
    let mut o = opts(&m, BillingProvider::Anthropic, key);
    o.max_retries = 1;
    assert_eq!(org.pull_usage(&o, BucketWidth::Hour).unwrap_err().code(), ErrorCode::Store);
    let s = org.pull_usage(&o, BucketWidth::Hour).unwrap();
    assert_eq!((s.pages, s.resumed, s.rows, s.totals.len()), (3, true, 18, 6));
    for (metric, want) in [
        ("uncached_input_tokens", "2310"),
        ("cache_creation.ephemeral_1h_input_tokens", "1000"),
        ("cache_creation.ephemeral_5m_input_tokens", "320"),
        ("cache_read_input_tokens", "5000"),
        ("output_tokens", "795"),
        ("server_tool_use.web_search_requests", "3"),
    ] {
        assert_eq!(total(&s, "messages", metric), dec(want), "{metric}");
    }
    let log = usage_log(m.port, key, "/usage_report/messages");
    assert!(log.iter().all(|(_, _, width)| width == "1h"));
    let statuses: Vec<(String, u64)> = log.into_iter().map(|(page, status, _)| (page, status)).collect();
    assert_eq!(
        statuses,
        vec![
            ("".into(), 200),
            ("page_1".into(), 200),
            ("page_2".into(), 500),
            ("page_2".into(), 500),
            ("page_2".into(), 500),
            ("page_2".into(), 200),
        ]
    );
    let all = org.billed_usage(d("2026-11-01"), d("2026-11-04")).unwrap();
    let haiku: Vec<_> = all.iter().filter(|u| u.model == "claude-haiku-4-5-20251001").collect();
    assert_eq!(haiku.len(), 6);
    assert!(haiku.iter().all(|u| u.workspace.is_empty()
        && u.service_tier == "batch"
        && u.width == BucketWidth::Hour
        && u.api_key_id == "apikey_2"));
    assert_eq!(all.len(), 28 + 18);
    // Usage pulls leave the cost table alone.
    assert!(org.billed_costs(d("2026-11-01"), d("2026-11-04")).unwrap().is_empty());

    // A normal key is refused before anything is sent.
    let e = org.pull_usage(&opts(&m, BillingProvider::Anthropic, "sk-ant-api03-SECRETKEY"), BucketWidth::Day);
    assert_eq!(e.unwrap_err().field(), Some("ANTHROPIC_ADMIN_KEY"));
    assert!(usage_log(m.port, "SECRETKEY", "").is_empty());
}

#[test]
fn sqlite_usage_pulls_every_endpoint_resume_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    usage_pulls(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_usage_pulls_every_endpoint_resume_and_replace() {
    let Some(server) = ledger_common::server("postgres_usage_pulls_every_endpoint_resume_and_replace") else {
        return;
    };
    usage_pulls(&ledger_common::fresh_db(&server, "org_usage"));
}

// Google Cloud's billing export (CSV and newline-delimited JSON) through `Org::import_gcp_billing`.
// Figures by hand: CSV 11-01 Vertex AI Pro input 1.25 + 0.75 = 2; 11-02 Gemini API Flash output 0.1;
// 11-02 Pro output 9 EUR at 0.9 EUR per USD = 10 USD; Compute Engine left out -> 12.1 USD in 3 rows.
// JSON 11-03 Pro input 3.3 with credits -0.3 and -1 = 2 USD; Cloud Storage left out.

const CSV: &str =
    "service.description,sku.description,usage_start_time,cost,currency,project.id,currency_conversion_rate
Vertex AI,Gemini 2.5 Pro Input Tokens,2026-11-01 00:00:00 UTC,1.25,USD,proj-x,1
Vertex AI,Gemini 2.5 Pro Input Tokens,2026-11-01 06:00:00 UTC,0.75,USD,proj-x,1
Gemini API,Gemini 2.5 Flash Output Tokens,2026-11-02 00:00:00 UTC,0.1,USD,proj-y,1
Compute Engine,N1 Predefined Instance Core,2026-11-01 00:00:00 UTC,50,USD,proj-x,1
Vertex AI,Gemini 2.5 Pro Output Tokens,2026-11-02 23:30:00 UTC,9,EUR,proj-x,0.9
";

const NDJSON: &str = r#"{"service":{"id":"C7E2-9256-1C43","description":"Vertex AI"},"sku":{"description":"Gemini 2.5 Pro Input Tokens"},"usage_start_time":"2026-11-03T00:00:00Z","project":{"id":"proj-x"},"cost":3.3,"currency":"USD","currency_conversion_rate":1.0,"credits":[{"name":"Free tier","amount":-0.3},{"amount":-1}]}
{"service":{"description":"Cloud Storage"},"sku":{"description":"Standard Storage"},"usage_start_time":"2026-11-03T00:00:00Z","project":{"id":"proj-x"},"cost":4,"currency":"USD"}
"#;

fn google_total(org: &Org) -> Decimal {
    let billed = org.billed_costs(d("2026-11-01"), d("2026-12-01")).unwrap();
    assert!(billed.iter().all(|b| b.provider == BillingProvider::Google && b.currency == "USD"));
    billed.iter().map(|b| b.amount).sum()
}

fn gcp_imports(url: &str) {
    let org = Org::open(url).unwrap();
    let s = org.import_gcp_billing(CSV).unwrap();
    assert_eq!((s.since, s.until), (Some(d("2026-11-01")), Some(d("2026-11-03"))));
    assert_eq!((s.read, s.skipped, s.rows, s.total_usd), (4, 1, 3, dec("12.1")));
    let billed = org.billed_costs(d("2026-11-02"), d("2026-11-03")).unwrap();
    let eur = billed.iter().find(|b| b.workspace == "proj-x").unwrap();
    assert_eq!((eur.item.as_str(), eur.amount), ("Vertex AI: Gemini 2.5 Pro Output Tokens", dec("10")));

    let s = org.import_gcp_billing(NDJSON).unwrap();
    assert_eq!((s.read, s.skipped, s.rows, s.total_usd), (1, 1, 1, dec("2")));
    assert_eq!(google_total(&org), dec("14.1"));

    // Re-importing a file replaces its days; a corrected export of 11-01 replaces that day only.
    org.import_gcp_billing(CSV).unwrap();
    assert_eq!(google_total(&org), dec("14.1"));
    let corrected = "service_description,sku_description,usage_start_time,cost,currency,project_id
Vertex AI,Gemini 2.5 Pro Input Tokens,2026-11-01T08:00:00Z,1.25,USD,proj-x
";
    let s = org.import_gcp_billing(corrected).unwrap();
    assert_eq!((s.until, s.total_usd), (Some(d("2026-11-02")), dec("1.25")));
    assert_eq!(google_total(&org), dec("13.35"));

    // The org report counts it as billed API cost of provider google.
    let rows = org.org_report(d("2026-11-01"), d("2026-12-01"), &[OrgGroup::Provider]).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].key[0].1.as_str(), rows[0].api_billed_usd), ("google", dec("13.35")));

    // A non-USD row without its rate is refused, naming the row, and nothing changes.
    let e = org
        .import_gcp_billing(
            "service.description,usage_start_time,cost,currency\nVertex AI,2026-11-01 00:00:00 UTC,5,EUR\n",
        )
        .unwrap_err();
    assert_eq!((e.code(), e.field()), (ErrorCode::MissingField, Some("row 1: currency_conversion_rate")));
    assert_eq!(google_total(&org), dec("13.35"));
}

#[test]
fn sqlite_gcp_billing_export_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    gcp_imports(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_gcp_billing_export_csv_and_json() {
    let Some(server) = ledger_common::server("postgres_gcp_billing_export_csv_and_json") else { return };
    gcp_imports(&ledger_common::fresh_db(&server, "org_gcp"));
}
