//! `sqlite:` — the embedded default store (rusqlite, bundled SQLite, WAL mode).
//!
//! One transaction per batch: `INSERT … ON CONFLICT(event_id) DO NOTHING` through a cached prepared
//! statement, then the daily and monthly rollups of the events that were *newly* inserted, in the same
//! transaction. Costs are exact decimals stored as TEXT: an i64 of 10^-12 USD would overflow at ~9.2M
//! USD of rollup total and some rates need more than 12 decimals, so rollup costs are summed in Rust
//! (`Decimal`), inside SQLite through the `llmledger_dec_add` function this store registers — one
//! upsert per touched rollup row per batch. Timestamps are INTEGER
//! nanoseconds since the epoch (exact, ordered). `synchronous=NORMAL`: a committed batch survives a
//! process crash; a power loss may lose the last commits (the spill/`sync` journal is fsynced).
//! A new database gets 16 KiB pages (an existing one keeps its own): with ~40 columns a row is ~0.5 KiB,
//! and larger pages mean fewer b-tree splits and page writes per batch (measured: ~20 % more events per
//! CPU second than 4 KiB pages, `cargo bench -p llmledger-core --bench ledger -- sustained`).
//!
//! The rollup time zone is fixed when the database is created (kept in `llmledger_meta`); queries in
//! another zone are answered from raw events.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use chrono_tz::Tz;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};
use rust_decimal::Decimal;

use super::reprice::{self, RepriceFilter, RepriceReport, Rewrite};
use super::row::{
    self, event_cols, plain, rollup_cols, ColumnReader, Encoded, Filter, Kind, Param, ROLLUP_KEY, SCHEMA_VERSION,
};
use super::Store;
use crate::error::{Error, ErrorCode, Result};
use crate::event::UsageEvent;
use crate::pricing::PriceDb;
use crate::report::{parse_tz, Aggregator, ReportRow, UsageQuery};
use crate::rollup::{RollupDiff, RollupKey, RollupTable, Rollups, Totals};

fn sql_type(k: Kind) -> &'static str {
    match k {
        Kind::Int => "INTEGER",
        Kind::Text | Kind::Dec => "TEXT",
    }
}

/// The event insert, one row per execution: SQLite's per-statement cost is small next to a row's, and
/// multi-row `VALUES` measured no faster. The change count (1 or 0) tells whether the event was new.
fn insert_sql() -> String {
    format!(
        "INSERT INTO usage_events ({}) VALUES ({}) ON CONFLICT(event_id) DO NOTHING",
        event_cols(plain),
        vec!["?"; row::EVENT_COLUMNS.len()].join(", ")
    )
}

impl ColumnReader for Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        self.get(i).map_err(db_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.get(i).map_err(db_err)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.get(i).map_err(db_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.get(i).map_err(db_err)
    }
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Param::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
        })
    }
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Store, format!("SQLite: {e}"))
}

/// `llmledger_dec_add(a, b)`: exact decimal sum of two TEXT decimals, so rollup upserts can add costs
/// in SQL (`cost_usd = llmledger_dec_add(cost_usd, excluded.cost_usd)`) without a read per row.
fn register_dec_add(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    let user_err = |msg: String| rusqlite::Error::UserFunctionError(msg.into());
    conn.create_scalar_function(
        "llmledger_dec_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            // Borrowed text: no String per argument on the rollup hot path.
            let arg = |i: usize| -> rusqlite::Result<Decimal> {
                let s =
                    ctx.get_raw(i).as_str().map_err(|e| user_err(format!("argument {} is not text: {e}", i + 1)))?;
                Decimal::from_str(s).map_err(|_| user_err(format!("`{s}` is not a decimal")))
            };
            let (a, b) = (arg(0)?, arg(1)?);
            a.checked_add(b).map(|s| s.to_string()).ok_or_else(|| user_err("decimal overflow".into()))
        },
    )
}

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    tz: Tz,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`; an unopenable path is an [`ErrorCode::Config`] error.
    /// `tz` is the rollup time zone of a new database; an existing one keeps its own.
    pub fn open(path: &Path, tz: Tz) -> Result<Self> {
        let cfg = |reason: String| Error::config("store", path.display(), &reason);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| cfg(format!("cannot create the directory: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| cfg(format!("cannot open the database: {e}")))?;
        conn.execute_batch(
            "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA cache_size=-65536;",
        )
        .map_err(|e| cfg(format!("cannot set up the database: {e}")))?;
        register_dec_add(&conn).map_err(|e| cfg(format!("cannot register functions: {e}")))?;
        let ddl = format!(
            "BEGIN; {} {} {} {} COMMIT;",
            row::META_DDL,
            row::events_ddl(sql_type),
            row::rollup_ddl("rollup_daily", sql_type, " WITHOUT ROWID"),
            row::rollup_ddl("rollup_monthly", sql_type, " WITHOUT ROWID")
        );
        conn.execute_batch(&ddl).map_err(|e| cfg(format!("cannot create the schema (is it writable?): {e}")))?;
        let version: Option<i32> =
            conn.query_row("SELECT max(version) FROM llmledger_schema_version", [], |r| r.get(0)).map_err(db_err)?;
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(cfg(format!("schema version {v} is newer than this llmledger ({SCHEMA_VERSION})")))
            }
            Some(v) if v == SCHEMA_VERSION => {}
            _ => Self::migrate(&conn).map_err(|e| cfg(format!("cannot migrate the schema: {e}")))?,
        }
        let stored: Option<String> = conn
            .query_row("SELECT value FROM llmledger_meta WHERE key = 'rollup_timezone'", [], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        let tz = match stored {
            Some(name) => parse_tz("rollup_timezone", &name)?,
            None => {
                conn.execute("INSERT INTO llmledger_meta (key, value) VALUES ('rollup_timezone', ?1)", [tz.name()])
                    .map_err(db_err)?;
                tz
            }
        };
        Ok(Self { conn: Mutex::new(conn), tz })
    }

    /// Brings a database of an older schema version (or a new one) to [`SCHEMA_VERSION`]: adds the
    /// missing columns and records the version, in one transaction.
    fn migrate(conn: &Connection) -> Result<()> {
        let mut have = std::collections::HashSet::new();
        {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('usage_events')").map_err(db_err)?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?;
            for name in names {
                have.insert(name.map_err(db_err)?);
            }
        }
        let mut sql = String::from("BEGIN;");
        for column in row::MIGRATIONS.iter().filter(|c| !have.contains(**c)) {
            sql.push_str(&format!(
                " ALTER TABLE usage_events ADD COLUMN {column} {};",
                sql_type(row::column_kind(column))
            ));
        }
        sql.push_str(&format!(" INSERT INTO llmledger_schema_version (version) VALUES ({SCHEMA_VERSION}); COMMIT;"));
        conn.execute_batch(&sql).map_err(db_err)
    }

    /// The time zone the rollups are keyed in.
    pub fn rollup_timezone(&self) -> Tz {
        self.tz
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts `e`; returns 1 when it was new, 0 when its id was already stored.
    fn insert(stmt: &mut rusqlite::CachedStatement<'_>, e: &UsageEvent) -> Result<usize> {
        let mut i = 0;
        let mut bind = |v: &dyn ToSql| -> Result<()> {
            i += 1;
            stmt.raw_bind_parameter(i, v).map_err(db_err)
        };
        let x = Encoded::of(e)?;
        let a = &e.attribution;
        bind(&e.event_id)?;
        bind(&x.ts_ns)?;
        bind(&e.provider.as_str())?;
        bind(&e.api.as_str())?;
        bind(&e.model)?;
        bind(&e.resolved_model)?;
        bind(&a.user_id)?;
        bind(&a.workspace_id)?;
        bind(&a.project)?;
        bind(&a.session_id)?;
        bind(&a.conversation_id)?;
        bind(&x.tags)?;
        bind(&e.status.as_str())?;
        bind(&e.error_class)?;
        bind(&x.latency_ms)?;
        for t in &x.tokens {
            bind(t)?;
        }
        bind(&e.usage.usage_source.as_str())?;
        bind(&x.flags)?;
        bind(&x.cost_usd)?;
        bind(&e.cost.as_ref().map(|c| c.currency.as_str()))?;
        bind(&x.rate)?;
        bind(&x.cost_total)?;
        bind(&x.price_version)?;
        bind(&e.unpriced_reason)?;
        bind(&x.usage_extra)?;
        bind(&x.price_options)?;
        bind(&e.cost.as_ref().map(|c| c.price_data.as_str()).filter(|d| !d.is_empty()))?;
        bind(&None::<String>)?;
        stmt.raw_execute().map_err(db_err)
    }

    /// Rewrites the cost columns of re-priced events (the usage and attribution do not change).
    fn rewrite(tx: &rusqlite::Transaction<'_>, rewrites: &[(UsageEvent, Rewrite)]) -> Result<()> {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE usage_events SET resolved_model = ?1, cost_usd = ?2, currency = ?3, rate = ?4, cost_total = ?5,
                 price_version = ?6, price_data = ?7, unpriced_reason = ?8, reprice_audit = ?9 WHERE event_id = ?10",
            )
            .map_err(db_err)?;
        for (_, Rewrite { event: e, audit }) in rewrites {
            let x = Encoded::of(e)?;
            let c = e.cost.as_ref();
            stmt.execute(params![
                e.resolved_model,
                x.cost_usd,
                c.map(|c| c.currency.as_str()),
                x.rate,
                x.cost_total,
                x.price_version,
                c.map(|c| c.price_data.as_str()),
                e.unpriced_reason,
                audit,
                e.event_id
            ])
            .map_err(db_err)?;
        }
        Ok(())
    }

    fn upsert_rollups(
        tx: &rusqlite::Transaction<'_>,
        table: &str,
        rows: &std::collections::BTreeMap<RollupKey, Totals>,
    ) -> Result<()> {
        let rows = rows.iter().map(|(k, t)| Ok((k, row::rollup_counts(t)?, t.cost_usd))).collect::<Result<Vec<_>>>()?;
        Self::add_to_rollups(tx, table, rows)
    }

    /// Adds (signed) counters and costs to rollup rows, creating missing ones.
    fn add_to_rollups<'k>(
        tx: &rusqlite::Transaction<'_>,
        table: &str,
        rows: impl IntoIterator<Item = (&'k RollupKey, [i64; 11], Decimal)>,
    ) -> Result<()> {
        let mut write = tx
            .prepare_cached(&format!(
                "INSERT INTO {table} ({}) VALUES ({})
                 ON CONFLICT ({ROLLUP_KEY}) DO UPDATE SET {}",
                rollup_cols(plain),
                vec!["?"; row::ROLLUP_COLUMNS.len()].join(", "),
                row::rollup_sets(|c, k| match k {
                    Kind::Dec => format!("{c} = llmledger_dec_add({c}, excluded.{c})"),
                    Kind::Int | Kind::Text => format!("{c} = {c} + excluded.{c}"),
                })
            ))
            .map_err(db_err)?;
        for (k, n, cost) in rows {
            write
                .execute(params![
                    k.period,
                    k.user_id,
                    k.workspace_id,
                    k.project,
                    k.provider,
                    k.model,
                    n[0],
                    n[1],
                    n[2],
                    n[3],
                    n[4],
                    n[5],
                    n[6],
                    n[7],
                    n[8],
                    cost.to_string(),
                    n[9],
                    n[10],
                ])
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn read_rollups(
        conn: &Connection,
        table: &str,
        plan_filter: Option<(&UsageQuery, &crate::report::RollupPlan)>,
        mut f: impl FnMut(RollupKey, Totals),
    ) -> Result<()> {
        let filter = Filter::rollups(plan_filter, '?');
        let sql = format!("SELECT {} FROM {table} WHERE 1=1{}", rollup_cols(plain), filter.sql);
        let mut stmt = conn.prepare(&sql).map_err(db_err)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(filter.params.iter())).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            let (k, t) = row::rollup_from_row(r)?;
            f(k, t);
        }
        Ok(())
    }

    /// Applies re-price deltas to a rollup table; a row a re-price emptied (its events moved to the
    /// resolved model's row) is deleted.
    fn apply_deltas(
        tx: &rusqlite::Transaction<'_>,
        table: &str,
        deltas: &std::collections::BTreeMap<RollupKey, ([i64; 11], Decimal)>,
    ) -> Result<()> {
        Self::add_to_rollups(tx, table, deltas.iter().map(|(k, (n, c))| (k, *n, *c)))?;
        let mut delete = tx
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE period = ?1 AND user_id = ?2 AND workspace_id = ?3 AND project = ?4
                 AND provider = ?5 AND model = ?6 AND requests = 0"
            ))
            .map_err(db_err)?;
        for k in deltas.keys() {
            delete
                .execute(params![k.period, k.user_id, k.workspace_id, k.project, k.provider, k.model])
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn read_events(conn: &Connection, q: Option<&UsageQuery>, mut f: impl FnMut(UsageEvent)) -> Result<()> {
        let filter = Filter::events(q, '?')?;
        let sql = format!("SELECT {} FROM usage_events WHERE 1=1{}", event_cols(plain), filter.sql);
        let mut stmt = conn.prepare(&sql).map_err(db_err)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(filter.params.iter())).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            f(row::event_from_row(r)?);
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err)?;
        let mut fresh_events = Vec::with_capacity(events.len());
        {
            let mut stmt = tx.prepare_cached(&insert_sql()).map_err(db_err)?;
            for e in events {
                if Self::insert(&mut stmt, e)? == 1 {
                    fresh_events.push(e);
                }
            }
        }
        let n = fresh_events.len();
        let mut fresh = Rollups::default();
        fresh.add_all(fresh_events, self.tz);
        Self::upsert_rollups(&tx, "rollup_daily", &fresh.daily)?;
        Self::upsert_rollups(&tx, "rollup_monthly", &fresh.monthly)?;
        tx.commit().map_err(db_err)?;
        Ok(n)
    }

    fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        let mut agg = Aggregator::new(query)?;
        let conn = self.lock();
        match query.rollup_plan(self.tz) {
            Some(plan) => {
                let table = match plan.table {
                    RollupTable::Daily => "rollup_daily",
                    RollupTable::Monthly => "rollup_monthly",
                };
                Self::read_rollups(&conn, table, Some((query, &plan)), |k, t| agg.add_rollup(&k, &t))?;
            }
            None => Self::read_events(&conn, Some(query), |e| agg.add_event(&e))?,
        }
        Ok(agg.finish())
    }

    fn verify(&self) -> Result<Vec<RollupDiff>> {
        let conn = self.lock();
        let mut recomputed = Rollups::default();
        let mut all = Vec::new();
        Self::read_events(&conn, None, |e| all.push(e))?;
        recomputed.add_all(&all, self.tz);
        let mut stored = Rollups::default();
        Self::read_rollups(&conn, "rollup_daily", None, |k, t| {
            stored.daily.insert(k, t);
        })?;
        Self::read_rollups(&conn, "rollup_monthly", None, |k, t| {
            stored.monthly.insert(k, t);
        })?;
        Ok(stored.diff(&recomputed))
    }

    fn reprice(&self, prices: &PriceDb, filter: &RepriceFilter) -> Result<RepriceReport> {
        let mut conn = self.lock();
        // IMMEDIATE: take the write lock before reading, so no other process changes the events read.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
        let now = chrono::Utc::now();
        let mut report = RepriceReport { dry_run: filter.dry_run, ..RepriceReport::default() };
        let mut after: Option<String> = None;
        loop {
            let mut events = Vec::new();
            {
                let f = Filter::reprice(filter, '?', after.as_deref())?;
                let sql = format!("SELECT {} FROM usage_events WHERE 1=1{}", event_cols(plain), f.sql);
                let mut stmt = tx.prepare_cached(&sql).map_err(db_err)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(f.params.iter())).map_err(db_err)?;
                while let Some(r) = rows.next().map_err(db_err)? {
                    events.push((row::event_from_row(r)?, row::audit_from_row(r)?));
                }
            }
            let Some(last) = events.last().map(|(e, _)| e.event_id.clone()) else { break };
            let full = events.len() == filter.chunk_size();
            let (part, rewrites) = reprice::plan(prices, events, filter.dry_run, now)?;
            report.absorb(part);
            if !filter.dry_run && !rewrites.is_empty() {
                Self::rewrite(&tx, &rewrites)?;
                let deltas = reprice::rollup_deltas(&rewrites, self.tz)?;
                Self::apply_deltas(&tx, "rollup_daily", &deltas.daily)?;
                Self::apply_deltas(&tx, "rollup_monthly", &deltas.monthly)?;
            }
            if !full {
                break;
            }
            after = Some(last);
        }
        if !filter.dry_run {
            tx.commit().map_err(db_err)?;
        }
        Ok(report)
    }

    fn event_ids(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT event_id FROM usage_events").map_err(db_err)?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?;
        ids.collect::<std::result::Result<Vec<_>, _>>().map_err(db_err)
    }
}
