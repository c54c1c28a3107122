//! Spend-control benchmarks: the added cost of a budget check per wrapped call — one reservation and
//! its settlement (two write transactions) against a balance and a daily limit — on SQLite and, with
//! the `postgres` feature and `LLMLEDGER_TEST_PG`, on PostgreSQL; the fast path when no limit or
//! balance exists; and reservations per second under contention (printed).
//!
//! Run: `cargo bench -p llmledger-core --bench spend` (SQLite and the fast path), `-- contention`
//! for the contention figures, and `scripts/with-postgres.sh cargo bench -p llmledger-core
//! --features postgres --bench spend -- postgres` for PostgreSQL.

// Rates of timings only; no money here.
#![allow(clippy::float_arithmetic)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use llmledger_core::event::Attribution;
use llmledger_core::spend::{
    Account, LimitAction, LimitSpec, Per, ReserveRequest, Scope, SettleRequest, Spend, SpendConfig,
};
use llmledger_core::Rates;
use rust_decimal::Decimal;

fn open(url: &str) -> Spend {
    Spend::open(url, "USD", Rates::new(), "UTC", SpendConfig::default()).expect("spend store")
}

/// A user with a large balance and a daily limit, so every call holds two targets.
fn setup(s: &Spend, user: &str) {
    s.top_up(&Account::user(user).expect("account"), Decimal::new(1_000_000, 0), None).expect("top-up");
    let scope = Scope::new([("user_id".to_string(), user.to_string())].into()).expect("scope");
    s.set_limit(&LimitSpec {
        scope,
        per: Per::Day,
        amount: Some(Decimal::new(1_000_000, 0)),
        currency: None,
        requests: None,
        tokens: None,
        action: LimitAction::Block,
        thresholds: None,
        timezone: None,
    })
    .expect("limit");
}

/// One call's check and settlement.
fn reserve_settle(s: &Spend, who: &Attribution) {
    let r = s
        .reserve(&ReserveRequest {
            attribution: who.clone(),
            max_cost: Some(Decimal::new(1002, 5)),
            currency: None,
            max_tokens: 1008,
            model: "gpt-4o".into(),
            at: None,
        })
        .expect("reserved");
    s.settle(&SettleRequest {
        reservation_id: r.id,
        actual_cost: Decimal::new(522, 5),
        currency: None,
        actual_tokens: 1550,
        at: None,
    })
    .expect("settled");
}

fn user(id: &str) -> Attribution {
    Attribution { user_id: Some(id.into()), ..Attribution::default() }
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("spend.db").display());
    let s = open(&url);
    setup(&s, "u1");
    let who = user("u1");
    c.bench_function("spend_sqlite_reserve_settle", |b| b.iter(|| reserve_settle(&s, &who)));
    let empty = open("memory://");
    c.bench_function("spend_inactive_check", |b| b.iter(|| std::hint::black_box(empty.is_active())));
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("LLMLEDGER_TEST_PG") else {
        println!("spend_postgres: LLMLEDGER_TEST_PG is not set (scripts/with-postgres.sh sets it); skipped");
        return;
    };
    let s = open(&url);
    let id = format!("bench-{}", std::process::id());
    setup(&s, &id);
    let who = user(&id);
    c.bench_function("spend_postgres_reserve_settle", |b| b.iter(|| reserve_settle(&s, &who)));
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {}

/// `threads` handles (own connections) × `calls` reserve+settle on one user: calls per second.
fn contended(url: &str, user_id: &str, threads: usize, calls: usize) -> f64 {
    let setup_handle = open(url);
    setup(&setup_handle, user_id);
    let start = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                let s = open(url);
                let who = user(user_id);
                for _ in 0..calls {
                    reserve_settle(&s, &who);
                }
            });
        }
    });
    (threads * calls) as f64 / start.elapsed().as_secs_f64()
}

/// This process's user + system CPU time (Linux `/proc/self/stat`, clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Wall and CPU time per reserve+settle over `n` calls on one handle.
fn per_call(url: &str, user_id: &str, n: u32) -> (Duration, Duration) {
    let s = open(url);
    setup(&s, user_id);
    let who = user(user_id);
    let (wall, cpu) = (Instant::now(), cpu_time());
    for _ in 0..n {
        reserve_settle(&s, &who);
    }
    (wall.elapsed() / n, (cpu_time() - cpu) / n)
}

fn contention(_: &mut Criterion) {
    if !std::env::args().any(|a| a.contains("contention")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("contended.db").display());
    let (wall, cpu) = per_call(&url, "single", 3000);
    println!("sqlite: reserve+settle per call {wall:?} wall, {cpu:?} CPU (3,000 calls, one thread)");
    if let (Ok(pg), true) = (std::env::var("LLMLEDGER_TEST_PG"), cfg!(feature = "postgres")) {
        let (wall, cpu) = per_call(&pg, &format!("single-{}", std::process::id()), 1000);
        println!("postgres: reserve+settle per call {wall:?} wall, {cpu:?} CPU in this process (1,000 calls)");
    }
    for threads in [1, 4, 16] {
        let rate = contended(&url, &format!("c{threads}"), threads, 2000 / threads);
        println!("contention sqlite: {threads} threads on one user: {rate:.0} reserve+settle per second");
    }
    if let Ok(pg) = std::env::var("LLMLEDGER_TEST_PG") {
        if cfg!(feature = "postgres") {
            for threads in [1, 4, 16] {
                let rate = contended(&pg, &format!("pgc{threads}-{}", std::process::id()), threads, 800 / threads);
                println!("contention postgres: {threads} threads on one user: {rate:.0} reserve+settle per second");
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = sqlite, postgres, contention
}
criterion_main!(benches);
