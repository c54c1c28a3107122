//! The outbox in a SQLite ledger file: its own connection (WAL, `busy_timeout`), so webhook traffic
//! never waits behind the ledger writer's lock in this process; claims run in `BEGIN IMMEDIATE`, which
//! serializes them across processes sharing the file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, params_from_iter, Connection, TransactionBehavior};

use super::outbox::{delivery_from, Claimed, Delivery, NewDelivery, OutboxStore, Outcome, DELIVERY_COLUMNS, TABLE};
use crate::error::{Error, ErrorCode, Result};

fn db_err(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Store, format!("SQLite (webhook outbox): {e}"))
}

/// `?, ?, …` for `n` values.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[derive(Debug)]
pub(crate) struct SqliteOutbox {
    conn: Mutex<Connection>,
}

impl SqliteOutbox {
    /// Opens (creating) the file at `path` and the outbox table in it.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let cfg = |reason: String| Error::config("store", path.display(), &reason);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| cfg(format!("cannot create the directory: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| cfg(format!("cannot open the database: {e}")))?;
        conn.execute_batch(&format!(
            // The ledger's page size, in case the outbox creates the file (an existing file keeps its own).
            "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS {TABLE} (
                 delivery_id TEXT PRIMARY KEY,
                 alert_id TEXT NOT NULL,
                 endpoint TEXT NOT NULL,
                 body TEXT NOT NULL,
                 state TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_at INTEGER NOT NULL,
                 last_status INTEGER,
                 last_error TEXT,
                 created_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL,
                 UNIQUE (alert_id, endpoint)
             );
             CREATE INDEX IF NOT EXISTS {TABLE}_due ON {TABLE} (state, next_attempt_at);"
        ))
        .map_err(|e| cfg(format!("cannot create the webhook outbox (is it writable?): {e}")))?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OutboxStore for SqliteOutbox {
    fn enqueue(&self, rows: &[NewDelivery], now_ms: i64) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let mut inserted = 0;
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {TABLE} (delivery_id, alert_id, endpoint, body, state, attempts, next_attempt_at,
                         created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5) ON CONFLICT DO NOTHING"
                ))
                .map_err(db_err)?;
            for r in rows {
                inserted +=
                    insert.execute(params![r.delivery_id, r.alert_id, r.endpoint, r.body, now_ms]).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(inserted)
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
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let among = placeholders(endpoints.len());
        let max = i64::from(max_attempts);
        let mut args: Vec<rusqlite::types::Value> = vec![now_ms.into(), max.into()];
        args.extend(endpoints.iter().map(|e| e.clone().into()));
        tx.execute(
            &format!(
                "UPDATE {TABLE} SET state = 'dead', updated_at = ?1,
                     last_error = coalesce(last_error || '; ', '') || 'no result from the last attempt (sender stopped)'
                 WHERE state = 'pending' AND next_attempt_at <= ?1 AND attempts >= ?2 AND endpoint IN ({among})"
            ),
            params_from_iter(args.iter()),
        )
        .map_err(db_err)?;
        let mut claimed = Vec::new();
        {
            let mut select = tx
                .prepare(&format!(
                    "SELECT delivery_id, alert_id, endpoint, body, attempts FROM {TABLE}
                     WHERE state = 'pending' AND next_attempt_at <= ?1 AND attempts < ?2 AND endpoint IN ({among})
                     ORDER BY next_attempt_at, delivery_id LIMIT {limit}"
                ))
                .map_err(db_err)?;
            let rows = select
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok(Claimed {
                        delivery_id: r.get(0)?,
                        alert_id: r.get(1)?,
                        endpoint: r.get(2)?,
                        body: r.get(3)?,
                        attempts: u32::try_from(r.get::<_, i64>(4)? + 1).unwrap_or(u32::MAX),
                    })
                })
                .map_err(db_err)?;
            for row in rows {
                claimed.push(row.map_err(db_err)?);
            }
            let mut lease = tx
                .prepare(&format!(
                    "UPDATE {TABLE} SET attempts = attempts + 1, next_attempt_at = ?2, updated_at = ?3
                     WHERE delivery_id = ?1"
                ))
                .map_err(db_err)?;
            for c in &claimed {
                lease.execute(params![c.delivery_id, now_ms + lease_ms, now_ms]).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(claimed)
    }

    fn finish(&self, delivery_id: &str, outcome: &Outcome, now_ms: i64) -> Result<()> {
        let conn = self.lock();
        match outcome {
            Outcome::Delivered { status } => conn.execute(
                &format!(
                    "UPDATE {TABLE} SET state = 'delivered', last_status = ?2, last_error = NULL, updated_at = ?3
                     WHERE delivery_id = ?1"
                ),
                params![delivery_id, status, now_ms],
            ),
            Outcome::Failed { status, error, retry_at_ms } => conn.execute(
                &format!(
                    "UPDATE {TABLE} SET state = ?2, next_attempt_at = coalesce(?3, next_attempt_at),
                         last_status = ?4, last_error = ?5, updated_at = ?6
                     WHERE delivery_id = ?1 AND state = 'pending'"
                ),
                params![
                    delivery_id,
                    if retry_at_ms.is_some() { "pending" } else { "dead" },
                    retry_at_ms,
                    status,
                    error,
                    now_ms
                ],
            ),
        }
        .map_err(db_err)?;
        Ok(())
    }

    fn next_due(&self, endpoints: &[String]) -> Result<Option<i64>> {
        if endpoints.is_empty() {
            return Ok(None);
        }
        let conn = self.lock();
        conn.query_row(
            &format!(
                "SELECT min(next_attempt_at) FROM {TABLE} WHERE state = 'pending' AND endpoint IN ({})",
                placeholders(endpoints.len())
            ),
            params_from_iter(endpoints.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)
    }

    fn deliveries(&self) -> Result<Vec<Delivery>> {
        let conn = self.lock();
        let mut select = conn
            .prepare(&format!("SELECT {DELIVERY_COLUMNS} FROM {TABLE} ORDER BY created_at, delivery_id"))
            .map_err(db_err)?;
        let rows = select
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, String>(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, alert, endpoint, state, attempts, next, status, error, created) = row.map_err(db_err)?;
            out.push(delivery_from(id, alert, endpoint, &state, attempts, next, status, error, created)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::webhook::outbox::DeliveryState;

    fn row(id: &str, endpoint: &str) -> NewDelivery {
        NewDelivery {
            delivery_id: format!("dlv_{id}_{endpoint}"),
            alert_id: id.into(),
            endpoint: endpoint.into(),
            body: format!("{{\"alert_id\":\"{id}\"}}"),
        }
    }

    fn states(outbox: &SqliteOutbox) -> Vec<(String, DeliveryState, u32, i64)> {
        let rows = outbox.deliveries().unwrap();
        rows.into_iter().map(|d| (d.delivery_id, d.state, d.attempts, d.next_attempt_at.timestamp_millis())).collect()
    }

    #[test]
    fn enqueue_is_idempotent_on_alert_and_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(&dir.path().join("o.db")).unwrap();
        assert_eq!(outbox.enqueue(&[row("a", "e1"), row("a", "e2")], 1_000).unwrap(), 2);
        assert_eq!(outbox.enqueue(&[row("a", "e1"), row("b", "e1")], 2_000).unwrap(), 1);
        // A different delivery id for an (alert, endpoint) already queued is still the same delivery.
        let twin = NewDelivery { delivery_id: "dlv_other".into(), ..row("a", "e1") };
        assert_eq!(outbox.enqueue(&[twin], 3_000).unwrap(), 0);
        assert_eq!(outbox.deliveries().unwrap().len(), 3);
    }

    #[test]
    fn a_claim_leases_rows_and_a_lapsed_lease_is_claimed_again_until_dead() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(&dir.path().join("o.db")).unwrap();
        let e1 = vec!["e1".to_string()];
        outbox.enqueue(&[row("a", "e1"), row("b", "e2")], 1_000).unwrap();
        // Only this dispatcher's endpoints, only due rows.
        assert!(outbox.claim(&e1, 999, 500, 2, 10).unwrap().is_empty());
        let first = outbox.claim(&e1, 1_000, 500, 2, 10).unwrap();
        assert_eq!(first.iter().map(|c| (c.delivery_id.as_str(), c.attempts)).collect::<Vec<_>>(), [("dlv_a_e1", 1)]);
        // Leased until 1 500: another dispatcher gets nothing meanwhile.
        assert!(outbox.claim(&e1, 1_499, 500, 2, 10).unwrap().is_empty());
        // The sender died; the lease lapses and the row is claimed again, attempt 2.
        let second = outbox.claim(&e1, 1_500, 500, 2, 10).unwrap();
        assert_eq!(second.iter().map(|c| c.attempts).collect::<Vec<_>>(), [2]);
        // That sender died too: with max 2 attempts the row is dead once its lease lapses.
        assert!(outbox.claim(&e1, 2_000, 500, 2, 10).unwrap().is_empty());
        assert_eq!(
            states(&outbox),
            [
                ("dlv_a_e1".to_string(), DeliveryState::Dead, 2, 2_000),
                ("dlv_b_e2".to_string(), DeliveryState::Pending, 0, 1_000)
            ]
        );
        let dead = outbox.deliveries().unwrap().remove(0);
        assert_eq!(dead.last_error.as_deref(), Some("no result from the last attempt (sender stopped)"));
    }

    #[test]
    fn finish_records_retries_dead_letters_and_never_undoes_a_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(&dir.path().join("o.db")).unwrap();
        let e = vec!["e".to_string()];
        outbox.enqueue(&[row("a", "e"), row("b", "e")], 0).unwrap();
        assert_eq!(outbox.claim(&e, 0, 100, 3, 1).unwrap().len(), 1, "limit 1");
        assert_eq!(outbox.claim(&e, 0, 100, 3, 10).unwrap().len(), 1, "the other row");
        let failed =
            |retry: Option<i64>| Outcome::Failed { status: Some(500), error: "HTTP 500".into(), retry_at_ms: retry };
        outbox.finish("dlv_a_e", &failed(Some(700)), 50).unwrap();
        outbox.finish("dlv_b_e", &Outcome::Delivered { status: 200 }, 60).unwrap();
        // A late failure from an overlapping sender does not undo the delivery.
        outbox.finish("dlv_b_e", &failed(None), 70).unwrap();
        assert_eq!(outbox.next_due(&e).unwrap(), Some(700));
        outbox.finish("dlv_a_e", &failed(None), 80).unwrap();
        assert_eq!(outbox.next_due(&e).unwrap(), None);
        let rows = outbox.deliveries().unwrap();
        let summary: Vec<_> =
            rows.iter().map(|d| (d.state, d.attempts, d.last_status, d.last_error.as_deref())).collect();
        assert_eq!(
            summary,
            [(DeliveryState::Dead, 1, Some(500), Some("HTTP 500")), (DeliveryState::Delivered, 1, Some(200), None)]
        );
    }
}
