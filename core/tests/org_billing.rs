//! Billing pulls over real HTTP against `tests/mock_provider/server.py` (its admin cost API section),
//! into a real SQLite file and (feature `postgres`, through scripts/with-postgres.sh) PostgreSQL.
//! Expected sums are the mock's fixed figures added by hand (see the section's comment there):
//! OpenAI 1.25 + 2.5 + 0.0375 + (0.1 + 0.2) = 4.0875 USD; Anthropic (1234.5 + 250 + 0.375) cents = 14.84875 USD.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::NaiveDate;
use llmledger_core::org::billing::{BillingProvider, PullOptions};
use llmledger_core::org::Org;
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
