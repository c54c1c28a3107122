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
//!
//! The rollup time zone is fixed when the database is created (kept in `llmledger_meta`); queries in
//! another zone are answered from raw events.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;

use super::{Attribution, Status, Store, UsageEvent};
use crate::error::{Error, ErrorCode, Result};
use crate::pricing::{Breakdown, Cost};
use crate::report::{parse_tz, Aggregator, ReportRow, RollupDiff, RollupKey, RollupTable, Rollups, Totals, UsageQuery};
use crate::usage::{Api, Provider, Usage, UsageSource};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS llmledger_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS llmledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage_events (
    event_id TEXT PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    provider TEXT NOT NULL,
    api TEXT NOT NULL,
    model TEXT NOT NULL,
    resolved_model TEXT,
    user_id TEXT,
    workspace_id TEXT,
    project TEXT,
    session_id TEXT,
    conversation_id TEXT,
    tags TEXT,
    status TEXT NOT NULL,
    error_class TEXT,
    latency_ms INTEGER,
    input_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_write_1h_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    audio_input_tokens INTEGER NOT NULL,
    audio_cache_read_tokens INTEGER NOT NULL,
    audio_output_tokens INTEGER NOT NULL,
    image_input_tokens INTEGER NOT NULL,
    image_output_tokens INTEGER NOT NULL,
    usage_source TEXT NOT NULL,
    flags TEXT,
    cost_usd TEXT,
    currency TEXT,
    rate TEXT,
    cost_total TEXT,
    price_version TEXT,
    unpriced_reason TEXT
);
CREATE INDEX IF NOT EXISTS usage_events_ts ON usage_events (ts_ns);
";

fn rollup_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            period TEXT NOT NULL, user_id TEXT NOT NULL, workspace_id TEXT NOT NULL, project TEXT NOT NULL,
            provider TEXT NOT NULL, model TEXT NOT NULL,
            requests INTEGER NOT NULL, successful INTEGER NOT NULL, failed INTEGER NOT NULL, unpriced INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost_usd TEXT NOT NULL,
            latency_sum_ms INTEGER NOT NULL, latency_count INTEGER NOT NULL,
            PRIMARY KEY (period, user_id, workspace_id, project, provider, model)
        ) WITHOUT ROWID;"
    )
}

const INSERT: &str = "INSERT INTO usage_events (event_id, ts_ns, provider, api, model, resolved_model, user_id,
    workspace_id, project, session_id, conversation_id, tags, status, error_class, latency_ms, input_tokens,
    cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
    audio_input_tokens, audio_cache_read_tokens, audio_output_tokens, image_input_tokens, image_output_tokens,
    usage_source, flags, cost_usd, currency, rate, cost_total, price_version, unpriced_reason)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
    ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)
    ON CONFLICT(event_id) DO NOTHING";

/// The raw columns read back into an event (everything but the per-component breakdown).
const RAW_COLS: &str = "event_id, ts_ns, provider, api, model, resolved_model, user_id, workspace_id, project,
    session_id, conversation_id, tags, status, error_class, latency_ms, input_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, audio_input_tokens,
    audio_cache_read_tokens, audio_output_tokens, image_input_tokens, image_output_tokens, usage_source, flags,
    cost_usd, currency, rate, cost_total, price_version, unpriced_reason";

const ROLLUP_COLS: &str = "period, user_id, workspace_id, project, provider, model, requests, successful, failed,
    unpriced, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_usd,
    latency_sum_ms, latency_count";

fn db_err(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Store, format!("SQLite: {e}"))
}

fn i64_of(field: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid_value(field, v, "too large for the ledger (max 2^63-1)"))
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn dec_of(field: &str, s: &str) -> Result<Decimal> {
    Decimal::from_str(s).map_err(|_| Error::new(ErrorCode::Store, format!("stored {field} `{s}` is not a decimal")))
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
            let a: String = ctx.get(0)?;
            let b: String = ctx.get(1)?;
            let a = Decimal::from_str(&a).map_err(|_| user_err(format!("`{a}` is not a decimal")))?;
            let b = Decimal::from_str(&b).map_err(|_| user_err(format!("`{b}` is not a decimal")))?;
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
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA cache_size=-65536;",
        )
        .map_err(|e| cfg(format!("cannot set up the database: {e}")))?;
        register_dec_add(&conn).map_err(|e| cfg(format!("cannot register functions: {e}")))?;
        let ddl = format!("BEGIN; {SCHEMA} {} {} COMMIT;", rollup_ddl("rollup_daily"), rollup_ddl("rollup_monthly"));
        conn.execute_batch(&ddl).map_err(|e| cfg(format!("cannot create the schema (is it writable?): {e}")))?;
        let version: Option<i64> =
            conn.query_row("SELECT max(version) FROM llmledger_schema_version", [], |r| r.get(0)).map_err(db_err)?;
        match version {
            None => {
                conn.execute("INSERT INTO llmledger_schema_version (version) VALUES (?1)", [SCHEMA_VERSION])
                    .map_err(db_err)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(cfg(format!("schema version {v} is newer than this llmledger ({SCHEMA_VERSION})")))
            }
            Some(_) => {}
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

    /// The time zone the rollups are keyed in.
    pub fn rollup_timezone(&self) -> Tz {
        self.tz
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(stmt: &mut rusqlite::CachedStatement<'_>, e: &UsageEvent) -> Result<usize> {
        let a = &e.attribution;
        let u = &e.usage;
        let ts = e
            .timestamp
            .timestamp_nanos_opt()
            .ok_or_else(|| Error::invalid_value("event.timestamp", e.timestamp, "outside 1677..2262"))?;
        let tags = if a.tags.is_empty() { None } else { Some(serde_json::to_string(&a.tags)?) };
        let flags = if u.flags.is_empty() { None } else { Some(serde_json::to_string(&u.flags)?) };
        let c = e.cost.as_ref();
        let n = stmt
            .execute(params![
                e.event_id,
                ts,
                e.provider.as_str(),
                e.api.as_str(),
                e.model,
                e.resolved_model,
                a.user_id,
                a.workspace_id,
                a.project,
                a.session_id,
                a.conversation_id,
                tags,
                e.status.as_str(),
                e.error_class,
                e.latency_ms.map(|l| i64_of("event.latency_ms", l)).transpose()?,
                i64_of("usage.input_tokens", u.input_tokens)?,
                i64_of("usage.cache_read_tokens", u.cache_read_tokens)?,
                i64_of("usage.cache_write_tokens", u.cache_write_tokens)?,
                i64_of("usage.cache_write_1h_tokens", u.cache_write_1h_tokens)?,
                i64_of("usage.output_tokens", u.output_tokens)?,
                i64_of("usage.reasoning_tokens", u.reasoning_tokens)?,
                i64_of("usage.audio_input_tokens", u.audio_input_tokens)?,
                i64_of("usage.audio_cache_read_tokens", u.audio_cache_read_tokens)?,
                i64_of("usage.audio_output_tokens", u.audio_output_tokens)?,
                i64_of("usage.image_input_tokens", u.image_input_tokens)?,
                i64_of("usage.image_output_tokens", u.image_output_tokens)?,
                u.usage_source.as_str(),
                flags,
                c.map(|c| c.total_usd.to_string()),
                c.map(|c| c.currency.clone()),
                c.map(|c| c.rate.to_string()),
                c.map(|c| c.total.to_string()),
                c.map(|c| c.price_version.to_string()),
                e.unpriced_reason,
            ])
            .map_err(db_err)?;
        Ok(n)
    }

    fn upsert_rollups(
        tx: &rusqlite::Transaction<'_>,
        table: &str,
        rows: &std::collections::BTreeMap<RollupKey, Totals>,
    ) -> Result<()> {
        let mut write = tx
            .prepare_cached(&format!(
                "INSERT INTO {table} ({ROLLUP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                 ?15, ?16, ?17, ?18)
                 ON CONFLICT (period, user_id, workspace_id, project, provider, model) DO UPDATE SET
                 requests = requests + excluded.requests, successful = successful + excluded.successful,
                 failed = failed + excluded.failed, unpriced = unpriced + excluded.unpriced,
                 input_tokens = input_tokens + excluded.input_tokens,
                 cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
                 cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
                 output_tokens = output_tokens + excluded.output_tokens,
                 reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
                 cost_usd = llmledger_dec_add(cost_usd, excluded.cost_usd),
                 latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms,
                 latency_count = latency_count + excluded.latency_count"
            ))
            .map_err(db_err)?;
        for (k, t) in rows {
            let cost = t.cost_usd;
            write
                .execute(params![
                    k.period,
                    k.user_id,
                    k.workspace_id,
                    k.project,
                    k.provider,
                    k.model,
                    i64_of("requests", t.requests)?,
                    i64_of("successful", t.successful)?,
                    i64_of("failed", t.failed)?,
                    i64_of("unpriced", t.unpriced)?,
                    i64_of("input_tokens", t.input_tokens)?,
                    i64_of("cache_read_tokens", t.cache_read_tokens)?,
                    i64_of("cache_write_tokens", t.cache_write_tokens)?,
                    i64_of("output_tokens", t.output_tokens)?,
                    i64_of("reasoning_tokens", t.reasoning_tokens)?,
                    cost.to_string(),
                    i64_of("latency_sum_ms", t.latency_sum_ms)?,
                    i64_of("latency_count", t.latency_count)?,
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
        let mut sql = format!("SELECT {ROLLUP_COLS} FROM {table} WHERE 1=1");
        let mut args: Vec<String> = Vec::new();
        if let Some((q, plan)) = plan_filter {
            let fl = &q.filter;
            for (col, v) in [
                ("user_id", &fl.user_id),
                ("workspace_id", &fl.workspace_id),
                ("project", &fl.project),
                ("provider", &fl.provider),
                ("model", &fl.model),
            ] {
                if let Some(v) = v {
                    args.push(v.clone());
                    sql.push_str(&format!(" AND {col} = ?{}", args.len()));
                }
            }
            if let Some(from) = &plan.from {
                args.push(from.clone());
                sql.push_str(&format!(" AND period >= ?{}", args.len()));
            }
            if let Some(to) = &plan.to {
                args.push(to.clone());
                sql.push_str(&format!(" AND period < ?{}", args.len()));
            }
        }
        let mut stmt = conn.prepare(&sql).map_err(db_err)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter())).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            let g = |i: usize| -> Result<i64> { r.get::<_, i64>(i).map_err(db_err) };
            let key = RollupKey {
                period: r.get(0).map_err(db_err)?,
                user_id: r.get(1).map_err(db_err)?,
                workspace_id: r.get(2).map_err(db_err)?,
                project: r.get(3).map_err(db_err)?,
                provider: r.get(4).map_err(db_err)?,
                model: r.get(5).map_err(db_err)?,
            };
            let cost: String = r.get(15).map_err(db_err)?;
            let t = Totals {
                requests: u64_of(g(6)?),
                successful: u64_of(g(7)?),
                failed: u64_of(g(8)?),
                unpriced: u64_of(g(9)?),
                input_tokens: u64_of(g(10)?),
                cache_read_tokens: u64_of(g(11)?),
                cache_write_tokens: u64_of(g(12)?),
                output_tokens: u64_of(g(13)?),
                reasoning_tokens: u64_of(g(14)?),
                cost_usd: dec_of("cost_usd", &cost)?,
                latency_sum_ms: u64_of(g(16)?),
                latency_count: u64_of(g(17)?),
            };
            f(key, t);
        }
        Ok(())
    }

    fn read_events(conn: &Connection, q: Option<&UsageQuery>, mut f: impl FnMut(UsageEvent)) -> Result<()> {
        let mut sql = format!("SELECT {RAW_COLS} FROM usage_events WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(q) = q {
            let fl = &q.filter;
            for (col, v) in [
                ("COALESCE(user_id, '')", &fl.user_id),
                ("COALESCE(workspace_id, '')", &fl.workspace_id),
                ("COALESCE(project, '')", &fl.project),
                ("provider", &fl.provider),
                ("COALESCE(resolved_model, model)", &fl.model),
                ("COALESCE(session_id, '')", &fl.session_id),
            ] {
                if let Some(v) = v {
                    args.push(v.clone().into());
                    sql.push_str(&format!(" AND {col} = ?{}", args.len()));
                }
            }
            for (op, t) in [(">=", fl.since), ("<", fl.until)] {
                if let Some(t) = t {
                    let ns = t
                        .timestamp_nanos_opt()
                        .ok_or_else(|| Error::invalid_value("filter.since/until", t, "out of range"))?;
                    args.push(ns.into());
                    sql.push_str(&format!(" AND ts_ns {op} ?{}", args.len()));
                }
            }
        }
        let mut stmt = conn.prepare(&sql).map_err(db_err)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter())).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            f(row_event(r)?);
        }
        Ok(())
    }
}

fn row_event(r: &Row<'_>) -> Result<UsageEvent> {
    let s = |i: usize| -> Result<String> { r.get::<_, String>(i).map_err(db_err) };
    let os = |i: usize| -> Result<Option<String>> { r.get::<_, Option<String>>(i).map_err(db_err) };
    let n = |i: usize| -> Result<u64> { r.get::<_, i64>(i).map(u64_of).map_err(db_err) };
    let provider = Provider::from_str(&s(2)?)?;
    let tags = match os(11)? {
        Some(t) => serde_json::from_str(&t)?,
        None => Default::default(),
    };
    let flags = match os(27)? {
        Some(t) => serde_json::from_str(&t)?,
        None => Vec::new(),
    };
    let usage = Usage {
        input_tokens: n(15)?,
        cache_read_tokens: n(16)?,
        cache_write_tokens: n(17)?,
        cache_write_1h_tokens: n(18)?,
        output_tokens: n(19)?,
        reasoning_tokens: n(20)?,
        audio_input_tokens: n(21)?,
        audio_cache_read_tokens: n(22)?,
        audio_output_tokens: n(23)?,
        image_input_tokens: n(24)?,
        image_output_tokens: n(25)?,
        usage_source: match s(26)?.as_str() {
            "reported" => UsageSource::Reported,
            "partial" => UsageSource::Partial,
            "estimated" => UsageSource::Estimated,
            _ => UsageSource::None,
        },
        flags,
        ..Usage::default()
    };
    let resolved_model = os(5)?;
    let cost = match os(28)? {
        Some(total_usd) => {
            let total_usd = dec_of("cost_usd", &total_usd)?;
            Some(Cost {
                provider,
                model: resolved_model.clone().unwrap_or_default(),
                price_version: os(32)?.and_then(|d| NaiveDate::from_str(&d).ok()).unwrap_or_default(),
                breakdown: Breakdown::default(),
                total_usd,
                currency: os(29)?.unwrap_or_else(|| "USD".into()),
                rate: os(30)?.map(|r| dec_of("rate", &r)).transpose()?.unwrap_or(Decimal::ONE),
                total: os(31)?.map(|t| dec_of("cost_total", &t)).transpose()?.unwrap_or(total_usd),
                tier_above: None,
                uncertain: false,
            })
        }
        None => None,
    };
    Ok(UsageEvent {
        event_id: s(0)?,
        timestamp: DateTime::<Utc>::from_timestamp_nanos(r.get::<_, i64>(1).map_err(db_err)?),
        provider,
        api: Api::from_str(&s(3)?)?,
        model: s(4)?,
        resolved_model,
        usage,
        cost,
        unpriced_reason: os(33)?,
        attribution: Attribution {
            user_id: os(6)?,
            workspace_id: os(7)?,
            project: os(8)?,
            session_id: os(9)?,
            conversation_id: os(10)?,
            tags,
        },
        latency_ms: r.get::<_, Option<i64>>(14).map_err(db_err)?.map(u64_of),
        status: Status::parse(&s(12)?)?,
        error_class: os(13)?,
    })
}

impl Store for SqliteStore {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err)?;
        let mut fresh = Rollups::default();
        let mut new_events = Vec::with_capacity(events.len());
        {
            let mut stmt = tx.prepare_cached(INSERT).map_err(db_err)?;
            for e in events {
                if Self::insert(&mut stmt, e)? == 1 {
                    new_events.push(e);
                }
            }
        }
        let inserted = new_events.len();
        fresh.add_all(new_events, self.tz);
        Self::upsert_rollups(&tx, "rollup_daily", &fresh.daily)?;
        Self::upsert_rollups(&tx, "rollup_monthly", &fresh.monthly)?;
        tx.commit().map_err(db_err)?;
        Ok(inserted)
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

    fn event_ids(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT event_id FROM usage_events").map_err(db_err)?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?;
        ids.collect::<std::result::Result<Vec<_>, _>>().map_err(db_err)
    }
}
