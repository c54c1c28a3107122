//! Ledger benchmarks: sustained recording to SQLite (store batches alone, and end to end through the
//! queue and writer), `record` enqueue latency (criterion mean, plus printed p50/p99), a month × user
//! report over 1M events (rollups vs a raw scan), and the RSS of 1M queued events (printed).
//!
//! Run: `cargo bench -p llmledger-core --bench ledger` (everything), or with a filter:
//! `-- sustained` prints only the sustained SQLite rates (the events/s figure: wall time and
//! process CPU time, median of 5 runs of 200k events, batch durability), `-- sqlite`, `-- enqueue`,
//! `-- report`, `-- rss`, `-- postgres`, `-- mysql`, `-- paced` (the ledger threads' CPU time per event
//! at 1,000 events/s, printed). The printed parts run only when the filter names them.
//! The PostgreSQL and MySQL stores side by side: `scripts/with-postgres.sh scripts/with-mariadb.sh cargo bench
//! -p llmledger-core --features postgres,mysql --bench ledger -- store_write_batch`.

// Rates and medians of timings only; no money here.
#![allow(clippy::float_arithmetic)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use llmledger_core::event::{Attribution, UsageEvent};
use llmledger_core::ledger::{FullQueuePolicy, Ledger, LedgerConfig, MemoryStore, Store};
use llmledger_core::report::{GroupBy, ReportRow, UsageQuery};
use llmledger_core::rollup::RollupDiff;
use llmledger_core::{Api, Breakdown, Cost, Provider, Result, Usage, UsageSource};
use rust_decimal::Decimal;

const MODELS: [&str; 5] = ["gpt-4o", "gpt-4o-mini", "o3", "gpt-4.1", "gpt-5"];

fn event(i: u64, base: DateTime<Utc>) -> UsageEvent {
    let usage = Usage {
        input_tokens: 1000 + i % 500,
        cache_read_tokens: 256,
        output_tokens: 200 + i % 100,
        usage_source: UsageSource::Reported,
        ..Usage::default()
    };
    let total = Decimal::new(i64::try_from(i % 10_000 + 1).unwrap_or(1), 8);
    let model = MODELS[usize::try_from(i % 5).unwrap_or(0)];
    let cost = Cost {
        provider: Provider::OpenAi,
        model: model.into(),
        price_version: chrono::NaiveDate::default(),
        price_data: String::new(),
        breakdown: Breakdown { input: total, ..Breakdown::default() },
        total_usd: total,
        currency: "USD".into(),
        rate: Decimal::ONE,
        total,
        tier_above: None,
        uncertain: false,
    };
    UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, model, usage)
        .with_id(format!("chatcmpl-{i:012}"))
        .with_timestamp(base + chrono::Duration::seconds(i64::try_from(i % 2_592_000).unwrap_or(0)))
        .with_cost(cost)
        .with_latency_ms(300 + i % 700)
        .with_attribution(Attribution {
            user_id: Some(format!("user-{}", i % 100)),
            workspace_id: Some(format!("ws-{}", i % 10)),
            project: Some("app".into()),
            ..Attribution::default()
        })
}

fn events(n: u64, offset: u64) -> Vec<UsageEvent> {
    let base = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default();
    (offset..offset + n).map(|i| event(i, base)).collect()
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}

/// Whether the command line's filter (criterion's positional argument) selects the printed part `name`.
fn wanted(name: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// CPU time of this process, every thread (user + system), from `/proc/self/stat` (clock ticks of 10 ms
/// on Linux: runs are timed over seconds). `None` where there is no procfs.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) — utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace().skip(11);
    let ticks: u64 = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Events per second of wall time and per second of process CPU time for `run` (which handles `n` events).
fn rates(n: u64, run: impl FnOnce()) -> (f64, Option<f64>) {
    let (t, cpu) = (Instant::now(), process_cpu());
    run();
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu.zip(process_cpu()).map(|(a, b)| (b - a).as_secs_f64()).filter(|s| *s > 0.0);
    (n as f64 / wall, cpu.map(|c| n as f64 / c))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The sustained SQLite rate (issue target ≥ 300k events/s, batch durability): 200k distinct events,
/// (a) through `Store::write_batch` in the writer's batch size, (b) end to end — `record` on a blocking
/// queue, the writer thread batching and writing, then `flush`. Five fresh databases each, medians.
/// Wall time shows what this machine gave; CPU time (every thread) is what the work costs, and is the
/// figure to compare on a shared machine.
fn bench_sustained(_: &mut Criterion) {
    if !wanted("sqlite_sustained") {
        return;
    }
    // LEDGER_BENCH_EVENTS: fewer events for a quick look (e.g. under `perf record`).
    let n_env = std::env::var("LEDGER_BENCH_EVENTS").ok().and_then(|v| v.parse().ok());
    let n: u64 = n_env.unwrap_or(200_000);
    let batch = std::env::var("LEDGER_BENCH_BATCH").ok().and_then(|v| v.parse().ok());
    let config =
        LedgerConfig { batch_size: batch.unwrap_or(LedgerConfig::default().batch_size), ..LedgerConfig::default() };
    let batch = config.batch_size;
    let mut store = (Vec::new(), Vec::new());
    let mut e2e = (Vec::new(), Vec::new());
    for run in 0..5u64 {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(ledger) = Ledger::open(&sqlite_url(&dir, "s.db"), config.clone()) else { return };
        let evs = events(n, run * n);
        let (w, c) = rates(n, || {
            for chunk in evs.chunks(batch) {
                let _ = black_box(ledger.store().write_batch(chunk));
            }
        });
        store.0.push(w);
        store.1.extend(c);
        drop(ledger);
        let blocking = LedgerConfig { full_queue: FullQueuePolicy::Block, ..config.clone() };
        let Ok(ledger) = Ledger::open(&sqlite_url(&dir, "e.db"), blocking) else { return };
        let evs = events(n, run * n);
        let (w, c) = rates(n, || {
            for e in evs {
                let _ = ledger.record(e);
            }
            let _ = black_box(ledger.flush());
        });
        e2e.0.push(w);
        e2e.1.extend(c);
        let _ = ledger.close();
    }
    let show = |v: &Vec<f64>| if v.is_empty() { "n/a".to_string() } else { format!("{:.0}k", median(v.clone()) / 1e3) };
    println!(
        "sustained SQLite, {n} events, batches of {batch}: store write_batch {}/s wall, {}/s per CPU second; \
         record+flush end to end {}/s wall, {}/s per CPU second (medians of 5)",
        show(&store.0),
        show(&store.1),
        show(&e2e.0),
        show(&e2e.1)
    );
}

fn bench_sqlite(c: &mut Criterion) {
    let mut g = c.benchmark_group("sqlite");
    g.sample_size(10);
    const N: u64 = 50_000;
    g.throughput(Throughput::Elements(N));
    // The store alone: transactions of the writer's batch size, a prepared statement and rollups.
    let batch = LedgerConfig::default().batch_size;
    g.bench_function("store_write_batch", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().ok();
                let ledger =
                    dir.as_ref().and_then(|d| Ledger::open(&sqlite_url(d, "s.db"), LedgerConfig::default()).ok());
                (dir, ledger, events(N, 0))
            },
            |(dir, ledger, evs)| {
                if let Some(l) = &ledger {
                    for chunk in evs.chunks(batch) {
                        let _ = black_box(l.store().write_batch(chunk));
                    }
                }
                (dir, ledger)
            },
            BatchSize::PerIteration,
        )
    });
    // End to end: record through the bounded queue (blocking when full) and flush.
    g.bench_function("record_and_flush", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().ok();
                let config = LedgerConfig { full_queue: FullQueuePolicy::Block, ..LedgerConfig::default() };
                let ledger = dir.as_ref().and_then(|d| Ledger::open(&sqlite_url(d, "r.db"), config).ok());
                (dir, ledger, events(N, 0))
            },
            |(dir, ledger, evs)| {
                if let Some(l) = &ledger {
                    for e in evs {
                        let _ = l.record(e);
                    }
                    let _ = black_box(l.flush());
                }
                (dir, ledger)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A store that holds every write until released, so the queue stays full.
#[derive(Debug)]
struct Stalled {
    inner: MemoryStore,
    open: AtomicBool,
}

impl Store for Stalled {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        while !self.open.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.inner.write_batch(events)
    }
    fn query(&self, q: &UsageQuery) -> Result<Vec<ReportRow>> {
        self.inner.query(q)
    }
    fn verify(&self) -> Result<Vec<RollupDiff>> {
        self.inner.verify()
    }
    fn event_ids(&self) -> Result<Vec<String>> {
        self.inner.event_ids()
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn bench_enqueue(c: &mut Criterion) {
    if !wanted("enqueue/record") {
        return;
    }
    let dir = tempfile::tempdir().ok();
    // A memory store with a large queue: measures the enqueue itself, not the store.
    let config = LedgerConfig {
        queue_capacity: 1 << 20,
        spill_dir: dir.as_ref().map(|d| d.path().to_path_buf()),
        ..LedgerConfig::default()
    };
    let Ok(ledger) = Ledger::open("memory://", config) else { return };
    let evs = events(200_000, 0);
    let mut lat: Vec<Duration> = Vec::with_capacity(evs.len());
    for e in evs {
        let t = Instant::now();
        let _ = ledger.record(e);
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    let pct = |p: usize| lat.get(lat.len() * p / 100).copied().unwrap_or_default();
    println!(
        "record enqueue latency over {} calls: p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        pct(50),
        pct(99),
        lat.last()
    );
    let _ = ledger.flush();

    let mut g = c.benchmark_group("enqueue");
    g.throughput(Throughput::Elements(1));
    let mut i = 1_000_000u64;
    let base = Utc::now();
    g.bench_function("record", |b| {
        b.iter_batched(
            || {
                i += 1;
                event(i, base)
            },
            |e| ledger.record(e),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let _ = ledger.close();
}

/// RSS with 1M queued events, measured first in a fresh process (printed, not a criterion figure).
fn bench_rss(_: &mut Criterion) {
    if !wanted("rss") {
        return;
    }
    let dir = tempfile::tempdir().ok();
    // RSS with 1M queued events: the store is stalled, the queue holds `queue_capacity` events and
    // the rest overflows to the spill file.
    let stalled = Arc::new(Stalled { inner: MemoryStore::new(chrono_tz::Tz::UTC), open: AtomicBool::new(false) });
    let config = LedgerConfig { spill_dir: dir.as_ref().map(|d| d.path().join("stalled")), ..LedgerConfig::default() };
    if let Ok(ledger) = Ledger::with_store(stalled.clone(), config) {
        let before = rss_kib();
        let base = Utc::now();
        for i in 0..1_000_000u64 {
            let _ = ledger.record(event(i, base));
        }
        let after = rss_kib();
        println!(
            "RSS with 1M queued events: +{} KiB ({before} KiB -> {after} KiB; {} overflowed to the spill file)",
            after.saturating_sub(before),
            ledger.stats().spilled
        );
        stalled.open.store(true, Ordering::Release);
        let _ = ledger.close();
    }
}

fn bench_report(c: &mut Criterion) {
    if !wanted("report_1m_events") {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    const N: u64 = 1_000_000;
    let Ok(ledger) = Ledger::open(&sqlite_url(&dir, "report.db"), LedgerConfig::default()) else { return };
    let t = Instant::now();
    for start in (0..N).step_by(100_000) {
        for chunk in events(100_000, start).chunks(500) {
            let _ = ledger.store().write_batch(chunk);
        }
    }
    println!("filled a SQLite ledger with {N} events in {:?}", t.elapsed());
    let month_user = UsageQuery { group_by: vec![GroupBy::Month, GroupBy::User], ..UsageQuery::default() };
    let day_model = UsageQuery { group_by: vec![GroupBy::Day, GroupBy::Model], ..UsageQuery::default() };
    let mut g = c.benchmark_group("report_1m_events");
    g.bench_function("month_x_user_rollups", |b| b.iter(|| black_box(ledger.query(&month_user))));
    g.bench_function("day_x_model_rollups", |b| b.iter(|| black_box(ledger.query(&day_model))));
    g.sample_size(10);
    let raw = UsageQuery { p95: true, ..month_user.clone() };
    g.bench_function("month_x_user_raw_scan_p95", |b| b.iter(|| black_box(ledger.query(&raw))));
    g.finish();
}

/// A SQL server on loopback, its URL from `env` (e.g. set by `scripts/with-postgres.sh` or
/// `scripts/with-mariadb.sh`): batches of the writer's size through the store, fresh ids every iteration.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn bench_server(c: &mut Criterion, group: &str, env: &str) {
    if !wanted(&format!("{group}/store_write_batch")) {
        return;
    }
    let Ok(url) = std::env::var(env) else {
        println!("SKIP: {group} bench (set {env}, or run under scripts/with-postgres.sh / scripts/with-mariadb.sh)");
        return;
    };
    let dir = tempfile::tempdir().ok();
    let config = LedgerConfig { spill_dir: dir.as_ref().map(|d| d.path().join(group)), ..LedgerConfig::default() };
    let Ok(ledger) = Ledger::open(&url, config) else { return };
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    const N: u64 = 50_000;
    g.throughput(Throughput::Elements(N));
    // Ids new to the server in every run, not only every iteration: a second run against the same
    // database would otherwise time the (different) path of ids already stored.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut offset = (1u64 << 40) + run * 1_000_000_000;
    // A failed write would look fast: count failures and refuse the figure.
    let failed = std::sync::atomic::AtomicU64::new(0);
    let batch = LedgerConfig::default().batch_size;
    g.bench_function("store_write_batch", |b| {
        b.iter_batched(
            || {
                offset += N;
                events(N, offset)
            },
            |evs| {
                for chunk in evs.chunks(batch) {
                    if black_box(ledger.store().write_batch(chunk)).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{group}: batches failed; the figure is not valid");
}

/// PostgreSQL on loopback (feature `postgres`, server from `LLMLEDGER_TEST_PG`).
#[cfg(feature = "postgres")]
fn bench_postgres(c: &mut Criterion) {
    bench_server(c, "postgres", "LLMLEDGER_TEST_PG");
}

#[cfg(not(feature = "postgres"))]
fn bench_postgres(_: &mut Criterion) {}

/// MySQL/MariaDB on loopback (feature `mysql`, server from `LLMLEDGER_TEST_MYSQL`).
#[cfg(feature = "mysql")]
fn bench_mysql(c: &mut Criterion) {
    bench_server(c, "mysql", "LLMLEDGER_TEST_MYSQL");
}

#[cfg(not(feature = "mysql"))]
fn bench_mysql(_: &mut Criterion) {}

/// CPU time (ns) of this process's threads whose name starts with one of `prefixes`, from
/// `/proc/self/task/*/schedstat`; 0 without procfs.
fn threads_cpu_ns(prefixes: &[&str]) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut total = 0;
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// CPU time (ns) of the calling thread.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The background side's cost per event at a service's pace (the peer run's ~1,000 calls/s): `record`
/// every millisecond for 3 s (memory and SQLite stores, batch durability), then `flush`; prints the CPU
/// time of the ledger's threads (the writer and the tokio threads it writes on) per event, and of the
/// calling thread (`record` and the pacing sleep, whose wake-ups are a constant). Median of 3 runs.
fn bench_paced(_: &mut Criterion) {
    if !wanted("paced") {
        return;
    }
    let n: u64 = std::env::var("LEDGER_PACED_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000);
    let pace = Duration::from_millis(1);
    for store in ["memory", "sqlite"] {
        let (mut bg, mut fg) = (Vec::new(), Vec::new());
        for run in 0..3u64 {
            let Ok(dir) = tempfile::tempdir() else { return };
            let url = if store == "memory" { "memory://".to_string() } else { sqlite_url(&dir, "p.db") };
            let config = LedgerConfig { spill_dir: Some(dir.path().join("spill")), ..LedgerConfig::default() };
            let Ok(ledger) = Ledger::open(&url, config) else { return };
            let evs = events(n, run * n);
            let _ = ledger.flush();
            let threads = ["llmledger-write", "tokio-"];
            let (b0, f0, start) = (threads_cpu_ns(&threads), thread_cpu_ns(), Instant::now());
            for (i, e) in (0u32..).zip(evs) {
                if let Some(wait) = (start + pace * i).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let _ = black_box(ledger.record(e));
            }
            let in_loop = thread_cpu_ns() - f0;
            let _ = ledger.flush();
            bg.push((threads_cpu_ns(&threads) - b0) as f64 / n as f64);
            fg.push(in_loop as f64 / n as f64);
            let _ = ledger.close();
        }
        println!(
            "paced {store}, {n} events at 1/ms: ledger threads {:.2} µs CPU per event [{:.2}–{:.2}], calling thread \
             {:.2} µs CPU per event (record and the pacing sleep) (medians of 3)",
            median(bg.clone()) / 1e3,
            bg.iter().copied().fold(f64::INFINITY, f64::min) / 1e3,
            bg.iter().copied().fold(0.0, f64::max) / 1e3,
            median(fg) / 1e3,
        );
    }
}

criterion_group!(
    benches,
    bench_paced,
    bench_sustained,
    bench_rss,
    bench_sqlite,
    bench_postgres,
    bench_mysql,
    bench_enqueue,
    bench_report
);
criterion_main!(benches);
