//! The local journal: an append-only JSON-lines file used both as the spill file (batches the store
//! refused, overflow of a full queue) and as the write-ahead file of `sync` durability.
//!
//! Appends go through group commit: each appender queues its bytes, and whoever holds the file lock
//! writes everything queued and (when asked) `fsync`s once for all of them. Replay renames the active
//! file to `<path>.replaying` (so appends continue into a fresh file), feeds it to the store in
//! batches and deletes it only after the store confirmed every batch. A crash between those steps
//! leaves `.replaying` behind, which the next replay ingests first; the store's idempotency on
//! `event_id` makes re-ingesting harmless. A torn last line (SIGKILL inside `write`) is skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, ErrorCode, Result};
use crate::ledger::event::UsageEvent;

/// Appends not yet written, with their sequence numbers.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
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
}

/// The journal file pair `<path>` (active) and `<path>.replaying`.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    replaying: PathBuf,
    pending: Mutex<Pending>,
    file: Mutex<FileState>,
    /// Highest sequence number written (and synced when asked).
    written: AtomicU64,
    /// Something may be waiting to be replayed.
    dirty: AtomicBool,
    /// One replay at a time.
    replay_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a journal lock cannot leave the data half-updated in a way later appends
    // rely on (the file is the truth), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io_err(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::new(ErrorCode::Io, format!("{what} {}: {e}", path.display()))
        .with_field("spill_path")
        .with_value(path.display().to_string())
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| io_err(path, "cannot open spill file", &e))
}

fn sync_dir(path: &Path) {
    // Makes a rename/create durable. Best effort: some file systems refuse fsync on directories.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
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

impl Journal {
    /// Opens (creating) the journal at `path`; the directory must exist or be creatable.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| Error::config("spill_path", path.display(), &format!("cannot create directory: {e}")))?;
        }
        let mut file = open_append(path).map_err(|e| Error::config("spill_path", path.display(), e.message()))?;
        end_with_newline(path, &mut file)?;
        let mut replaying = path.as_os_str().to_owned();
        replaying.push(".replaying");
        let replaying = PathBuf::from(replaying);
        let dirty = file.metadata().map(|m| m.len() > 0).unwrap_or(true) || replaying.exists();
        Ok(Self {
            path: path.to_path_buf(),
            replaying,
            pending: Mutex::new(Pending::default()),
            file: Mutex::new(FileState { file, failed_through: 0, failure: None }),
            written: AtomicU64::new(0),
            dirty: AtomicBool::new(dirty),
            replay_lock: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the journal may hold events not yet in the store.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Appends one event; with `sync` it is on disk (fsync) when this returns.
    pub fn append(&self, event: &UsageEvent, sync: bool) -> Result<()> {
        let mut line = event.to_json()?;
        line.push('\n');
        self.append_bytes(line.as_bytes(), sync)
    }

    /// Appends a batch; with `sync` it is on disk when this returns.
    pub fn append_batch(&self, events: &[UsageEvent], sync: bool) -> Result<()> {
        let mut buf = Vec::with_capacity(events.len() * 512);
        for e in events {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        self.append_bytes(&buf, sync)
    }

    fn append_bytes(&self, bytes: &[u8], sync: bool) -> Result<()> {
        let my_seq = {
            let mut p = lock(&self.pending);
            p.buf.extend_from_slice(bytes);
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
        let (buf, upto, want_sync) = {
            let mut p = lock(&self.pending);
            (std::mem::take(&mut p.buf), p.seq, std::mem::take(&mut p.want_sync))
        };
        let before = f.file.metadata().map(|m| m.len()).ok();
        let res = f.file.write_all(&buf).and_then(|()| if want_sync { f.file.sync_data() } else { Ok(()) });
        match res {
            Ok(()) => {
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

    /// Deletes the journal file when it holds nothing (at close, so idle ledgers leave no files behind).
    pub fn remove_if_empty(&self) {
        let _one = lock(&self.replay_lock);
        let f = lock(&self.file);
        let p = lock(&self.pending);
        let empty = f.file.metadata().map(|m| m.len() == 0).unwrap_or(false);
        if empty && p.buf.is_empty() && !self.replaying.exists() {
            let _ = fs::remove_file(&self.path);
        }
    }

    /// Feeds every journaled event to `sink` in chunks of `batch_size`, deleting the replayed file once
    /// all chunks were accepted. Returns the number of events read. On error the remaining events stay
    /// in the journal.
    pub fn replay(&self, batch_size: usize, mut sink: impl FnMut(&[UsageEvent]) -> Result<()>) -> Result<u64> {
        let _one = lock(&self.replay_lock);
        let mut total = 0;
        loop {
            if !self.replaying.exists() && !self.rotate()? {
                return Ok(total);
            }
            match self.replay_file(batch_size, &mut sink) {
                Ok(n) => {
                    fs::remove_file(&self.replaying).map_err(|e| io_err(&self.replaying, "cannot remove", &e))?;
                    sync_dir(&self.path);
                    total += n;
                }
                Err(e) => {
                    self.dirty.store(true, Ordering::Release);
                    return Err(e);
                }
            }
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
        sync_dir(&self.path);
        Ok(true)
    }

    fn replay_file(&self, batch_size: usize, sink: &mut impl FnMut(&[UsageEvent]) -> Result<()>) -> Result<u64> {
        let file = File::open(&self.replaying).map_err(|e| io_err(&self.replaying, "cannot open", &e))?;
        let mut reader = BufReader::new(file);
        let mut chunk = Vec::with_capacity(batch_size.max(1));
        let mut line = String::new();
        let mut n = 0u64;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(|e| io_err(&self.replaying, "cannot read", &e))?;
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ledger::test_event;

    #[test]
    fn append_replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.jsonl");
        let j = Journal::open(&path).unwrap();
        assert!(!j.is_dirty());
        for i in 0..5 {
            assert!(j.append(&test_event(i, "u1"), i % 2 == 0).is_ok());
        }
        assert!(j.append_batch(&[test_event(5, "u2"), test_event(6, "u2")], true).is_ok());
        // A torn line, as a SIGKILL in the middle of a write would leave.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event_id\":\"tor").unwrap();
        drop(j);
        // The next process repairs the torn tail, so its own appends stay readable.
        let j = Journal::open(&path).unwrap();
        assert!(j.append(&test_event(7, "u3"), true).is_ok());
        assert!(j.is_dirty());
        // A failing sink keeps everything.
        let failed = j.replay(3, |_| Err(Error::new(ErrorCode::Store, "down")));
        assert_eq!(failed.map_err(|e| e.code()), Err(ErrorCode::Store));
        assert!(j.is_dirty());
        let mut got = Vec::new();
        let n = j.replay(3, |c| {
            got.extend(c.iter().map(|e| e.event_id.clone()));
            Ok(())
        });
        assert_eq!(n.ok(), Some(8));
        assert_eq!(got.len(), 8);
        assert!(got.contains(&test_event(7, "u3").event_id));
        assert!(!j.is_dirty() || j.replay(3, |_| Ok(())).ok() == Some(0));
        assert!(!dir.path().join("spill.jsonl.replaying").exists());
    }
}
