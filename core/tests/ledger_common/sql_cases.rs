//! The store cases every SQL server runs (PostgreSQL in `ledger_postgres.rs`, MySQL/MariaDB in
//! `ledger_mysql.rs`): each takes a [`SqlServer`] and checks one guarantee end to end through a `Ledger`.
//! Expected figures are hand-computed (arithmetic beside them), never read back from the code under test.

use std::time::Duration;

use llmledger_core::ledger::{Ledger, LedgerConfig};
use llmledger_core::report::{GroupBy, UsageQuery};
use llmledger_core::ErrorCode;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::{cost, event, numbered, numbered_total, repeating_batch, skip};

/// A server the cases run against: how to make a fresh database on it and how to stop and start it.
#[derive(Debug)]
pub struct SqlServer {
    /// The server's URL as the harness exported it.
    pub url: String,
    /// `fresh(url, name)`: the URL of a new, empty database called after `name`.
    pub fresh: fn(&str, &str) -> String,
    /// `ctl("stop" | "start")`: true when done; false when the harness cannot control the server.
    pub ctl: fn(&str) -> bool,
    /// The variable that says the harness can stop and start the server (for the skip message).
    pub ctl_var: &'static str,
}

impl SqlServer {
    pub fn fresh_db(&self, name: &str) -> String {
        (self.fresh)(&self.url, name)
    }
}

/// Short flush and retry times, so outages resolve within a test.
pub fn fast() -> LedgerConfig {
    LedgerConfig {
        flush_interval: Duration::from_millis(20),
        max_retries: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        ..LedgerConfig::default()
    }
}

fn by(g: &[GroupBy], tz: &str) -> UsageQuery {
    UsageQuery { group_by: g.to_vec(), timezone: Some(tz.into()), ..UsageQuery::default() }
}

/// Reports from rollups and raw events agree, recording everything twice counts it once, and a
/// reopened database keeps its rollup zone.
pub fn reports_rollups_and_idempotency(server: &SqlServer) {
    let url = server.fresh_db("reports");
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
        // 0.0015 + 0.000250001 + 0.003 + 0.000000007
        assert_eq!(total[0].cost_usd, dec!(0.004750008));
        assert_eq!(total[0].failed, 1);
    }
    let days = ledger.query(&by(&[GroupBy::Day], "Asia/Seoul")).unwrap();
    let day = |d: &str| days.iter().find(|r| r.get(GroupBy::Day) == Some(d)).map(|r| r.requests);
    // Seoul is UTC+9: 10:00Z and 14:59:59Z fall on the 1st, 16:30Z and 01:00Z (next day) on the 2nd.
    assert_eq!(day("2026-11-01"), Some(2));
    assert_eq!(day("2026-11-02"), Some(2));
    let raw = ledger.query(&UsageQuery { p95: true, ..by(&[GroupBy::Day], "Asia/Seoul") }).unwrap();
    assert_eq!(
        raw.iter().map(|r| (r.requests, r.cost_usd)).collect::<Vec<_>>(),
        days.iter().map(|r| (r.requests, r.cost_usd)).collect::<Vec<_>>()
    );
    let users = ledger.query(&by(&[GroupBy::User, GroupBy::Model], "UTC")).unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(ledger.verify().unwrap(), vec![]);
    ledger.close().unwrap();
    // Reopened: schema already there, rollup zone kept.
    let again = Ledger::open(&url, fast()).unwrap();
    assert_eq!(again.store().event_ids().unwrap().len(), 4);
    let days = again.query(&by(&[GroupBy::Day], "Asia/Seoul")).unwrap();
    assert_eq!(days.len(), 2);
}

/// A batch repeating ids, some already stored, inserts and counts each new id once (first occurrence).
pub fn duplicates_inside_one_batch_keep_the_first_occurrence(server: &SqlServer) {
    let ledger = Ledger::open(&server.fresh_db("repeats"), fast()).unwrap();
    assert_eq!(ledger.store().write_batch(&[numbered("m", 3), numbered("m", 4)]).unwrap(), 2);
    let (batch, new, total) = repeating_batch();
    assert_eq!(ledger.store().write_batch(&batch).unwrap(), new);
    let rows = ledger.query(&UsageQuery::default()).unwrap();
    assert_eq!((rows[0].requests, rows[0].cost_usd), (118, total));
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

/// Sixteen threads recording at once: every event once, totals exact, rollups equal events.
pub fn sixteen_threads_exact(server: &SqlServer) {
    let ledger = std::sync::Arc::new(Ledger::open(&server.fresh_db("threads"), fast()).unwrap());
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
    assert_eq!(rows[0].cost_usd, numbered_total(per) * Decimal::from(16));
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

/// The server stopped while events arrive and started again: they spill, are replayed exactly once,
/// and nothing recorded before, during or after is lost or doubled.
pub fn stopped_mid_run_and_restarted_loses_and_doubles_nothing(server: &SqlServer, test: &str) {
    if !(server.ctl)("probe") {
        skip(test, &format!("{} is not set: only a server started by the test harness can be stopped", server.ctl_var));
        return;
    }
    let url = server.fresh_db("restart");
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig { spill_dir: Some(dir.path().to_path_buf()), ..fast() };
    let ledger = Ledger::open(&url, config).unwrap();
    for i in 0..3_000 {
        ledger.record(numbered("before", i)).unwrap();
    }
    ledger.flush().unwrap();
    assert!((server.ctl)("stop"), "stopping the server failed");
    for i in 0..4_000 {
        ledger.record(numbered("during", i)).unwrap();
        if i == 2_000 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let down = ledger.flush();
    assert_eq!(down.map_err(|e| e.code()), Err(ErrorCode::Store));
    assert!(ledger.stats().spilled > 0);
    assert!((server.ctl)("start"), "starting the server failed");
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
    // Replaying the whole run again (a journal written twice) inserts nothing.
    let all: Vec<_> = (0..3_000)
        .map(|i| numbered("before", i))
        .chain((0..4_000).map(|i| numbered("during", i)))
        .chain((0..1_000).map(|i| numbered("after", i)))
        .collect();
    assert_eq!(ledger.store().write_batch(&all).unwrap(), 0);
    assert_eq!(ledger.query(&UsageQuery::default()).unwrap()[0].requests, 8_000);
    ledger.close().unwrap();
}

/// Costs with 28 significant digits, from 10^-28 to 10^27, come back exactly, event by event and
/// summed in the rollups.
pub fn money_exact_at_28_significant_digits(server: &SqlServer) {
    let ledger = Ledger::open(&server.fresh_db("money"), fast()).unwrap();
    let priced = |id: &str, user: &str, usd: Decimal| {
        let mut e = event(id, user, "ws", "gpt-4o", "2026-03-10T12:00:00Z", 1);
        e.cost = Some(cost("gpt-4o", usd));
        e
    };
    let events = [
        priced("big", "a", dec!(1234567890.123456789012345678)),
        priced("frac", "b", dec!(0.1234567890123456789012345678)),
        priced("tiny1", "c", dec!(0.0000000000000000000000000001)),
        priced("tiny2", "c", dec!(0.0000000000000000000000000002)),
        priced("wide1", "d", dec!(1111111111111111111111111111)),
        priced("wide2", "d", dec!(1111111111111111111111111111)),
    ];
    events.iter().cloned().for_each(|e| ledger.record(e).unwrap());
    ledger.flush().unwrap();
    // c: 1e-28 + 2e-28 = 3e-28; d: 2 × 1111…1 (28 ones) = 2222…2 (28 twos).
    let want = [
        ("a", dec!(1234567890.123456789012345678)),
        ("b", dec!(0.1234567890123456789012345678)),
        ("c", dec!(0.0000000000000000000000000003)),
        ("d", dec!(2222222222222222222222222222)),
    ];
    for p95 in [false, true] {
        let rows = ledger.query(&UsageQuery { p95, ..by(&[GroupBy::User], "UTC") }).unwrap();
        let got: Vec<_> = rows.iter().map(|r| (r.get(GroupBy::User).unwrap_or(""), r.cost_usd)).collect();
        assert_eq!(got, want, "p95 = {p95} ({})", if p95 { "raw events" } else { "rollups" });
    }
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

/// Daily and monthly rollups in a zone with a DST change (New York, 2026-11-01 02:00 EDT → 01:00 EST):
/// each event lands on its local day and month, and the rollups equal the raw events.
pub fn timezone_rollups_across_a_dst_change(server: &SqlServer) {
    let tz = "America/New_York";
    let ledger = Ledger::open(&server.fresh_db("dst"), LedgerConfig { timezone: tz.into(), ..fast() }).unwrap();
    let at = |id: &str, ts: &str, nano: i64| event(id, "u", "ws", "gpt-4o", ts, nano);
    [
        at("oct", "2026-11-01T03:30:00Z", 1),           // 23:30 EDT (UTC-4), Oct 31
        at("nov1-early", "2026-11-01T04:30:00Z", 20),   // 00:30 EDT, Nov 1
        at("nov1-repeat", "2026-11-01T06:30:00Z", 300), // 01:30 EST (UTC-5), Nov 1: the repeated hour
        at("nov1-late", "2026-11-02T04:30:00Z", 4_000), // 23:30 EST, Nov 1 (a 25-hour day)
        at("nov2", "2026-11-02T05:30:00Z", 50_000),     // 00:30 EST, Nov 2
    ]
    .into_iter()
    .for_each(|e| ledger.record(e).unwrap());
    ledger.flush().unwrap();
    let rows = |g: GroupBy, p95: bool| -> Vec<(String, u64, Decimal)> {
        let q = UsageQuery { p95, ..by(&[g], tz) };
        let r = ledger.query(&q).unwrap();
        r.iter().map(|r| (r.get(g).unwrap_or("").to_string(), r.requests, r.cost_usd)).collect()
    };
    let days = vec![
        ("2026-10-31".to_string(), 1, dec!(0.000000001)),
        // 20 + 300 + 4000 nano-USD
        ("2026-11-01".to_string(), 3, dec!(0.00000432)),
        ("2026-11-02".to_string(), 1, dec!(0.00005)),
    ];
    let months = vec![("2026-10".to_string(), 1, dec!(0.000000001)), ("2026-11".to_string(), 4, dec!(0.00005432))];
    for p95 in [false, true] {
        assert_eq!(rows(GroupBy::Day, p95), days, "p95 = {p95}");
        assert_eq!(rows(GroupBy::Month, p95), months, "p95 = {p95}");
    }
    // The 25-hour local day Nov 1, asked by date: from the daily rollups.
    let nov1 = by(&[], tz)
        .between_dates(chrono::NaiveDate::from_ymd_opt(2026, 11, 1), chrono::NaiveDate::from_ymd_opt(2026, 11, 2))
        .unwrap();
    let r = ledger.query(&nov1).unwrap();
    assert_eq!((r[0].requests, r[0].cost_usd), (3, dec!(0.00000432)));
    assert_eq!(ledger.verify().unwrap(), vec![]);
}
