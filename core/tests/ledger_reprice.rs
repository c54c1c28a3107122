//! `Store::reprice` against real SQLite files and (with `LLMLEDGER_TEST_PG`, feature `postgres`;
//! `LLMLEDGER_TEST_MYSQL`, feature `mysql`) real PostgreSQL and MariaDB servers: unpriced events of a
//! model that is now priced, a figure priced with a version later corrected, the audit trail, rollups
//! moved in the same transaction, idempotency, and a database created by the version-1 schema upgraded
//! in place.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use chrono_tz::Tz;
use ledger_common::{cost, utc};
use llmledger_core::event::{Attribution, UsageEvent};
use llmledger_core::ledger::{RepriceFilter, Store};
use llmledger_core::report::{GroupBy, UsageQuery};
use llmledger_core::{Api, ErrorCode, PriceDb, PriceOptions, Provider, Usage};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// The prices "now": `acme-chat` (alias `acme-chat-2026-12-01`) was cut from 2/8 to 1/4 USD per 1M
/// on 2026-11-15; `acme-mini` costs 0.40/1.60 with a 50 % batch discount.
const PRICES: &str = r#"{"provider": "openai", "models": [
  {"id": "acme-chat", "mode": "chat", "aliases": ["acme-chat-2026-12-01"], "prices": [
    {"effective_from": "2026-01-01", "source": "test", "checked": "2026-01-01", "input": "2.00", "output": "8.00"},
    {"effective_from": "2026-11-15", "source": "test", "checked": "2026-11-15", "input": "1.00", "output": "4.00"}]},
  {"id": "acme-mini", "mode": "chat", "prices": [
    {"effective_from": "2026-01-01", "source": "test", "checked": "2026-01-01", "input": "0.40", "output": "1.60",
     "batch_multiplier": "0.5"}]}]}"#;

fn prices() -> PriceDb {
    PriceDb::from_json(PRICES).unwrap()
}

fn ev(id: &str, model: &str, ts: &str, input: u64, output: u64) -> UsageEvent {
    let usage = Usage { input_tokens: input, output_tokens: output, ..Usage::default() };
    UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, model, usage)
        .with_id(id)
        .with_timestamp(utc(ts))
        .with_latency_ms(50)
        .with_attribution(Attribution { user_id: Some("alice".into()), ..Attribution::default() })
}

/// The ledger as recorded before the price file above existed / was corrected.
fn recorded() -> Vec<UsageEvent> {
    let krw = {
        // 1000 × 0.40/1M + 100 × 1.60/1M = 0.0004 + 0.00016 = 0.00056; batch × 0.5 = 0.00028 USD; × 1000 KRW/USD.
        let mut c = cost("acme-mini", dec!(0.00028));
        c.currency = "KRW".into();
        c.rate = dec!(1000);
        c.total = dec!(0.28);
        c
    };
    vec![
        // Unknown when recorded: now priced at the 2026-01-01 version, 1000 × 2/1M + 500 × 8/1M = 0.006.
        ev("e1", "acme-chat-2026-12-01", "2026-11-01T10:00:00Z", 1000, 500).unpriced("unknown_model"),
        // Priced with the old rates after the cut: now 1000 × 1/1M + 500 × 4/1M = 0.003 (delta -0.003).
        ev("e2", "acme-chat", "2026-11-20T10:00:00Z", 1000, 500).with_cost(cost("acme-chat", dec!(0.006))),
        // Batch call in KRW, priced right: unchanged only if the batch option and the rate are kept.
        ev("e3", "acme-mini", "2026-11-02T10:00:00Z", 1000, 100)
            .with_cost(krw)
            .with_price_options(PriceOptions { batch: true, ..PriceOptions::default() }),
        // Still unknown.
        ev("e4", "mystery-model", "2026-11-03T10:00:00Z", 10, 10).unpriced("unknown_model"),
        // A failed call with no usage and no cost: nothing to price.
        UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, "acme-chat", Usage::default())
            .with_id("e5")
            .with_timestamp(utc("2026-11-03T11:00:00Z"))
            .failed("timeout"),
        // Priced right at the 2026-01-01 version: unchanged.
        ev("e6", "acme-chat", "2026-11-03T12:00:00Z", 1000, 500).with_cost(cost("acme-chat", dec!(0.006))),
    ]
}

fn totals(store: &dyn Store) -> (Decimal, u64, u64) {
    let rows = store.query(&UsageQuery::default()).unwrap();
    (rows[0].cost_usd, rows[0].unpriced, rows[0].requests)
}

fn by_model(store: &dyn Store) -> Vec<(String, Decimal, u64)> {
    let q = UsageQuery { group_by: vec![GroupBy::Model], ..UsageQuery::default() };
    let mut rows: Vec<_> = store
        .query(&q)
        .unwrap()
        .into_iter()
        .map(|r| (r.get(GroupBy::Model).unwrap_or("").to_string(), r.cost_usd, r.requests))
        .collect();
    rows.sort();
    rows
}

/// An event's stored `(price_data, reprice_audit)` columns.
type Columns = (Option<String>, Option<String>);

/// The whole scenario against one store; `audit` reads an event's columns.
fn scenario(store: &dyn Store, audit: &dyn Fn(&str) -> Columns) {
    assert_eq!(store.write_batch(&recorded()).unwrap(), 6);
    // 0.006 + 0.00028 + 0.006 priced; e1, e4 and the failed e5 carry no cost.
    assert_eq!(totals(store), (dec!(0.01228), 3, 6));
    let db = prices();

    // Filters select what a dry run looks at; a dry run changes nothing.
    let dry = |f: RepriceFilter| store.reprice(&db, &RepriceFilter { dry_run: true, ..f }).unwrap();
    let only_new = dry(RepriceFilter { since: Some(utc("2026-11-15T00:00:00Z")), ..RepriceFilter::default() });
    assert_eq!((only_new.examined, only_new.changed, only_new.delta_usd), (1, 1, dec!(-0.003)));
    let mystery = dry(RepriceFilter { model: Some("mystery-model".into()), ..RepriceFilter::default() });
    assert_eq!((mystery.examined, mystery.changed, mystery.still_unpriced), (1, 0, 1));
    let all = dry(RepriceFilter::default());
    assert!(all.dry_run);
    assert_eq!((all.examined, all.changed, all.still_unpriced, all.failed), (5, 2, 1, 0));
    assert_eq!(totals(store), (dec!(0.01228), 3, 6));
    assert_eq!(audit("e2"), (Some("test".into()), None));

    // In chunks of two events (six stored): the pages must neither skip nor repeat an event.
    let done = store.reprice(&db, &RepriceFilter { chunk: 2, ..RepriceFilter::default() }).unwrap();
    assert!(!done.dry_run);
    assert_eq!((done.examined, done.changed, done.still_unpriced, done.failed), (5, 2, 1, 0));
    assert_eq!((done.delta_usd, done.newly_priced_usd), (dec!(-0.003), dec!(0.006)));
    let e1 = done.changes.iter().find(|c| c.event_id == "e1").unwrap();
    assert_eq!((e1.old_cost_usd, e1.new_cost_usd, e1.new_resolved_model.as_str()), (None, dec!(0.006), "acme-chat"));
    let e2 = done.changes.iter().find(|c| c.event_id == "e2").unwrap();
    assert_eq!((e2.old_cost_usd, e2.new_cost_usd), (Some(dec!(0.006)), dec!(0.003)));
    assert_eq!(e2.new_price_version.to_string(), "2026-11-15");

    // 0.006 (e1) + 0.003 (e2) + 0.00028 (e3) + 0.006 (e6); e4 and e5 still carry no cost.
    assert_eq!(totals(store), (dec!(0.01528), 2, 6));
    // e1 moved from the requested alias's rollup row to the canonical id's; the emptied row is gone.
    assert_eq!(
        by_model(store),
        vec![
            ("acme-chat".to_string(), dec!(0.015), 4),
            ("acme-mini".to_string(), dec!(0.00028), 1),
            ("mystery-model".to_string(), dec!(0), 1),
        ]
    );
    assert_eq!(store.verify().unwrap(), vec![], "rollups match the re-priced events");

    // The old figures are kept, and the data version the new ones were priced with is recorded.
    let (data, trail) = audit("e2");
    assert_eq!(data.as_deref(), Some(db.data_version()));
    let trail: serde_json::Value = serde_json::from_str(&trail.unwrap()).unwrap();
    assert_eq!(trail.as_array().map(Vec::len), Some(1));
    assert_eq!(trail[0]["cost_usd"], "0.006");
    assert_eq!(trail[0]["price_version"], "2026-01-01");
    assert_eq!(trail[0]["price_data"], "test");
    let trail: serde_json::Value = serde_json::from_str(&audit("e1").1.unwrap()).unwrap();
    assert_eq!(
        (&trail[0]["cost_usd"], &trail[0]["unpriced_reason"]),
        (&serde_json::Value::Null, &"unknown_model".into())
    );
    assert_eq!(audit("e3"), (Some("test".into()), None), "an unchanged event is not touched");

    // Idempotent: a second run finds nothing to change and adds no audit entry.
    let again = store.reprice(&db, &RepriceFilter { chunk: 1, ..RepriceFilter::default() }).unwrap();
    assert_eq!((again.examined, again.changed), (5, 0));
    assert_eq!(totals(store), (dec!(0.01528), 2, 6));
    let trail: serde_json::Value = serde_json::from_str(&audit("e2").1.unwrap()).unwrap();
    assert_eq!(trail.as_array().map(Vec::len), Some(1));
    assert_eq!(store.verify().unwrap(), vec![]);
}

/// The version-1 `usage_events` columns (before price data, price options, usage extras and audit).
const V1_EVENT_COLUMNS: &str = "event_id TEXT PRIMARY KEY, ts_ns {int} NOT NULL, provider TEXT NOT NULL,
    api TEXT NOT NULL, model TEXT NOT NULL, resolved_model TEXT, user_id TEXT, workspace_id TEXT, project TEXT,
    session_id TEXT, conversation_id TEXT, tags TEXT, status TEXT NOT NULL, error_class TEXT, latency_ms {int},
    input_tokens {int} NOT NULL, cache_read_tokens {int} NOT NULL, cache_write_tokens {int} NOT NULL,
    cache_write_1h_tokens {int} NOT NULL, output_tokens {int} NOT NULL, reasoning_tokens {int} NOT NULL,
    audio_input_tokens {int} NOT NULL, audio_cache_read_tokens {int} NOT NULL, audio_output_tokens {int} NOT NULL,
    image_input_tokens {int} NOT NULL, image_output_tokens {int} NOT NULL, usage_source TEXT NOT NULL, flags TEXT,
    cost_usd {dec}, currency TEXT, rate {dec}, cost_total {dec}, price_version TEXT, unpriced_reason TEXT";

const V1_ROLLUP_COLUMNS: &str = "period TEXT NOT NULL, user_id TEXT NOT NULL, workspace_id TEXT NOT NULL,
    project TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, requests {int} NOT NULL,
    successful {int} NOT NULL, failed {int} NOT NULL, unpriced {int} NOT NULL, input_tokens {int} NOT NULL,
    cache_read_tokens {int} NOT NULL, cache_write_tokens {int} NOT NULL, output_tokens {int} NOT NULL,
    reasoning_tokens {int} NOT NULL, cost_usd {dec} NOT NULL, latency_sum_ms {int} NOT NULL,
    latency_count {int} NOT NULL, PRIMARY KEY (period, user_id, workspace_id, project, provider, model)";

/// A version-1 database (SQLite and PostgreSQL; the MySQL store started at version 2) holding one unpriced `acme-chat-2026-12-01` call (1000 in, 500 out) by alice
/// on 2026-11-01 10:00 UTC, with its rollup rows, as the old llmledger wrote it.
fn v1_schema(int: &str, dec: &str, zero: &str) -> String {
    let ty = |s: &str| s.replace("{int}", int).replace("{dec}", dec);
    let rollup = |table: &str, period: &str| {
        format!(
            "CREATE TABLE {table} ({}); INSERT INTO {table} VALUES ('{period}', 'alice', '', '', 'openai',
             'acme-chat-2026-12-01', 1, 1, 0, 1, 1000, 0, 0, 500, 0, {zero}, 50, 1);",
            ty(V1_ROLLUP_COLUMNS)
        )
    };
    format!(
        "CREATE TABLE llmledger_schema_version (version INTEGER NOT NULL);
         INSERT INTO llmledger_schema_version VALUES (1);
         CREATE TABLE llmledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO llmledger_meta VALUES ('rollup_timezone', 'UTC');
         CREATE TABLE usage_events ({});
         CREATE INDEX usage_events_ts ON usage_events (ts_ns);
         INSERT INTO usage_events VALUES ('old1', 1793527200000000000, 'openai', 'chat_completions',
           'acme-chat-2026-12-01', NULL, 'alice', NULL, NULL, NULL, NULL, NULL, 'success', NULL, 50,
           1000, 0, 0, 0, 500, 0, 0, 0, 0, 0, 0, 'reported', NULL, NULL, NULL, NULL, NULL, NULL, 'unknown_model');
         {} {}",
        ty(V1_EVENT_COLUMNS),
        rollup("rollup_daily", "2026-11-01"),
        rollup("rollup_monthly", "2026-11")
    )
}

/// After the upgrade the old event reads back, prices, and its rollups move with it.
fn check_upgraded(store: &dyn Store) {
    assert_eq!(store.event_ids().unwrap(), vec!["old1".to_string()]);
    assert_eq!(totals(store), (dec!(0), 1, 1));
    assert_eq!(store.verify().unwrap(), vec![]);
    let done = store.reprice(&prices(), &RepriceFilter::default()).unwrap();
    // 1000 × 2/1M + 500 × 8/1M at the 2026-01-01 version.
    assert_eq!((done.changed, done.newly_priced_usd), (1, dec!(0.006)));
    assert_eq!(totals(store), (dec!(0.006), 0, 1));
    assert_eq!(by_model(store), vec![("acme-chat".to_string(), dec!(0.006), 1)]);
    assert_eq!(store.verify().unwrap(), vec![]);
    // New events (with the new columns) go into the upgraded table.
    assert_eq!(store.write_batch(&recorded()[1..2]).unwrap(), 1);
    assert_eq!(totals(store), (dec!(0.012), 0, 2));
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use llmledger_core::ledger::sqlite::SqliteStore;

    fn audit_of(path: &std::path::Path) -> impl Fn(&str) -> Columns + '_ {
        move |id| {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.query_row("SELECT price_data, reprice_audit FROM usage_events WHERE event_id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        }
    }

    #[test]
    fn sqlite_reprice_prices_corrects_audits_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let store = SqliteStore::open(&path, Tz::UTC).unwrap();
        scenario(&store, &audit_of(&path));
    }

    #[test]
    fn sqlite_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        rusqlite::Connection::open(&path).unwrap().execute_batch(&v1_schema("INTEGER", "TEXT", "'0'")).unwrap();
        let store = SqliteStore::open(&path, Tz::Asia__Seoul).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 =
            conn.query_row("SELECT max(version) FROM llmledger_schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        check_upgraded(&store);
        assert_eq!(store.rollup_timezone(), Tz::UTC, "the stored rollup zone is kept");
        drop(store);
        // Reopening an upgraded database migrates nothing again.
        let store = SqliteStore::open(&path, Tz::UTC).unwrap();
        let versions: i64 = conn.query_row("SELECT count(*) FROM llmledger_schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(versions, 2);
        assert_eq!(totals(&store), (dec!(0.012), 0, 2));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(SqliteStore::open(&path, Tz::UTC).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("INSERT INTO llmledger_schema_version VALUES (99)", []).unwrap();
        let err = SqliteStore::open(&path, Tz::UTC).map(|_| ()).map_err(|e| e.code());
        assert_eq!(err, Err(ErrorCode::Config));
    }
}

#[test]
fn stores_that_cannot_rewrite_events_say_so() {
    let memory = llmledger_core::ledger::MemoryStore::new(Tz::UTC);
    let err = memory.reprice(&prices(), &RepriceFilter::default()).map(|_| ()).map_err(|e| e.code());
    assert_eq!(err, Err(ErrorCode::Unsupported));
    let dir = tempfile::tempdir().unwrap();
    let jsonl = llmledger_core::ledger::jsonl::JsonlStore::open(dir.path(), 1 << 20).unwrap();
    let err = jsonl.reprice(&prices(), &RepriceFilter::default()).map(|_| ()).map_err(|e| e.code());
    assert_eq!(err, Err(ErrorCode::Unsupported));
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use llmledger_core::ledger::postgres::PgStore;

    fn server() -> Option<String> {
        match std::env::var("LLMLEDGER_TEST_PG") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "LLMLEDGER_TEST_PG is not set under CI=true: run through scripts/with-postgres.sh"
                );
                println!("SKIP: PostgreSQL reprice tests (set LLMLEDGER_TEST_PG or use scripts/with-postgres.sh)");
                None
            }
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    /// A client on the current runtime (inside [`block`]).
    async fn client(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    fn sql(url: &str, text: &str) {
        block(async { client(url).await.batch_execute(text).await.unwrap() });
    }

    fn fresh_db(server: &str, name: &str) -> String {
        let db = format!("llmledger_reprice_{name}_{}", std::process::id());
        sql(server, &format!("DROP DATABASE IF EXISTS {db}"));
        sql(server, &format!("CREATE DATABASE {db}"));
        let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
        format!("{base}/{db}")
    }

    fn audit_of(url: &str) -> impl Fn(&str) -> Columns + '_ {
        move |id| {
            block(async {
                let sql = "SELECT price_data, reprice_audit FROM usage_events WHERE event_id = $1";
                let row = client(url).await.query_one(sql, &[&id]).await.unwrap();
                (row.get(0), row.get(1))
            })
        }
    }

    #[test]
    fn postgres_reprice_prices_corrects_audits_and_is_idempotent() {
        let Some(server) = server() else { return };
        let url = fresh_db(&server, "scenario");
        let store = PgStore::connect(&url, Tz::UTC).unwrap();
        scenario(&store, &audit_of(&url));
    }

    #[test]
    fn postgres_version_1_database_is_upgraded_in_place() {
        let Some(server) = server() else { return };
        let url = fresh_db(&server, "upgrade");
        sql(&url, &v1_schema("BIGINT", "NUMERIC", "0"));
        let store = PgStore::connect(&url, Tz::Asia__Seoul).unwrap();
        check_upgraded(&store);
        assert_eq!(store.rollup_timezone().unwrap(), Tz::UTC);
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use crate::ledger_common::{fresh_mysql_db, mysql_server};
    use ::mysql::prelude::Queryable;
    use llmledger_core::ledger::mysql::MySqlStore;

    fn audit_of(url: &str) -> impl Fn(&str) -> Columns + '_ {
        move |id| {
            let mut conn = ::mysql::Conn::new(::mysql::Opts::from_url(url).unwrap()).unwrap();
            let sql = "SELECT price_data, reprice_audit FROM usage_events WHERE event_id = ?";
            conn.exec_first(sql, (id,)).unwrap().unwrap()
        }
    }

    #[test]
    #[ignore = "needs MySQL/MariaDB: run through scripts/with-mariadb.sh with -- --include-ignored"]
    fn mysql_reprice_prices_corrects_audits_and_is_idempotent() {
        let test = "mysql_reprice_prices_corrects_audits_and_is_idempotent";
        let Some(server) = mysql_server(test) else { return };
        let url = fresh_mysql_db(&server.url, "reprice");
        let store = MySqlStore::connect(&url, Tz::UTC).unwrap();
        scenario(&store, &audit_of(&url));
    }
}
