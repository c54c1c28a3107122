//! Moving fired spend alerts from the store to where they are delivered: the tracker's one background
//! pump, written once for every binding.
//!
//! [`crate::spend`] stores each alert in the transaction that fired it (unique on its id, so it fires
//! once per rule, scope and period across processes) and keeps it *pending* until someone marks it
//! handed on. The pump takes pending alerts ([`Spend::pending_alerts`]), enqueues each into the
//! webhook outbox ([`Webhooks::enqueue`], when endpoints are configured), hands each to the in-process
//! sink (the Python `on_alert` callable, the Node `onAlert` function), and only then marks them
//! ([`Spend::mark_alerts_enqueued`]). It sleeps until a settlement or refusal of this tracker fires an
//! alert ([`Spend::wait_for_alerts`], no busy polling) or the slow poll comes round (alerts fired by
//! other processes sharing the store, or left pending by a process that died).
//!
//! **Delivery guarantee.** Webhooks: exactly once after the receiver dedupes by delivery id — the
//! outbox is durable and enqueueing is idempotent per (alert, endpoint), so an alert enqueued twice
//! (a crash before marking, two processes' pumps) is still one delivery id. The in-process sink: at
//! least once — a process that dies after the sink ran but before marking hands the alert to the next
//! pump that runs on the store (possibly in another process), and two processes' pumps can both hand
//! on an alert neither had marked yet. A pump with nowhere to deliver (no sink, no webhooks) does not
//! run and marks nothing, so a process without a callback never swallows alerts another one wants.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::alert::AlertEvent;
use crate::error::{Error, ErrorCode, Result};
use crate::spend::{store_failed_notice, Spend};
use crate::webhook::Webhooks;

/// The in-process receiver of alerts. Called on the pump's thread, one alert at a time; it must not
/// block for long (a binding queues the alert to its own thread or takes its interpreter lock).
pub type AlertSink = Box<dyn Fn(&AlertEvent) + Send + Sync>;

/// The sink as the pump keeps it: shared, so a round calls it without holding the lock.
type SharedSink = Arc<dyn Fn(&AlertEvent) + Send + Sync>;

/// Alerts read per round.
const BATCH: u32 = 100;

thread_local! {
    /// True on a thread while it hands alerts to the sink: a sink that calls back into the tracker
    /// (`flush`, `close`) must not wait for the round it is part of.
    static IN_ROUND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The default of [`crate::tracker::TrackerOptions::alert_poll_ms`].
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// The pump of one tracker: its destinations and, once it has any, its thread.
pub(crate) struct AlertPump {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AlertPump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertPump")
            .field("webhooks", &self.shared.webhooks.is_some())
            .field("sink", &self.shared.has_sink())
            .finish()
    }
}

struct Shared {
    spend: Spend,
    webhooks: Option<Webhooks>,
    sink: RwLock<Option<SharedSink>>,
    poll: Duration,
    closing: AtomicBool,
    /// One round at a time (the thread's and [`AlertPump::deliver_now`]'s), so one process hands an
    /// alert to its sink once.
    round: Mutex<()>,
    /// The last round failed: the next failure is not reported again.
    failing: AtomicBool,
}

impl Shared {
    fn has_sink(&self) -> bool {
        self.sink.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Delivers every pending alert; returns how many were handed on. Without a destination, none.
    fn round(&self) -> Result<usize> {
        if IN_ROUND.with(std::cell::Cell::get) {
            return Ok(0);
        }
        let _one = self.round.lock().unwrap_or_else(|p| p.into_inner());
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        if sink.is_none() && self.webhooks.is_none() {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let alerts = self.spend.pending_alerts(BATCH)?;
            if alerts.is_empty() {
                return Ok(total);
            }
            // Durable first: once enqueued, a crash cannot lose the webhook, whatever the sink does.
            if let Some(webhooks) = &self.webhooks {
                for alert in &alerts {
                    webhooks.enqueue(alert)?;
                }
            }
            if let Some(sink) = &sink {
                IN_ROUND.with(|r| r.set(true));
                for alert in &alerts {
                    // A sink that panics is the caller's bug; it must not stop the pump. The alert
                    // still counts as handed on (it would panic again).
                    let _ = catch_unwind(AssertUnwindSafe(|| sink(alert)));
                }
                IN_ROUND.with(|r| r.set(false));
            }
            let ids: Vec<String> = alerts.iter().map(|a| a.alert_id.clone()).collect();
            self.spend.mark_alerts_enqueued(&ids)?;
            total += alerts.len();
            if alerts.len() < BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// A round whose failure becomes one notice per outage (the store is down, the outbox failed).
    fn round_reported(&self) -> usize {
        match self.round() {
            Ok(n) => {
                self.failing.store(false, Ordering::Relaxed);
                n
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    self.spend.notice(store_failed_notice("deliver spend alerts", &e));
                }
                0
            }
        }
    }

    fn run(&self) {
        loop {
            let closing = self.closing.load(Ordering::Acquire);
            self.round_reported();
            if closing {
                return;
            }
            self.spend.wait_for_alerts(self.poll);
        }
    }
}

impl AlertPump {
    /// A pump over `spend`; its thread starts now when `webhooks` are configured, else with the
    /// first sink.
    pub(crate) fn new(spend: Spend, webhooks: Option<Webhooks>, poll: Duration) -> Result<Self> {
        let pump = Self {
            shared: Arc::new(Shared {
                spend,
                webhooks,
                sink: RwLock::new(None),
                poll,
                closing: AtomicBool::new(false),
                round: Mutex::new(()),
                failing: AtomicBool::new(false),
            }),
            thread: Mutex::new(None),
        };
        if pump.shared.webhooks.is_some() {
            pump.start()?;
        }
        Ok(pump)
    }

    fn start(&self) -> Result<()> {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_some() || self.shared.closing.load(Ordering::Acquire) {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("llmledger-alerts".into())
            .spawn(move || shared.run())
            .map_err(|e| Error::new(ErrorCode::Config, format!("cannot start the alert thread: {e}")))?;
        *thread = Some(handle);
        Ok(())
    }

    /// Sets (or with `None` removes) the in-process sink; the first one starts the thread.
    pub(crate) fn set_sink(&self, sink: Option<AlertSink>) -> Result<()> {
        let present = sink.is_some();
        *self.shared.sink.write().unwrap_or_else(|p| p.into_inner()) = sink.map(Arc::from);
        if present {
            self.start()?;
            // Alerts already pending reach the new sink without waiting for the poll.
            self.shared.spend.signal_alerts();
        }
        Ok(())
    }

    /// Runs one round on the caller's thread: every pending alert is enqueued and handed to the sink
    /// before this returns. Returns how many were handed on.
    pub(crate) fn deliver_now(&self) -> Result<usize> {
        self.shared.round()
    }

    /// Stops the thread after a last round, then closes the webhooks (which send what is due now).
    /// The sink is dropped: it may hold the binding's objects. Later calls do nothing. Called from the
    /// sink itself, it stops the thread without waiting for it.
    pub(crate) fn close(&self) -> Result<()> {
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared.spend.signal_alerts();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle.filter(|_| !IN_ROUND.with(std::cell::Cell::get)) {
            handle.join().map_err(|_| Error::new(ErrorCode::Store, "the alert thread panicked"))?;
        }
        *self.shared.sink.write().unwrap_or_else(|p| p.into_inner()) = None;
        match &self.shared.webhooks {
            Some(webhooks) if !IN_ROUND.with(std::cell::Cell::get) => webhooks.close(),
            _ => Ok(()),
        }
    }

    /// The webhook sender, when endpoints are configured (for its deliveries and stats).
    pub(crate) fn webhooks(&self) -> Option<&Webhooks> {
        self.shared.webhooks.as_ref()
    }
}

impl Drop for AlertPump {
    /// Stops the thread without waiting for it: a binding may drop the tracker while holding the lock
    /// its sink needs (Python's GIL). The thread ends after its round; the webhooks close with it.
    fn drop(&mut self) {
        if !self.shared.closing.swap(true, Ordering::AcqRel) {
            *self.shared.sink.write().unwrap_or_else(|p| p.into_inner()) = None;
            self.shared.spend.signal_alerts();
        }
    }
}
