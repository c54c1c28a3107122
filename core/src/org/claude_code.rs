//! Importing Claude Code's local usage logs (`<root>/projects/**/*.jsonl`) into the organisation tables.
//!
//! Owns: where the logs are ([`default_roots`]), reading one log line ([`parse_line`]), which of several
//! copies of a message counts ([`Entry::beats`]), pricing an entry, and the incremental scan (each file's
//! read offset and size are remembered in the store, so a re-import reads only what was appended).
//!
//! The rules, as the reference tool (ccusage) applies them:
//! - A line counts when it has `message.usage` with `input_tokens` and `output_tokens` and a
//!   `timestamp`. A line that is not JSON, or that has a usage with a bad field, is *malformed*: skipped
//!   and counted. Lines without a usage (user turns, summaries) are skipped silently, and so are
//!   Claude Code's own `<synthetic>` messages (no API call behind them).
//! - One entry per `message.id` + `requestId`. Among copies the non-sidechain one wins, then the one
//!   with the larger token total; so a sidechain replay of a message already seen is not counted again.
//!   A line missing either id cannot be matched and always counts (keyed by its file and offset).
//! - Price: our price data at the entry's timestamp, cache writes split into 5-minute and 1-hour by
//!   `usage.cache_creation` (an older log without the split wrote 5-minute entries only). The log's own
//!   `costUSD` is used only with [`CostMode::Log`] (and only on lines that carry it).
//! - Attribution: the project folder (the directory right under `projects/`), the session id
//!   (`sessionId`, else the file name) and the model.
//!
//! Layouts: Claude Code kept its data in `~/.claude` and from v1.0.30 in `~/.config/claude`; both are
//! read, or the comma-separated roots of `CLAUDE_CONFIG_DIR` instead. Logs may sit directly in a project
//! folder (`projects/<project>/<session>.jsonl`) or deeper (sub-agent logs), every `*.jsonl` is read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorCode, Result};
use crate::pricing::{PriceDb, PriceOptions};
use crate::usage::{Usage, UsageSource};

/// Where an entry's cost comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostMode {
    /// Our price data (the default).
    #[default]
    Calculate,
    /// The log's `costUSD` where a line carries it, our price data elsewhere.
    Log,
}

/// One priced, attributed request of an agent, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `message.id:requestId`, or `@file:offset` for a line missing either.
    pub key: String,
    pub timestamp: DateTime<Utc>,
    pub project: String,
    pub session_id: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_5m_tokens: u64,
    pub cache_write_1h_tokens: u64,
    pub sidechain: bool,
    /// USD; `None` when the model has no price (and the log gave none to use).
    pub cost_usd: Option<Decimal>,
    /// `calculated` or `log`; empty when unpriced.
    pub cost_source: String,
}

impl Entry {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
    }

    /// Whether this copy of a message replaces `other`: non-sidechain first, then the larger token total.
    pub fn beats(&self, other: &Entry) -> bool {
        match (self.sidechain, other.sidechain) {
            (false, true) => true,
            (true, false) => false,
            _ => self.total_tokens() > other.total_tokens(),
        }
    }
}

/// What one line of a log is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A request with usage (not yet priced: `cost_usd` is the log's `costUSD`, if any).
    Usage(Box<Entry>),
    /// No usage on it (a user turn, a summary, a synthetic message).
    Other,
    /// Not JSON, or a usage with a bad field.
    Malformed,
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "sessionId")]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "requestId")]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, rename = "isSidechain")]
    is_sidechain: Option<bool>,
    #[serde(borrow, default, rename = "costUSD")]
    cost_usd: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<RawMessage<'a>>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<RawCacheCreation>,
}

#[derive(Deserialize)]
struct RawCacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    ephemeral_1h_input_tokens: u64,
}

/// Parses one log line. `project` and `file_session` (the file name, the session when the line names
/// none) attribute it; `file_key` + `offset` key a line missing its ids.
pub fn parse_line(line: &[u8], project: &str, file_session: &str, file_key: &str, offset: u64) -> Line {
    let Ok(raw) = serde_json::from_slice::<RawLine<'_>>(line) else { return Line::Malformed };
    let Some(message) = raw.message else { return Line::Other };
    let Some(usage) = message.usage else { return Line::Other };
    let model = message.model.as_deref().unwrap_or("");
    if model == "<synthetic>" {
        return Line::Other;
    }
    let Some(timestamp) = raw.timestamp.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()) else {
        return Line::Malformed;
    };
    let cache_write = usage.cache_creation_input_tokens.unwrap_or(0);
    let (write_5m, write_1h) = match usage.cache_creation {
        // The split is authoritative when present; a total that disagrees with it keeps the split.
        Some(split) => (split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens),
        None => (cache_write, 0),
    };
    let cost_usd = match raw.cost_usd {
        Some(v) if v.get() != "null" => match parse_decimal(v.get()) {
            Some(d) => Some(d),
            None => return Line::Malformed,
        },
        _ => None,
    };
    let key = match (message.id, raw.request_id) {
        (Some(id), Some(req)) => format!("{id}:{req}"),
        _ => format!("@{file_key}:{offset}"),
    };
    Line::Usage(Box::new(Entry {
        key,
        timestamp: timestamp.with_timezone(&Utc),
        project: project.to_string(),
        session_id: raw.session_id.map_or_else(|| file_session.to_string(), Cow::into_owned),
        model: model.to_string(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_read_tokens: usage.cache_read_input_tokens.unwrap_or(0),
        cache_write_5m_tokens: write_5m,
        cache_write_1h_tokens: write_1h,
        sidechain: raw.is_sidechain.unwrap_or(false),
        cost_usd,
        cost_source: String::new(),
    }))
}

/// A JSON number's text as an exact decimal (`0.0123`, `1.2e-5`).
fn parse_decimal(text: &str) -> Option<Decimal> {
    text.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(text).ok())
}

/// The Claude Code data roots: the comma-separated `CLAUDE_CONFIG_DIR` when set (non-empty), else
/// `~/.config/claude` and `~/.claude`. Each root holds `projects/`; roots without it are dropped later.
pub fn default_roots(claude_config_dir: Option<&str>, home: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dirs) = claude_config_dir.filter(|d| !d.trim().is_empty()) {
        return dirs.split(',').map(str::trim).filter(|d| !d.is_empty()).map(PathBuf::from).collect();
    }
    home.map(|h| vec![h.join(".config").join("claude"), h.join(".claude")]).unwrap_or_default()
}

/// How far a file was read: the offset after its last complete line, and its size then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileMark {
    pub offset: u64,
    pub size: u64,
}

/// A log file found under a root.
#[derive(Debug, Clone)]
struct LogFile {
    path: PathBuf,
    /// The path as stored (absolute when it could be made so).
    key: String,
    project: String,
    session: String,
    size: u64,
}

/// Every `*.jsonl` under `<root>/projects`, sorted, with its project folder.
fn find_logs(roots: &[PathBuf]) -> Result<(Vec<LogFile>, usize)> {
    let mut files = Vec::new();
    let mut roots_found = 0;
    for root in roots {
        let projects = root.join("projects");
        if !projects.is_dir() {
            continue;
        }
        roots_found += 1;
        let mut stack = vec![projects.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| Error::new(ErrorCode::Io, format!("reading {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "jsonl") {
                    let rel = path.strip_prefix(&projects).unwrap_or(&path);
                    let mut parts = rel.components();
                    let first = parts.next().map(|c| c.as_os_str().to_string_lossy().into_owned());
                    // A log right in `projects/` (no project folder) is attributed to no project.
                    let project = if parts.next().is_some() { first.unwrap_or_default() } else { String::new() };
                    let session = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    let abs = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                    files.push(LogFile {
                        key: abs.to_string_lossy().into_owned(),
                        path,
                        project,
                        session,
                        size: meta.len(),
                    });
                }
            }
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    // The same file reached through two roots (a symlink) is read once.
    files.dedup_by(|a, b| a.key == b.key);
    Ok((files, roots_found))
}

/// What one file contributed.
#[derive(Debug, Default)]
struct FileScan {
    entries: Vec<Entry>,
    lines: u64,
    malformed: u64,
    bytes: u64,
    mark: FileMark,
}

/// Reads `file` from `from` to its last complete line (a last line without a newline is taken when it
/// is complete JSON, else left for the next import, as Claude Code may be writing it).
fn scan_file(file: &LogFile, from: u64) -> Result<FileScan> {
    let io = |e: std::io::Error| Error::new(ErrorCode::Io, format!("reading {}: {e}", file.path.display()));
    let mut f = std::fs::File::open(&file.path).map_err(io)?;
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut buf = Vec::with_capacity(usize::try_from(file.size.saturating_sub(from)).unwrap_or(0));
    f.read_to_end(&mut buf).map_err(io)?;
    let size = from + buf.len() as u64;
    let mut scan = FileScan { mark: FileMark { offset: from, size }, bytes: buf.len() as u64, ..FileScan::default() };
    let mut start = 0usize;
    while start < buf.len() {
        let (end, next, complete) = match buf[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1, true),
            None => (buf.len(), buf.len(), false),
        };
        let line = trim(&buf[start..end]);
        let offset = from + start as u64;
        if !line.is_empty() {
            match parse_line(line, &file.project, &file.session, &file.key, offset) {
                Line::Malformed if !complete => break, // being written: read it next time
                Line::Malformed => {
                    scan.lines += 1;
                    scan.malformed += 1;
                }
                Line::Other => scan.lines += 1,
                Line::Usage(entry) => {
                    scan.lines += 1;
                    scan.entries.push(*entry);
                }
            }
        }
        start = next;
        scan.mark.offset = from + next as u64;
    }
    Ok(scan)
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    &line[start..]
}

/// Import options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Claude Code data roots (each holding `projects/`); see [`default_roots`].
    pub roots: Vec<PathBuf>,
    pub cost_mode: CostMode,
    /// Read every file from the start, ignoring remembered offsets (entries already stored are
    /// matched by key, so nothing is counted twice).
    pub full: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Roots that held a `projects/` directory.
    pub roots: usize,
    /// Log files found.
    pub files: usize,
    /// Files with something new to read.
    pub files_read: usize,
    pub bytes_read: u64,
    /// Non-empty lines read.
    pub lines: u64,
    /// Lines skipped as malformed.
    pub malformed: u64,
    /// Usage lines read.
    pub usage_lines: u64,
    /// Usage lines that were copies of another line of this import or of a stored entry and did not win.
    pub duplicates: u64,
    /// Entries stored or replaced by a better copy.
    pub stored: u64,
    /// Entries of a model without a price (stored without a cost).
    pub unpriced: u64,
    /// Models without a price, sorted.
    pub unpriced_models: Vec<String>,
    /// USD cost of the entries this import stored.
    pub cost_usd: Decimal,
}

/// What [`collect`] read: the entries to store, the new file marks and the summary (its `stored`,
/// `duplicates` and `cost_usd` are completed by the store).
#[derive(Debug)]
pub(crate) struct Collected {
    pub(crate) entries: Vec<Entry>,
    pub(crate) marks: Vec<(String, FileMark)>,
    pub(crate) summary: ImportSummary,
}

/// Reads new log lines, dedupes and prices them.
pub(crate) fn collect(opts: &ImportOptions, marks: &HashMap<String, FileMark>, prices: &PriceDb) -> Result<Collected> {
    let (files, roots) = find_logs(&opts.roots)?;
    let mut summary = ImportSummary { roots, files: files.len(), ..ImportSummary::default() };
    let todo: Vec<(&LogFile, u64)> = files
        .iter()
        .filter_map(|f| {
            let from = match marks.get(&f.key) {
                Some(_) if opts.full => 0,
                // Shorter than what was read: the file was replaced or truncated; read it again.
                Some(m) if f.size < m.offset => 0,
                Some(m) if f.size == m.size && m.offset == m.size => return None,
                Some(m) => m.offset,
                None => 0,
            };
            Some((f, from))
        })
        .collect();
    summary.files_read = todo.len();
    let scans = scan_parallel(&todo)?;

    let mut best: HashMap<String, Entry> = HashMap::new();
    let mut new_marks = Vec::with_capacity(scans.len());
    for ((file, _), scan) in todo.iter().zip(scans) {
        summary.bytes_read += scan.bytes;
        summary.lines += scan.lines;
        summary.malformed += scan.malformed;
        summary.usage_lines += scan.entries.len() as u64;
        new_marks.push((file.key.clone(), scan.mark));
        for entry in scan.entries {
            match best.get_mut(&entry.key) {
                Some(held) => {
                    summary.duplicates += 1;
                    if entry.beats(held) {
                        *held = entry;
                    }
                }
                None => {
                    best.insert(entry.key.clone(), entry);
                }
            }
        }
    }
    let mut entries: Vec<Entry> = best.into_values().collect();
    entries.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then_with(|| a.key.cmp(&b.key)));
    price_entries(&mut entries, prices, opts.cost_mode, &mut summary);
    Ok(Collected { entries, marks: new_marks, summary })
}

/// Scans files on up to `available_parallelism` threads, largest first so the threads end together.
fn scan_parallel(todo: &[(&LogFile, u64)]) -> Result<Vec<FileScan>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(todo.len().max(1));
    if threads <= 1 {
        return todo.iter().map(|(f, from)| scan_file(f, *from)).collect();
    }
    let mut order: Vec<usize> = (0..todo.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(todo[i].0.size - todo[i].1.min(todo[i].0.size)));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Vec<(usize, Result<FileScan>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = order.get(n) else { break };
                        let (f, from) = todo[i];
                        done.push((i, scan_file(f, from)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut slots: Vec<Option<FileScan>> = (0..todo.len()).map(|_| None).collect();
    for (i, scan) in results.into_iter().flatten() {
        slots[i] = Some(scan?);
    }
    slots.into_iter().map(|s| s.ok_or_else(|| Error::new(ErrorCode::Io, "a log reader thread stopped"))).collect()
}

fn price_entries(entries: &mut [Entry], prices: &PriceDb, mode: CostMode, summary: &mut ImportSummary) {
    let mut resolved = HashMap::new();
    let mut unpriced = std::collections::BTreeSet::new();
    for e in entries.iter_mut() {
        let log_cost = e.cost_usd.take();
        if let (CostMode::Log, Some(cost)) = (mode, log_cost) {
            e.cost_usd = Some(cost);
            e.cost_source = "log".into();
            continue;
        }
        let model = resolved.entry(e.model.clone()).or_insert_with(|| prices.resolve(&e.model).ok());
        let usage = Usage {
            input_tokens: e.input_tokens,
            cache_read_tokens: e.cache_read_tokens,
            cache_write_tokens: e.cache_write_5m_tokens + e.cache_write_1h_tokens,
            cache_write_1h_tokens: e.cache_write_1h_tokens,
            output_tokens: e.output_tokens,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        match model.as_ref().map(|m| m.price(&usage, e.timestamp, &PriceOptions::default())) {
            Some(Ok(cost)) => {
                e.cost_usd = Some(cost.total_usd.normalize());
                e.cost_source = "calculated".into();
            }
            _ => {
                summary.unpriced += 1;
                unpriced.insert(e.model.clone());
            }
        }
    }
    summary.unpriced_models = unpriced.into_iter().collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_come_from_claude_config_dir_or_both_defaults() {
        assert_eq!(
            default_roots(Some(" /a , /b,"), Some(Path::new("/h"))),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(
            default_roots(Some(""), Some(Path::new("/h"))),
            vec![PathBuf::from("/h/.config/claude"), PathBuf::from("/h/.claude")]
        );
        assert!(default_roots(None, None).is_empty());
    }

    #[test]
    fn a_line_is_usage_other_or_malformed() {
        let usage = br#"{"timestamp":"2026-11-03T10:00:00Z","sessionId":"s1","requestId":"r1","isSidechain":true,"costUSD":1.5e-3,"message":{"id":"m1","model":"claude-sonnet-4-20250514","usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":30,"cache_read_input_tokens":40,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":20}}}}"#;
        let Line::Usage(e) = parse_line(usage, "p", "file", "f", 0) else { panic!("not usage") };
        assert_eq!(e.key, "m1:r1");
        assert_eq!((e.cache_write_5m_tokens, e.cache_write_1h_tokens, e.cache_read_tokens), (10, 20, 40));
        assert_eq!(e.total_tokens(), 100);
        assert!(e.sidechain);
        assert_eq!(e.cost_usd, Some(Decimal::new(15, 4)));
        assert_eq!(e.session_id, "s1");
        assert_eq!(
            parse_line(br#"{"type":"user","message":{"role":"user","content":"hi"}}"#, "p", "s", "f", 0),
            Line::Other
        );
        assert_eq!(
            parse_line(
                br#"{"timestamp":"2026-11-03T10:00:00Z","message":{"model":"x","usage":{"output_tokens":1}}}"#,
                "p",
                "s",
                "f",
                0
            ),
            Line::Malformed
        );
        assert_eq!(parse_line(b"{\"timestamp\":", "p", "s", "f", 0), Line::Malformed);
        // No ids: keyed by file and offset; no sessionId: the file's name.
        let Line::Usage(e) = parse_line(
            br#"{"timestamp":"2026-11-03T10:00:00.123+01:00","message":{"model":"m","usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":7}}}"#,
            "p",
            "sess",
            "/x.jsonl",
            99,
        ) else {
            panic!("not usage")
        };
        assert_eq!((e.key.as_str(), e.session_id.as_str(), e.cache_write_5m_tokens), ("@/x.jsonl:99", "sess", 7));
        assert_eq!(e.timestamp.to_rfc3339(), "2026-11-03T09:00:00.123+00:00");
    }
}
