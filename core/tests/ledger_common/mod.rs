//! Helpers shared by the ledger integration tests: deterministic events with exact decimal costs.
#![allow(dead_code, clippy::unwrap_used)]

pub mod sql_cases;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use llmledger_core::event::{Attribution, UsageEvent};
use llmledger_core::ledger::{MemoryStore, Store};
use llmledger_core::report::{ReportRow, UsageQuery};
use llmledger_core::rollup::RollupDiff;
use llmledger_core::{Api, Breakdown, Cost, Error, ErrorCode, Provider, Result, Usage};
use rust_decimal::Decimal;

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn cost(model: &str, total: Decimal) -> Cost {
    Cost {
        provider: Provider::OpenAi,
        model: model.into(),
        price_version: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        price_data: "test".into(),
        breakdown: Breakdown { input: total, ..Breakdown::default() },
        total_usd: total,
        currency: "USD".into(),
        rate: Decimal::ONE,
        total,
        tier_above: None,
        uncertain: false,
    }
}

/// Event `id` by `user` in `workspace` on `model` at `ts`, costing `cost_micro` × 10^-9 USD (odd scale on purpose).
pub fn event(id: &str, user: &str, workspace: &str, model: &str, ts: &str, cost_nano: i64) -> UsageEvent {
    let usage = Usage {
        input_tokens: 1000,
        cache_read_tokens: 200,
        output_tokens: 50,
        reasoning_tokens: 10,
        ..Usage::default()
    };
    UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, model, usage)
        .with_id(id)
        .with_timestamp(utc(ts))
        .with_cost(cost(model, Decimal::new(cost_nano, 9)))
        .with_latency_ms(100)
        .with_attribution(Attribution {
            user_id: Some(user.into()),
            workspace_id: Some(workspace.into()),
            project: Some("proj".into()),
            session_id: Some(format!("s-{user}")),
            ..Attribution::default()
        })
}

/// Event number `i` of a generated stream: user `u{i%7}`, cost `(i % 1000 + 1) × 10^-10` USD.
pub fn numbered(prefix: &str, i: u64) -> UsageEvent {
    let user = format!("u{}", i % 7);
    let nano = i64::try_from(i % 1000 + 1).unwrap();
    let mut e = event(&format!("{prefix}-{i}"), &user, "ws", "gpt-4o", "2026-11-01T12:00:00Z", nano);
    e.cost = Some(cost("gpt-4o", Decimal::new(nano, 10)));
    e
}

/// The exact total of `numbered(_, i)` for i in 0..n.
pub fn numbered_total(n: u64) -> Decimal {
    (0..n).map(|i| Decimal::new(i64::try_from(i % 1000 + 1).unwrap(), 10)).sum()
}

/// A 123-event batch of ids `m-0`..`m-117` that repeats ids, near and far apart, with a cost of 5 USD,
/// for a store already holding `m-3` and `m-4`. Returns the batch, how many events are new (116) and the exact total of the 118 stored
/// events: each first occurrence counts once (`m-100`'s 5 USD repeat comes first, so it is the one kept).
pub fn repeating_batch() -> (Vec<UsageEvent>, usize, Decimal) {
    let mut batch: Vec<UsageEvent> = (0..118).map(|i| numbered("m", i)).collect();
    for (id, at) in [(10, 60), (70, 110), (117, 120), (100, 20), (3, 0)] {
        let mut e = numbered("m", id);
        e.cost = Some(cost("gpt-4o", Decimal::from(5)));
        batch.insert(at, e);
    }
    let total = numbered_total(118) - Decimal::new(101, 10) + Decimal::from(5);
    (batch, 116, total)
}

/// A memory store that can be switched off, and held shut with a gate.
#[derive(Debug)]
pub struct FlakyStore {
    pub inner: MemoryStore,
    pub down: AtomicBool,
    pub gate: Mutex<()>,
    pub failures: AtomicU64,
}

impl FlakyStore {
    pub fn new() -> Self {
        Self {
            inner: MemoryStore::new(chrono_tz::Tz::UTC),
            down: AtomicBool::new(false),
            gate: Mutex::new(()),
            failures: AtomicU64::new(0),
        }
    }
}

impl Store for FlakyStore {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        let _open = self.gate.lock().unwrap();
        if self.down.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::new(ErrorCode::Store, "store is down"));
        }
        self.inner.write_batch(events)
    }
    fn query(&self, q: &UsageQuery) -> Result<Vec<ReportRow>> {
        self.inner.query(q)
    }
    fn verify(&self) -> Result<Vec<RollupDiff>> {
        self.inner.verify()
    }
    fn event_ids(&self) -> Result<Vec<String>> {
        self.inner.event_ids()
    }
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorCode::Store, "store is down"));
        }
        Ok(())
    }
}

/// The `record_loop` example next to this test binary. A plain `cargo test` builds examples; when this
/// test was built alone (`--test ledger_faults`) it builds the example with the same profile.
pub fn record_loop_exe() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let example = profile_dir.join("examples").join("record_loop");
    if !example.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-q", "-p", "llmledger-core", "--example", "record_loop", "--target-dir"])
            .arg(profile_dir.parent().unwrap());
        let features: Vec<&str> = [("postgres", cfg!(feature = "postgres")), ("mysql", cfg!(feature = "mysql"))]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
            .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building the record_loop example failed");
    }
    example
}

/// Stops or starts the server of `scripts/with-postgres.sh`; false when it did not start one.
pub fn pg_ctl(action: &str) -> bool {
    let (Ok(ctl), Ok(data)) = (std::env::var("LLMLEDGER_TEST_PG_CTL"), std::env::var("LLMLEDGER_TEST_PG_DATA")) else {
        return false;
    };
    let runas = std::env::var("LLMLEDGER_TEST_PG_RUNAS").unwrap_or_default();
    let opts = std::env::var("LLMLEDGER_TEST_PG_OPTS").unwrap_or_default();
    let log = std::env::var("LLMLEDGER_TEST_PG_LOG").unwrap_or_else(|_| "/dev/null".into());
    let mut args: Vec<String> = vec![ctl, "-D".into(), data, "-w".into()];
    match action {
        "stop" => args.extend(["-m".into(), "fast".into(), "stop".into()]),
        _ => args.extend(["-l".into(), log, "-o".into(), opts, "start".into()]),
    }
    let mut cmd = if runas.is_empty() {
        let mut c = std::process::Command::new(&args[0]);
        c.args(&args[1..]);
        c
    } else {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", &runas, "--"]).args(&args);
        c
    };
    cmd.stdout(std::process::Stdio::null()).status().unwrap().success()
}

/// Reports a skipped test: a failure under `CI=true`, else a `SKIP:` line and a line in `LLMLEDGER_SKIP_LOG`.
pub fn skip(test: &str, reason: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test}: {reason} (CI=true: this must run)");
    println!("SKIP: {test}: {reason}");
    if let Ok(path) = std::env::var("LLMLEDGER_SKIP_LOG") {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        writeln!(log, "rust\t{test}\t{reason}").unwrap();
    }
}

/// The server URL, or `None` after reporting the skip (a failure under `CI=true`).
pub fn server(test: &str) -> Option<String> {
    match std::env::var("LLMLEDGER_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(test, "LLMLEDGER_TEST_PG is not set (scripts/with-postgres.sh sets it)");
            None
        }
    }
}

/// A fresh database on the server, so tests do not see each other's events.
#[cfg(feature = "postgres")]
pub fn fresh_db(server: &str, name: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = format!("llmledger_{name}_{}", std::process::id());
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(server, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
        client.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    });
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{db}")
}

/// The PostgreSQL server of `scripts/with-postgres.sh` for the shared SQL cases, or `None` after
/// reporting the skip.
#[cfg(feature = "postgres")]
pub fn pg_server(test: &str) -> Option<sql_cases::SqlServer> {
    let ctl = |action: &str| match action {
        "probe" => std::env::var("LLMLEDGER_TEST_PG_CTL").is_ok(),
        _ => pg_ctl(action),
    };
    Some(sql_cases::SqlServer { url: server(test)?, fresh: fresh_db, ctl, ctl_var: "LLMLEDGER_TEST_PG_CTL" })
}

/// The MySQL/MariaDB server of `scripts/with-mariadb.sh` (`LLMLEDGER_TEST_MYSQL`), or `None` after
/// reporting the skip (a failure under `CI=true`).
#[cfg(feature = "mysql")]
pub fn mysql_server(test: &str) -> Option<sql_cases::SqlServer> {
    match std::env::var("LLMLEDGER_TEST_MYSQL") {
        Ok(url) if !url.is_empty() => Some(sql_cases::SqlServer {
            url,
            fresh: fresh_mysql_db,
            ctl: mysql_ctl,
            ctl_var: "LLMLEDGER_TEST_MYSQL_CTL",
        }),
        _ => {
            skip(test, "LLMLEDGER_TEST_MYSQL is not set (scripts/with-mariadb.sh sets it)");
            None
        }
    }
}

/// A fresh database on the MySQL server, so tests do not see each other's events.
#[cfg(feature = "mysql")]
pub fn fresh_mysql_db(server: &str, name: &str) -> String {
    use mysql::prelude::Queryable;
    let db = format!("llmledger_{name}_{}", std::process::id());
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(server).unwrap()).unwrap();
    conn.query_drop(format!("DROP DATABASE IF EXISTS {db}")).unwrap();
    conn.query_drop(format!("CREATE DATABASE {db}")).unwrap();
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{db}")
}

/// Stops or starts the server of `scripts/with-mariadb.sh` (`probe`: whether it can); false when it did
/// not start one.
#[cfg(feature = "mysql")]
pub fn mysql_ctl(action: &str) -> bool {
    let Ok(ctl) = std::env::var("LLMLEDGER_TEST_MYSQL_CTL") else { return false };
    if action == "probe" {
        return true;
    }
    std::process::Command::new(ctl).arg(action).stdout(std::process::Stdio::null()).status().unwrap().success()
}
