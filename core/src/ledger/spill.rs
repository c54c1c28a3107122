//! The spill directory: append-only JSON-lines journals used both as the spill (batches the store
//! refused, overflow of a full queue) and as the write-ahead file of `sync` durability.
//!
//! Every ledger instance owns a journal of its own in the directory, `<name>.<owner>.jsonl`, and holds
//! an exclusive lock on `<name>.<owner>.lock` for as long as it lives. `<name>` names the store (so the
//! ledgers of several stores can share one directory), `<owner>` the instance. So several processes
//! can share a spill directory without ever sharing a file: each appends to and replays only its own
//! journal, and takes over another owner's files only once it holds that owner's lock, which the OS
//! releases only when the owner is gone (exit, crash, SIGKILL). An adopted journal is replayed into
//! the store, deleted, and then its lock file; a second would-be adopter finds the lock held or the
//! files gone, so no journal is replayed by two processes.
//!
//! Appends go through group commit: each appender queues its bytes, and whoever holds the file lock
//! writes everything queued and (when asked) `fsync`s once for all of them. Replay renames the active
//! file to `<file>.replaying` (so appends continue into a fresh file), feeds it to the store in
//! batches and deletes it only after the store confirmed every batch. A crash between those steps
//! leaves `.replaying` behind, which the next replay (or the adopter) ingests first; the store's
//! idempotency on `event_id` makes re-ingesting harmless. A torn last line (SIGKILL inside `write`)
//! is skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};
use crate::event::UsageEvent;

/// How many events a journal file holds and when the oldest of them happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub events: u64,
    pub oldest: Option<DateTime<Utc>>,
}

impl Tally {
    fn add_event(&mut self, at: DateTime<Utc>) {
        self.events += 1;
        self.oldest = Some(self.oldest.map_or(at, |o| o.min(at)));
    }

    fn merge(&mut self, other: Tally) {
        self.events += other.events;
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Appends not yet written, with their sequence numbers.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// What `buf` holds.
    tally: Tally,
    /// Sequence number of the last append queued.
    seq: u64,
    /// Whether any queued append asked for fsync.
    want_sync: bool,
}

#[derive(Debug)]
struct FileState {
    file: File,
    /// Appends up to this sequence number failed to reach the file (error returned to their callers).
    failed_through: u64,
    failure: Option<Error>,
    /// What the active file and the `.replaying` file hold.
    active: Tally,
    replaying: Tally,
}

/// Another owner's journal files, taken over after its owner died; replayed and deleted like ours.
#[derive(Debug)]
struct Adopted {
    /// Holding the owner's lock is what makes these files ours to replay.
    _lock: File,
    lock_path: PathBuf,
    /// `.replaying` first, then the active file: the order they were written in.
    files: Vec<PathBuf>,
    tally: Tally,
}

/// One instance's journal in a spill directory, and the orphans it adopted.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    name: String,
    path: PathBuf,
    replaying: PathBuf,
    lock_path: PathBuf,
    /// Held (locked) for the journal's life; see the module docs.
    _lock: File,
    pending: Mutex<Pending>,
    file: Mutex<FileState>,
    adopted: Mutex<Vec<Adopted>>,
    /// Highest sequence number written (and synced when asked).
    written: AtomicU64,
    /// Something may be waiting to be replayed.
    dirty: AtomicBool,
    /// One replay at a time.
    replay_lock: Mutex<()>,
}

/// What a spill directory holds for one store, read without taking anything over (`ledger status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpillSummary {
    pub dir: String,
    /// Journal files (active and `.replaying`) of every owner.
    pub files: u64,
    pub events: u64,
    pub oldest: Option<DateTime<Utc>>,
    /// Owners whose lock is held: running ledgers.
    pub live_owners: u64,
    /// Owners whose lock is free: their journals wait for the next ledger of this store to adopt them.
    pub orphaned_owners: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a journal lock cannot leave the data half-updated in a way later appends
    // rely on (the file is the truth), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io_err(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::new(ErrorCode::Io, format!("{what} {}: {e}", path.display()))
        .with_field("spill_dir")
        .with_value(path.display().to_string())
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| io_err(path, "cannot open spill file", &e))
}

fn sync_dir(dir: &Path) {
    // Makes a rename/create/delete durable. Best effort: some file systems refuse fsync on directories.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A name unique to this instance: process id, start time and a counter, with no `.` in it.
fn new_owner() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    format!("{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The owner part of `<name>.<owner>.lock`, if `file_name` is a lock file of this store's journals.
fn owner_of<'a>(file_name: &'a str, name: &str) -> Option<&'a str> {
    let owner = file_name.strip_prefix(name)?.strip_prefix('.')?.strip_suffix(".lock")?;
    (!owner.is_empty() && !owner.contains('.')).then_some(owner)
}

/// Counts the readable events of a journal file (torn lines are not events).
fn tally_file(path: &Path) -> Result<Tally> {
    let mut tally = Tally::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(tally),
        Err(e) => return Err(io_err(path, "cannot open", &e)),
    };
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| io_err(path, "cannot read", &e))?;
        if let Ok(e) = UsageEvent::from_json(&line) {
            tally.add_event(e.timestamp);
        }
    }
    Ok(tally)
}

/// A process killed inside `write` can leave a torn last line; terminate it so the next append starts
/// on a line of its own (the torn line is then skipped at replay, the new one is not).
fn end_with_newline(path: &Path, file: &mut File) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata().map_err(|e| io_err(path, "cannot stat spill file", &e))?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    let mut reader = File::open(path).map_err(|e| io_err(path, "cannot open spill file", &e))?;
    reader
        .seek(SeekFrom::Start(len - 1))
        .and_then(|_| reader.read_exact(&mut last))
        .map_err(|e| io_err(path, "cannot read spill file", &e))?;
    if last[0] != b'\n' {
        file.write_all(b"\n")
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(path, "cannot repair spill file", &e))?;
    }
    Ok(())
}

/// Feeds the events of one file to `sink` in chunks of `batch_size`; returns how many it read.
fn replay_file(path: &Path, batch_size: usize, sink: &mut impl FnMut(&[UsageEvent]) -> Result<()>) -> Result<u64> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path, "cannot open", &e)),
    };
    let mut reader = BufReader::new(file);
    let mut chunk = Vec::with_capacity(batch_size.max(1));
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| io_err(path, "cannot read", &e))?;
        if read == 0 {
            break;
        }
        // A line that does not parse can only be a write cut short by a kill or a full disk; its
        // append never returned Ok, so no caller was told it was recorded.
        if let Ok(e) = UsageEvent::from_json(line.trim_end()) {
            chunk.push(e);
            n += 1;
        }
        if chunk.len() >= batch_size.max(1) {
            sink(&chunk)?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        sink(&chunk)?;
    }
    Ok(n)
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "cannot remove", &e)),
    }
}

impl Journal {
    /// Opens a new journal for store `name` in `dir` (created if missing), locks it for this instance
    /// and adopts the journals of owners that are gone.
    pub fn open(dir: &Path, name: &str) -> Result<Self> {
        if name.is_empty() || name.contains(['/', '\\']) {
            return Err(Error::config("spill_name", name, "must be a non-empty file name"));
        }
        fs::create_dir_all(dir)
            .map_err(|e| Error::config("spill_dir", dir.display(), &format!("cannot create directory: {e}")))?;
        let owner = new_owner();
        let lock_path = dir.join(format!("{name}.{owner}.lock"));
        // Locked under a name no adopter looks at, then renamed into place (the lock stays with the open
        // file): a lock file that appeared unlocked, even for a moment, would be adopted as an orphan's.
        let unplaced = with_suffix(&lock_path, ".new");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&unplaced)
            .map_err(|e| Error::config("spill_dir", dir.display(), &format!("cannot create a file there: {e}")))?;
        lock_file.try_lock().map_err(|e| {
            Error::config("spill_dir", dir.display(), &format!("cannot lock {}: {e}", unplaced.display()))
        })?;
        fs::rename(&unplaced, &lock_path).map_err(|e| io_err(&lock_path, "cannot create", &e))?;
        let path = dir.join(format!("{name}.{owner}.jsonl"));
        let mut file = open_append(&path).map_err(|e| Error::config("spill_dir", dir.display(), e.message()))?;
        end_with_newline(&path, &mut file)?;
        sync_dir(dir);
        let journal = Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            replaying: with_suffix(&path, ".replaying"),
            path,
            lock_path,
            _lock: lock_file,
            pending: Mutex::new(Pending::default()),
            file: Mutex::new(FileState {
                file,
                failed_through: 0,
                failure: None,
                active: Tally::default(),
                replaying: Tally::default(),
            }),
            adopted: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            replay_lock: Mutex::new(()),
        };
        journal.adopt_orphans()?;
        Ok(journal)
    }

    /// This instance's active journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when the journal may hold events not yet in the store.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Events waiting in this instance's files and in the orphans it adopted.
    pub fn tally(&self) -> Tally {
        let mut t = lock(&self.pending).tally;
        {
            let f = lock(&self.file);
            t.merge(f.active);
            t.merge(f.replaying);
        }
        for a in lock(&self.adopted).iter() {
            t.merge(a.tally);
        }
        t
    }

    /// Takes over the journals of this store whose owner is gone (its lock is free); returns how
    /// many events they hold. Cheap when there are none: one directory listing.
    pub fn adopt_orphans(&self) -> Result<u64> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, "cannot list", &e))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(owner) = file_name.to_str().and_then(|f| owner_of(f, &self.name)) else { continue };
            let lock_path = entry.path();
            if lock_path == self.lock_path {
                continue;
            }
            let Ok(lock_file) = OpenOptions::new().write(true).open(&lock_path) else { continue };
            if lock_file.try_lock().is_err() {
                continue; // a live owner, or another adopter got there first
            }
            if !lock_path.exists() {
                continue; // an adopter finished with it between our open and our lock
            }
            let active = self.dir.join(format!("{}.{owner}.jsonl", self.name));
            let files = vec![with_suffix(&active, ".replaying"), active];
            let mut tally = Tally::default();
            for f in &files {
                tally.merge(tally_file(f)?);
            }
            found.push(Adopted { _lock: lock_file, lock_path, files, tally });
        }
        let events = found.iter().map(|a| a.tally.events).sum();
        if !found.is_empty() {
            lock(&self.adopted).extend(found);
            self.dirty.store(true, Ordering::Release);
        }
        Ok(events)
    }

    /// Appends one event; with `sync` it is on disk (fsync) when this returns.
    pub fn append(&self, event: &UsageEvent, sync: bool) -> Result<()> {
        let mut line = event.to_json()?;
        line.push('\n');
        let mut tally = Tally::default();
        tally.add_event(event.timestamp);
        self.append_bytes(line.as_bytes(), tally, sync)
    }

    /// Appends a batch; with `sync` it is on disk when this returns.
    pub fn append_batch(&self, events: &[UsageEvent], sync: bool) -> Result<()> {
        let mut buf = Vec::with_capacity(events.len() * 512);
        let mut tally = Tally::default();
        for e in events {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
            tally.add_event(e.timestamp);
        }
        self.append_bytes(&buf, tally, sync)
    }

    fn append_bytes(&self, bytes: &[u8], tally: Tally, sync: bool) -> Result<()> {
        let my_seq = {
            let mut p = lock(&self.pending);
            p.buf.extend_from_slice(bytes);
            p.tally.merge(tally);
            p.seq += 1;
            p.want_sync |= sync;
            p.seq
        };
        self.dirty.store(true, Ordering::Release);
        let mut f = lock(&self.file);
        if self.written.load(Ordering::Acquire) >= my_seq {
            // A previous holder wrote (and synced, if anyone in its group asked) our bytes.
            return Ok(());
        }
        if f.failed_through >= my_seq {
            return Err(f.failure.clone().unwrap_or_else(|| Error::new(ErrorCode::Io, "spill write failed")));
        }
        let (buf, tally, upto, want_sync) = {
            let mut p = lock(&self.pending);
            (std::mem::take(&mut p.buf), std::mem::take(&mut p.tally), p.seq, std::mem::take(&mut p.want_sync))
        };
        let before = f.file.metadata().map(|m| m.len()).ok();
        let res = f.file.write_all(&buf).and_then(|()| if want_sync { f.file.sync_data() } else { Ok(()) });
        match res {
            Ok(()) => {
                f.active.merge(tally);
                self.written.store(upto, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                // Cut a partial write so the file keeps whole lines; the callers get the error.
                if let Some(len) = before {
                    let _ = f.file.set_len(len);
                }
                let err = io_err(&self.path, "cannot append to spill file", &e);
                f.failed_through = upto;
                f.failure = Some(err.clone());
                Err(err)
            }
        }
    }

    /// Deletes this instance's files when they hold nothing (at close, so idle ledgers leave no files
    /// behind). The lock file goes last: while it exists the journal is ours.
    pub fn remove_if_empty(&self) {
        let _one = lock(&self.replay_lock);
        let f = lock(&self.file);
        let p = lock(&self.pending);
        let empty = f.file.metadata().map(|m| m.len() == 0).unwrap_or(false);
        let idle = empty && p.buf.is_empty() && !self.replaying.exists() && lock(&self.adopted).is_empty();
        if idle && fs::remove_file(&self.path).is_ok() {
            let _ = fs::remove_file(&self.lock_path);
            sync_dir(&self.dir);
        }
    }

    /// Feeds every journaled event — adopted orphans first, then ours — to `sink` in chunks of
    /// `batch_size`, deleting each file once all its chunks were accepted. Returns the number of events
    /// read. On error the remaining events stay in the journal.
    pub fn replay(&self, batch_size: usize, mut sink: impl FnMut(&[UsageEvent]) -> Result<()>) -> Result<u64> {
        let _one = lock(&self.replay_lock);
        let result = self.replay_locked(batch_size, &mut sink);
        if result.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        result
    }

    fn replay_locked(&self, batch_size: usize, sink: &mut impl FnMut(&[UsageEvent]) -> Result<()>) -> Result<u64> {
        let mut total = 0;
        let mut adopted = lock(&self.adopted);
        while let Some(orphan) = adopted.first_mut() {
            // A file leaves the list only once it is replayed and deleted; an error keeps it and the rest.
            while let Some(path) = orphan.files.first() {
                total += replay_file(path, batch_size, sink)?;
                remove(path)?;
                orphan.files.remove(0);
            }
            orphan.tally = Tally::default();
            remove(&orphan.lock_path)?;
            sync_dir(&self.dir);
            adopted.remove(0); // drops (unlocks) the deleted lock file
        }
        drop(adopted);
        loop {
            if !self.replaying.exists() && !self.rotate()? {
                return Ok(total);
            }
            let n = replay_file(&self.replaying, batch_size, sink)?;
            remove(&self.replaying)?;
            sync_dir(&self.dir);
            lock(&self.file).replaying = Tally::default();
            total += n;
        }
    }

    /// Moves the active file aside as `.replaying` (appends continue in a fresh file). Returns false
    /// when there was nothing to move, and then marks the journal clean.
    fn rotate(&self) -> Result<bool> {
        let mut f = lock(&self.file);
        let p = lock(&self.pending);
        let len = f.file.metadata().map_err(|e| io_err(&self.path, "cannot stat spill file", &e))?.len();
        if len == 0 {
            // Clean only if nothing is queued either (an appender between its two locks).
            if p.buf.is_empty() {
                self.dirty.store(false, Ordering::Release);
            }
            return Ok(false);
        }
        drop(p);
        fs::rename(&self.path, &self.replaying).map_err(|e| io_err(&self.path, "cannot rotate spill file", &e))?;
        f.file = open_append(&self.path)?;
        f.replaying = std::mem::take(&mut f.active);
        sync_dir(&self.dir);
        Ok(true)
    }
}

/// Reads what `dir` holds for store `name` without adopting anything (for `llmledger ledger status`).
pub fn summarize(dir: &Path, name: &str) -> Result<SpillSummary> {
    let mut summary = SpillSummary { dir: dir.display().to_string(), ..SpillSummary::default() };
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(summary),
        Err(e) => return Err(io_err(dir, "cannot list", &e)),
    };
    let mut tally = Tally::default();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(owner) = file_name.to_str().and_then(|f| owner_of(f, name)) else { continue };
        let live = match OpenOptions::new().write(true).open(entry.path()) {
            // Taking the lock for a moment is how we learn whether its owner runs; released at once.
            Ok(f) => f.try_lock().is_err(),
            Err(_) => false,
        };
        if live {
            summary.live_owners += 1;
        } else {
            summary.orphaned_owners += 1;
        }
        let active = dir.join(format!("{name}.{owner}.jsonl"));
        for path in [with_suffix(&active, ".replaying"), active] {
            if path.exists() {
                summary.files += 1;
                tally.merge(tally_file(&path)?);
            }
        }
    }
    summary.events = tally.events;
    summary.oldest = tally.oldest;
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ledger::test_event;

    fn ids(j: &Journal) -> Vec<String> {
        let mut got = Vec::new();
        j.replay(3, |c| {
            got.extend(c.iter().map(|e| e.event_id.clone()));
            Ok(())
        })
        .unwrap();
        got.sort();
        got
    }

    #[test]
    fn append_replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), "s").unwrap();
        assert!(!j.is_dirty());
        for i in 0..5 {
            assert!(j.append(&test_event(i, "u1"), i % 2 == 0).is_ok());
        }
        assert!(j.append_batch(&[test_event(5, "u2"), test_event(6, "u2")], true).is_ok());
        assert_eq!(j.tally().events, 7);
        // A torn line, as a SIGKILL in the middle of a write would leave.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"event_id\":\"tor").unwrap();
        // A replay that fails leaves a `.replaying` file; later appends go to a fresh active file.
        assert!(j.replay(3, |_| Err(Error::new(ErrorCode::Store, "down"))).is_err());
        j.append(&test_event(8, "u4"), true).unwrap();
        drop(j); // the owner is gone: its lock is released, its files stay
                 // The next instance adopts both files of the orphan, skipping the torn tail.
        let j = Journal::open(dir.path(), "s").unwrap();
        assert!(j.is_dirty());
        assert_eq!(j.tally().events, 8);
        assert!(j.append(&test_event(7, "u3"), true).is_ok());
        // A failing sink keeps everything, again and again.
        for _ in 0..2 {
            let failed = j.replay(3, |_| Err(Error::new(ErrorCode::Store, "down")));
            assert_eq!(failed.map_err(|e| e.code()), Err(ErrorCode::Store));
            assert!(j.is_dirty());
            assert_eq!(j.tally().events, 9);
        }
        assert_eq!(ids(&j).len(), 9);
        assert_eq!(j.tally(), Tally::default());
        assert!(!j.is_dirty());
        j.remove_if_empty();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "every file of both owners is gone");
    }

    #[test]
    fn a_live_owner_is_never_adopted_and_other_stores_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::open(dir.path(), "s").unwrap();
        a.append(&test_event(1, "a"), true).unwrap();
        let other_store = Journal::open(dir.path(), "s-other").unwrap();
        other_store.append(&test_event(2, "o"), true).unwrap();
        drop(other_store);
        let b = Journal::open(dir.path(), "s").unwrap();
        assert!(!b.is_dirty(), "b must not take a's journal while a lives, nor another store's");
        assert_eq!(b.adopt_orphans().unwrap(), 0);
        let summary = summarize(dir.path(), "s").unwrap();
        assert_eq!((summary.live_owners, summary.orphaned_owners, summary.events), (2, 0, 1));
        drop(a);
        assert_eq!(summarize(dir.path(), "s").unwrap().orphaned_owners, 1);
        // Two instances race for the orphan: exactly one gets it.
        let c = Journal::open(dir.path(), "s").unwrap();
        assert_eq!(b.adopt_orphans().unwrap() + c.tally().events, 1);
        let (got_b, got_c) = (ids(&b), ids(&c));
        assert_eq!(got_b.len() + got_c.len(), 1);
        assert_eq!(summarize(dir.path(), "s-other").unwrap().events, 1);
    }
}
