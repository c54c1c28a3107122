//! Subscriptions and one-off costs stored in a real SQLite file and (feature `postgres`, through
//! scripts/with-postgres.sh) a real PostgreSQL database: CSV import, idempotent re-import, exact
//! decimals back, and the daily spread over a month (hand-computed below).
#![allow(clippy::unwrap_used)]

mod ledger_common;

use chrono::NaiveDate;
use llmledger_core::org::subscription::{parse_csv, Period};
use llmledger_core::org::Org;
use rust_decimal::Decimal;

const CSV: &str = "service,provider,member,team,period,amount,currency,rate,start,end,note
Claude Max,anthropic,ana,eng,monthly,200,,,2026-11-01,,
ChatGPT Team,openai,,eng,monthly,150.00,EUR,0.9375,2026-10-20,2026-11-19,5 seats
Copilot Business,github,bo,eng,yearly,228,USD,1,2026-01-01,,
Offsite workshop,,,eng,once,1234.5678,USD,1,2026-11-20,,
";

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn november_total(url: &str) {
    let org = Org::open(url).unwrap();
    let rows = parse_csv(CSV).unwrap();
    assert_eq!(org.add_fixed(&rows).unwrap(), (3, 1));
    assert_eq!(org.add_fixed(&rows).unwrap(), (0, 0), "the same rows again change nothing");
    let subs = org.subscriptions().unwrap();
    assert_eq!(subs.len(), 3);
    let team = subs.iter().find(|s| s.service == "ChatGPT Team").unwrap();
    assert_eq!((team.amount, team.rate, team.currency.as_str()), (dec("150"), dec("0.9375"), "EUR"));
    assert_eq!(
        (team.end, team.member.as_deref(), team.note.as_deref()),
        (Some(d("2026-11-19")), None, Some("5 seats"))
    );
    assert_eq!(subs.iter().find(|s| s.service == "Copilot Business").unwrap().period, Period::Yearly);
    let manual = org.manual_entries().unwrap();
    assert_eq!((manual.len(), manual[0].amount, manual[0].date), (1, dec("1234.5678"), d("2026-11-20")));

    // November 2026 in USD:
    // Claude Max: the whole period Nov 1 – Nov 30 = 200.
    // ChatGPT Team: 150 EUR / 0.9375 = 160 USD per period Oct 20 – Nov 19 (31 days, ended Nov 19);
    //   Nov 1 – 19 are its days 12..30: 160 − round(160 × 12/31, 12) = 160 − 61.935483870968
    //   = 98.064516129032.
    // Copilot: 228 a year from Jan 1 (365 days): round(228 × 334/365, 12) − round(228 × 304/365, 12)
    //   = 208.635616438356 − 189.895890410959 = 18.739726027397.
    // Workshop: 1234.5678.
    let (from, to) = (d("2026-11-01"), d("2026-11-30"));
    let spread: Decimal = subs.iter().flat_map(|s| s.daily(from, to)).map(|(_, x)| x).sum();
    let per_sub = |name: &str| -> Decimal {
        subs.iter().find(|s| s.service == name).unwrap().daily(from, to).iter().map(|(_, x)| *x).sum()
    };
    assert_eq!(per_sub("Claude Max").normalize(), dec("200"));
    assert_eq!(per_sub("ChatGPT Team").normalize(), dec("98.064516129032"));
    assert_eq!(per_sub("Copilot Business").normalize(), dec("18.739726027397"));
    assert_eq!((spread + manual[0].usd()).normalize(), dec("1551.372042156429"));
}

#[test]
fn sqlite_subscriptions_and_one_off_entries() {
    let dir = tempfile::tempdir().unwrap();
    november_total(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_subscriptions_and_one_off_entries() {
    let Some(server) = ledger_common::server("postgres_subscriptions_and_one_off_entries") else { return };
    november_total(&ledger_common::fresh_db(&server, "org_subs"));
}
