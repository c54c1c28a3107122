//! Google Cloud's billing export (CSV and newline-delimited JSON) into the billed-cost table of a real
//! SQLite file and (feature `postgres`, through scripts/with-postgres.sh) PostgreSQL. Figures by hand:
//! CSV 11-01 Vertex AI Pro input 1.25 + 0.75 = 2; 11-02 Gemini API Flash output 0.1; 11-02 Pro output
//! 9 EUR at 0.9 EUR per USD = 10 USD; Compute Engine left out -> 12.1 USD in 3 rows.
//! JSON 11-03 Pro input 3.3 with credits -0.3 and -1 = 2 USD; Cloud Storage left out.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use chrono::NaiveDate;
use llmledger_core::org::billing::BillingProvider;
use llmledger_core::org::{Org, OrgGroup};
use llmledger_core::ErrorCode;
use rust_decimal::Decimal;

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

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn google_total(org: &Org) -> Decimal {
    let billed = org.billed_costs(d("2026-11-01"), d("2026-12-01")).unwrap();
    assert!(billed.iter().all(|b| b.provider == BillingProvider::Google && b.currency == "USD"));
    billed.iter().map(|b| b.amount).sum()
}

fn imports(url: &str) {
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
    imports(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_gcp_billing_export_csv_and_json() {
    let Some(server) = ledger_common::server("postgres_gcp_billing_export_csv_and_json") else { return };
    imports(&ledger_common::fresh_db(&server, "org_gcp"));
}
