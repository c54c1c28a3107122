//! What an operator sees of a ledger: the [`LedgerHealth`] snapshot (cheap enough for a `/health`
//! endpoint) and the [`Notice`]s the bindings turn into log lines — one warning when the store starts
//! failing, at most one reminder per `reminder_interval` while it stays down, one info line once it
//! is back and the spill has been replayed. The decisions live here so that every binding logs the
//! same things at the same moments; the bindings only route notices to their logger.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Error;

/// What the ledger last learned about its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// Nothing has been written or checked yet.
    #[default]
    Unknown,
    Up,
    /// The last write (after its retries) or check failed; events go to the spill directory.
    Down,
}

/// A snapshot of a ledger's state, see [`super::Ledger::health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerHealth {
    /// The store URL with any password replaced by `***` (`custom` for a caller's store).
    pub store: String,
    pub store_state: StoreState,
    /// Events accepted by `record` and still in memory (queue and open batch).
    pub queued_events: u64,
    /// Events in the spill directory waiting for the store (in `sync` durability: the write-ahead
    /// journal not yet moved into the store).
    pub spilled_events: u64,
    /// Timestamp of the oldest spilled event, and its age in seconds.
    pub oldest_spilled_at: Option<DateTime<Utc>>,
    pub oldest_spilled_age_secs: Option<u64>,
    /// The last store or spill error (credentials redacted), and when it happened.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Since when the store has been failing, while it is.
    pub down_since: Option<DateTime<Utc>>,
    /// `record` calls that returned `Ok` since start.
    pub recorded_events: u64,
    /// Events the store confirmed as newly written since start.
    pub written_events: u64,
    pub spill_dir: String,
}

/// How loud a notice is; bindings map it to their logger's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeLevel {
    Info,
    Warning,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The store could not be reached when the ledger started.
    StoreUnreachable,
    /// The store started failing; events now go to the spill directory.
    StoreDown,
    /// The store is still failing (at most one per reminder interval).
    StoreStillDown,
    /// The store is back and everything spilled meanwhile has been replayed.
    StoreRecovered,
    /// A `warn` (warning) or `log` (info) spend limit was reached; the call went ahead.
    SpendLimitReached,
    /// The spend store failed during a call's check or settlement; the call went ahead unchecked
    /// (only a deliberate refusal stops a call).
    SpendStoreFailed,
}

/// One message for the operator. `message` is complete and safe to log (no credentials). Spend notices
/// ([`crate::spend`]) leave the store counters at 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub level: NoticeLevel,
    pub kind: NoticeKind,
    pub message: String,
    pub at: DateTime<Utc>,
    /// The error behind a warning (redacted).
    pub error: Option<String>,
    pub spilled_events: u64,
    pub queued_events: u64,
    /// For `store_recovered`: events replayed from the spill since the store went down.
    pub replayed_events: u64,
    /// For `store_still_down` / `store_recovered`: how long the store has been (was) down.
    pub down_secs: Option<u64>,
}

/// Notices kept for a binding that does not drain them (oldest dropped first).
const MAX_NOTICES: usize = 64;

#[derive(Debug, Default)]
struct MonitorState {
    state: StoreState,
    down_since: Option<(Instant, DateTime<Utc>)>,
    last_reminder: Option<Instant>,
    last_error: Option<(String, DateTime<Utc>)>,
    replayed_while_down: u64,
    notices: VecDeque<Notice>,
}

/// The store's state machine and the notice queue, shared by the writer (which reports what
/// happens) and the ledger's callers (who read health and drain notices).
#[derive(Debug)]
pub(super) struct Monitor {
    store: String,
    spill_dir: String,
    reminder_interval: Duration,
    state: Mutex<MonitorState>,
    arrived: Condvar,
}

/// Counts the writer passes along with what happened.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub spilled: u64,
    pub queued: u64,
}

impl Monitor {
    pub(super) fn new(store: String, spill_dir: String, reminder_interval: Duration) -> Self {
        Self {
            store,
            spill_dir,
            reminder_interval,
            state: Mutex::new(MonitorState::default()),
            arrived: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MonitorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn store(&self) -> &str {
        &self.store
    }

    pub(super) fn spill_dir(&self) -> &str {
        &self.spill_dir
    }

    pub(super) fn state(&self) -> StoreState {
        self.lock().state
    }

    /// Fills the monitor's part of a health snapshot.
    pub(super) fn fill(&self, h: &mut LedgerHealth) {
        let s = self.lock();
        h.store_state = s.state;
        h.down_since = s.down_since.map(|d| d.1);
        h.last_error = s.last_error.as_ref().map(|e| e.0.clone());
        h.last_error_at = s.last_error.as_ref().map(|e| e.1);
    }

    /// An error worth remembering that does not (yet) mean the store is down, e.g. a retried write.
    pub(super) fn error(&self, err: &Error) {
        self.lock().last_error = Some((redact_credentials(&err.to_string()), Utc::now()));
    }

    /// The store failed for good (a batch spilled, a replay or a start-up check failed).
    pub(super) fn store_failed(&self, err: &Error, at_start: bool, counts: Counts) {
        let mut s = self.lock();
        let error = redact_credentials(&err.to_string());
        let now = Instant::now();
        s.last_error = Some((error.clone(), Utc::now()));
        let notice = if s.state != StoreState::Down {
            s.state = StoreState::Down;
            s.down_since = Some((now, Utc::now()));
            s.last_reminder = Some(now);
            s.replayed_while_down = 0;
            let (kind, what) = if at_start {
                (NoticeKind::StoreUnreachable, "cannot be reached at start")
            } else {
                (NoticeKind::StoreDown, "is failing")
            };
            let message = format!(
                "llmledger: the ledger store {} {what} ({error}); events are kept in the spill directory {} \
                 and will be written when it is back",
                self.store, self.spill_dir
            );
            Some((kind, message, None))
        } else if s.last_reminder.is_none_or(|t| now.duration_since(t) >= self.reminder_interval) {
            s.last_reminder = Some(now);
            let down = s.down_since.map_or(0, |d| now.duration_since(d.0).as_secs());
            let message = format!(
                "llmledger: the ledger store {} is still failing after {down} s ({error}); {} events wait in \
                 the spill directory {}, {} in memory",
                self.store, counts.spilled, self.spill_dir, counts.queued
            );
            Some((NoticeKind::StoreStillDown, message, Some(down)))
        } else {
            None
        };
        if let Some((kind, message, down_secs)) = notice {
            self.push(
                &mut s,
                Notice {
                    level: NoticeLevel::Warning,
                    kind,
                    message,
                    at: Utc::now(),
                    error: Some(error),
                    spilled_events: counts.spilled,
                    queued_events: counts.queued,
                    replayed_events: 0,
                    down_secs,
                },
            );
        }
    }

    /// Events moved from the spill into the store.
    pub(super) fn replayed(&self, n: u64) {
        self.lock().replayed_while_down += n;
    }

    /// A write or check succeeded. `spill_empty` says whether everything spilled has been replayed:
    /// only then is the store called back (and the info notice sent).
    pub(super) fn store_ok(&self, spill_empty: bool, counts: Counts) {
        let mut s = self.lock();
        match s.state {
            StoreState::Up => {}
            StoreState::Unknown => s.state = StoreState::Up,
            StoreState::Down if spill_empty => {
                let down = s.down_since.take().map_or(0, |d| d.0.elapsed().as_secs());
                s.state = StoreState::Up;
                let replayed = std::mem::take(&mut s.replayed_while_down);
                let message = format!(
                    "llmledger: the ledger store {} is back after {down} s; {replayed} spilled events were replayed",
                    self.store
                );
                self.push(
                    &mut s,
                    Notice {
                        level: NoticeLevel::Info,
                        kind: NoticeKind::StoreRecovered,
                        message,
                        at: Utc::now(),
                        error: None,
                        spilled_events: counts.spilled,
                        queued_events: counts.queued,
                        replayed_events: replayed,
                        down_secs: Some(down),
                    },
                );
            }
            StoreState::Down => {}
        }
    }

    fn push(&self, s: &mut MonitorState, notice: Notice) {
        if s.notices.len() >= MAX_NOTICES {
            s.notices.pop_front();
        }
        s.notices.push_back(notice);
        self.arrived.notify_all();
    }

    /// Takes the notices queued so far; with a timeout, first waits up to that long for one.
    pub(super) fn take(&self, wait: Option<Duration>) -> Vec<Notice> {
        let mut s = self.lock();
        if let Some(timeout) = wait {
            if s.notices.is_empty() {
                s = self.arrived.wait_timeout(s, timeout).map(|r| r.0).unwrap_or_else(|p| p.into_inner().0);
            }
        }
        s.notices.drain(..).collect()
    }

    /// Wakes every waiter in [`Monitor::take`] (at close).
    pub(super) fn wake(&self) {
        self.arrived.notify_all();
    }
}

/// Replaces the password of every `scheme://user:password@host` in `text` with `***`.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; credentials end at its last '@'.
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'').unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').map(|at| (&authority[..at], &authority[at..])) {
            Some((creds, host)) => match creds.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                    out.push_str(host);
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn redacts_every_password_in_a_text() {
        assert_eq!(
            redact_credentials("cannot reach postgres://u:s3cr@t@h:5/db; also mysql://a:b@c and http://h/x"),
            "cannot reach postgres://u:***@h:5/db; also mysql://a:***@c and http://h/x"
        );
        assert_eq!(redact_credentials("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_credentials("no url"), "no url");
    }

    #[test]
    fn one_warning_then_rate_limited_reminders_then_one_recovery() {
        let m = Monitor::new("postgres://u:***@h/db".into(), "/var/spill".into(), Duration::from_millis(50));
        let err = Error::new(ErrorCode::Store, "connection refused to postgres://u:pw@h/db");
        let counts = Counts { spilled: 10, queued: 2 };
        m.store_failed(&err, false, counts);
        m.store_failed(&err, false, counts);
        let first = m.take(None);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].level, first[0].kind), (NoticeLevel::Warning, NoticeKind::StoreDown));
        assert!(first[0].message.contains("/var/spill") && !first[0].message.contains("pw"), "{}", first[0].message);
        std::thread::sleep(Duration::from_millis(60));
        m.store_failed(&err, false, counts);
        m.store_failed(&err, false, counts);
        let reminders = m.take(None);
        assert_eq!(reminders.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![NoticeKind::StoreStillDown]);
        assert!(reminders[0].message.contains("10 events wait"), "{}", reminders[0].message);
        m.replayed(10);
        m.store_ok(false, counts);
        assert_eq!(m.state(), StoreState::Down, "not back until the spill is replayed");
        m.store_ok(true, Counts::default());
        let back = m.take(Some(Duration::from_secs(1)));
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].level, back[0].kind, back[0].replayed_events),
            (NoticeLevel::Info, NoticeKind::StoreRecovered, 10)
        );
        assert_eq!(m.state(), StoreState::Up);
        m.store_ok(true, Counts::default());
        assert!(m.take(None).is_empty());
    }
}
