//! The ledger against real stores (memory, SQLite file, JSONL directory): recording, idempotency,
//! rollups vs raw events, reports by user / workspace / model / Seoul day, and configuration errors.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_common::{event, numbered, numbered_total, repeating_batch};
use llmledger_core::event::UsageEvent;
use llmledger_core::ledger::{Ledger, LedgerConfig, Store};
use llmledger_core::report::{GroupBy, ReportRow, UsageFilter, UsageQuery};
use llmledger_core::ErrorCode;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn fixture() -> Vec<UsageEvent> {
    vec![
        event("a1", "alice", "acme", "gpt-4o", "2026-11-01T10:00:00Z", 1_500_000),
        event("a2", "alice", "acme", "gpt-4o-mini", "2026-11-01T16:30:00Z", 250_001),
        event("b1", "bob", "acme", "gpt-4o", "2026-11-01T14:59:59Z", 3_000_000),
        event("c1", "carol", "globex", "claude-sonnet-4", "2026-11-02T01:00:00Z", 7),
        event("c2", "carol", "globex", "claude-sonnet-4", "2026-12-01T00:00:00Z", 123_456_789).failed("rate_limit"),
        event("u1", "carol", "globex", "mystery-model", "2026-11-03T00:00:00Z", 0).unpriced("unknown_model"),
    ]
}

fn cfg(tz: &str) -> LedgerConfig {
    LedgerConfig {
        timezone: tz.into(),
        flush_interval: std::time::Duration::from_millis(20),
        ..LedgerConfig::default()
    }
}

fn urls(dir: &std::path::Path) -> Vec<String> {
    vec![
        "memory://".to_string(),
        format!("sqlite://{}", dir.join("l.db").display()),
        format!("jsonl://{}", dir.join("jsonl").display()),
    ]
}

fn by(rows: &[ReportRow], g: GroupBy, v: &str) -> ReportRow {
    rows.iter().find(|r| r.get(g) == Some(v)).cloned().unwrap_or_else(|| panic!("no row {g}={v} in {rows:?}"))
}

fn q(group_by: &[GroupBy], tz: &str) -> UsageQuery {
    UsageQuery { group_by: group_by.to_vec(), timezone: Some(tz.into()), ..UsageQuery::default() }
}

/// Runs the same report through rollups and through raw events (p95 forces raw) and checks they agree.
fn both_paths(ledger: &Ledger, query: &UsageQuery) -> Vec<ReportRow> {
    let rows = ledger.query(query).unwrap();
    let raw = ledger.query(&UsageQuery { p95: true, ..query.clone() }).unwrap();
    let strip =
        |rs: &[ReportRow]| rs.iter().cloned().map(|r| ReportRow { p95_latency_ms: None, ..r }).collect::<Vec<_>>();
    assert_eq!(strip(&rows), strip(&raw), "rollup and raw answers differ for {query:?}");
    rows
}

#[test]
fn reports_per_user_workspace_model_and_seoul_day_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()) {
        let ledger = Ledger::open(&url, cfg("Asia/Seoul")).unwrap();
        for e in fixture() {
            ledger.record(e).unwrap();
        }
        ledger.flush().unwrap();

        let total = both_paths(&ledger, &q(&[], "Asia/Seoul"));
        assert_eq!(total.len(), 1, "{url}");
        assert_eq!(total[0].requests, 6);
        assert_eq!(total[0].failed, 1);
        assert_eq!(total[0].unpriced, 1);
        assert_eq!(total[0].cost_usd, dec!(0.128206797), "{url}");
        assert_eq!(total[0].input_tokens, 6000);
        assert_eq!(total[0].avg_latency_ms, Some(dec!(100)));

        let users = both_paths(&ledger, &q(&[GroupBy::User], "Asia/Seoul"));
        assert_eq!(by(&users, GroupBy::User, "alice").cost_usd, dec!(0.001750001));
        assert_eq!(by(&users, GroupBy::User, "bob").requests, 1);
        assert_eq!(by(&users, GroupBy::User, "carol").cost_usd, dec!(0.123456796));

        let ws = both_paths(&ledger, &q(&[GroupBy::Workspace], "Asia/Seoul"));
        assert_eq!(by(&ws, GroupBy::Workspace, "acme").cost_usd, dec!(0.004750001));
        assert_eq!(by(&ws, GroupBy::Workspace, "globex").requests, 3);

        let models = both_paths(&ledger, &q(&[GroupBy::Model], "Asia/Seoul"));
        assert_eq!(by(&models, GroupBy::Model, "gpt-4o").cost_usd, dec!(0.0045));
        assert_eq!(by(&models, GroupBy::Model, "mystery-model").unpriced, 1);

        // 2026-11-01T16:30Z is 2026-11-02 01:30 in Seoul; 14:59:59Z is still Nov 1 there.
        let days = both_paths(&ledger, &q(&[GroupBy::Day], "Asia/Seoul"));
        assert_eq!(by(&days, GroupBy::Day, "2026-11-01").requests, 2, "{url}: {days:?}");
        assert_eq!(by(&days, GroupBy::Day, "2026-11-02").requests, 2);
        assert_eq!(by(&days, GroupBy::Day, "2026-11-02").cost_usd, dec!(0.000250008));
        // The same report in UTC (rollups are in Seoul, so this one comes from raw events).
        let utc_days = ledger.query(&q(&[GroupBy::Day], "UTC")).unwrap();
        assert_eq!(by(&utc_days, GroupBy::Day, "2026-11-01").requests, 3, "{url}");

        // Per user and month, from Nov 2 (Seoul) on, user filter.
        let since = NaiveDate::from_ymd_opt(2026, 11, 2);
        let until = NaiveDate::from_ymd_opt(2026, 12, 1);
        let mut nov = q(&[GroupBy::User, GroupBy::Month], "Asia/Seoul").between_dates(since, until).unwrap();
        nov.filter.workspace_id = Some("globex".into());
        let rows = both_paths(&ledger, &nov);
        assert_eq!(rows.len(), 1, "{url}: {rows:?}");
        assert_eq!(rows[0].get(GroupBy::Month), Some("2026-11"));
        assert_eq!(rows[0].requests, 2);
        assert_eq!(rows[0].cost_usd, dec!(0.000000007));

        // Session grouping always comes from raw events.
        let sessions = ledger.query(&q(&[GroupBy::Session], "UTC")).unwrap();
        assert_eq!(by(&sessions, GroupBy::Session, "s-alice").requests, 2);
        let p95 = ledger.query(&UsageQuery { p95: true, ..q(&[], "UTC") }).unwrap();
        assert_eq!(p95[0].p95_latency_ms, Some(100));

        assert_eq!(ledger.verify().unwrap(), vec![], "{url}");
        ledger.close().unwrap();
        assert!(!ledger.spill_path().exists(), "{url}: an empty spill file is removed at close");
        assert_eq!(ledger.record(fixture().remove(0)).map_err(|e| e.code()), Err(ErrorCode::Closed));
    }
}

#[test]
fn duplicates_inside_one_batch_keep_the_first_occurrence_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()) {
        let ledger = Ledger::open(&url, cfg("UTC")).unwrap();
        assert_eq!(ledger.store().write_batch(&[numbered("m", 3), numbered("m", 4)]).unwrap(), 2, "{url}");
        let (batch, new, total) = repeating_batch();
        assert_eq!(ledger.store().write_batch(&batch).unwrap(), new, "{url}");
        let rows = ledger.query(&UsageQuery::default()).unwrap();
        assert_eq!((rows[0].requests, rows[0].cost_usd), (118, total), "{url}");
        assert_eq!(ledger.store().event_ids().unwrap().len(), 118, "{url}");
        assert_eq!(ledger.verify().unwrap(), vec![], "{url}");
    }
}

#[test]
fn same_events_twice_are_stored_once_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()) {
        let ledger = Ledger::open(&url, cfg("UTC")).unwrap();
        for round in 0..2 {
            for i in 0..1_200 {
                ledger.record(numbered("dup", i)).unwrap();
            }
            ledger.flush().unwrap();
            // Direct store writes of the same batch insert nothing.
            let again: Vec<_> = (0..600).map(|i| numbered("dup", i)).collect();
            assert_eq!(ledger.store().write_batch(&again).unwrap(), 0, "{url} round {round}");
        }
        let rows = ledger.query(&UsageQuery::default()).unwrap();
        assert_eq!(rows[0].requests, 1_200, "{url}");
        assert_eq!(rows[0].cost_usd, numbered_total(1_200), "{url}");
        assert_eq!(ledger.store().event_ids().unwrap().len(), 1_200);
        assert_eq!(ledger.verify().unwrap(), vec![]);
        assert_eq!(ledger.stats().inserted, 1_200);
    }
}

#[test]
fn sqlite_survives_reopen_and_keeps_its_rollup_zone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keep.db").display());
    {
        let ledger = Ledger::open(&url, cfg("Asia/Seoul")).unwrap();
        fixture().into_iter().for_each(|e| ledger.record(e).unwrap());
        ledger.close().unwrap();
    }
    // Opened later with another zone: the rollups stay in Seoul, a UTC day report reads raw events.
    let ledger = Ledger::open(&url, cfg("UTC")).unwrap();
    let seoul = ledger.query(&q(&[GroupBy::Day], "Asia/Seoul")).unwrap();
    assert_eq!(by(&seoul, GroupBy::Day, "2026-11-02").requests, 2);
    let utc = ledger.query(&q(&[GroupBy::Day], "UTC")).unwrap();
    assert_eq!(by(&utc, GroupBy::Day, "2026-11-01").requests, 3);
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

#[test]
fn relative_sqlite_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    let abs = format!("sqlite:///{}", dir.path().join("abs.db").display().to_string().trim_start_matches('/'));
    let ledger = Ledger::open(&abs, cfg("UTC")).unwrap();
    ledger.record(numbered("x", 1)).unwrap();
    ledger.close().unwrap();
    assert!(dir.path().join("abs.db").exists());
    assert_eq!(Ledger::DEFAULT_URL, "sqlite://./llmledger.db");
}

#[test]
fn bad_configuration_fails_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let code = |url: &str, c: LedgerConfig| {
        Ledger::open(url, c).map(|_| ()).map_err(|e| (e.code(), e.field().map(String::from)))
    };
    let config = |f: &str| Err((ErrorCode::Config, Some(f.to_string())));
    assert_eq!(code("mongodb://localhost/x", cfg("UTC")), config("store"));
    assert_eq!(code("memory://", cfg("Mars/Base")), config("timezone"));
    // A path under a regular file cannot be created.
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    assert_eq!(code(&format!("sqlite://{}/sub/l.db", file.display()), cfg("UTC")), config("store"));
    assert_eq!(code(&format!("jsonl://{}/sub", file.display()), cfg("UTC")), config("store"));
    assert_eq!(code("sqlite:", cfg("UTC")), config("store"));
    let spill = LedgerConfig { spill_dir: Some(file.join("spill")), ..cfg("UTC") };
    assert_eq!(code("memory://", spill), config("spill_dir"));
    assert_eq!(code("memory://", LedgerConfig { batch_size: 0, ..cfg("UTC") }), config("batch_size"));
    let store: Arc<dyn Store> = Arc::new(llmledger_core::ledger::MemoryStore::new(chrono_tz::Tz::UTC));
    assert!(Ledger::with_store(store, cfg("UTC")).is_ok());
}

#[test]
fn filters_narrow_reports() {
    let ledger = Ledger::open("memory://", cfg("UTC")).unwrap();
    fixture().into_iter().for_each(|e| ledger.record(e).unwrap());
    ledger.flush().unwrap();
    let query = |filter: UsageFilter| ledger.query(&UsageQuery { filter, ..UsageQuery::default() }).unwrap();
    let alice = query(UsageFilter { user_id: Some("alice".into()), ..UsageFilter::default() });
    assert_eq!(alice[0].requests, 2);
    let model = query(UsageFilter { model: Some("claude-sonnet-4".into()), ..UsageFilter::default() });
    assert_eq!(model[0].cost_usd, dec!(0.123456796));
    let none = query(UsageFilter { user_id: Some("nobody".into()), ..UsageFilter::default() });
    assert!(none.is_empty());
    let _ = Decimal::ZERO;
}
