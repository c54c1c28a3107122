//! The durable outbox: one row per (alert, endpoint) in the ledger's own database, so that an alert
//! enqueued before a crash or during a receiver outage is still delivered later, by this process or
//! by the next one. A row is `pending` until a 2xx answer makes it `delivered`, or until the last
//! allowed attempt fails and it becomes `dead` (kept for inspection; nothing retries it).
//!
//! Claiming is a lease, in one write transaction: a due row gets `attempts + 1` and its
//! `next_attempt_at` pushed past the send's timeout, so two dispatchers on one store never send the same
//! row at the same time, and a row whose sender died becomes due again when the lease ends (delivery is
//! at least once; receivers dedupe on the delivery id). Counting the attempt at claim time means a
//! process that keeps crashing mid-send still reaches the dead letter.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

use super::signature::to_hex;
use crate::error::{Error, ErrorCode, Result};

/// The outbox table, created beside the ledger's tables.
pub(crate) const TABLE: &str = "llmledger_webhook_outbox";

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or being attempted now).
    Pending,
    /// An attempt got a 2xx answer.
    Delivered,
    /// The last allowed attempt failed; kept as a dead letter.
    Dead,
}

impl DeliveryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            other => {
                Err(Error::new(ErrorCode::Store, format!("unknown webhook delivery state `{other}` in the outbox")))
            }
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the outbox, as [`super::Webhooks::deliveries`] shows it (the body is left out).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// `dlv_` + 32 hex digits, derived from the alert id and the endpoint key (see [`delivery_id`]).
    pub delivery_id: String,
    pub alert_id: String,
    /// The endpoint's [`super::WebhookEndpoint::key`].
    pub endpoint: String,
    pub state: DeliveryState,
    /// Attempts started so far (including one in flight).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last answer, when there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (`HTTP 500`, `timed out`, …; never the URL or the secret).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The delivery id of `alert_id` to the endpoint with `endpoint_key`: `dlv_` + the first 16 bytes of
/// SHA-256 of `"<alert_id>\n<endpoint_key>"` in hex. Deterministic, so enqueueing again (another process,
/// a replay after a crash) finds the same row.
pub fn delivery_id(alert_id: &str, endpoint_key: &str) -> String {
    let digest = Sha256::digest(format!("{alert_id}\n{endpoint_key}").as_bytes());
    format!("dlv_{}", to_hex(&digest[..16]))
}

/// A row to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewDelivery {
    pub delivery_id: String,
    pub alert_id: String,
    pub endpoint: String,
    pub body: String,
}

/// A row claimed for sending.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub delivery_id: String,
    pub alert_id: String,
    pub endpoint: String,
    pub body: String,
    /// Attempts including this one.
    pub attempts: u32,
}

/// How an attempt ended, as the store records it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Delivered {
        status: u16,
    },
    /// Failed; retried at `retry_at_ms`, or a dead letter when `None`.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at_ms: Option<i64>,
    },
}

/// The outbox in one database. Methods block; the dispatcher calls them from its own thread.
pub(crate) trait OutboxStore: Send + Sync + fmt::Debug {
    /// Inserts the rows whose (alert_id, endpoint) is new, all in one transaction, due at `now_ms`;
    /// returns how many were new.
    fn enqueue(&self, rows: &[NewDelivery], now_ms: i64) -> Result<usize>;

    /// In one write transaction: marks `dead` every due pending row of `endpoints` that already had
    /// `max_attempts` attempts (its sender died during the last one), then leases up to `limit` due
    /// pending rows (oldest due first) until `now_ms + lease_ms`, counting the attempt.
    fn claim(
        &self,
        endpoints: &[String],
        now_ms: i64,
        lease_ms: i64,
        max_attempts: u32,
        limit: usize,
    ) -> Result<Vec<Claimed>>;

    /// Records how an attempt ended. A row already `delivered` stays so (another sender whose lease
    /// overlapped succeeded first).
    fn finish(&self, delivery_id: &str, outcome: &Outcome, now_ms: i64) -> Result<()>;

    /// When the next pending row of `endpoints` is due, if any.
    fn next_due(&self, endpoints: &[String]) -> Result<Option<i64>>;

    /// Every row, oldest first (inspection and tests).
    fn deliveries(&self) -> Result<Vec<Delivery>>;
}

/// Column list of [`Delivery`] reads, in the order [`delivery_from`] expects.
pub(crate) const DELIVERY_COLUMNS: &str =
    "delivery_id, alert_id, endpoint, state, attempts, next_attempt_at, last_status, last_error, created_at";

/// Builds a [`Delivery`] from the values of [`DELIVERY_COLUMNS`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn delivery_from(
    delivery_id: String,
    alert_id: String,
    endpoint: String,
    state: &str,
    attempts: i64,
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
) -> Result<Delivery> {
    Ok(Delivery {
        delivery_id,
        alert_id,
        endpoint,
        state: DeliveryState::parse(state)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: from_ms(next_attempt_at),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error,
        created_at: from_ms(created_at),
    })
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Opens the outbox in the store a ledger URL names, on its own connection.
pub(crate) fn open(url: &str) -> Result<Box<dyn OutboxStore>> {
    let scheme = url.split(':').next().unwrap_or("");
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(super::sqlite::SqliteOutbox::open(&crate::ledger::path_of(url, scheme)?)?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Box::new(super::postgres::PgOutbox::connect(url)?)),
        _ => Err(Error::config(
            "store",
            crate::ledger::health::redact_credentials(url),
            "webhooks keep their outbox in a SQLite or PostgreSQL ledger store (this build or scheme has neither)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_and_differ_per_endpoint() {
        // `python3 -c 'import hashlib; print(hashlib.sha256(b"lim_1:user_id=u1:2026-12-02:0.8\nabc").hexdigest()[:32])'`
        assert_eq!(delivery_id("lim_1:user_id=u1:2026-12-02:0.8", "abc"), "dlv_9d469dc4c6316fb1912bc2efc3468bc8");
        assert_ne!(delivery_id("a", "e1"), delivery_id("a", "e2"));
    }
}
