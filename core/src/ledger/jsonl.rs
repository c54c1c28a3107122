//! `jsonl:` — append-only JSON-lines files in a directory, fsynced per batch.
//!
//! Files are `usage-YYYY-MM-DD.jsonl` (UTC day of writing), then `usage-YYYY-MM-DD.1.jsonl`, … when a
//! file passes the rotation size. Idempotency comes from the set of ids loaded at open and kept in
//! memory. A failed write (disk full, read-only) is cut back to the last whole line and reported as an
//! [`ErrorCode::Io`] error; the writer keeps the batch for retry/spill. No rollups: reports scan the
//! files, and `verify` has nothing to compare (it returns no differences).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::Utc;

use super::Store;
use crate::error::{Error, ErrorCode, Result};
use crate::event::UsageEvent;
use crate::report::{Aggregator, ReportRow, UsageQuery};
use crate::rollup::RollupDiff;

#[derive(Debug)]
struct Segment {
    file: File,
    day: String,
    seq: u32,
    len: u64,
}

#[derive(Debug)]
struct Inner {
    ids: HashSet<String>,
    current: Option<Segment>,
}

/// The JSONL store.
#[derive(Debug)]
pub struct JsonlStore {
    dir: PathBuf,
    rotate_bytes: u64,
    inner: Mutex<Inner>,
}

fn io_err(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::new(ErrorCode::Io, format!("{what} {}: {e}", path.display()))
        .with_field("store")
        .with_value(path.display().to_string())
}

impl JsonlStore {
    /// Opens (creating) the directory and loads the ids already written.
    pub fn open(dir: &Path, rotate_bytes: u64) -> Result<Self> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::config("store", dir.display(), &format!("cannot create the directory: {e}")))?;
        let probe = dir.join(".llmledger-write-test");
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| Error::config("store", dir.display(), &format!("directory is not writable: {e}")))?;
        let store = Self {
            dir: dir.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1),
            inner: Mutex::new(Inner { ids: HashSet::new(), current: None }),
        };
        let mut ids = HashSet::new();
        store.scan(|e| {
            ids.insert(e.event_id);
        })?;
        store.lock().ids = ids;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn segment_path(&self, day: &str, seq: u32) -> PathBuf {
        if seq == 0 {
            self.dir.join(format!("usage-{day}.jsonl"))
        } else {
            self.dir.join(format!("usage-{day}.{seq}.jsonl"))
        }
    }

    /// Every segment file, in name order.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, "cannot list", &e))?
            .filter_map(|d| d.ok().map(|d| d.path()))
            // Regular files only: a device or FIFO in the directory would never end.
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("usage-") && n.ends_with(".jsonl"))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn scan(&self, mut f: impl FnMut(UsageEvent)) -> Result<()> {
        for path in self.files()? {
            let file = File::open(&path).map_err(|e| io_err(&path, "cannot open", &e))?;
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| io_err(&path, "cannot read", &e))?;
                // Only a write cut short can leave a partial line, and it was reported as failed.
                if let Ok(e) = UsageEvent::from_json(&line) {
                    f(e);
                }
            }
        }
        Ok(())
    }

    /// The segment to append `incoming` bytes to: today's, unless it is past the rotation size.
    fn segment<'a>(&self, inner: &'a mut Inner, incoming: u64) -> Result<&'a mut Segment> {
        let day = Utc::now().format("%Y-%m-%d").to_string();
        let stale =
            inner.current.as_ref().is_none_or(|s| s.day != day || (s.len > 0 && s.len + incoming > self.rotate_bytes));
        if stale {
            let mut seq = match &inner.current {
                Some(s) if s.day == day => s.seq + 1,
                _ => 0,
            };
            loop {
                let path = self.segment_path(&day, seq);
                let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if len == 0 || len + incoming <= self.rotate_bytes {
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(|e| io_err(&path, "cannot open", &e))?;
                    inner.current = Some(Segment { file, day: day.clone(), seq, len });
                    break;
                }
                seq += 1;
            }
        }
        inner.current.as_mut().ok_or_else(|| Error::new(ErrorCode::Io, "no JSONL segment open"))
    }
}

impl Store for JsonlStore {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        let mut inner = self.lock();
        let mut buf = Vec::with_capacity(events.len() * 512);
        let mut fresh: Vec<&str> = Vec::new();
        let mut seen = HashSet::new();
        for e in events {
            if !inner.ids.contains(&e.event_id) && seen.insert(e.event_id.as_str()) {
                serde_json::to_writer(&mut buf, e)?;
                buf.push(b'\n');
                fresh.push(&e.event_id);
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let seg = self.segment(&mut inner, buf.len() as u64)?;
        let path = self.segment_path(&seg.day, seg.seq);
        let before = seg.len;
        if let Err(e) = seg.file.write_all(&buf).and_then(|()| seg.file.sync_data()) {
            // Keep whole lines only; the batch is retried or spilled by the writer. The file is
            // reopened on the next write, in case the fault was the file itself.
            let _ = seg.file.set_len(before);
            inner.current = None;
            return Err(io_err(&path, "cannot append to", &e));
        }
        seg.len = before + buf.len() as u64;
        let n = fresh.len();
        inner.ids.extend(fresh.into_iter().map(str::to_string));
        Ok(n)
    }

    fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        let mut agg = Aggregator::new(query)?;
        let _guard = self.lock();
        self.scan(|e| agg.add_event(&e))?;
        Ok(agg.finish())
    }

    fn verify(&self) -> Result<Vec<RollupDiff>> {
        Ok(Vec::new())
    }

    fn event_ids(&self) -> Result<Vec<String>> {
        Ok(self.lock().ids.iter().cloned().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ledger::test_event;

    #[test]
    fn idempotent_rotating_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonlStore::open(dir.path(), 2_000).unwrap();
        let batch: Vec<_> = (0..10).map(|i| test_event(i, "u1")).collect();
        assert_eq!(store.write_batch(&batch).unwrap(), 10);
        assert_eq!(store.write_batch(&batch[..5]).unwrap(), 0);
        let more: Vec<_> = (10..20).map(|i| test_event(i, "u2")).collect();
        assert_eq!(store.write_batch(&more).unwrap(), 10);
        assert!(store.files().unwrap().len() >= 2, "rotated by size");
        drop(store);
        let store = JsonlStore::open(dir.path(), 2_000).unwrap();
        assert_eq!(store.write_batch(&batch).unwrap(), 0, "ids survive reopening");
        let rows = store.query(&UsageQuery::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].requests, 20);
    }
}
