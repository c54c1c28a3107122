//! Delivering spend alerts ([`crate::alert::AlertEvent`]) as signed HTTP webhooks.
//!
//! [`Webhooks`] owns the delivery side: [`Webhooks::enqueue`] writes one outbox row per configured
//! endpoint into the ledger's own store (SQLite or PostgreSQL, on a connection of its own), and a
//! background dispatcher sends due rows, retries failures with exponential backoff and jitter, and
//! turns a row that failed its last allowed attempt into a dead letter. The outbox is the durable
//! source: a crash or a receiver outage loses nothing, and the next [`Webhooks`] opened on the same
//! store (this process or another) carries on with what was pending.
//!
//! | file | owns |
//! |---|---|
//! | [`endpoint`] | a webhook URL and secret, validated and never shown |
//! | [`signature`] | the `llmledger-signature` header and [`verify_signature`] |
//! | [`outbox`] | the outbox rows, their states and the lease rule |
//! | `sqlite`, `postgres` | the outbox SQL of each store |
//! | `dispatcher` | the sending thread: HTTP, backoff, dead letter |
//!
//! Each request is a `POST` of the alert's JSON (the body is fixed at enqueue time, so every attempt
//! sends the same bytes) with `content-type: application/json` and the headers
//! [`SIGNATURE_HEADER`] (`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, signed at each
//! attempt), [`DELIVERY_ID_HEADER`] (one id per alert and endpoint, the same on every attempt: dedupe
//! on it) and [`ALERT_ID_HEADER`]. Delivery is at least once.
//!
//! Secrets and URLs never reach logs, errors, `Debug` or the outbox (rows name an endpoint by
//! [`WebhookEndpoint::key`]); failure reasons are short (`HTTP 500`, `timed out`) and scrubbed of the host.

mod dispatcher;
pub mod endpoint;
pub mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
pub mod signature;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use endpoint::{WebhookEndpoint, WebhookSpec};
pub use outbox::{delivery_id, Delivery, DeliveryState};
pub use signature::{signature_header, verify_signature, ALERT_ID_HEADER, DELIVERY_ID_HEADER, SIGNATURE_HEADER};

use crate::alert::AlertEvent;
use crate::error::{Error, ErrorCode, Result};
use crate::ledger::health::redact_credentials;
use outbox::{NewDelivery, OutboxStore};

/// Webhook settings. `Default` gives the documented defaults and no endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub endpoints: Vec<WebhookEndpoint>,
    /// Attempts per delivery before it is a dead letter (12: with the default backoff the last one is
    /// at most 2 h 25 min after the first — 5 + 10 + … + 2,560 s, then 3,600 s — and sooner with jitter).
    pub max_attempts: u32,
    /// Delay after the first failed attempt (5 s); doubled after each next one, capped at `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest delay between two attempts (1 h).
    pub max_backoff: Duration,
    /// Draw each delay uniformly from `[d/2, d]` so many senders do not retry in step (true).
    pub jitter: bool,
    /// Whole-request timeout, connecting included (10 s).
    pub request_timeout: Duration,
    /// Connect timeout (5 s).
    pub connect_timeout: Duration,
    /// How often the dispatcher looks for rows it was not told about (other processes' alerts) (5 s).
    pub poll_interval: Duration,
    /// Deliveries sent concurrently per round (32).
    pub batch_size: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            max_attempts: 12,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            jitter: true,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_secs(5),
            batch_size: 32,
        }
    }
}

impl WebhookConfig {
    fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::config("max_attempts", 0, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", 0, "must be at least 1"));
        }
        for (field, d) in [
            ("initial_backoff", self.initial_backoff),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("poll_interval", self.poll_interval),
        ] {
            if d.is_zero() {
                return Err(Error::config(field, "0", "must be positive"));
            }
        }
        if self.max_backoff < self.initial_backoff {
            return Err(Error::config(
                "max_backoff",
                format!("{:?}", self.max_backoff),
                "must be at least initial_backoff",
            ));
        }
        Ok(())
    }
}

/// Counters since [`Webhooks::open`].
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct WebhookStats {
    /// Attempts answered with a 2xx.
    pub delivered: u64,
    /// Attempts that failed (each retried, or a dead letter).
    pub failed_attempts: u64,
    /// Deliveries that became dead letters.
    pub dead: u64,
    /// Outbox reads or writes that failed (the dispatcher retries them).
    pub store_errors: u64,
    /// The last of those errors (credentials redacted).
    pub last_store_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead: AtomicU64,
    store_errors: AtomicU64,
}

/// State shared by the handle and the dispatcher thread.
#[derive(Debug)]
struct Shared {
    outbox: Box<dyn OutboxStore>,
    config: WebhookConfig,
    endpoint_keys: Vec<String>,
    closing: AtomicBool,
    /// Set by `enqueue` and `close` to cut the dispatcher's wait short.
    wake: Mutex<bool>,
    wake_cv: Condvar,
    stats: Counters,
    last_store_error: Mutex<Option<String>>,
}

impl Shared {
    fn notify(&self) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake_cv.notify_all();
    }

    fn wait_for_work(&self, wait: Duration) {
        let guard = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        let (mut woken, _) =
            self.wake_cv.wait_timeout_while(guard, wait, |woken| !*woken).unwrap_or_else(|p| p.into_inner());
        *woken = false;
    }

    fn store_error(&self, e: &Error) {
        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_store_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(redact_credentials(&e.to_string()));
        // Back off a little so a store that is down is not hammered.
        std::thread::sleep(Duration::from_millis(200).min(self.config.poll_interval));
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The webhook sender of one process: the outbox and its dispatcher thread. Dropping it closes it.
#[derive(Debug)]
pub struct Webhooks {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Webhooks {
    /// Opens the outbox in the store `url` names (the ledger's URL: `sqlite:…` or `postgres://…`), on
    /// its own connection, and starts the dispatcher, which first resumes what earlier runs left
    /// pending for these endpoints. A bad setting is an [`ErrorCode::Config`] error naming it; a
    /// PostgreSQL server that is down is not an error (the dispatcher keeps trying, see [`Webhooks::stats`]).
    pub fn open(url: &str, config: WebhookConfig) -> Result<Self> {
        config.validate()?;
        let outbox = outbox::open(url)?;
        let client = dispatcher::http_client(&config)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Config, format!("cannot start the webhook runtime: {e}")))?;
        let mut endpoint_keys: Vec<String> = config.endpoints.iter().map(|e| e.key().to_string()).collect();
        endpoint_keys.sort();
        endpoint_keys.dedup();
        let shared = Arc::new(Shared {
            outbox,
            config,
            endpoint_keys,
            closing: AtomicBool::new(false),
            wake: Mutex::new(false),
            wake_cv: Condvar::new(),
            stats: Counters::default(),
            last_store_error: Mutex::new(None),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("llmledger-webhooks".into())
            .spawn(move || dispatcher::run(&thread_shared, &rt, &client))
            .map_err(|e| Error::new(ErrorCode::Config, format!("cannot start the webhook thread: {e}")))?;
        Ok(Self { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Queues `alert` for every configured endpoint, durably (one transaction), and wakes the
    /// dispatcher. Idempotent on (alert id, endpoint): enqueueing an alert again — a retry, another
    /// process, a replay after a crash — adds nothing. Returns how many deliveries were new.
    pub fn enqueue(&self, alert: &AlertEvent) -> Result<usize> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Closed, "webhooks are closed"));
        }
        if alert.alert_id.is_empty() {
            return Err(Error::invalid_value("alert_id", "(empty)", "an alert needs an id"));
        }
        let body = serde_json::to_string(alert)?;
        let rows: Vec<NewDelivery> = self
            .shared
            .endpoint_keys
            .iter()
            .map(|key| NewDelivery {
                delivery_id: delivery_id(&alert.alert_id, key),
                alert_id: alert.alert_id.clone(),
                endpoint: key.clone(),
                body: body.clone(),
            })
            .collect();
        let new = self.shared.outbox.enqueue(&rows, now_ms())?;
        if new > 0 {
            self.shared.notify();
        }
        Ok(new)
    }

    /// Every outbox row in the store (all endpoints, all states), oldest first.
    pub fn deliveries(&self) -> Result<Vec<Delivery>> {
        self.shared.outbox.deliveries()
    }

    pub fn stats(&self) -> WebhookStats {
        let c = &self.shared.stats;
        WebhookStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            dead: c.dead.load(Ordering::Relaxed),
            store_errors: c.store_errors.load(Ordering::Relaxed),
            last_store_error: self.shared.last_store_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Sends what is due now (each due row gets its attempt; failures keep their retry time in the
    /// outbox for the next run) and stops the dispatcher. Later calls and [`Webhooks::enqueue`] return
    /// [`ErrorCode::Closed`].
    pub fn close(&self) -> Result<()> {
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            return Err(Error::new(ErrorCode::Closed, "webhooks are already closed"));
        }
        self.shared.notify();
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            handle.join().map_err(|_| Error::new(ErrorCode::Store, "the webhook dispatcher thread panicked"))?;
        }
        Ok(())
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        if !self.shared.closing.load(Ordering::Acquire) {
            let _ = self.close();
        }
    }
}
