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

use chrono_tz::Tz;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

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
        Kind::Text => "TEXT",
        Kind::Int => "BIGINT",
        Kind::Dec => "NUMERIC",
    }
}

/// NUMERIC columns are read back as text (exact, parsed into `Decimal`).
fn select_cast(c: &str, k: Kind) -> String {
    match k {
        Kind::Dec => format!("{c}::text"),
        Kind::Text | Kind::Int => c.to_string(),
    }
}

/// `SELECT c1, …, cN FROM UNNEST($1::…[], …) AS t(c1, …, cN)` over one array parameter per column:
/// decimals travel as text and are cast to NUMERIC by the server.
fn unnest_select<'a>(kinds: impl Iterator<Item = &'a Kind> + Clone) -> String {
    let mut select = Vec::new();
    let mut arrays = Vec::new();
    let mut aliases = Vec::new();
    for (i, k) in kinds.enumerate().map(|(i, k)| (i + 1, k)) {
        select.push(if *k == Kind::Dec { format!("c{i}::numeric") } else { format!("c{i}") });
        arrays.push(format!("${i}::{}[]", if *k == Kind::Int { "int8" } else { "text" }));
        aliases.push(format!("c{i}"));
    }
    format!("SELECT {} FROM UNNEST({}) AS t({})", select.join(", "), arrays.join(", "), aliases.join(", "))
}

/// The batch insert: one array per column, `RETURNING` the ids that were new.
fn insert_sql() -> String {
    format!(
        "INSERT INTO usage_events ({}) {} ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        event_cols(plain),
        unnest_select(row::EVENT_COLUMNS.iter().map(|(_, k, _)| k))
    )
}

fn upsert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} ({}) {} ON CONFLICT ({ROLLUP_KEY}) DO UPDATE SET {}",
        rollup_cols(plain),
        unnest_select(row::ROLLUP_COLUMNS.iter().map(|(_, k)| k)),
        row::rollup_sets(|c, _| format!("{c} = {table}.{c} + EXCLUDED.{c}"))
    )
}

pub(crate) fn pg_err(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::new(ErrorCode::Store, format!("PostgreSQL {}: {}", db.code().code(), db.message())),
        None => Error::new(ErrorCode::Store, format!("PostgreSQL: {e}")),
    }
}

impl ColumnReader for Row {
    fn text(&self, i: usize) -> Result<String> {
        self.try_get(i).map_err(pg_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.try_get(i).map_err(pg_err)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.try_get(i).map_err(pg_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.try_get(i).map_err(pg_err)
    }
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
    /// Parses `url` (a bad URL is an [`ErrorCode::Config`] error); connecting and migrating happen on
    /// the first call, and a server that is down is retried on every later call.
    pub fn connect(url: &str, tz: Tz) -> Result<Self> {
        let redacted = super::health::redact_credentials(url);
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::config("store", &redacted, &format!("not a PostgreSQL URL: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("llmledger-pg")
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the PostgreSQL runtime: {e}")))?;
        // No connection here: opening a ledger must not block on an unreachable server. The ledger's
        // writer calls `check` in the background and reports a failure at once.
        Ok(Self { rt, config, default_tz: tz, conn: Mutex::new(None) })
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
        let ddl = format!(
            "{} {} {} {}",
            row::META_DDL,
            row::events_ddl(sql_type),
            row::rollup_ddl("rollup_daily", sql_type, ""),
            row::rollup_ddl("rollup_monthly", sql_type, "")
        );
        tx.batch_execute(&ddl).await.map_err(pg_err)?;
        let version: Option<i32> =
            tx.query_one("SELECT max(version) FROM llmledger_schema_version", &[]).await.map_err(pg_err)?.get(0);
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::new(
                    ErrorCode::Config,
                    format!("PostgreSQL ledger schema version {v} is newer than this llmledger ({SCHEMA_VERSION})"),
                ))
            }
            Some(v) if v == SCHEMA_VERSION => {}
            _ => {
                // An older (or new) database: add the columns it lacks, then record the version.
                let mut sql = String::new();
                for column in row::MIGRATIONS {
                    let ty = sql_type(row::column_kind(column));
                    sql.push_str(&format!("ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS {column} {ty};"));
                }
                tx.batch_execute(&sql).await.map_err(pg_err)?;
                tx.execute("INSERT INTO llmledger_schema_version (version) VALUES ($1)", &[&SCHEMA_VERSION])
                    .await
                    .map_err(pg_err)?;
            }
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
        let insert = client.prepare(&insert_sql()).await.map_err(pg_err)?;
        let upsert_daily = client.prepare(&upsert_sql("rollup_daily")).await.map_err(pg_err)?;
        let upsert_monthly = client.prepare(&upsert_sql("rollup_monthly")).await.map_err(pg_err)?;
        Ok(Conn { client, tz, insert, upsert_daily, upsert_monthly })
    }
}

/// The URL without its password, for messages.
/// Blocks on `fut` with the store's runtime, from any thread: inside another tokio runtime (where
/// `block_on` would panic) it hops to a scoped thread.
pub(crate) fn block_on<F: std::future::Future + Send>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
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

/// Column arrays of a batch, in `INSERT` parameter order, borrowed from the events and their
/// encodings (no copy of any string).
#[derive(Default)]
struct Columns<'e> {
    ids: Vec<&'e str>,
    ts: Vec<i64>,
    provider: Vec<&'static str>,
    api: Vec<&'static str>,
    model: Vec<&'e str>,
    /// `resolved_model`, `user_id`, `workspace_id`, `project`, `session_id`, `conversation_id`, `tags`.
    opt1: [Vec<Option<&'e str>>; 7],
    status: Vec<&'static str>,
    error_class: Vec<Option<&'e str>>,
    latency: Vec<Option<i64>>,
    tokens: [Vec<i64>; 11],
    usage_source: Vec<&'static str>,
    /// `flags` … `reprice_audit`.
    opt2: [Vec<Option<&'e str>>; 11],
}

impl<'e> Columns<'e> {
    fn push(&mut self, e: &'e UsageEvent, x: &'e Encoded) {
        let a = &e.attribution;
        self.ids.push(&e.event_id);
        self.ts.push(x.ts_ns);
        self.provider.push(e.provider.as_str());
        self.api.push(e.api.as_str());
        self.model.push(&e.model);
        for (col, v) in self.opt1.iter_mut().zip([
            &e.resolved_model,
            &a.user_id,
            &a.workspace_id,
            &a.project,
            &a.session_id,
            &a.conversation_id,
            &x.tags,
        ]) {
            col.push(v.as_deref());
        }
        self.status.push(e.status.as_str());
        self.error_class.push(e.error_class.as_deref());
        self.latency.push(x.latency_ms);
        for (col, v) in self.tokens.iter_mut().zip(x.tokens) {
            col.push(v);
        }
        self.usage_source.push(e.usage.usage_source.as_str());
        let currency = e.cost.as_ref().map(|c| c.currency.as_str());
        for (col, v) in self.opt2.iter_mut().zip([
            x.flags.as_deref(),
            x.cost_usd.as_deref(),
            currency,
            x.rate.as_deref(),
            x.cost_total.as_deref(),
            x.price_version.as_deref(),
            e.unpriced_reason.as_deref(),
            x.usage_extra.as_deref(),
            x.price_options.as_deref(),
            e.cost.as_ref().map(|c| c.price_data.as_str()).filter(|d| !d.is_empty()),
            None,
        ]) {
            col.push(v);
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![&self.ids, &self.ts, &self.provider, &self.api, &self.model];
        p.extend(self.opt1.iter().map(|c| c as &(dyn ToSql + Sync)));
        p.extend([&self.status as &(dyn ToSql + Sync), &self.error_class, &self.latency]);
        p.extend(self.tokens.iter().map(|c| c as &(dyn ToSql + Sync)));
        p.push(&self.usage_source);
        p.extend(self.opt2.iter().map(|c| c as &(dyn ToSql + Sync)));
        p
    }
}

async fn write(conn: &mut Conn, events: &[UsageEvent]) -> Result<usize> {
    let enc = events.iter().map(Encoded::of).collect::<Result<Vec<_>>>()?;
    let mut cols = Columns::default();
    for (e, x) in events.iter().zip(&enc) {
        cols.push(e, x);
    }
    let tx = conn.client.transaction().await.map_err(pg_err)?;
    let rows = tx.query(&conn.insert, &cols.params()).await.map_err(pg_err)?;
    let mut inserted = HashSet::with_capacity(rows.len());
    for r in &rows {
        inserted.insert(r.try_get::<_, &str>(0).map_err(pg_err)?);
    }
    let n = inserted.len();
    let mut fresh = Rollups::default();
    // The first occurrence of an id in the batch is the one PostgreSQL inserted.
    fresh.add_all(events.iter().filter(|e| inserted.remove(e.event_id.as_str())), conn.tz);
    for (stmt, rows) in [(&conn.upsert_daily, &fresh.daily), (&conn.upsert_monthly, &fresh.monthly)] {
        let rows = rows.iter().map(|(k, t)| Ok((k, row::rollup_counts(t)?, t.cost_usd))).collect::<Result<Vec<_>>>()?;
        add_to_rollups(&tx, stmt, &rows).await?;
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(n)
}

/// Adds (signed) counters and costs to rollup rows through `stmt` (a rollup upsert), creating missing
/// ones; keys arrive sorted, so concurrent writers lock rows in the same order.
async fn add_to_rollups(
    tx: &tokio_postgres::Transaction<'_>,
    stmt: &Statement,
    rows: &[(&RollupKey, [i64; 11], Decimal)],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut k: [Vec<&str>; 6] = Default::default();
    let mut v: [Vec<i64>; 11] = Default::default();
    let mut cost: Vec<String> = Vec::with_capacity(rows.len());
    for (key, counts, c) in rows {
        for (col, s) in
            k.iter_mut().zip([&key.period, &key.user_id, &key.workspace_id, &key.project, &key.provider, &key.model])
        {
            col.push(s);
        }
        for (col, x) in v.iter_mut().zip(counts) {
            col.push(*x);
        }
        cost.push(c.to_string());
    }
    tx.execute(
        stmt,
        &[
            &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
            &cost, &v[9], &v[10],
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// Re-prices inside one transaction (see [`reprice`]); an advisory lock keeps two re-prices from
/// applying the same rollup deltas twice.
async fn reprice_in(conn: &mut Conn, prices: &PriceDb, filter: &RepriceFilter) -> Result<RepriceReport> {
    let tx = conn.client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock(7236452)", &[]).await.map_err(pg_err)?;
    let update = tx
        .prepare(
            "UPDATE usage_events SET resolved_model = $1, cost_usd = $2::text::numeric, currency = $3,
             rate = $4::text::numeric, cost_total = $5::text::numeric, price_version = $6, price_data = $7, unpriced_reason = $8, reprice_audit = $9
             WHERE event_id = $10",
        )
        .await
        .map_err(pg_err)?;
    let now = chrono::Utc::now();
    let mut report = RepriceReport { dry_run: filter.dry_run, ..RepriceReport::default() };
    let mut after: Option<String> = None;
    loop {
        let f = Filter::reprice(filter, '$', after.as_deref())?;
        let sql = format!("SELECT {} FROM usage_events WHERE true{}", event_cols(select_cast), f.sql);
        let rows = tx.query(&sql, &params(&f)).await.map_err(pg_err)?;
        let events =
            rows.iter().map(|r| Ok((row::event_from_row(r)?, row::audit_from_row(r)?))).collect::<Result<Vec<_>>>()?;
        let Some(last) = events.last().map(|(e, _)| e.event_id.clone()) else { break };
        let full = events.len() == filter.chunk_size();
        let (part, rewrites) = reprice::plan(prices, events, filter.dry_run, now)?;
        report.absorb(part);
        if !filter.dry_run && !rewrites.is_empty() {
            apply_rewrites(&tx, conn.tz, &update, [&conn.upsert_daily, &conn.upsert_monthly], &rewrites).await?;
        }
        if !full {
            break;
        }
        after = Some(last);
    }
    if !filter.dry_run {
        tx.commit().await.map_err(pg_err)?;
    }
    Ok(report)
}

/// Writes one chunk of re-priced events and moves their rollups.
async fn apply_rewrites(
    tx: &tokio_postgres::Transaction<'_>,
    tz: chrono_tz::Tz,
    update: &Statement,
    upserts: [&Statement; 2],
    rewrites: &[(UsageEvent, Rewrite)],
) -> Result<()> {
    for (_, Rewrite { event: e, audit }) in rewrites {
        let x = Encoded::of(e)?;
        let c = e.cost.as_ref();
        let currency = c.map(|c| c.currency.as_str());
        let data = c.map(|c| c.price_data.as_str());
        tx.execute(
            update,
            &[
                &e.resolved_model,
                &x.cost_usd,
                &currency,
                &x.rate,
                &x.cost_total,
                &x.price_version,
                &data,
                &e.unpriced_reason,
                audit,
                &e.event_id,
            ],
        )
        .await
        .map_err(pg_err)?;
    }
    let deltas = reprice::rollup_deltas(rewrites, tz)?;
    for (table, stmt, rows) in
        [("rollup_daily", upserts[0], &deltas.daily), ("rollup_monthly", upserts[1], &deltas.monthly)]
    {
        let list: Vec<_> = rows.iter().map(|(k, (n, c))| (k, *n, *c)).collect();
        add_to_rollups(tx, stmt, &list).await?;
        let delete = format!(
            "DELETE FROM {table} WHERE period = $1 AND user_id = $2 AND workspace_id = $3 AND project = $4
             AND provider = $5 AND model = $6 AND requests = 0"
        );
        for k in rows.keys() {
            tx.execute(delete.as_str(), &[&k.period, &k.user_id, &k.workspace_id, &k.project, &k.provider, &k.model])
                .await
                .map_err(pg_err)?;
        }
    }
    Ok(())
}

fn params(filter: &Filter) -> Vec<&(dyn ToSql + Sync)> {
    filter
        .params
        .iter()
        .map(|p| match p {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

async fn read_rollups(
    conn: &Conn,
    table: &str,
    q: Option<(&UsageQuery, &crate::report::RollupPlan)>,
) -> Result<Vec<(RollupKey, Totals)>> {
    let filter = Filter::rollups(q, '$');
    let sql = format!("SELECT {} FROM {table} WHERE true{}", rollup_cols(select_cast), filter.sql);
    let rows = conn.client.query(&sql, &params(&filter)).await.map_err(pg_err)?;
    rows.iter().map(row::rollup_from_row).collect()
}

async fn read_events(conn: &Conn, q: Option<&UsageQuery>) -> Result<Vec<UsageEvent>> {
    let filter = Filter::events(q, '$')?;
    let sql = format!("SELECT {} FROM usage_events WHERE true{}", event_cols(select_cast), filter.sql);
    let rows = conn.client.query(&sql, &params(&filter)).await.map_err(pg_err)?;
    rows.iter().map(row::event_from_row).collect()
}

impl Store for PgStore {
    fn check(&self) -> Result<()> {
        self.with_conn(|c| async move {
            let r = c.client.simple_query("SELECT 1").await.map(|_| ()).map_err(pg_err);
            (c, r)
        })
    }

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

    fn reprice(&self, prices: &PriceDb, filter: &RepriceFilter) -> Result<RepriceReport> {
        self.with_conn(|mut c| async move {
            let r = reprice_in(&mut c, prices, filter).await;
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
        let err = PgStore::connect("postgres://h:notaport/db", Tz::UTC).map(|_| ()).map_err(|e| e.code());
        assert_eq!(err, Err(ErrorCode::Config));
    }
}
