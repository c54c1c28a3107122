//! Recording usage events: the [`Ledger`] (a bounded queue drained by a background batching writer,
//! with retry, spill-to-disk and replay), the public [`Store`] trait and the built-in stores.
//!
//! Store URLs (see [`Ledger::open`]):
//!
//! | URL | store |
//! |---|---|
//! | `sqlite:///abs/path.db`, `sqlite://./rel.db`, `sqlite:rel.db` | embedded SQLite (the default, [`Ledger::DEFAULT_URL`]) |
//! | `postgres://user@host:port/db`, `postgresql://…` | PostgreSQL (feature `postgres`) |
//! | `mysql://user:pass@host:port/db`, `mariadb://…` | MySQL or MariaDB (feature `mysql`) |
//! | `jsonl:///abs/dir`, `jsonl://./dir`, `jsonl:dir` | append-only JSON-lines files in a directory |
//! | `memory://` | in-process, for tests |
//!
//! The path of a `sqlite`/`jsonl` URL is everything after `scheme:` with a leading `//` removed, so
//! three slashes give an absolute path; `sqlite:///./x.db` (a `.` or `..` first segment) is relative.
//!
//! Durability (`LedgerConfig::durability`):
//! - [`Durability::Batch`] (default): `record` only enqueues; the loss window if the process is killed
//!   is the events still in the queue or in the batch being written. Everything `flush` returned for
//!   is in the store (or, with an error saying so, in the spill file).
//! - [`Durability::Sync`]: `record` appends the event to the spill file used as a write-ahead log and
//!   fsyncs it (group commit) before returning; the writer moves the log into the store. A SIGKILL at any
//!   moment loses no event whose `record` returned.
//!
//! The spill directory (`LedgerConfig::spill_dir`, else `$LLMLEDGER_SPILL_DIR`, else a default) must
//! outlive the process for spilled events to survive a restart: SQLite and JSONL stores keep it beside
//! their file, PostgreSQL, MySQL and custom stores in the per-user state directory ([`default_state_dir`]),
//! never the temp directory, which many hosts empty at boot. Several processes may share it (see
//! [`spill`]). [`Ledger::health`] and [`Ledger::take_notices`] show an operator what is going on.

pub mod health;
pub mod jsonl;
pub mod memory;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod reprice;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod row;
pub mod spill;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono_tz::Tz;

// The bindings still import `Attribution` from here; they switch to `crate::event` (then this goes).
pub use crate::event::Attribution;
pub use health::{LedgerHealth, Notice, NoticeKind, NoticeLevel, StoreState};
pub use memory::MemoryStore;
pub use reprice::{RepriceChange, RepriceFilter, RepriceReport};
pub use spill::{Journal, SpillSummary};

use crate::error::{Error, ErrorCode, Result};
use crate::event::UsageEvent;
use crate::report::{parse_tz, ReportRow, UsageQuery};
use crate::rollup::RollupDiff;
use health::redact_credentials;

/// Where events are kept. Implement it to add a store (MySQL, ClickHouse, …); the writer calls it
/// from one thread at a time, queries may come from any thread.
pub trait Store: Send + Sync + fmt::Debug {
    /// Writes `events` atomically and idempotently: an `event_id` already stored is ignored (and
    /// must not be counted again in the rollups, which are updated in the same transaction).
    /// Returns how many events were newly inserted.
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize>;

    /// Answers a report query.
    fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>>;

    /// Recomputes the rollups from raw events and returns every row that differs (empty = consistent;
    /// stores without rollups return an empty list).
    fn verify(&self) -> Result<Vec<RollupDiff>>;

    /// Every stored event id (for verification tools and tests; not for hot paths).
    fn event_ids(&self) -> Result<Vec<String>>;

    /// Checks that the store can be reached (the ledger calls it at start and while the store is
    /// down and nothing waits to be written). Stores that cannot fail this way keep the default.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// The name of this store's journals in a spill directory: stores that share a directory need
    /// different names, and a store must keep its name across restarts to get its spill replayed.
    fn spill_name(&self) -> String {
        "custom".into()
    }

    /// Re-prices the events `filter` selects with `prices`, updating their rollups in the same
    /// transaction and keeping each old figure in an audit trail (rules: [`reprice`]). Stores that
    /// cannot rewrite events return [`ErrorCode::Unsupported`].
    fn reprice(&self, prices: &crate::pricing::PriceDb, filter: &RepriceFilter) -> Result<RepriceReport> {
        let _ = (prices, filter);
        Err(Error::new(
            ErrorCode::Unsupported,
            "this store cannot re-price stored events (SQLite, PostgreSQL and MySQL can)",
        ))
    }
}

/// When `record` may return, see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Batch,
    Sync,
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "batch" => Ok(Self::Batch),
            "sync" => Ok(Self::Sync),
            other => Err(Error::config("durability", other, "expected \"batch\" or \"sync\"")),
        }
    }
}

/// What `record` does when the in-memory queue is full (Batch durability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullQueuePolicy {
    /// Append the event to the spill file (no fsync; survives a process kill, not a power loss); the
    /// writer replays it. Memory stays bounded by `queue_capacity`.
    #[default]
    Spill,
    /// Wait for room in the queue.
    Block,
    /// Return an [`ErrorCode::Store`] error; the caller keeps the event.
    Error,
}

/// Ledger settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Events per store write (2,000: SQLite writes ~30 % more events per CPU second than with 500).
    pub batch_size: usize,
    /// Longest time an event waits in a partial batch (200 ms).
    pub flush_interval: Duration,
    /// Events held in memory before the full-queue policy applies (16,384 ≈ 10 MiB of events).
    pub queue_capacity: usize,
    /// Retries of a failed batch before it is spilled (5).
    pub max_retries: u32,
    /// First retry delay (50 ms); each next one is `multiplier` times longer, capped at `max_backoff`.
    pub initial_backoff: Duration,
    /// Cap of the retry delay (5 s); also the interval at which a spilled journal is retried.
    pub max_backoff: Duration,
    /// Backoff growth factor (2).
    pub backoff_multiplier: u32,
    /// Randomize each delay uniformly in `[d/2, d]` so many instances do not retry in step (true).
    pub jitter: bool,
    pub durability: Durability,
    /// Where the spill / write-ahead journals live (see the module docs). Default: `$LLMLEDGER_SPILL_DIR`,
    /// else beside the SQLite file or JSONL directory, else [`default_state_dir`]; the temp dir only
    /// for `memory://`.
    pub spill_dir: Option<PathBuf>,
    /// Least time between two "still failing" warnings while the store is down (60 s).
    pub reminder_interval: Duration,
    pub full_queue: FullQueuePolicy,
    /// IANA time zone of the daily/monthly rollups ("UTC").
    pub timezone: String,
    /// JSONL store: start a new file past this many bytes (64 MiB); files also rotate daily (UTC).
    pub jsonl_rotate_bytes: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            flush_interval: Duration::from_millis(200),
            queue_capacity: 16_384,
            max_retries: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            backoff_multiplier: 2,
            jitter: true,
            durability: Durability::Batch,
            spill_dir: None,
            reminder_interval: Duration::from_secs(60),
            full_queue: FullQueuePolicy::Spill,
            timezone: "UTC".into(),
            jsonl_rotate_bytes: 64 << 20,
        }
    }
}

impl LedgerConfig {
    fn validate(&self) -> Result<Tz> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", 0, "must be at least 1"));
        }
        if self.queue_capacity == 0 {
            return Err(Error::config("queue_capacity", 0, "must be at least 1"));
        }
        if self.backoff_multiplier == 0 {
            return Err(Error::config("backoff_multiplier", 0, "must be at least 1"));
        }
        if self.flush_interval.is_zero() {
            return Err(Error::config("flush_interval", "0", "must be positive"));
        }
        if self.timezone.is_empty() {
            return Ok(Tz::UTC);
        }
        parse_tz("timezone", &self.timezone)
    }
}

/// Counters of a ledger's life so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerStats {
    /// `record` calls that returned `Ok`.
    pub recorded: u64,
    /// Events the store confirmed as newly inserted.
    pub inserted: u64,
    /// Events appended to the spill file because the store failed or the queue was full.
    pub spilled: u64,
}

/// A message to the writer.
#[derive(Debug)]
enum Msg {
    Event(Box<UsageEvent>),
    /// Write everything before this message, drain the journal, then answer.
    Flush(std::sync::mpsc::SyncSender<Result<()>>),
    /// Like flush, then stop.
    Close(std::sync::mpsc::SyncSender<Result<()>>),
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    journal: Journal,
    config: LedgerConfig,
    closed: AtomicBool,
    recorded: AtomicU64,
    inserted: AtomicU64,
    spilled: AtomicU64,
    /// Events the writer holds in memory (open batch, events it could neither store nor spill).
    in_writer: AtomicU64,
    /// Events sent to the writer's queue and not yet taken (counted before the send, so never below
    /// zero): the writer is woken when this reaches `wake_at`, not for every event.
    queued: AtomicUsize,
    /// A batch's worth of queued events (at most half the queue, so the queue keeps room while the
    /// writer wakes).
    wake_at: usize,
    /// Wakes the writer while a batch is open (`record` at `wake_at`, `flush`, `close`).
    wake: tokio::sync::Notify,
    monitor: health::Monitor,
}

/// The recording handle. `record` enqueues (or, in `sync` mode, journals) and returns; a background
/// thread running a tokio runtime batches, writes, retries, spills and replays. Dropping it closes it.
#[derive(Debug)]
pub struct Ledger {
    shared: Arc<Shared>,
    tx: tokio::sync::mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The file path of a `sqlite:` or `jsonl:` store URL.
pub(crate) fn path_of(url: &str, scheme: &str) -> Result<PathBuf> {
    let rest = url.get(scheme.len() + 1..).unwrap_or("");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = if rest.starts_with("/./") || rest.starts_with("/../") { &rest[1..] } else { rest };
    if rest.is_empty() {
        return Err(Error::config("store", url, "missing a path after the scheme"));
    }
    Ok(PathBuf::from(rest))
}

/// A stable short name for a URL (FNV-1a), without the password, for default spill file names.
fn url_fingerprint(url: &str) -> String {
    let cleaned: String = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cleaned.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The per-user directory for state that must survive a reboot: `$XDG_STATE_HOME/llmledger`, else
/// `~/.local/state/llmledger` (Linux and other Unix), `~/Library/Application Support/llmledger`
/// (macOS), `%LOCALAPPDATA%\\llmledger` (Windows); `./.llmledger` when no home is known.
pub fn default_state_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library").join("Application Support"))
    } else {
        env("XDG_STATE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|h| h.join(".local").join("state")))
    };
    base.map_or_else(|| PathBuf::from(".llmledger"), |b| b.join("llmledger"))
}

/// Where the ledger of store `url` keeps its journals: the spill directory and the store's name in it
/// (see [`spill`]). `spill_dir` as in [`LedgerConfig::spill_dir`].
pub fn spill_location(url: &str, spill_dir: Option<&Path>) -> Result<(PathBuf, String)> {
    let place = SpillPlace::for_url(url, spill_dir)?;
    Ok((place.dir, place.name))
}

/// Where a store's journals go: a directory, and the store's name in it.
#[derive(Debug, Clone)]
struct SpillPlace {
    dir: PathBuf,
    name: String,
}

impl SpillPlace {
    /// The place for store `url` (whose store reports `store_name`), honouring an explicit directory.
    fn for_url(url: &str, explicit: Option<&Path>) -> Result<Self> {
        let explicit = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("LLMLEDGER_SPILL_DIR").filter(|v| !v.is_empty()).map(PathBuf::from));
        let scheme = url.split(':').next().unwrap_or("");
        let (beside, name) = match scheme {
            "sqlite" | "jsonl" => {
                let path = path_of(url, scheme)?;
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| scheme.into());
                let absolute = parent.canonicalize().unwrap_or_else(|_| parent.clone()).join(&file);
                let fp = url_fingerprint(&absolute.to_string_lossy());
                (Some(parent), format!("{file}-{}", &fp[..8]))
            }
            "postgres" | "postgresql" => (None, format!("postgres-{}", url_fingerprint(url))),
            "mysql" | "mariadb" => (None, format!("mysql-{}", url_fingerprint(url))),
            "memory" => {
                static N: AtomicU64 = AtomicU64::new(0);
                let n = N.fetch_add(1, Ordering::Relaxed);
                // A memory store dies with its process; its spill has nowhere to go after that.
                (Some(std::env::temp_dir()), format!("memory-{}-{n}", std::process::id()))
            }
            _ => (None, "custom".into()),
        };
        let dir = explicit.or(beside).unwrap_or_else(default_state_dir);
        Ok(Self { dir, name })
    }
}

/// Opens the store a URL names.
fn open_store(url: &str, config: &LedgerConfig, tz: Tz) -> Result<Arc<dyn Store>> {
    let scheme = url.split(':').next().unwrap_or("");
    Ok(match scheme {
        "memory" => Arc::new(MemoryStore::new(tz)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Arc::new(sqlite::SqliteStore::open(&path_of(url, scheme)?, tz)?),
        "jsonl" => Arc::new(jsonl::JsonlStore::open(&path_of(url, scheme)?, config.jsonl_rotate_bytes)?),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Arc::new(postgres::PgStore::connect(url, tz)?),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => {
            return Err(Error::config(
                "store",
                redact_credentials(url),
                "this build has no PostgreSQL support (feature `postgres`)",
            ))
        }
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => Arc::new(mysql::MySqlStore::connect(url, tz)?),
        #[cfg(not(feature = "mysql"))]
        "mysql" | "mariadb" => {
            return Err(Error::config(
                "store",
                redact_credentials(url),
                "this build has no MySQL/MariaDB support (feature `mysql`)",
            ))
        }
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => return Err(Error::config("store", url, "this build has no SQLite support (feature `sqlite`)")),
        _ => {
            return Err(Error::config(
                "store",
                redact_credentials(url),
                "unknown store URL scheme (expected sqlite, postgres, mysql, mariadb, jsonl or memory)",
            ))
        }
    })
}

/// What `llmledger ledger status` shows for a store and its spill directory, read without starting
/// a writer or taking over any journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerStatus {
    /// The URL, password redacted.
    pub store: String,
    pub store_reachable: bool,
    pub store_error: Option<String>,
    pub spill: SpillSummary,
    pub oldest_spilled_age_secs: Option<u64>,
}

/// Checks a store and summarizes its spill directory (see [`LedgerStatus`]). A SQLite file that does
/// not exist is reported unreachable rather than created.
pub fn status(url: &str, spill_dir: Option<&Path>) -> Result<LedgerStatus> {
    let place = SpillPlace::for_url(url, spill_dir)?;
    let scheme = url.split(':').next().unwrap_or("");
    let opened = if scheme == "sqlite" && !path_of(url, scheme)?.exists() {
        Err(Error::config("store", url, "no ledger file at this path"))
    } else {
        open_store(url, &LedgerConfig::default(), Tz::UTC)
    };
    let checked = opened.and_then(|store| store.check());
    let spill = spill::summarize(&place.dir, &place.name)?;
    Ok(LedgerStatus {
        store: redact_credentials(url),
        store_reachable: checked.is_ok(),
        store_error: checked.err().map(|e| redact_credentials(&e.to_string())),
        oldest_spilled_age_secs: spill.oldest.map(age_secs),
        spill,
    })
}

fn age_secs(at: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from((chrono::Utc::now() - at).num_seconds()).unwrap_or(0)
}

impl Ledger {
    /// The store used when nothing is configured, a SQLite file in the working directory. The one
    /// place the default is written: docs and bindings refer to this constant.
    pub const DEFAULT_URL: &'static str = "sqlite://./llmledger.db";

    /// Opens the store named by `url` (see the module docs) and starts the writer. An unknown scheme,
    /// an unwritable path or a bad setting is an [`ErrorCode::Config`] error naming the field. A
    /// PostgreSQL server that is down is not an error: the writer reports it (see [`Ledger::take_notices`]).
    pub fn open(url: &str, config: LedgerConfig) -> Result<Self> {
        let tz = config.validate()?;
        let place = SpillPlace::for_url(url, config.spill_dir.as_deref())?;
        let store = open_store(url, &config, tz)?;
        Self::start(store, redact_credentials(url), place, config)
    }

    /// Runs a ledger over a caller-provided store; its journals are named by [`Store::spill_name`].
    pub fn with_store(store: Arc<dyn Store>, config: LedgerConfig) -> Result<Self> {
        config.validate()?;
        let mut place = SpillPlace::for_url("custom:", config.spill_dir.as_deref())?;
        place.name = store.spill_name();
        Self::start(store, "custom".into(), place, config)
    }

    fn start(store: Arc<dyn Store>, label: String, place: SpillPlace, config: LedgerConfig) -> Result<Self> {
        let journal = Journal::open(&place.dir, &place.name)?;
        let monitor = health::Monitor::new(label, place.dir.display().to_string(), config.reminder_interval);
        let (tx, rx) = tokio::sync::mpsc::channel(config.queue_capacity);
        let wake_at = config.batch_size.min(config.queue_capacity / 2).max(1);
        let shared = Arc::new(Shared {
            store,
            journal,
            config,
            closed: AtomicBool::new(false),
            recorded: AtomicU64::new(0),
            inserted: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            in_writer: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            wake_at,
            wake: tokio::sync::Notify::new(),
            monitor,
        });
        let thread = writer::spawn(Arc::clone(&shared), rx)?;
        Ok(Self { shared, tx, thread: Mutex::new(Some(thread)) })
    }

    /// Records one event: validates it, then enqueues it (Batch) or journals it with fsync (Sync).
    /// Never blocks on the store.
    pub fn record(&self, event: UsageEvent) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Closed, "the ledger is closed"));
        }
        event.validate()?;
        if self.shared.config.durability == Durability::Sync {
            self.shared.journal.append(&event, true)?;
            self.shared.recorded.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        // The writer is not woken per event: it takes the queue when a batch's worth is waiting, or at
        // the open batch's deadline, or (when idle) on the first event.
        let shared = &self.shared;
        let queued = shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {
                if queued == shared.wake_at {
                    shared.wake.notify_one();
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(Error::new(ErrorCode::Closed, "the ledger writer has stopped"));
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(Msg::Event(event))) => {
                shared.wake.notify_one();
                match shared.config.full_queue {
                    FullQueuePolicy::Spill => {
                        shared.queued.fetch_sub(1, Ordering::Relaxed);
                        shared.journal.append(&event, false)?;
                        shared.spilled.fetch_add(1, Ordering::Relaxed);
                    }
                    FullQueuePolicy::Block => {
                        if let Err(e) = self.send_blocking(Msg::Event(event)) {
                            shared.queued.fetch_sub(1, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                    FullQueuePolicy::Error => {
                        shared.queued.fetch_sub(1, Ordering::Relaxed);
                        return Err(Error::new(ErrorCode::Store, "the ledger queue is full (full_queue = error)")
                            .with_field("queue_capacity")
                            .with_value(shared.config.queue_capacity.to_string()));
                    }
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(Error::new(ErrorCode::Store, "unexpected message in the ledger queue"));
            }
        }
        self.shared.recorded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends without tokio's `blocking_send`, which panics when called from async code, and wakes the
    /// writer (a flush or close is for now; a full queue needs draining).
    fn send_blocking(&self, mut msg: Msg) -> Result<()> {
        let mut pause = Duration::from_micros(20);
        loop {
            let sent = self.tx.try_send(msg);
            self.shared.wake.notify_one();
            match sent {
                Ok(()) => return Ok(()),
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                    return Err(Error::new(ErrorCode::Closed, "the ledger writer has stopped"))
                }
                Err(tokio::sync::mpsc::error::TrySendError::Full(m)) => {
                    msg = m;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
            }
        }
    }

    fn round_trip(&self, make: impl FnOnce(std::sync::mpsc::SyncSender<Result<()>>) -> Msg) -> Result<()> {
        let (reply, wait) = std::sync::mpsc::sync_channel(1);
        self.send_blocking(make(reply))?;
        wait.recv().map_err(|_| Error::new(ErrorCode::Closed, "the ledger writer has stopped"))?
    }

    /// Returns when everything recorded before the call is in the store. If the store stays down the
    /// events are in the spill file and the error (code `store`) says so; they are replayed later.
    pub fn flush(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Closed, "the ledger is closed"));
        }
        self.round_trip(Msg::Flush)
    }

    /// Flushes and stops the writer. Later calls (and `record`) return [`ErrorCode::Closed`].
    pub fn close(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::new(ErrorCode::Closed, "the ledger is already closed"));
        }
        let result = self.round_trip(Msg::Close);
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
        result
    }

    /// Replays the spill file into the store now; returns the number of events read from it.
    pub fn replay_spill(&self) -> Result<u64> {
        let shared = &self.shared;
        shared.journal.replay(shared.config.batch_size, |chunk| {
            let n = shared.store.write_batch(chunk)?;
            shared.inserted.fetch_add(n as u64, Ordering::Relaxed);
            Ok(())
        })
    }

    /// A usage report (runs on the caller's thread against the store).
    pub fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        self.shared.store.query(query)
    }

    /// Rollup rows that differ from a recomputation over raw events.
    pub fn verify(&self) -> Result<Vec<RollupDiff>> {
        self.shared.store.verify()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    pub fn spill_path(&self) -> &Path {
        self.shared.journal.path()
    }

    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            recorded: self.shared.recorded.load(Ordering::Relaxed),
            inserted: self.shared.inserted.load(Ordering::Relaxed),
            spilled: self.shared.spilled.load(Ordering::Relaxed),
        }
    }

    /// The spill directory this ledger's journal is in.
    pub fn spill_dir(&self) -> &Path {
        self.shared.journal.dir()
    }

    /// A snapshot for an operator or a `/health` endpoint: atomic loads and a few short, uncontended
    /// locks (the journal's tallies and the monitor); no I/O.
    pub fn health(&self) -> LedgerHealth {
        let shared = &self.shared;
        let spill = shared.journal.tally();
        // Sender capacity: the events waiting in the channel, without touching the writer.
        let in_channel = self.tx.max_capacity().saturating_sub(self.tx.capacity()) as u64;
        let mut h = LedgerHealth {
            store: shared.monitor.store().to_string(),
            store_state: StoreState::Unknown,
            queued_events: in_channel + shared.in_writer.load(Ordering::Relaxed),
            spilled_events: spill.events,
            oldest_spilled_at: spill.oldest,
            oldest_spilled_age_secs: spill.oldest.map(age_secs),
            last_error: None,
            last_error_at: None,
            down_since: None,
            recorded_events: shared.recorded.load(Ordering::Relaxed),
            written_events: shared.inserted.load(Ordering::Relaxed),
            spill_dir: shared.monitor.spill_dir().to_string(),
        };
        shared.monitor.fill(&mut h);
        h
    }

    /// Takes the operator notices queued since the last call (see [`health`]); with `wait`, first
    /// waits up to that long for one to arrive. Bindings drain this into their logger.
    pub fn take_notices(&self, wait: Option<Duration>) -> Vec<Notice> {
        self.shared.monitor.take(wait)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if !self.shared.closed.load(Ordering::Acquire) {
            let _ = self.close();
        }
    }
}

/// A priced test event: id `e{i}`, cost `0.000001 × (i % 7 + 1)` USD, user `user`, model gpt-4o.
#[cfg(test)]
pub(crate) fn test_event(i: u64, user: &str) -> UsageEvent {
    use crate::usage::{Api, Provider, Usage};
    let usage = Usage { input_tokens: 100 + i % 10, output_tokens: 20, ..Usage::default() };
    let total = rust_decimal::Decimal::new(i64::try_from(i % 7 + 1).unwrap_or(1), 6);
    let cost = crate::pricing::Cost {
        provider: Provider::OpenAi,
        model: "gpt-4o".into(),
        price_version: chrono::NaiveDate::default(),
        price_data: String::new(),
        breakdown: crate::pricing::Breakdown::default(),
        total_usd: total,
        currency: "USD".into(),
        rate: rust_decimal::Decimal::ONE,
        total,
        tier_above: None,
        uncertain: false,
    };
    UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", usage)
        .with_id(format!("e{i}"))
        .with_cost(cost)
        .with_latency_ms(100 + i % 50)
        .with_attribution(Attribution { user_id: Some(user.into()), ..Attribution::default() })
}
