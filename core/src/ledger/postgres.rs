//! `postgres://` — PostgreSQL store (feature `postgres`, tokio-postgres), for many app instances
//! writing one ledger.
//!
//! The schema is created and migrated on first connection under an advisory lock, with a schema
//! version table. A batch is one transaction: a single `INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT
//! (event_id) DO NOTHING RETURNING event_id`, then one multi-row upsert per rollup table for the events
//! actually inserted (`cost_usd = cost_usd + EXCLUDED.cost_usd` on NUMERIC, exact). Rollup keys are
//! upserted in sorted order so concurrent instances lock rows in the same order (no deadlocks).
//!
//! The store owns a small tokio runtime; its methods block, so call them from a blocking context (the
//! ledger's writer does). When the connection drops it reconnects on the next call; a server that is
//! down at open is not an error (events spill and are replayed once it is up).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{Attribution, Status, Store, UsageEvent};
use crate::error::{Error, ErrorCode, Result};
use crate::pricing::{Breakdown, Cost};
use crate::report::{parse_tz, Aggregator, ReportRow, RollupDiff, RollupKey, RollupTable, Rollups, Totals, UsageQuery};
use crate::usage::{Api, Provider, Usage, UsageSource};

const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS llmledger_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS llmledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage_events (
    event_id TEXT PRIMARY KEY, ts_ns BIGINT NOT NULL, provider TEXT NOT NULL, api TEXT NOT NULL, model TEXT NOT NULL,
    resolved_model TEXT, user_id TEXT, workspace_id TEXT, project TEXT, session_id TEXT, conversation_id TEXT,
    tags TEXT, status TEXT NOT NULL, error_class TEXT, latency_ms BIGINT,
    input_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL,
    cache_write_1h_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,
    audio_input_tokens BIGINT NOT NULL, audio_cache_read_tokens BIGINT NOT NULL, audio_output_tokens BIGINT NOT NULL,
    image_input_tokens BIGINT NOT NULL, image_output_tokens BIGINT NOT NULL, usage_source TEXT NOT NULL, flags TEXT,
    cost_usd NUMERIC, currency TEXT, rate NUMERIC, cost_total NUMERIC, price_version TEXT, unpriced_reason TEXT
);
CREATE INDEX IF NOT EXISTS usage_events_ts ON usage_events (ts_ns);
";

fn rollup_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            period TEXT NOT NULL, user_id TEXT NOT NULL, workspace_id TEXT NOT NULL, project TEXT NOT NULL,
            provider TEXT NOT NULL, model TEXT NOT NULL,
            requests BIGINT NOT NULL, successful BIGINT NOT NULL, failed BIGINT NOT NULL, unpriced BIGINT NOT NULL,
            input_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, cost_usd NUMERIC NOT NULL,
            latency_sum_ms BIGINT NOT NULL, latency_count BIGINT NOT NULL,
            PRIMARY KEY (period, user_id, workspace_id, project, provider, model)
        );"
    )
}

const RAW_SELECT: &str = "event_id, ts_ns, provider, api, model, resolved_model, user_id, workspace_id, project,
    session_id, conversation_id, tags, status, error_class, latency_ms, input_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, audio_input_tokens,
    audio_cache_read_tokens, audio_output_tokens, image_input_tokens, image_output_tokens, usage_source, flags,
    cost_usd::text, currency, rate::text, cost_total::text, price_version, unpriced_reason";

const INSERT: &str = "INSERT INTO usage_events (event_id, ts_ns, provider, api, model, resolved_model, user_id,
    workspace_id, project, session_id, conversation_id, tags, status, error_class, latency_ms, input_tokens,
    cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
    audio_input_tokens, audio_cache_read_tokens, audio_output_tokens, image_input_tokens, image_output_tokens,
    usage_source, flags, cost_usd, currency, rate, cost_total, price_version, unpriced_reason)
    SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23,
        c24, c25, c26, c27, c28, c29::numeric, c30, c31::numeric, c32::numeric, c33, c34
    FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
        $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int8[], $16::int8[],
        $17::int8[], $18::int8[], $19::int8[], $20::int8[], $21::int8[], $22::int8[], $23::int8[], $24::int8[],
        $25::int8[], $26::int8[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[], $32::text[],
        $33::text[], $34::text[])
        AS t(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22,
        c23, c24, c25, c26, c27, c28, c29, c30, c31, c32, c33, c34)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id";

const ROLLUP_COLS: &str = "period, user_id, workspace_id, project, provider, model, requests, successful, failed,
    unpriced, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_usd,
    latency_sum_ms, latency_count";

fn upsert_sql(table: &str) -> String {
    let add = |c: &str| format!("{c} = {table}.{c} + EXCLUDED.{c}");
    let sets: Vec<String> = [
        "requests",
        "successful",
        "failed",
        "unpriced",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_sum_ms",
        "latency_count",
    ]
    .iter()
    .map(|c| add(c))
    .collect();
    format!(
        "INSERT INTO {table} ({ROLLUP_COLS})
         SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16::numeric, c17, c18
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[],
            $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[],
            $17::int8[], $18::int8[])
            AS t(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18)
         ON CONFLICT (period, user_id, workspace_id, project, provider, model) DO UPDATE SET {}",
        sets.join(", ")
    )
}

fn pg_err(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::new(ErrorCode::Store, format!("PostgreSQL {}: {}", db.code().code(), db.message())),
        None => Error::new(ErrorCode::Store, format!("PostgreSQL: {e}")),
    }
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

#[derive(Debug)]
struct Conn {
    client: Client,
    tz: Tz,
    /// Prepared once per connection: the batch insert and the two rollup upserts.
    insert: Statement,
    upsert_daily: Statement,
    upsert_monthly: Statement,
}

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    rt: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    /// Rollup zone for a database this store creates; an existing database keeps its own.
    default_tz: Tz,
    conn: Mutex<Option<Conn>>,
}

impl PgStore {
    /// Parses `url` (a bad URL is an [`ErrorCode::Config`] error) and tries to connect and migrate;
    /// a server that is down now is retried on every later call.
    pub fn connect(url: &str, tz: Tz) -> Result<Self> {
        let redacted = redact(url);
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::config("store", &redacted, &format!("not a PostgreSQL URL: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("llmledger-pg")
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the PostgreSQL runtime: {e}")))?;
        let store = Self { rt, config, default_tz: tz, conn: Mutex::new(None) };
        let _ = store.with_conn(|c| async move { (c, Ok(())) });
        Ok(store)
    }

    /// The time zone the rollups are keyed in (connects if needed).
    pub fn rollup_timezone(&self) -> Result<Tz> {
        self.with_conn(|c| async move {
            let tz = c.tz;
            (c, Ok(tz))
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Conn>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a live, migrated connection (connecting first if needed); a connection that has
    /// closed is dropped so the next call reconnects.
    fn with_conn<T, Fut>(&self, f: impl FnOnce(Conn) -> Fut + Send) -> Result<T>
    where
        T: Send,
        Fut: std::future::Future<Output = (Conn, Result<T>)> + Send,
    {
        let mut guard = self.lock();
        let existing = guard.take().filter(|c| !c.client.is_closed());
        let (conn, r) = block_on(&self.rt, async move {
            let conn = match existing {
                Some(c) => c,
                None => match self.open_conn().await {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e)),
                },
            };
            let (conn, r) = f(conn).await;
            (Some(conn), r)
        });
        *guard = conn.filter(|c| !c.client.is_closed());
        r
    }

    async fn open_conn(&self) -> Result<Conn> {
        let (mut client, connection) = self.config.connect(NoTls).await.map_err(pg_err)?;
        self.rt.spawn(async move {
            // Ends when the client is dropped or the server goes away; errors surface on the client.
            let _ = connection.await;
        });
        let tx = client.transaction().await.map_err(pg_err)?;
        // One migrator at a time across every instance sharing the database.
        tx.execute("SELECT pg_advisory_xact_lock(7236451)", &[]).await.map_err(pg_err)?;
        let ddl = format!("{SCHEMA} {} {}", rollup_ddl("rollup_daily"), rollup_ddl("rollup_monthly"));
        tx.batch_execute(&ddl).await.map_err(pg_err)?;
        let version: Option<i32> =
            tx.query_one("SELECT max(version) FROM llmledger_schema_version", &[]).await.map_err(pg_err)?.get(0);
        match version {
            None => {
                tx.execute("INSERT INTO llmledger_schema_version (version) VALUES ($1)", &[&SCHEMA_VERSION])
                    .await
                    .map_err(pg_err)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::new(
                    ErrorCode::Config,
                    format!("PostgreSQL ledger schema version {v} is newer than this llmledger ({SCHEMA_VERSION})"),
                ))
            }
            Some(_) => {}
        }
        let stored = tx
            .query_opt("SELECT value FROM llmledger_meta WHERE key = 'rollup_timezone'", &[])
            .await
            .map_err(pg_err)?
            .map(|r| r.get::<_, String>(0));
        let tz = match stored {
            Some(name) => parse_tz("rollup_timezone", &name)?,
            None => {
                tx.execute(
                    "INSERT INTO llmledger_meta (key, value) VALUES ('rollup_timezone', $1)",
                    &[&self.default_tz.name()],
                )
                .await
                .map_err(pg_err)?;
                self.default_tz
            }
        };
        tx.commit().await.map_err(pg_err)?;
        let insert = client.prepare(INSERT).await.map_err(pg_err)?;
        let upsert_daily = client.prepare(&upsert_sql("rollup_daily")).await.map_err(pg_err)?;
        let upsert_monthly = client.prepare(&upsert_sql("rollup_monthly")).await.map_err(pg_err)?;
        Ok(Conn { client, tz, insert, upsert_daily, upsert_monthly })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Blocks on `fut` with the store's runtime, from any thread: inside another tokio runtime (where
/// `block_on` would panic) it hops to a scoped thread.
fn block_on<F: std::future::Future + Send>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(|| rt.block_on(fut)).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
    } else {
        rt.block_on(fut)
    }
}

/// Column arrays of a batch, in `INSERT` parameter order.
#[derive(Default)]
struct Columns {
    ids: Vec<String>,
    ts: Vec<i64>,
    provider: Vec<&'static str>,
    api: Vec<&'static str>,
    model: Vec<String>,
    resolved: Vec<Option<String>>,
    user: Vec<Option<String>>,
    workspace: Vec<Option<String>>,
    project: Vec<Option<String>>,
    session: Vec<Option<String>>,
    conversation: Vec<Option<String>>,
    tags: Vec<Option<String>>,
    status: Vec<&'static str>,
    error_class: Vec<Option<String>>,
    latency: Vec<Option<i64>>,
    tokens: [Vec<i64>; 11],
    usage_source: Vec<&'static str>,
    flags: Vec<Option<String>>,
    cost_usd: Vec<Option<String>>,
    currency: Vec<Option<String>>,
    rate: Vec<Option<String>>,
    cost_total: Vec<Option<String>>,
    price_version: Vec<Option<String>>,
    unpriced: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, e: &UsageEvent) -> Result<()> {
        let a = &e.attribution;
        let u = &e.usage;
        self.ids.push(e.event_id.clone());
        self.ts.push(
            e.timestamp
                .timestamp_nanos_opt()
                .ok_or_else(|| Error::invalid_value("event.timestamp", e.timestamp, "outside 1677..2262"))?,
        );
        self.provider.push(e.provider.as_str());
        self.api.push(e.api.as_str());
        self.model.push(e.model.clone());
        self.resolved.push(e.resolved_model.clone());
        self.user.push(a.user_id.clone());
        self.workspace.push(a.workspace_id.clone());
        self.project.push(a.project.clone());
        self.session.push(a.session_id.clone());
        self.conversation.push(a.conversation_id.clone());
        self.tags.push(if a.tags.is_empty() { None } else { Some(serde_json::to_string(&a.tags)?) });
        self.status.push(e.status.as_str());
        self.error_class.push(e.error_class.clone());
        self.latency.push(e.latency_ms.map(|l| i64_of("event.latency_ms", l)).transpose()?);
        let counts = [
            ("usage.input_tokens", u.input_tokens),
            ("usage.cache_read_tokens", u.cache_read_tokens),
            ("usage.cache_write_tokens", u.cache_write_tokens),
            ("usage.cache_write_1h_tokens", u.cache_write_1h_tokens),
            ("usage.output_tokens", u.output_tokens),
            ("usage.reasoning_tokens", u.reasoning_tokens),
            ("usage.audio_input_tokens", u.audio_input_tokens),
            ("usage.audio_cache_read_tokens", u.audio_cache_read_tokens),
            ("usage.audio_output_tokens", u.audio_output_tokens),
            ("usage.image_input_tokens", u.image_input_tokens),
            ("usage.image_output_tokens", u.image_output_tokens),
        ];
        for (col, (field, v)) in self.tokens.iter_mut().zip(counts) {
            col.push(i64_of(field, v)?);
        }
        self.usage_source.push(u.usage_source.as_str());
        self.flags.push(if u.flags.is_empty() { None } else { Some(serde_json::to_string(&u.flags)?) });
        let c = e.cost.as_ref();
        self.cost_usd.push(c.map(|c| c.total_usd.to_string()));
        self.currency.push(c.map(|c| c.currency.clone()));
        self.rate.push(c.map(|c| c.rate.to_string()));
        self.cost_total.push(c.map(|c| c.total.to_string()));
        self.price_version.push(c.map(|c| c.price_version.to_string()));
        self.unpriced.push(e.unpriced_reason.clone());
        Ok(())
    }
}

async fn write(conn: &mut Conn, events: &[UsageEvent]) -> Result<usize> {
    let mut cols = Columns::default();
    for e in events {
        cols.push(e)?;
    }
    let tx = conn.client.transaction().await.map_err(pg_err)?;
    let c = &cols;
    let t = &c.tokens;
    let rows = tx
        .query(
            &conn.insert,
            &[
                &c.ids,
                &c.ts,
                &c.provider,
                &c.api,
                &c.model,
                &c.resolved,
                &c.user,
                &c.workspace,
                &c.project,
                &c.session,
                &c.conversation,
                &c.tags,
                &c.status,
                &c.error_class,
                &c.latency,
                &t[0],
                &t[1],
                &t[2],
                &t[3],
                &t[4],
                &t[5],
                &t[6],
                &t[7],
                &t[8],
                &t[9],
                &t[10],
                &c.usage_source,
                &c.flags,
                &c.cost_usd,
                &c.currency,
                &c.rate,
                &c.cost_total,
                &c.price_version,
                &c.unpriced,
            ],
        )
        .await
        .map_err(pg_err)?;
    let mut inserted: HashSet<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let n = inserted.len();
    let mut fresh = Rollups::default();
    // The first occurrence of an id in the batch is the one PostgreSQL inserted.
    fresh.add_all(events.iter().filter(|e| inserted.remove(&e.event_id)), conn.tz);
    for (stmt, rows) in [(&conn.upsert_daily, &fresh.daily), (&conn.upsert_monthly, &fresh.monthly)] {
        if rows.is_empty() {
            continue;
        }
        let mut k: [Vec<String>; 6] = Default::default();
        let mut v: [Vec<i64>; 11] = Default::default();
        let mut cost: Vec<String> = Vec::with_capacity(rows.len());
        for (key, tot) in rows {
            for (col, s) in k.iter_mut().zip([
                &key.period,
                &key.user_id,
                &key.workspace_id,
                &key.project,
                &key.provider,
                &key.model,
            ]) {
                col.push(s.clone());
            }
            let nums = [
                tot.requests,
                tot.successful,
                tot.failed,
                tot.unpriced,
                tot.input_tokens,
                tot.cache_read_tokens,
                tot.cache_write_tokens,
                tot.output_tokens,
                tot.reasoning_tokens,
                tot.latency_sum_ms,
                tot.latency_count,
            ];
            for (col, x) in v.iter_mut().zip(nums) {
                col.push(i64_of("rollup", x)?);
            }
            cost.push(tot.cost_usd.to_string());
        }
        tx.execute(
            stmt,
            &[
                &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                &v[8], &cost, &v[9], &v[10],
            ],
        )
        .await
        .map_err(pg_err)?;
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(n)
}

fn rollup_row(r: &Row) -> Result<(RollupKey, Totals)> {
    let g = |i: usize| -> Result<i64> { r.try_get::<_, i64>(i).map_err(pg_err) };
    let s = |i: usize| -> Result<String> { r.try_get::<_, String>(i).map_err(pg_err) };
    let key =
        RollupKey { period: s(0)?, user_id: s(1)?, workspace_id: s(2)?, project: s(3)?, provider: s(4)?, model: s(5)? };
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
        cost_usd: dec_of("cost_usd", &s(15)?)?,
        latency_sum_ms: u64_of(g(16)?),
        latency_count: u64_of(g(17)?),
    };
    Ok((key, t))
}

fn raw_event(r: &Row) -> Result<UsageEvent> {
    let s = |i: usize| -> Result<String> { r.try_get::<_, String>(i).map_err(pg_err) };
    let os = |i: usize| -> Result<Option<String>> { r.try_get::<_, Option<String>>(i).map_err(pg_err) };
    let n = |i: usize| -> Result<u64> { r.try_get::<_, i64>(i).map(u64_of).map_err(pg_err) };
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
        timestamp: DateTime::<Utc>::from_timestamp_nanos(r.try_get::<_, i64>(1).map_err(pg_err)?),
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
        latency_ms: r.try_get::<_, Option<i64>>(14).map_err(pg_err)?.map(u64_of),
        status: Status::parse(&s(12)?)?,
        error_class: os(13)?,
    })
}

/// `WHERE` clause and text parameters for a raw-event query.
fn raw_where(q: &UsageQuery) -> Result<(String, Vec<String>, Vec<i64>)> {
    let mut sql = String::from(" WHERE true");
    let mut texts = Vec::new();
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
            texts.push(v.clone());
            sql.push_str(&format!(" AND {col} = ${}", texts.len()));
        }
    }
    let mut ints = Vec::new();
    for (op, t) in [(">=", fl.since), ("<", fl.until)] {
        if let Some(t) = t {
            ints.push(
                t.timestamp_nanos_opt().ok_or_else(|| Error::invalid_value("filter.since/until", t, "out of range"))?,
            );
            sql.push_str(&format!(" AND ts_ns {op} ${}", texts.len() + ints.len()));
        }
    }
    Ok((sql, texts, ints))
}

fn params<'a>(texts: &'a [String], ints: &'a [i64]) -> Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)> {
    let mut p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    p.extend(texts.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
    p.extend(ints.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
    p
}

async fn read_rollups(
    conn: &Conn,
    table: &str,
    q: Option<(&UsageQuery, &crate::report::RollupPlan)>,
) -> Result<Vec<(RollupKey, Totals)>> {
    let cols = ROLLUP_COLS.replace("cost_usd", "cost_usd::text");
    let mut sql = format!("SELECT {cols} FROM {table} WHERE true");
    let mut args: Vec<String> = Vec::new();
    if let Some((q, plan)) = q {
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
                sql.push_str(&format!(" AND {col} = ${}", args.len()));
            }
        }
        if let Some(from) = &plan.from {
            args.push(from.clone());
            sql.push_str(&format!(" AND period >= ${}", args.len()));
        }
        if let Some(to) = &plan.to {
            args.push(to.clone());
            sql.push_str(&format!(" AND period < ${}", args.len()));
        }
    }
    let rows = conn.client.query(&sql, &params(&args, &[])).await.map_err(pg_err)?;
    rows.iter().map(rollup_row).collect()
}

async fn read_events(conn: &Conn, q: Option<&UsageQuery>) -> Result<Vec<UsageEvent>> {
    let (clause, texts, ints) = match q {
        Some(q) => raw_where(q)?,
        None => (String::new(), Vec::new(), Vec::new()),
    };
    let sql = format!("SELECT {RAW_SELECT} FROM usage_events{clause}");
    let rows = conn.client.query(&sql, &params(&texts, &ints)).await.map_err(pg_err)?;
    rows.iter().map(raw_event).collect()
}

impl Store for PgStore {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        self.with_conn(|mut c| async move {
            let r = write(&mut c, events).await;
            (c, r)
        })
    }

    fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        let mut agg = Aggregator::new(query)?;
        self.with_conn(|c| async move {
            let r = async {
                match query.rollup_plan(c.tz) {
                    Some(plan) => {
                        let table = match plan.table {
                            RollupTable::Daily => "rollup_daily",
                            RollupTable::Monthly => "rollup_monthly",
                        };
                        for (k, t) in read_rollups(&c, table, Some((query, &plan))).await? {
                            agg.add_rollup(&k, &t);
                        }
                    }
                    None => read_events(&c, Some(query)).await?.iter().for_each(|e| agg.add_event(e)),
                }
                Ok(agg.finish())
            }
            .await;
            (c, r)
        })
    }

    fn verify(&self) -> Result<Vec<RollupDiff>> {
        self.with_conn(|c| async move {
            let r = async {
                let mut recomputed = Rollups::default();
                recomputed.add_all(&read_events(&c, None).await?, c.tz);
                let stored = Rollups {
                    daily: read_rollups(&c, "rollup_daily", None).await?.into_iter().collect(),
                    monthly: read_rollups(&c, "rollup_monthly", None).await?.into_iter().collect(),
                };
                Ok(stored.diff(&recomputed))
            }
            .await;
            (c, r)
        })
    }

    fn event_ids(&self) -> Result<Vec<String>> {
        self.with_conn(|c| async move {
            let r = c.client.query("SELECT event_id FROM usage_events", &[]).await.map_err(pg_err);
            let r = r.map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect());
            (c, r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_and_rejects_bad_urls() {
        assert_eq!(redact("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let err = PgStore::connect("postgres://h:notaport/db", Tz::UTC).map(|_| ()).map_err(|e| e.code());
        assert_eq!(err, Err(ErrorCode::Config));
    }
}
