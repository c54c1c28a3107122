//! `mysql://` and `mariadb://` — MySQL / MariaDB store (feature `mysql`, the synchronous `mysql`
//! client without TLS), for apps whose data already lives in MySQL or MariaDB.
//!
//! The column sets and the row encoding are the other SQL stores' ([`super::row`]); this module keeps
//! only the dialect. Text columns are `utf8mb4_bin` (byte-exact comparisons, as in SQLite and
//! PostgreSQL; MySQL's default collation would merge `A1` and `a1`), money is `DECIMAL(65,28)`, which
//! holds every `Decimal` exactly (28 fractional digits, 37 integral). A rollup row is keyed by a
//! stored SHA-256 of its six key columns (a unique index): InnoDB keys are limited to 3072 bytes, and
//! attribution strings have no length limit.
//!
//! A batch is one transaction: a multi-row `INSERT … ON DUPLICATE KEY UPDATE event_id = event_id`
//! (never `INSERT IGNORE`, which would turn a bad value into a warning) whose affected-row count is
//! the number of new rows; when that is the whole batch (the usual case), one multi-row
//! `INSERT … ON DUPLICATE KEY UPDATE x = x + VALUES(x)` per rollup table adds them. When it is not (a
//! replay), the transaction is rolled back and redone: the ids already stored are read, only the
//! others inserted (a plain `INSERT`) and rolled up. A concurrent writer inserting the same id between
//! the read and the insert makes that insert fail on the key: the transaction rolls back, the ledger
//! retries, and the retry sees the id stored, so nothing is counted twice. Sessions run in strict SQL
//! mode (a value that does not fit is an error).
//!
//! The schema is created and migrated on connection under a named lock (`GET_LOCK`): DDL is not
//! transactional in MySQL. The connection is dropped after any error and made again on the next
//! call; a server that is down at open is not an error (events spill and are replayed once it is up).

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono_tz::Tz;
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Params, Row, TxOpts, Value};
use rust_decimal::Decimal;

use super::reprice::{self, RepriceFilter, RepriceReport, Rewrite};
use super::row::{
    self, event_cols, plain, rollup_cols, ColumnReader, Encoded, Filter, Kind, Param, EVENT_COLUMNS, ROLLUP_COLUMNS,
    SCHEMA_VERSION,
};
use super::Store;
use crate::error::{Error, ErrorCode, Result};
use crate::event::UsageEvent;
use crate::pricing::PriceDb;
use crate::report::{parse_tz, Aggregator, ReportRow, UsageQuery};
use crate::rollup::{RollupDiff, RollupKey, RollupTable, Rollups, Totals};

/// Rows per multi-row statement: MySQL allows 65,535 placeholders in one statement (38 per event).
const ROWS_PER_STATEMENT: usize = 1000;

/// The SQL type of a column; `key` columns must be indexable (`VARCHAR`, not `TEXT`).
fn sql_type(name: &str, k: Kind) -> &'static str {
    match k {
        // Event ids are at most 256 bytes (`UsageEvent::validate`).
        Kind::Text if name == "event_id" => "VARCHAR(256)",
        // MEDIUMTEXT (16 MiB), not TEXT (64 KiB): a long attribution or re-price trail must not make a
        // batch fail for ever.
        Kind::Text => "MEDIUMTEXT",
        Kind::Int => "BIGINT",
        Kind::Dec => "DECIMAL(65,28)",
    }
}

const TABLE_OPTIONS: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/// Every table, created if missing (one statement each: the server takes one at a time).
fn ddl() -> Vec<String> {
    let events: Vec<String> = EVENT_COLUMNS
        .iter()
        .map(|&(name, kind, not_null)| {
            let nn = if not_null { " NOT NULL" } else { "" };
            format!("{name} {}{nn}", sql_type(name, kind))
        })
        .collect();
    // The rollup key, length-prefixed so that no two keys concatenate alike.
    let key_text: Vec<String> =
        ROLLUP_COLUMNS[..6].iter().map(|(c, _)| format!("CHAR_LENGTH({c}), ':', {c}")).collect();
    let rollup = |table: &str| {
        let cols: Vec<String> =
            ROLLUP_COLUMNS.iter().map(|&(name, kind)| format!("{name} {} NOT NULL", sql_type(name, kind))).collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {table} ({}, key_hash BINARY(32) AS (UNHEX(SHA2(CONCAT({}), 256))) STORED, \
             UNIQUE KEY {table}_key (key_hash)) {TABLE_OPTIONS}",
            cols.join(", "),
            key_text.join(", ")
        )
    };
    vec![
        format!("CREATE TABLE IF NOT EXISTS llmledger_schema_version (version INTEGER NOT NULL) {TABLE_OPTIONS}"),
        format!(
            "CREATE TABLE IF NOT EXISTS llmledger_meta (`key` VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL) \
             {TABLE_OPTIONS}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS usage_events ({}, PRIMARY KEY (event_id), INDEX usage_events_ts (ts_ns)) \
             {TABLE_OPTIONS}",
            events.join(", ")
        ),
        rollup("rollup_daily"),
        rollup("rollup_monthly"),
    ]
}

/// `INSERT INTO table (cols) VALUES (?, …), …` for `rows` rows of `width` values.
fn multi_row_insert(table: &str, cols: &str, width: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    format!("INSERT INTO {table} ({cols}) VALUES {}", vec![one.as_str(); rows].join(", "))
}

fn upsert_sql(table: &str, rows: usize) -> String {
    format!(
        "{} ON DUPLICATE KEY UPDATE {}",
        multi_row_insert(table, &rollup_cols(plain), ROLLUP_COLUMNS.len(), rows),
        row::rollup_sets(|c, _| format!("{c} = {c} + VALUES({c})"))
    )
}

fn my_err(e: mysql::Error) -> Error {
    let msg = match &e {
        mysql::Error::MySqlError(db) => format!("MySQL {}: {}", db.code, db.message),
        other => format!("MySQL: {other}"),
    };
    Error::new(ErrorCode::Store, super::health::redact_credentials(&msg))
}

fn text(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::NULL, text)
}

/// A row as the driver returns it: `DECIMAL` values come as text padded to 28 decimals, trimmed
/// here so that they parse into a `Decimal` exactly as stored.
impl ColumnReader for Row {
    fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.ok_or_else(|| Error::new(ErrorCode::Store, format!("MySQL: column {i} is NULL")))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        let decimal = self.columns_ref().get(i).is_some_and(|c| c.column_type() == ColumnType::MYSQL_TYPE_NEWDECIMAL);
        match self.as_ref(i) {
            None | Some(Value::NULL) => Ok(None),
            Some(Value::Bytes(b)) => {
                let s = String::from_utf8(b.clone())
                    .map_err(|_| Error::new(ErrorCode::Store, format!("MySQL: column {i} is not UTF-8")))?;
                Ok(Some(if decimal && s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    s
                }))
            }
            Some(Value::Int(n)) => Ok(Some(n.to_string())),
            Some(Value::UInt(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(Error::new(ErrorCode::Store, format!("MySQL: column {i} holds {other:?}, not text"))),
        }
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| Error::new(ErrorCode::Store, format!("MySQL: column {i} is NULL")))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        let bad = || Error::new(ErrorCode::Store, format!("MySQL: column {i} is not an integer"));
        match self.as_ref(i) {
            None | Some(Value::NULL) => Ok(None),
            Some(Value::Int(n)) => Ok(Some(*n)),
            Some(Value::UInt(n)) => i64::try_from(*n).map(Some).map_err(|_| bad()),
            Some(Value::Bytes(b)) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).map(Some).ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    }
}

#[derive(Debug)]
struct Live {
    conn: Conn,
    tz: Tz,
}

/// The MySQL / MariaDB store.
#[derive(Debug)]
pub struct MySqlStore {
    opts: Opts,
    /// Rollup zone for a database this store creates; an existing database keeps its own.
    default_tz: Tz,
    conn: Mutex<Option<Live>>,
}

impl MySqlStore {
    /// Parses `url` (`mysql://user:pass@host:port/db`, or `mariadb://…`; a bad URL is an
    /// [`ErrorCode::Config`] error); connecting and migrating happen on the first call, and a server
    /// that is down is retried on every later call.
    pub fn connect(url: &str, tz: Tz) -> Result<Self> {
        let redacted = super::health::redact_credentials(url);
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_string(),
        };
        let opts = Opts::from_url(&url).map_err(|e| {
            Error::config("store", &redacted, &super::health::redact_credentials(&format!("not a MySQL URL: {e}")))
        })?;
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(Error::config("store", &redacted, "the URL names no database (mysql://user@host/db)"));
        }
        let opts = OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .tcp_connect_timeout(Some(Duration::from_secs(5)))
            .read_timeout(Some(Duration::from_secs(60)))
            .write_timeout(Some(Duration::from_secs(60)))
            // Strict: a value that does not fit its column is an error, never a silent truncation.
            .init(vec!["SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"]);
        Ok(Self { opts: opts.into(), default_tz: tz, conn: Mutex::new(None) })
    }

    /// The time zone the rollups are keyed in (connects if needed).
    pub fn rollup_timezone(&self) -> Result<Tz> {
        self.with_conn(|live| Ok(live.tz))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Live>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a live, migrated connection (connecting first if needed); after an error the
    /// connection is dropped (it may be broken, or hold a half-finished statement).
    fn with_conn<T>(&self, f: impl FnOnce(&mut Live) -> Result<T>) -> Result<T> {
        let mut guard = self.lock();
        let mut live = match guard.take() {
            Some(live) => live,
            None => self.open_conn()?,
        };
        let r = f(&mut live);
        if r.is_ok() {
            *guard = Some(live);
        }
        r
    }

    fn open_conn(&self) -> Result<Live> {
        let mut conn = Conn::new(self.opts.clone()).map_err(my_err)?;
        // One migrator at a time across every instance sharing the database.
        let locked: Option<i64> = conn.query_first("SELECT GET_LOCK('llmledger_schema', 60)").map_err(my_err)?;
        if locked != Some(1) {
            return Err(Error::new(ErrorCode::Store, "MySQL: timed out waiting for the schema lock"));
        }
        let tz = migrate(&mut conn, self.default_tz);
        let released = conn.query_drop("DO RELEASE_LOCK('llmledger_schema')").map_err(my_err);
        let tz = tz?;
        released?;
        Ok(Live { conn, tz })
    }
}

/// Creates the tables, adds the columns an older schema lacks, and returns the rollup zone.
fn migrate(conn: &mut Conn, default_tz: Tz) -> Result<Tz> {
    for stmt in ddl() {
        conn.query_drop(stmt).map_err(my_err)?;
    }
    let version: Option<i64> =
        conn.query_first("SELECT MAX(version) FROM llmledger_schema_version").map_err(my_err)?.flatten();
    match version {
        Some(v) if v > i64::from(SCHEMA_VERSION) => {
            return Err(Error::new(
                ErrorCode::Config,
                format!("MySQL ledger schema version {v} is newer than this llmledger ({SCHEMA_VERSION})"),
            ))
        }
        Some(v) if v == i64::from(SCHEMA_VERSION) => {}
        _ => {
            // An older (or new) database: add the columns it lacks, then record the version.
            let present: Vec<String> = conn
                .query(
                    "SELECT column_name FROM information_schema.columns
                     WHERE table_schema = DATABASE() AND table_name = 'usage_events'",
                )
                .map_err(my_err)?;
            for column in row::MIGRATIONS.iter().filter(|c| !present.iter().any(|p| p.eq_ignore_ascii_case(c))) {
                let ty = sql_type(column, row::column_kind(column));
                conn.query_drop(format!("ALTER TABLE usage_events ADD COLUMN {column} {ty}")).map_err(my_err)?;
            }
            conn.exec_drop("INSERT INTO llmledger_schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                .map_err(my_err)?;
        }
    }
    let stored: Option<String> =
        conn.query_first("SELECT value FROM llmledger_meta WHERE `key` = 'rollup_timezone'").map_err(my_err)?;
    match stored {
        Some(name) => parse_tz("rollup_timezone", &name),
        None => {
            conn.exec_drop(
                "INSERT INTO llmledger_meta (`key`, value) VALUES ('rollup_timezone', ?)",
                (default_tz.name(),),
            )
            .map_err(my_err)?;
            Ok(default_tz)
        }
    }
}

/// The values of an event's columns, in [`EVENT_COLUMNS`] order.
fn push_event(out: &mut Vec<Value>, e: &UsageEvent, x: &Encoded) {
    let a = &e.attribution;
    let c = e.cost.as_ref();
    out.extend([
        text(&e.event_id),
        Value::Int(x.ts_ns),
        text(e.provider.as_str()),
        text(e.api.as_str()),
        text(&e.model),
    ]);
    for v in [&e.resolved_model, &a.user_id, &a.workspace_id, &a.project, &a.session_id, &a.conversation_id, &x.tags] {
        out.push(opt_text(v.as_deref()));
    }
    out.extend([
        text(e.status.as_str()),
        opt_text(e.error_class.as_deref()),
        x.latency_ms.map_or(Value::NULL, Value::Int),
    ]);
    out.extend(x.tokens.iter().map(|&n| Value::Int(n)));
    out.push(text(e.usage.usage_source.as_str()));
    for v in [
        x.flags.as_deref(),
        x.cost_usd.as_deref(),
        c.map(|c| c.currency.as_str()),
        x.rate.as_deref(),
        x.cost_total.as_deref(),
        x.price_version.as_deref(),
        e.unpriced_reason.as_deref(),
        x.usage_extra.as_deref(),
        x.price_options.as_deref(),
        c.map(|c| c.price_data.as_str()).filter(|d| !d.is_empty()),
        None,
    ] {
        out.push(opt_text(v));
    }
}

fn write(conn: &mut Conn, tz: Tz, events: &[UsageEvent]) -> Result<usize> {
    // The first occurrence of an id in the batch is the one stored.
    let mut seen = HashSet::with_capacity(events.len());
    let unique: Vec<&UsageEvent> = events.iter().filter(|e| seen.insert(e.event_id.as_str())).collect();
    let enc = unique.iter().map(|e| Encoded::of(e)).collect::<Result<Vec<_>>>()?;
    let all: Vec<(&UsageEvent, &Encoded)> = unique.iter().copied().zip(&enc).collect();
    // The usual batch is all new: one insert that leaves a stored id as it is (counting 0 for it, 1 per
    // new row). If it counts fewer than the batch, some ids were stored already: undo it and insert only
    // the ids not found.
    let mut tx = conn.start_transaction(TxOpts::default()).map_err(my_err)?;
    if insert_events(&mut tx, &all, " ON DUPLICATE KEY UPDATE event_id = event_id")? == all.len() as u64 {
        add_rollups(&mut tx, tz, &all)?;
        tx.commit().map_err(my_err)?;
        return Ok(all.len());
    }
    tx.rollback().map_err(my_err)?;
    let mut tx = conn.start_transaction(TxOpts::default()).map_err(my_err)?;
    let mut stored = HashSet::new();
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let sql =
            format!("SELECT event_id FROM usage_events WHERE event_id IN ({})", vec!["?"; chunk.len()].join(", "));
        let ids: Vec<Value> = chunk.iter().map(|e| text(&e.event_id)).collect();
        let found: Vec<String> = tx.exec(sql, Params::Positional(ids)).map_err(my_err)?;
        stored.extend(found);
    }
    let fresh: Vec<(&UsageEvent, &Encoded)> = all.into_iter().filter(|(e, _)| !stored.contains(&e.event_id)).collect();
    insert_events(&mut tx, &fresh, "")?;
    add_rollups(&mut tx, tz, &fresh)?;
    tx.commit().map_err(my_err)?;
    Ok(fresh.len())
}

/// Inserts `events` in multi-row statements ending in `suffix`; returns the rows the server counted.
fn insert_events(tx: &mut mysql::Transaction<'_>, events: &[(&UsageEvent, &Encoded)], suffix: &str) -> Result<u64> {
    let cols = event_cols(plain);
    let mut affected = 0;
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len() * EVENT_COLUMNS.len());
        for (e, x) in chunk {
            push_event(&mut values, e, x);
        }
        let sql = multi_row_insert("usage_events", &cols, EVENT_COLUMNS.len(), chunk.len()) + suffix;
        tx.exec_drop(sql, Params::Positional(values)).map_err(my_err)?;
        affected += tx.affected_rows();
    }
    Ok(affected)
}

/// Adds newly inserted events to both rollup tables.
fn add_rollups(tx: &mut mysql::Transaction<'_>, tz: Tz, fresh: &[(&UsageEvent, &Encoded)]) -> Result<()> {
    let mut rollups = Rollups::default();
    rollups.add_all(fresh.iter().map(|(e, _)| *e), tz);
    for (table, rows) in [("rollup_daily", &rollups.daily), ("rollup_monthly", &rollups.monthly)] {
        let rows = rows.iter().map(|(k, t)| Ok((k, row::rollup_counts(t)?, t.cost_usd))).collect::<Result<Vec<_>>>()?;
        add_to_rollups(tx, table, &rows)?;
    }
    Ok(())
}

/// Adds (signed) counters and costs to rollup rows, creating missing ones; every writer sends keys in
/// the same (sorted) order, so concurrent writers lock rows in the same order.
fn add_to_rollups(tx: &mut impl Queryable, table: &str, rows: &[(&RollupKey, [i64; 11], Decimal)]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len() * ROLLUP_COLUMNS.len());
        for (k, n, cost) in chunk {
            for s in [&k.period, &k.user_id, &k.workspace_id, &k.project, &k.provider, &k.model] {
                values.push(text(s));
            }
            values.extend(n[..9].iter().map(|&v| Value::Int(v)));
            values.push(text(&cost.to_string()));
            values.extend([Value::Int(n[9]), Value::Int(n[10])]);
        }
        tx.exec_drop(upsert_sql(table, chunk.len()), Params::Positional(values)).map_err(my_err)?;
    }
    Ok(())
}

/// A filter's SQL with `?N` placeholders made positional, and its parameters in order of use
/// (a re-price filter uses one parameter twice).
fn positional(f: &Filter) -> (String, Params) {
    let mut sql = String::with_capacity(f.sql.len());
    let mut values = Vec::new();
    let mut chars = f.sql.chars().peekable();
    while let Some(ch) = chars.next() {
        sql.push(ch);
        if ch != '?' {
            continue;
        }
        let mut n = 0usize;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            n = n * 10 + d as usize;
            chars.next();
        }
        values.push(match f.params.get(n.wrapping_sub(1)) {
            Some(Param::Text(s)) => text(s),
            Some(Param::Int(i)) => Value::Int(*i),
            None => Value::NULL,
        });
    }
    let params = if values.is_empty() { Params::Empty } else { Params::Positional(values) };
    (sql, params)
}

fn read_rollups(
    conn: &mut impl Queryable,
    table: &str,
    q: Option<(&UsageQuery, &crate::report::RollupPlan)>,
) -> Result<Vec<(RollupKey, Totals)>> {
    let (filter, params) = positional(&Filter::rollups(q, '?'));
    let sql = format!("SELECT {} FROM {table} WHERE 1=1{filter}", rollup_cols(plain));
    let rows: Vec<Row> = conn.exec(sql, params).map_err(my_err)?;
    rows.iter().map(row::rollup_from_row).collect()
}

fn read_events(conn: &mut impl Queryable, q: Option<&UsageQuery>) -> Result<Vec<UsageEvent>> {
    let (filter, params) = positional(&Filter::events(q, '?')?);
    let sql = format!("SELECT {} FROM usage_events WHERE 1=1{filter}", event_cols(plain));
    let rows: Vec<Row> = conn.exec(sql, params).map_err(my_err)?;
    rows.iter().map(row::event_from_row).collect()
}

/// Re-prices inside one transaction (see [`reprice`]); a named lock keeps two re-prices from applying
/// the same rollup deltas twice.
fn reprice_in(live: &mut Live, prices: &PriceDb, filter: &RepriceFilter) -> Result<RepriceReport> {
    let tz = live.tz;
    let locked: Option<i64> = live.conn.query_first("SELECT GET_LOCK('llmledger_reprice', 60)").map_err(my_err)?;
    if locked != Some(1) {
        return Err(Error::new(ErrorCode::Store, "MySQL: timed out waiting for the re-price lock"));
    }
    let result = (|| -> Result<RepriceReport> {
        let mut tx = live.conn.start_transaction(TxOpts::default()).map_err(my_err)?;
        let now = chrono::Utc::now();
        let mut report = RepriceReport { dry_run: filter.dry_run, ..RepriceReport::default() };
        let mut after: Option<String> = None;
        loop {
            let (f, params) = positional(&Filter::reprice(filter, '?', after.as_deref())?);
            let sql = format!("SELECT {} FROM usage_events WHERE 1=1{f}", event_cols(plain));
            let rows: Vec<Row> = tx.exec(sql, params).map_err(my_err)?;
            let events = rows
                .iter()
                .map(|r| Ok((row::event_from_row(r)?, row::audit_from_row(r)?)))
                .collect::<Result<Vec<_>>>()?;
            let Some(last) = events.last().map(|(e, _)| e.event_id.clone()) else { break };
            let full = events.len() == filter.chunk_size();
            let (part, rewrites) = reprice::plan(prices, events, filter.dry_run, now)?;
            report.absorb(part);
            if !filter.dry_run && !rewrites.is_empty() {
                apply_rewrites(&mut tx, tz, &rewrites)?;
            }
            if !full {
                break;
            }
            after = Some(last);
        }
        if filter.dry_run {
            tx.rollback().map_err(my_err)?;
        } else {
            tx.commit().map_err(my_err)?;
        }
        Ok(report)
    })();
    let released = live.conn.query_drop("DO RELEASE_LOCK('llmledger_reprice')").map_err(my_err);
    let report = result?;
    released?;
    Ok(report)
}

/// Writes one chunk of re-priced events and moves their rollups.
fn apply_rewrites(tx: &mut impl Queryable, tz: Tz, rewrites: &[(UsageEvent, Rewrite)]) -> Result<()> {
    for (_, Rewrite { event: e, audit }) in rewrites {
        let x = Encoded::of(e)?;
        let c = e.cost.as_ref();
        let values = vec![
            opt_text(e.resolved_model.as_deref()),
            opt_text(x.cost_usd.as_deref()),
            opt_text(c.map(|c| c.currency.as_str())),
            opt_text(x.rate.as_deref()),
            opt_text(x.cost_total.as_deref()),
            opt_text(x.price_version.as_deref()),
            opt_text(c.map(|c| c.price_data.as_str())),
            opt_text(e.unpriced_reason.as_deref()),
            text(audit),
            text(&e.event_id),
        ];
        tx.exec_drop(
            "UPDATE usage_events SET resolved_model = ?, cost_usd = ?, currency = ?, rate = ?, cost_total = ?,
             price_version = ?, price_data = ?, unpriced_reason = ?, reprice_audit = ? WHERE event_id = ?",
            Params::Positional(values),
        )
        .map_err(my_err)?;
    }
    let deltas = reprice::rollup_deltas(rewrites, tz)?;
    for (table, rows) in [("rollup_daily", &deltas.daily), ("rollup_monthly", &deltas.monthly)] {
        let list: Vec<_> = rows.iter().map(|(k, (n, c))| (k, *n, *c)).collect();
        add_to_rollups(tx, table, &list)?;
        let delete = format!(
            "DELETE FROM {table} WHERE period = ? AND user_id = ? AND workspace_id = ? AND project = ?
             AND provider = ? AND model = ? AND requests = 0"
        );
        for k in rows.keys() {
            let key = [&k.period, &k.user_id, &k.workspace_id, &k.project, &k.provider, &k.model];
            tx.exec_drop(&delete, Params::Positional(key.iter().map(|s| text(s)).collect())).map_err(my_err)?;
        }
    }
    Ok(())
}

impl Store for MySqlStore {
    fn check(&self) -> Result<()> {
        self.with_conn(|live| live.conn.query_drop("SELECT 1").map_err(my_err))
    }

    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        self.with_conn(|live| write(&mut live.conn, live.tz, events))
    }

    fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        let mut agg = Aggregator::new(query)?;
        self.with_conn(|live| {
            match query.rollup_plan(live.tz) {
                Some(plan) => {
                    let table = match plan.table {
                        RollupTable::Daily => "rollup_daily",
                        RollupTable::Monthly => "rollup_monthly",
                    };
                    for (k, t) in read_rollups(&mut live.conn, table, Some((query, &plan)))? {
                        agg.add_rollup(&k, &t);
                    }
                }
                None => read_events(&mut live.conn, Some(query))?.iter().for_each(|e| agg.add_event(e)),
            }
            Ok(agg.finish())
        })
    }

    fn verify(&self) -> Result<Vec<RollupDiff>> {
        self.with_conn(|live| {
            // One snapshot for the events and both rollup tables.
            let mut tx = live
                .conn
                .start_transaction(
                    TxOpts::default()
                        .set_with_consistent_snapshot(true)
                        .set_access_mode(Some(mysql::AccessMode::ReadOnly)),
                )
                .map_err(my_err)?;
            let mut recomputed = Rollups::default();
            recomputed.add_all(&read_events(&mut tx, None)?, live.tz);
            let stored = Rollups {
                daily: read_rollups(&mut tx, "rollup_daily", None)?.into_iter().collect(),
                monthly: read_rollups(&mut tx, "rollup_monthly", None)?.into_iter().collect(),
            };
            tx.commit().map_err(my_err)?;
            Ok(stored.diff(&recomputed))
        })
    }

    fn reprice(&self, prices: &PriceDb, filter: &RepriceFilter) -> Result<RepriceReport> {
        self.with_conn(|live| reprice_in(live, prices, filter))
    }

    fn event_ids(&self) -> Result<Vec<String>> {
        self.with_conn(|live| live.conn.query("SELECT event_id FROM usage_events").map_err(my_err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_urls_without_showing_the_password() {
        for url in ["mysql://u:secret@h:notaport/db", "mysql://u:secret@h:3306/", "mariadb://u:secret@h:3306"] {
            let err = MySqlStore::connect(url, Tz::UTC).map(|_| ()).map_err(|e| (e.code(), e.to_string()));
            assert!(matches!(&err, Err((ErrorCode::Config, msg)) if !msg.contains("secret")), "{url}: {err:?}");
        }
        assert!(MySqlStore::connect("mariadb://u:secret@127.0.0.1:3306/db", Tz::UTC).is_ok());
    }

    #[test]
    fn placeholders_become_positional_in_order_of_use() {
        let f = Filter {
            sql: " AND a = ?1 AND (model = ?2 OR resolved_model = ?2) AND event_id > ?3".into(),
            params: vec![Param::Int(7), Param::Text("m".into()), Param::Text("e9".into())],
        };
        let (sql, params) = positional(&f);
        assert_eq!(sql, " AND a = ? AND (model = ? OR resolved_model = ?) AND event_id > ?");
        let want = [Value::Int(7), text("m"), text("m"), text("e9")];
        assert!(matches!(params, Params::Positional(v) if v == want));
    }

    #[test]
    fn money_columns_hold_any_decimal_exactly() {
        assert_eq!(sql_type("cost_usd", Kind::Dec), "DECIMAL(65,28)");
        // 29 integral digits (the largest Decimal) + 28 fractional digits fit in 65.
        assert!(Decimal::MAX.to_string().len() + 28 <= 65);
    }
}
