//! Many writers, one PostgreSQL ledger: what a fleet of app servers sharing one database gets. Several
//! processes (each its own `Ledger`, queue and writer, as an app server has) × threads calling
//! `Ledger::record` for a fixed time, while this process serves a month × user report from the rollups every
//! 250 ms. Prints the sustained rate (events durably stored per second of wall time, from the first record to
//! the last process's final flush), `record`'s enqueue latency over every call of every process (p50, p99,
//! max), the report's latency while the writers run, and checks that the ledger holds every recorded event
//! (a report over the run's events) and that the rollups agree with the raw events (`Ledger::verify`).
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p llmledger-bench --bin pg-writers -- \
//!     [--processes 4] [--threads 4] [--seconds 20] [--rate 0] [--policy block]
//! ```
//!
//! `--rate` is events per second per thread (0: as fast as the queue takes them); `--policy` is the
//! full-queue policy (`block`: producers wait for the writer, so the rate is what PostgreSQL absorbs;
//! `spill`, the default of the library: the overflow goes to the spill file and is replayed). The server
//! comes from `LLMLEDGER_TEST_PG` (or `--url`). Figures, not a test: nothing here is asserted on speed.

// Rates and percentiles of timings only; no money here.
#![allow(clippy::float_arithmetic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use llmledger_core::event::{Attribution, UsageEvent};
use llmledger_core::ledger::{FullQueuePolicy, Ledger, LedgerConfig};
use llmledger_core::report::{GroupBy, UsageFilter, UsageQuery};
use llmledger_core::{Api, PriceDb, PriceOptions, Provider, Usage, UsageSource};

const MODELS: [&str; 5] = ["gpt-4o", "gpt-4o-mini", "o3", "gpt-4.1", "gpt-5"];

#[derive(Debug, Clone)]
struct Options {
    url: String,
    processes: u32,
    threads: u32,
    seconds: u64,
    rate: u64,
    policy: String,
    /// Child mode: this process's index and the run's tag.
    child: Option<(u32, String)>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        url: std::env::var("LLMLEDGER_TEST_PG").unwrap_or_default(),
        processes: 4,
        threads: 4,
        seconds: 20,
        rate: 0,
        policy: "block".into(),
        child: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => o.url = value()?,
            "--processes" => o.processes = u32::try_from(num(value()?)?).map_err(|e| e.to_string())?,
            "--threads" => o.threads = u32::try_from(num(value()?)?).map_err(|e| e.to_string())?,
            "--seconds" => o.seconds = num(value()?)?,
            "--rate" => o.rate = num(value()?)?,
            "--policy" => o.policy = value()?,
            "--child" => {
                let index = u32::try_from(num(value()?)?).map_err(|e| e.to_string())?;
                o.child = Some((index, value()?));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.url.is_empty() {
        return Err("no server: set LLMLEDGER_TEST_PG (scripts/with-postgres.sh does) or pass --url".into());
    }
    Ok(o)
}

/// A chat call as a wrapped SDK records it: priced by core's embedded prices, attributed to one of 100
/// users × 10 workspaces under the run's project, so that the run's report covers exactly its events.
fn event(prices: &PriceDb, run: &str, process: u32, thread: u32, i: u64, base: DateTime<Utc>) -> UsageEvent {
    let usage = Usage {
        input_tokens: 1000 + i % 500,
        cache_read_tokens: 256,
        output_tokens: 200 + i % 100,
        usage_source: UsageSource::Reported,
        ..Usage::default()
    };
    let model = MODELS[usize::try_from(i % 5).unwrap_or(0)];
    let cost = prices.price(&usage, model, base, &PriceOptions::default());
    let e = UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, model, usage)
        .with_id(format!("chatcmpl-{run}-{process}-{thread}-{i}"))
        .with_timestamp(base + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(0)))
        .with_latency_ms(300 + i % 700)
        .with_attribution(Attribution {
            user_id: Some(format!("user-{}", (i + u64::from(thread)) % 100)),
            workspace_id: Some(format!("ws-{}", i % 10)),
            project: Some(format!("bench-{run}")),
            ..Attribution::default()
        });
    match cost {
        Ok(cost) => e.with_cost(cost),
        Err(_) => e,
    }
}

/// Enqueue latencies, bucketed: 100 ns steps below 100 µs, 10 µs below 10 ms, 1 ms above (to 10 s).
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    max_ns: u64,
}

impl Histogram {
    const FINE: u64 = 1_000; // 100 ns × 1,000 = 100 µs
    const MID: u64 = 1_000; // 10 µs × 1,000 = 10 ms
    const COARSE: u64 = 10_000; // 1 ms × 10,000 = 10 s

    fn new() -> Self {
        Self { counts: vec![0; usize::try_from(Self::FINE + Self::MID + Self::COARSE).unwrap_or(0)], max_ns: 0 }
    }

    fn bucket(ns: u64) -> u64 {
        if ns < 100_000 {
            ns / 100
        } else if ns < 10_000_000 {
            Self::FINE + (ns - 100_000) / 10_000
        } else {
            (Self::FINE + Self::MID + (ns - 10_000_000) / 1_000_000).min(Self::FINE + Self::MID + Self::COARSE - 1)
        }
    }

    /// The upper edge of bucket `b`, in ns.
    fn edge(b: u64) -> u64 {
        if b < Self::FINE {
            (b + 1) * 100
        } else if b < Self::FINE + Self::MID {
            100_000 + (b - Self::FINE + 1) * 10_000
        } else {
            10_000_000 + (b - Self::FINE - Self::MID + 1) * 1_000_000
        }
    }

    fn add(&mut self, ns: u64) {
        if let Some(c) = usize::try_from(Self::bucket(ns)).ok().and_then(|b| self.counts.get_mut(b)) {
            *c += 1;
        }
        self.max_ns = self.max_ns.max(ns);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket edge under which `p` % of the samples fall.
    fn percentile(&self, p: u64) -> Duration {
        let want = (self.total() * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Duration::from_nanos(Self::edge(u64::try_from(b).unwrap_or(0)).min(self.max_ns));
            }
        }
        Duration::from_nanos(self.max_ns)
    }

    /// One line for the parent: `HIST max bucket:count …` (non-empty buckets only).
    fn encode(&self) -> String {
        let mut s = format!("HIST {}", self.max_ns);
        for (b, c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            s.push_str(&format!(" {b}:{c}"));
        }
        s
    }

    fn decode(line: &str) -> Option<Histogram> {
        let mut parts = line.strip_prefix("HIST ")?.split(' ');
        let mut h = Histogram { max_ns: parts.next()?.parse().ok()?, ..Histogram::new() };
        for part in parts {
            let (b, c) = part.split_once(':')?;
            *h.counts.get_mut(b.parse::<usize>().ok()?)? = c.parse().ok()?;
        }
        Some(h)
    }
}

fn config(policy: &str) -> Result<LedgerConfig, String> {
    let full_queue = match policy {
        "block" => FullQueuePolicy::Block,
        "spill" => FullQueuePolicy::Spill,
        other => return Err(format!("--policy {other}: expected block or spill")),
    };
    let spill_dir = std::env::temp_dir().join(format!("llmledger-pg-writers-{}", std::process::id()));
    Ok(LedgerConfig { full_queue, spill_dir: Some(spill_dir), ..LedgerConfig::default() })
}

/// One app server: `threads` threads recording for `seconds`, then a flush. Prints `EVENTS n`, `SPILLED n`
/// and the histogram line.
fn child(o: &Options, index: u32, run: &str) -> Result<(), String> {
    let ledger = Arc::new(Ledger::open(&o.url, config(&o.policy)?).map_err(|e| e.to_string())?);
    let prices = Arc::new(PriceDb::embedded());
    let base = Utc::now();
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let workers: Vec<_> = (0..o.threads)
        .map(|t| {
            let (ledger, prices, run, rate) = (ledger.clone(), prices.clone(), run.to_owned(), o.rate);
            thread::spawn(move || {
                let mut h = Histogram::new();
                let start = Instant::now();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    // Paced (rate > 0): event i is due at start + i / rate.
                    if let Some(offset) = i.saturating_mul(1_000_000_000).checked_div(rate) {
                        let due = start + Duration::from_nanos(offset);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            thread::sleep(wait);
                        }
                    }
                    let e = event(&prices, &run, index, t, i, base);
                    let t0 = Instant::now();
                    if ledger.record(e).is_err() {
                        return Err(format!("record failed in process {index} thread {t}"));
                    }
                    h.add(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    i += 1;
                }
                Ok((i, h))
            })
        })
        .collect();
    let mut total = Histogram::new();
    let mut events = 0;
    for w in workers {
        let (n, h) = w.join().map_err(|_| "a writer thread panicked".to_string())??;
        events += n;
        total.merge(&h);
    }
    ledger.flush().map_err(|e| e.to_string())?;
    let spilled = ledger.stats().spilled;
    ledger.close().map_err(|e| e.to_string())?;
    println!("EVENTS {events}");
    println!("SPILLED {spilled}");
    println!("{}", total.encode());
    Ok(())
}

fn pct(mut xs: Vec<Duration>, p: usize) -> Duration {
    xs.sort_unstable();
    xs.get((xs.len() * p / 100).min(xs.len().saturating_sub(1))).copied().unwrap_or_default()
}

fn parent(o: &Options) -> Result<(), String> {
    let run = format!("{}", Utc::now().format("%Y%m%d%H%M%S%3f"));
    // Opening creates the schema once, before the writers race to.
    let reader = Ledger::open(&o.url, config(&o.policy)?).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "pg-writers: {} processes × {} threads for {} s, rate {} (per thread), full-queue policy {}, run {run}",
        o.processes,
        o.threads,
        o.seconds,
        if o.rate == 0 { "unlimited".to_string() } else { format!("{}/s", o.rate) },
        o.policy
    );
    let start = Instant::now();
    let mut children = Vec::new();
    for i in 0..o.processes {
        let mut cmd = Command::new(&exe);
        cmd.args(["--url", &o.url, "--threads", &o.threads.to_string(), "--seconds", &o.seconds.to_string()])
            .args(["--rate", &o.rate.to_string(), "--policy", &o.policy, "--child", &i.to_string(), &run])
            .stdout(Stdio::piped());
        children.push(cmd.spawn().map_err(|e| e.to_string())?);
    }

    // The report a dashboard would ask for, from the rollups, while the writers run.
    let query = UsageQuery {
        filter: UsageFilter { project: Some(format!("bench-{run}")), ..UsageFilter::default() },
        group_by: vec![GroupBy::Month, GroupBy::User],
        ..UsageQuery::default()
    };
    let mut report_latency = Vec::new();
    let writing = Duration::from_secs(o.seconds);
    while start.elapsed() < writing {
        let t = Instant::now();
        reader.query(&query).map_err(|e| e.to_string())?;
        report_latency.push(t.elapsed());
        thread::sleep(Duration::from_millis(250).saturating_sub(t.elapsed()));
    }

    let (mut events, mut spilled, mut hist) = (0u64, 0u64, Histogram::new());
    for mut c in children {
        let out = c.stdout.take().ok_or("no child stdout")?;
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(n) = line.strip_prefix("EVENTS ") {
                events += n.parse::<u64>().map_err(|e| e.to_string())?;
            } else if let Some(n) = line.strip_prefix("SPILLED ") {
                spilled += n.parse::<u64>().map_err(|e| e.to_string())?;
            } else if let Some(h) = Histogram::decode(&line) {
                hist.merge(&h);
            }
        }
        let status = c.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a writer process failed: {status}"));
        }
    }
    let wall = start.elapsed();

    let rows = reader.query(&query).map_err(|e| e.to_string())?;
    let stored: u64 = rows.iter().map(|r| r.requests).sum();
    let t = Instant::now();
    let diffs = reader.verify().map_err(|e| e.to_string())?;
    let verify = t.elapsed();
    println!(
        "sustained: {events} events in {:.1} s = {:.0} events/s stored (first record to the last flush); {spilled} went through the spill file",
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64()
    );
    println!(
        "record enqueue latency over {} calls: p50 {:?}, p99 {:?}, max {:?}",
        hist.total(),
        hist.percentile(50),
        hist.percentile(99),
        Duration::from_nanos(hist.max_ns)
    );
    println!(
        "month × user report from the rollups during the run: {} queries, p50 {:?}, p99 {:?}",
        report_latency.len(),
        pct(report_latency.clone(), 50),
        pct(report_latency, 99)
    );
    println!(
        "check: the report counts {stored} of {events} recorded events; rollups vs raw events: {} differences (verify took {:?})",
        diffs.len(),
        verify
    );
    reader.close().map_err(|e| e.to_string())?;
    if stored != events || !diffs.is_empty() {
        return Err("the ledger does not hold exactly the recorded events".into());
    }
    Ok(())
}

fn main() {
    let result = options().and_then(|o| match &o.child {
        Some((index, run)) => child(&o, *index, run),
        None => parent(&o),
    });
    if let Err(e) = result {
        eprintln!("pg-writers: {e}");
        std::process::exit(1);
    }
}
