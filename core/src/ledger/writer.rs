//! The background writer: one thread running a current-thread tokio runtime that drains the queue,
//! batches by size and time (waking once per batch under traffic, not once per event), writes through
//! the store (on tokio's blocking pool, so stores may block), retries with exponential backoff and
//! jitter, spills batches the store keeps refusing to the journal, and replays the journal when the
//! store is back (and at start, for what a previous run left). It tells the health monitor what
//! happens to the store; the monitor decides what the operator hears.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::Receiver;
use tokio::time::Instant;

use super::health::Counts;
use super::{Durability, Msg, Shared};
use crate::backoff::Backoff;
use crate::error::{Error, ErrorCode, Result};
use crate::event::UsageEvent;

/// How often the writer looks for journals of dead processes to adopt (a directory listing).
const ADOPT_INTERVAL: Duration = Duration::from_secs(30);

pub(super) fn spawn(shared: Arc<Shared>, rx: Receiver<Msg>) -> Result<std::thread::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the ledger writer runtime: {e}")))?;
    std::thread::Builder::new()
        .name("llmledger-writer".into())
        .spawn(move || rt.block_on(Writer::new(shared).run(rx)))
        .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the ledger writer thread: {e}")))
}

/// The delay before retry number `attempt` (0-based), by the ledger's backoff settings.
pub(super) fn backoff(config: &super::LedgerConfig, attempt: u32, rng: &mut u64) -> Duration {
    let schedule = Backoff {
        initial: config.initial_backoff,
        multiplier: config.backoff_multiplier,
        max: config.max_backoff,
        jitter: config.jitter,
    };
    schedule.delay(attempt, rng)
}

struct Writer {
    shared: Arc<Shared>,
    batch: Vec<UsageEvent>,
    batch_started: Instant,
    /// Events neither the store nor the journal accepted (disk full too); retried on every tick.
    held: Vec<UsageEvent>,
    /// The store failed a batch after all retries: try once per batch until a write succeeds.
    degraded: bool,
    next_drain: Instant,
    drain_failures: u32,
    next_adopt: Instant,
    rng: u64,
}

impl Writer {
    fn new(shared: Arc<Shared>) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed)
            ^ u64::from(std::process::id()).rotate_left(32);
        let cap = shared.config.batch_size;
        Self {
            shared,
            batch: Vec::with_capacity(cap),
            batch_started: Instant::now(),
            held: Vec::new(),
            degraded: false,
            next_drain: Instant::now(),
            drain_failures: 0,
            next_adopt: Instant::now() + ADOPT_INTERVAL,
            rng: seed,
        }
    }

    async fn run(mut self, mut rx: Receiver<Msg>) {
        // Check the store now, so an unreachable one is reported at start rather than at the first
        // failed write; then whatever a previous run left in the spill goes in first.
        self.check_store(true).await;
        if self.shared.journal.is_dirty() && !self.store_down() {
            let _ = self.drain_journal().await;
        }
        loop {
            // Take everything queued, in order.
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        if self.handle(msg).await.is_break() {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        // Every sender is gone without a close: still write what we have.
                        let _ = self.flush_all().await;
                        return;
                    }
                }
            }
            let deadline = self.deadline();
            if deadline.is_some_and(|d| d <= Instant::now()) {
                self.tick().await;
                continue;
            }
            if self.batch.is_empty() {
                // Idle: the first event wakes the writer (a service making a few calls a second costs
                // one wake per event; under traffic this is one wake per batch).
                let msg = match deadline {
                    Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                        Ok(m) => m,
                        Err(_) => continue,
                    },
                    None => rx.recv().await,
                };
                let done = match msg {
                    Some(m) => self.handle(m).await.is_break(),
                    None => {
                        let _ = self.flush_all().await;
                        true
                    }
                };
                if done {
                    return;
                }
            } else {
                // A batch is open: events queue up without waking the writer until a batch's worth is
                // waiting or a flush or close is asked for (`Ledger::record` and `round_trip` notify),
                // else it sleeps to the batch's deadline (at most the flush interval away).
                let at = deadline.unwrap_or_else(|| self.batch_started + self.shared.config.flush_interval);
                let shared = Arc::clone(&self.shared);
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
        }
    }

    /// Handles one message; `Break` once the writer must stop (closed).
    async fn handle(&mut self, msg: Msg) -> ControlFlow<()> {
        match msg {
            Msg::Event(e) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                if self.batch.is_empty() {
                    self.batch_started = Instant::now();
                }
                self.batch.push(*e);
                self.note_in_memory();
                if self.batch.len() >= self.shared.config.batch_size {
                    let _ = self.write_out().await;
                }
            }
            Msg::Flush(reply) => {
                let r = self.flush_all().await;
                let _ = reply.send(r);
            }
            Msg::Close(reply) => {
                let r = self.flush_all().await;
                if r.is_ok() {
                    self.shared.journal.remove_if_empty();
                }
                let _ = reply.send(r);
                self.shared.monitor.wake();
                return ControlFlow::Break(());
            }
        }
        if self.deadline().is_some_and(|d| d <= Instant::now()) {
            self.tick().await;
        }
        ControlFlow::Continue(())
    }

    /// When the writer must wake up without a message.
    fn deadline(&self) -> Option<Instant> {
        let batch = (!self.batch.is_empty()).then(|| self.batch_started + self.shared.config.flush_interval);
        // In sync mode the journal is the queue, filled without messages: poll it every interval.
        // A store that is down with nothing waiting is re-checked on the same schedule.
        let poll = self.shared.config.durability == Durability::Sync || self.store_down();
        let drain = (poll || self.shared.journal.is_dirty() || !self.held.is_empty()).then_some(self.next_drain);
        let wake = [batch, drain, Some(self.next_adopt)];
        wake.into_iter().flatten().min()
    }

    fn store_down(&self) -> bool {
        self.shared.monitor.state() == super::StoreState::Down
    }

    fn counts(&self) -> Counts {
        Counts { spilled: self.shared.journal.tally().events, queued: self.shared.in_writer.load(Ordering::Relaxed) }
    }

    /// Publishes how many events the writer holds in memory (for `health`).
    fn note_in_memory(&self) {
        self.shared.in_writer.store((self.batch.len() + self.held.len()) as u64, Ordering::Relaxed);
    }

    /// Tells the monitor the store took a write; it is "back" only once nothing waits in the spill.
    fn note_store_ok(&self) {
        let spill_empty = !self.shared.journal.is_dirty() && self.held.is_empty();
        self.shared.monitor.store_ok(spill_empty, self.counts());
    }

    fn note_store_failed(&self, err: &Error, at_start: bool) {
        self.shared.monitor.store_failed(err, at_start, self.counts());
    }

    /// Asks the store whether it can be reached (at start, and while it is down with nothing to write).
    async fn check_store(&mut self, at_start: bool) {
        let store = Arc::clone(&self.shared.store);
        let r = tokio::task::spawn_blocking(move || store.check())
            .await
            .unwrap_or_else(|e| Err(Error::new(ErrorCode::Store, format!("the store panicked: {e}"))));
        match r {
            Ok(()) => {
                self.drain_failures = 0;
                self.note_store_ok();
            }
            Err(e) => {
                self.note_store_failed(&e, at_start);
                self.next_drain = Instant::now() + backoff(&self.shared.config, self.drain_failures, &mut self.rng);
                self.drain_failures = self.drain_failures.saturating_add(1);
            }
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        if !self.batch.is_empty() && self.batch_started + self.shared.config.flush_interval <= now {
            let _ = self.write_out().await;
        }
        if self.next_adopt <= now {
            self.next_adopt = now + ADOPT_INTERVAL;
            // A process that died while sharing our spill directory left journals: take them over.
            if let Err(e) = self.shared.journal.adopt_orphans() {
                self.shared.monitor.error(&e);
            }
        }
        if self.next_drain <= now {
            if self.shared.journal.is_dirty() || !self.held.is_empty() {
                let _ = self.retry_held().await;
                let _ = self.drain_journal().await;
            } else if self.store_down() {
                self.check_store(false).await;
            } else {
                self.next_drain = now + self.shared.config.flush_interval;
            }
        }
    }

    /// Everything so far into the store; an error says what is left in the spill file.
    async fn flush_all(&mut self) -> Result<()> {
        let mut first_err = None;
        if !self.batch.is_empty() {
            first_err = self.write_out().await.err();
        }
        if let Err(e) = self.retry_held().await {
            first_err.get_or_insert(e);
        }
        if self.shared.journal.is_dirty() {
            if let Err(e) = self.drain_journal().await {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => {
                let dir = self.shared.journal.dir().display().to_string();
                let held = if self.held.is_empty() {
                    String::new()
                } else {
                    format!(" ({} events could not be spilled either and are held in memory)", self.held.len())
                };
                Err(Error::new(
                    ErrorCode::Store,
                    format!(
                        "the store did not take every event; the rest are in the spill directory {dir} and will be replayed{held}: {e}"
                    ),
                )
                .with_field("spill_dir")
                .with_value(dir))
            }
        }
    }

    async fn store_write(&self, batch: Vec<UsageEvent>) -> (Vec<UsageEvent>, Result<usize>) {
        let store = Arc::clone(&self.shared.store);
        let joined = tokio::task::spawn_blocking(move || {
            let r = store.write_batch(&batch);
            (batch, r)
        })
        .await;
        match joined {
            Ok(pair) => pair,
            // The store panicked and took the batch with it; the panic is a store bug we cannot
            // recover events from, so report it loudly.
            Err(e) => (Vec::new(), Err(Error::new(ErrorCode::Store, format!("the store panicked: {e}")))),
        }
    }

    /// Writes the current batch with retries; spills it when the store keeps failing.
    async fn write_out(&mut self) -> Result<()> {
        // Nothing is queued into `self.batch` while this task writes; the written batch's allocation comes
        // back as the next one (a fresh one per batch would page-fault its way through megabytes).
        let mut batch = std::mem::take(&mut self.batch);
        let attempts = if self.degraded { 1 } else { self.shared.config.max_retries + 1 };
        let mut last = None;
        for attempt in 0..attempts {
            let (b, r) = self.store_write(batch).await;
            batch = b;
            match r {
                Ok(n) => {
                    batch.clear();
                    self.batch = batch;
                    self.shared.inserted.fetch_add(n as u64, Ordering::Relaxed);
                    if self.degraded {
                        // The store is back: replay the journal right away.
                        self.degraded = false;
                        self.drain_failures = 0;
                        self.next_drain = Instant::now();
                    }
                    self.note_in_memory();
                    self.note_store_ok();
                    return Ok(());
                }
                Err(e) => {
                    self.shared.monitor.error(&e);
                    last = Some(e);
                }
            }
            if attempt + 1 < attempts {
                tokio::time::sleep(backoff(&self.shared.config, attempt, &mut self.rng)).await;
            }
        }
        let err = last.unwrap_or_else(|| Error::new(ErrorCode::Store, "store write failed"));
        self.spill(batch);
        self.batch.reserve(self.shared.config.batch_size);
        self.degraded = true;
        self.note_store_failed(&err, false);
        Err(err)
    }

    fn spill(&mut self, batch: Vec<UsageEvent>) {
        if batch.is_empty() {
            return;
        }
        match self.shared.journal.append_batch(&batch, true) {
            Ok(()) => {
                self.shared.spilled.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.shared.monitor.error(&e);
                self.held.extend(batch);
            }
        }
        self.note_in_memory();
        self.schedule_drain_after_failure();
    }

    fn schedule_drain_after_failure(&mut self) {
        if self.next_drain <= Instant::now() {
            self.next_drain = Instant::now() + backoff(&self.shared.config, self.drain_failures, &mut self.rng);
        }
    }

    /// Retries events that could not even be spilled.
    async fn retry_held(&mut self) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        let (held, r) = self.store_write(held).await;
        match r {
            Ok(n) => {
                self.shared.inserted.fetch_add(n as u64, Ordering::Relaxed);
                self.note_in_memory();
                Ok(())
            }
            Err(e) => {
                self.spill(held);
                Err(e)
            }
        }
    }

    /// Replays the journal into the store; on failure schedules the next try with backoff.
    async fn drain_journal(&mut self) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        // While the store is down, another process sharing the spill directory may die with events in
        // its journal: look for such orphans on every try, so they go in with ours when the store is back.
        let adopt = self.store_down();
        let joined = tokio::task::spawn_blocking(move || {
            if adopt {
                if let Err(e) = shared.journal.adopt_orphans() {
                    shared.monitor.error(&e);
                }
            }
            let mut inserted = 0u64;
            let r = shared.journal.replay(shared.config.batch_size, |chunk| {
                inserted += shared.store.write_batch(chunk)? as u64;
                Ok(())
            });
            shared.inserted.fetch_add(inserted, Ordering::Relaxed);
            r
        })
        .await;
        let r = joined.unwrap_or_else(|e| Err(Error::new(ErrorCode::Store, format!("the store panicked: {e}"))));
        let interval = self.shared.config.flush_interval;
        match r {
            Ok(n) => {
                self.drain_failures = 0;
                self.degraded = false;
                self.next_drain = Instant::now() + interval;
                self.shared.monitor.replayed(n);
                self.note_store_ok();
                Ok(())
            }
            Err(e) => {
                self.next_drain = Instant::now() + backoff(&self.shared.config, self.drain_failures, &mut self.rng);
                self.drain_failures = self.drain_failures.saturating_add(1);
                if self.shared.config.durability == Durability::Batch {
                    self.degraded = true;
                }
                self.note_store_failed(&e, false);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerConfig;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let cfg = LedgerConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            jitter: false,
            ..LedgerConfig::default()
        };
        let mut rng = 1;
        let plain: Vec<u128> = (0..6).map(|a| backoff(&cfg, a, &mut rng).as_millis()).collect();
        assert_eq!(plain, vec![10, 20, 40, 80, 100, 100]);
        let jittered = LedgerConfig { jitter: true, ..cfg };
        for a in 0..6u32 {
            let d = backoff(&jittered, a, &mut rng).as_millis();
            let full = plain[a as usize];
            assert!(d >= full / 2 && d <= full, "attempt {a}: {d} not in [{}, {full}]", full / 2);
        }
    }
}
