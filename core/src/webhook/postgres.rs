//! The outbox in a PostgreSQL ledger database: its own connection (and small runtime), created on
//! first use and reopened after the server went away. Claims lease rows with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so dispatchers in several app servers sharing one database take
//! disjoint rows without waiting on each other.

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use tokio_postgres::{Client, NoTls};

use super::outbox::{delivery_from, Claimed, Delivery, NewDelivery, OutboxStore, Outcome, DELIVERY_COLUMNS, TABLE};
use crate::error::{Error, ErrorCode, Result};
use crate::ledger::health::redact_credentials;
use crate::ledger::postgres::block_on;

fn pg_err(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            Error::new(ErrorCode::Store, format!("PostgreSQL (webhook outbox) {}: {}", db.code().code(), db.message()))
        }
        None => Error::new(ErrorCode::Store, format!("PostgreSQL (webhook outbox): {e}")),
    }
}

#[derive(Debug)]
pub(crate) struct PgOutbox {
    rt: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    client: Mutex<Option<Client>>,
}

impl PgOutbox {
    /// Parses `url` (a bad URL is an [`ErrorCode::Config`] error); connects on first use.
    pub(crate) fn connect(url: &str) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::config("store", redact_credentials(url), &format!("not a PostgreSQL URL: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("llmledger-webhook-pg")
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the PostgreSQL runtime: {e}")))?;
        Ok(Self { rt, config, client: Mutex::new(None) })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a live connection with the outbox table in place (connecting first if needed); `f`
    /// hands the client back, and a client whose connection closed is dropped so the next call reconnects.
    fn with_client<T, Fut>(&self, f: impl FnOnce(Client) -> Fut + Send) -> Result<T>
    where
        T: Send,
        Fut: std::future::Future<Output = (Client, Result<T>)> + Send,
    {
        let mut guard = self.lock();
        let existing = guard.take().filter(|c| !c.is_closed());
        let (client, result) = block_on(&self.rt, async move {
            let client = match existing {
                Some(c) => c,
                None => match self.open_client().await {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e)),
                },
            };
            let (client, result) = f(client).await;
            (Some(client), result)
        });
        *guard = client.filter(|c| !c.is_closed());
        result
    }

    async fn open_client(&self) -> Result<Client> {
        let (mut client, connection) = self.config.connect(NoTls).await.map_err(pg_err)?;
        self.rt.spawn(async move {
            // Ends when the client is dropped or the server goes away; errors surface on the client.
            let _ = connection.await;
        });
        let tx = client.transaction().await.map_err(pg_err)?;
        // One creator at a time across instances (concurrent CREATE IF NOT EXISTS can still collide).
        tx.execute("SELECT pg_advisory_xact_lock(7236452)", &[]).await.map_err(pg_err)?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (
                 delivery_id TEXT PRIMARY KEY,
                 alert_id TEXT NOT NULL,
                 endpoint TEXT NOT NULL,
                 body TEXT NOT NULL,
                 state TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_at BIGINT NOT NULL,
                 last_status INTEGER,
                 last_error TEXT,
                 created_at BIGINT NOT NULL,
                 updated_at BIGINT NOT NULL,
                 UNIQUE (alert_id, endpoint)
             );
             CREATE INDEX IF NOT EXISTS {TABLE}_due ON {TABLE} (state, next_attempt_at);"
        ))
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(client)
    }
}

impl OutboxStore for PgOutbox {
    fn enqueue(&self, rows: &[NewDelivery], now_ms: i64) -> Result<usize> {
        self.with_client(|mut c| async move {
            let r = enqueue_in(&mut c, rows, now_ms).await;
            (c, r)
        })
    }

    fn claim(
        &self,
        endpoints: &[String],
        now_ms: i64,
        lease_ms: i64,
        max_attempts: u32,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let lease = Lease {
            now_ms,
            until_ms: now_ms.saturating_add(lease_ms),
            max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
        };
        self.with_client(|mut c| async move {
            let r = claim_in(&mut c, endpoints, &lease).await;
            (c, r)
        })
    }

    fn finish(&self, delivery_id: &str, outcome: &Outcome, now_ms: i64) -> Result<()> {
        self.with_client(|c| async move {
            let r = finish_in(&c, delivery_id, outcome, now_ms).await;
            (c, r)
        })
    }

    fn next_due(&self, endpoints: &[String]) -> Result<Option<i64>> {
        if endpoints.is_empty() {
            return Ok(None);
        }
        self.with_client(|c| async move {
            let r = async {
                let sql =
                    format!("SELECT min(next_attempt_at) FROM {TABLE} WHERE state = 'pending' AND endpoint = ANY($1)");
                c.query_one(&sql, &[&endpoints]).await?.try_get(0)
            }
            .await
            .map_err(pg_err);
            (c, r)
        })
    }

    fn deliveries(&self) -> Result<Vec<Delivery>> {
        self.with_client(|c| async move {
            let r = deliveries_in(&c).await;
            (c, r)
        })
    }
}

async fn enqueue_in(client: &mut Client, rows: &[NewDelivery], now_ms: i64) -> Result<usize> {
    let tx = client.transaction().await.map_err(pg_err)?;
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {TABLE} (delivery_id, alert_id, endpoint, body, state, attempts, next_attempt_at,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) ON CONFLICT DO NOTHING"
        ))
        .await
        .map_err(pg_err)?;
    let mut inserted = 0;
    for r in rows {
        inserted +=
            tx.execute(&insert, &[&r.delivery_id, &r.alert_id, &r.endpoint, &r.body, &now_ms]).await.map_err(pg_err)?;
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(usize::try_from(inserted).unwrap_or(usize::MAX))
}

/// The parameters of one claim, in SQL types.
#[derive(Debug)]
struct Lease {
    now_ms: i64,
    until_ms: i64,
    max_attempts: i32,
    limit: i64,
}

async fn claim_in(client: &mut Client, endpoints: &[String], lease: &Lease) -> Result<Vec<Claimed>> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute(
        &format!(
            "UPDATE {TABLE} SET state = 'dead', updated_at = $1,
                 last_error = coalesce(last_error || '; ', '') || 'no result from the last attempt (sender stopped)'
             WHERE state = 'pending' AND next_attempt_at <= $1 AND attempts >= $2 AND endpoint = ANY($3)"
        ),
        &[&lease.now_ms, &lease.max_attempts, &endpoints],
    )
    .await
    .map_err(pg_err)?;
    let rows = tx
        .query(
            &format!(
                "UPDATE {TABLE} SET attempts = attempts + 1, next_attempt_at = $4, updated_at = $1
                 WHERE delivery_id IN (
                     SELECT delivery_id FROM {TABLE}
                     WHERE state = 'pending' AND next_attempt_at <= $1 AND attempts < $2 AND endpoint = ANY($3)
                     ORDER BY next_attempt_at, delivery_id LIMIT $5
                     FOR UPDATE SKIP LOCKED)
                 RETURNING delivery_id, alert_id, endpoint, body, attempts"
            ),
            &[&lease.now_ms, &lease.max_attempts, &endpoints, &lease.until_ms, &lease.limit],
        )
        .await
        .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                delivery_id: r.try_get(0).map_err(pg_err)?,
                alert_id: r.try_get(1).map_err(pg_err)?,
                endpoint: r.try_get(2).map_err(pg_err)?,
                body: r.try_get(3).map_err(pg_err)?,
                attempts: u32::try_from(r.try_get::<_, i32>(4).map_err(pg_err)?).unwrap_or(0),
            })
        })
        .collect()
}

async fn finish_in(client: &Client, delivery_id: &str, outcome: &Outcome, now_ms: i64) -> Result<()> {
    match outcome {
        Outcome::Delivered { status } => {
            let sql = format!(
                "UPDATE {TABLE} SET state = 'delivered', last_status = $2, last_error = NULL, updated_at = $3
                 WHERE delivery_id = $1"
            );
            client.execute(&sql, &[&delivery_id, &i32::from(*status), &now_ms]).await
        }
        Outcome::Failed { status, error, retry_at_ms } => {
            let state = if retry_at_ms.is_some() { "pending" } else { "dead" };
            let status = status.map(i32::from);
            let sql = format!(
                "UPDATE {TABLE} SET state = $2, next_attempt_at = coalesce($3, next_attempt_at),
                     last_status = $4, last_error = $5, updated_at = $6
                 WHERE delivery_id = $1 AND state = 'pending'"
            );
            client.execute(&sql, &[&delivery_id, &state, retry_at_ms, &status, error, &now_ms]).await
        }
    }
    .map_err(pg_err)?;
    Ok(())
}

async fn deliveries_in(client: &Client) -> Result<Vec<Delivery>> {
    let rows = client
        .query(&format!("SELECT {DELIVERY_COLUMNS} FROM {TABLE} ORDER BY created_at, delivery_id"), &[])
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get(3).map_err(pg_err)?;
            delivery_from(
                r.try_get(0).map_err(pg_err)?,
                r.try_get(1).map_err(pg_err)?,
                r.try_get(2).map_err(pg_err)?,
                &state,
                i64::from(r.try_get::<_, i32>(4).map_err(pg_err)?),
                r.try_get(5).map_err(pg_err)?,
                r.try_get::<_, Option<i32>>(6).map_err(pg_err)?.map(i64::from),
                r.try_get(7).map_err(pg_err)?,
                r.try_get(8).map_err(pg_err)?,
            )
        })
        .collect()
}
