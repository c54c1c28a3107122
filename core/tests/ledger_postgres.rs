//! The ledger against a real PostgreSQL server (feature `postgres`). Run through
//! `scripts/with-postgres.sh cargo test -p llmledger-core --features postgres -- --include-ignored`, which
//! starts a throwaway server. The tests are `#[ignore]`d so that a plain `cargo test` reports them as
//! ignored instead of passing without a server; asked for without `LLMLEDGER_TEST_PG` they fail under
//! `CI=true` and otherwise return after reporting a skip (printed, and appended to `LLMLEDGER_SKIP_LOG`,
//! which `scripts/test.sh` counts as skipped rather than passed).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::time::Duration;

use ledger_common::{event, fresh_db, numbered, numbered_total, pg_ctl, repeating_batch, server, skip};
use llmledger_core::ledger::{Ledger, LedgerConfig};
use llmledger_core::report::{GroupBy, UsageQuery};
use llmledger_core::ErrorCode;
use rust_decimal_macros::dec;

/// Serializes the tests: one of them stops and restarts the shared server.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fast() -> LedgerConfig {
    LedgerConfig {
        flush_interval: Duration::from_millis(20),
        max_retries: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        ..LedgerConfig::default()
    }
}

#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_reports_rollups_and_idempotency() {
    let _one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(server) = server("postgres_reports_rollups_and_idempotency") else { return };
    let url = fresh_db(&server, "reports");
    let ledger = Ledger::open(&url, LedgerConfig { timezone: "Asia/Seoul".into(), ..fast() }).unwrap();
    let fixture = [
        event("a1", "alice", "acme", "gpt-4o", "2026-11-01T10:00:00Z", 1_500_000),
        event("a2", "alice", "acme", "gpt-4o-mini", "2026-11-01T16:30:00Z", 250_001),
        event("b1", "bob", "acme", "gpt-4o", "2026-11-01T14:59:59Z", 3_000_000),
        event("c1", "carol", "globex", "claude-sonnet-4", "2026-11-02T01:00:00Z", 7).failed("timeout"),
    ];
    for round in 0..2 {
        fixture.iter().cloned().for_each(|e| ledger.record(e).unwrap());
        // A batch repeating an id inside itself.
        ledger.store().write_batch(&[fixture[0].clone(), fixture[0].clone()]).unwrap();
        ledger.flush().unwrap();
        let total = ledger.query(&UsageQuery::default()).unwrap();
        assert_eq!(total[0].requests, 4, "round {round}");
        assert_eq!(total[0].cost_usd, dec!(0.004750008));
        assert_eq!(total[0].failed, 1);
    }
    let q = |g: &[GroupBy], tz: &str| UsageQuery {
        group_by: g.to_vec(),
        timezone: Some(tz.into()),
        ..UsageQuery::default()
    };
    let days = ledger.query(&q(&[GroupBy::Day], "Asia/Seoul")).unwrap();
    let day = |d: &str| days.iter().find(|r| r.get(GroupBy::Day) == Some(d)).map(|r| r.requests);
    assert_eq!(day("2026-11-01"), Some(2));
    assert_eq!(day("2026-11-02"), Some(2));
    let raw = ledger.query(&UsageQuery { p95: true, ..q(&[GroupBy::Day], "Asia/Seoul") }).unwrap();
    assert_eq!(
        raw.iter().map(|r| (r.requests, r.cost_usd)).collect::<Vec<_>>(),
        days.iter().map(|r| (r.requests, r.cost_usd)).collect::<Vec<_>>()
    );
    let users = ledger.query(&q(&[GroupBy::User, GroupBy::Model], "UTC")).unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(ledger.verify().unwrap(), vec![]);
    ledger.close().unwrap();
    // Reopened: schema already there, rollup zone kept.
    let again = Ledger::open(&url, fast()).unwrap();
    assert_eq!(again.store().event_ids().unwrap().len(), 4);
    let days = again.query(&q(&[GroupBy::Day], "Asia/Seoul")).unwrap();
    assert_eq!(days.len(), 2);
}

#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_duplicates_inside_one_batch_keep_the_first_occurrence() {
    let _one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(server) = server("postgres_duplicates_inside_one_batch_keep_the_first_occurrence") else { return };
    let ledger = Ledger::open(&fresh_db(&server, "repeats"), fast()).unwrap();
    assert_eq!(ledger.store().write_batch(&[numbered("m", 3), numbered("m", 4)]).unwrap(), 2);
    let (batch, new, total) = repeating_batch();
    assert_eq!(ledger.store().write_batch(&batch).unwrap(), new);
    let rows = ledger.query(&UsageQuery::default()).unwrap();
    assert_eq!((rows[0].requests, rows[0].cost_usd), (118, total));
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_sixteen_threads_exact() {
    let _one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(server) = server("postgres_sixteen_threads_exact") else { return };
    let url = fresh_db(&server, "threads");
    let ledger = std::sync::Arc::new(Ledger::open(&url, fast()).unwrap());
    let per: u64 = if cfg!(debug_assertions) { 2_000 } else { 50_000 };
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || (0..per).for_each(|i| ledger.record(numbered(&format!("p{t}"), i)).unwrap()))
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    ledger.flush().unwrap();
    let rows = ledger.query(&UsageQuery::default()).unwrap();
    assert_eq!(rows[0].requests, 16 * per);
    assert_eq!(rows[0].cost_usd, numbered_total(per) * rust_decimal::Decimal::from(16));
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_stopped_mid_run_and_restarted_loses_and_doubles_nothing() {
    let _one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(server) = server("postgres_stopped_mid_run_and_restarted_loses_and_doubles_nothing") else { return };
    if std::env::var("LLMLEDGER_TEST_PG_CTL").is_err() {
        let test = "postgres_stopped_mid_run_and_restarted_loses_and_doubles_nothing";
        skip(
            test,
            "LLMLEDGER_TEST_PG_CTL is not set: only a server started by scripts/with-postgres.sh can be stopped",
        );
        return;
    }
    let url = fresh_db(&server, "restart");
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig { spill_dir: Some(dir.path().to_path_buf()), ..fast() };
    let ledger = Ledger::open(&url, config).unwrap();
    for i in 0..3_000 {
        ledger.record(numbered("before", i)).unwrap();
    }
    ledger.flush().unwrap();
    assert!(pg_ctl("stop"), "pg_ctl stop failed");
    for i in 0..4_000 {
        ledger.record(numbered("during", i)).unwrap();
        if i == 2_000 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let down = ledger.flush();
    assert_eq!(down.map_err(|e| e.code()), Err(ErrorCode::Store));
    assert!(ledger.stats().spilled > 0);
    assert!(pg_ctl("start"), "pg_ctl start failed");
    for i in 0..1_000 {
        ledger.record(numbered("after", i)).unwrap();
    }
    // The writer replays on its own once a write succeeds; flush waits for it.
    ledger.flush().unwrap();
    let rows = ledger.query(&UsageQuery::default()).unwrap();
    assert_eq!(rows[0].requests, 8_000);
    assert_eq!(rows[0].cost_usd, numbered_total(3_000) + numbered_total(4_000) + numbered_total(1_000));
    assert_eq!(ledger.store().event_ids().unwrap().len(), 8_000);
    assert_eq!(ledger.verify().unwrap(), vec![]);
    ledger.close().unwrap();
}
