//! Faults the ledger must survive with exact totals afterwards: a store that goes down and comes back,
//! a child process SIGKILLed at random moments in `sync` mode, 16 concurrent recording threads, a full
//! disk under the JSONL store, a full queue.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ledger_common::{numbered, numbered_total, record_loop_exe, FlakyStore};
use llmledger_core::ledger::{FullQueuePolicy, Ledger, LedgerConfig, Store};
use llmledger_core::report::{GroupBy, UsageQuery};
use llmledger_core::ErrorCode;

fn fast(spill: &std::path::Path) -> LedgerConfig {
    LedgerConfig {
        flush_interval: Duration::from_millis(10),
        max_retries: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        spill_dir: Some(spill.to_path_buf()),
        ..LedgerConfig::default()
    }
}

fn totals(ledger: &Ledger) -> (u64, rust_decimal::Decimal) {
    let rows = ledger.query(&UsageQuery::default()).unwrap();
    rows.first().map_or((0, rust_decimal::Decimal::ZERO), |r| (r.requests, r.cost_usd))
}

#[test]
fn store_outage_spills_then_replays_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill.jsonl");
    let store = Arc::new(FlakyStore::new());
    let ledger = Ledger::with_store(store.clone(), fast(&spill)).unwrap();
    for i in 0..1_000 {
        ledger.record(numbered("pre", i)).unwrap();
    }
    ledger.flush().unwrap();
    store.down.store(true, Ordering::SeqCst);
    for i in 0..5_000 {
        ledger.record(numbered("down", i)).unwrap();
    }
    let err = ledger.flush().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Store);
    assert_eq!(err.field(), Some("spill_dir"));
    assert!(ledger.health().spilled_events > 0);
    assert!(std::fs::read_dir(&spill).unwrap().count() >= 2, "a journal and its lock file");
    assert!(store.failures.load(Ordering::SeqCst) > 0);
    // Some of the pre-outage events again, as a client retry would send them.
    for i in 0..100 {
        ledger.record(numbered("pre", i)).unwrap();
    }
    store.down.store(false, Ordering::SeqCst);
    ledger.flush().unwrap();
    assert_eq!(totals(&ledger), (6_000, numbered_total(1_000) + numbered_total(5_000)));
    assert_eq!(ledger.verify().unwrap(), vec![]);
    // Replaying again (nothing left) and re-feeding the whole history changes nothing.
    assert_eq!(ledger.replay_spill().unwrap(), 0);
    let again: Vec<_> = (0..5_000).map(|i| numbered("down", i)).collect();
    assert_eq!(store.write_batch(&again).unwrap(), 0);
    assert_eq!(totals(&ledger).0, 6_000);
    ledger.close().unwrap();
}

#[test]
fn spill_left_by_a_dead_process_is_replayed_at_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("l.db").display());
    let (spill_dir, name) = llmledger_core::ledger::spill_location(&url, None).unwrap();
    assert_eq!(spill_dir, dir.path(), "SQLite spills beside its file by default");
    // What a process that died with the store down leaves behind: a journal and a half-replayed file
    // (a `.replaying` file and a new active one, overlapping by 100 events).
    let journal = llmledger_core::ledger::Journal::open(&spill_dir, &name).unwrap();
    let events: Vec<_> = (0..300).map(|i| numbered("left", i)).collect();
    journal.append_batch(&events[..200], true).unwrap();
    let active = journal.path().to_path_buf();
    std::fs::rename(&active, format!("{}.replaying", active.display())).unwrap();
    std::fs::write(&active, "").unwrap();
    drop(journal); // the process is gone: its lock is free
    let second = llmledger_core::ledger::Journal::open(&spill_dir, &name).unwrap();
    second.append_batch(&events[100..], true).unwrap();
    drop(second);
    // The next process's journal adopts both orphans (asserted here, before a ledger's writer starts
    // replaying them in the background, which would make the count a race) ...
    let third = llmledger_core::ledger::Journal::open(&spill_dir, &name).unwrap();
    assert_eq!(third.tally().events, 400, "both orphans adopted, overlap included");
    drop(third);
    // ... and a ledger opened on them replays every event once.
    let ledger = Ledger::open(&url, LedgerConfig::default()).unwrap();
    ledger.flush().unwrap();
    assert_eq!(totals(&ledger), (300, numbered_total(300)));
    assert_eq!(ledger.health().spilled_events, 0);
    assert_eq!(ledger.verify().unwrap(), vec![]);
    ledger.close().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&name))
        .collect();
    assert!(left.is_empty(), "every journal and lock file is gone: {left:?}");
}

#[test]
fn sixteen_threads_exact_counts_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let ledger = Arc::new(Ledger::open(&url, LedgerConfig::default()).unwrap());
    const THREADS: u64 = 16;
    // 16 × 50,000 as the issue asks in release builds; a tenth in debug builds to keep `cargo test` quick.
    const PER: u64 = if cfg!(debug_assertions) { 5_000 } else { 50_000 };
    // Pre-build events so the threads only record (event construction in debug builds is the slow part).
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                for i in 0..PER {
                    ledger.record(numbered(&format!("t{t}"), i)).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    ledger.flush().unwrap();
    let stats = ledger.stats();
    assert_eq!(stats.recorded, THREADS * PER);
    assert_eq!(stats.inserted, THREADS * PER, "spilled on overflow: {}", stats.spilled);
    println!("16 threads: {} events recorded, {} overflowed to the spill file", stats.recorded, stats.spilled);
    assert_eq!(totals(&ledger), (THREADS * PER, numbered_total(PER) * rust_decimal::Decimal::from(THREADS)));
    let users = ledger.query(&UsageQuery { group_by: vec![GroupBy::User], ..UsageQuery::default() }).unwrap();
    assert_eq!(users.len(), 7);
    assert_eq!(users.iter().map(|r| r.requests).sum::<u64>(), THREADS * PER);
    assert_eq!(ledger.verify().unwrap(), vec![]);
}

#[test]
fn full_queue_policies_never_lose_silently() {
    let dir = tempfile::tempdir().unwrap();
    for policy in [FullQueuePolicy::Spill, FullQueuePolicy::Error, FullQueuePolicy::Block] {
        let store = Arc::new(FlakyStore::new());
        let config = LedgerConfig {
            queue_capacity: 4,
            batch_size: 2,
            full_queue: policy,
            ..fast(&dir.path().join(format!("{policy:?}.jsonl")))
        };
        let ledger = Ledger::with_store(store.clone(), config).unwrap();
        let mut accepted = 0u64;
        let mut refused = 0u64;
        {
            // Hold the store shut so the queue fills (Block waits for the gate, so it runs unblocked).
            let gate = (policy != FullQueuePolicy::Block).then(|| store.gate.lock().unwrap());
            for i in 0..200 {
                match ledger.record(numbered("q", i)) {
                    Ok(()) => accepted += 1,
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::Store);
                        refused += 1;
                    }
                }
            }
            drop(gate);
        }
        ledger.flush().unwrap();
        assert_eq!(accepted + refused, 200);
        assert_eq!(totals(&ledger).0, accepted, "{policy:?}");
        match policy {
            FullQueuePolicy::Spill => assert!(ledger.stats().spilled > 0 && refused == 0),
            FullQueuePolicy::Error => assert!(refused > 0),
            FullQueuePolicy::Block => assert_eq!(refused, 0),
        }
    }
}

#[test]
fn jsonl_disk_full_is_reported_and_kept_for_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("events");
    std::fs::create_dir_all(&store_dir).unwrap();
    // Today's file is the full device: every write fails with ENOSPC. Tomorrow's too, in case the test
    // runs across midnight UTC (the store rotates daily).
    let now = chrono::Utc::now();
    let segments: Vec<_> = [now, now + chrono::Duration::days(1)]
        .iter()
        .map(|d| store_dir.join(format!("usage-{}.jsonl", d.format("%Y-%m-%d"))))
        .collect();
    for segment in &segments {
        std::os::unix::fs::symlink("/dev/full", segment).unwrap();
    }
    let url = format!("jsonl://{}", store_dir.display());
    let ledger = Ledger::open(&url, fast(&dir.path().join("spill.jsonl"))).unwrap();
    // The store itself reports the disk error.
    assert_eq!(ledger.store().write_batch(&[numbered("direct", 0)]).map_err(|e| e.code()), Err(ErrorCode::Io));
    for i in 0..100 {
        ledger.record(numbered("full", i)).unwrap();
    }
    assert_eq!(ledger.flush().map_err(|e| e.code()), Err(ErrorCode::Store));
    assert_eq!(ledger.store().event_ids().unwrap().len(), 0);
    // Space comes back: the kept events go in, once.
    for segment in &segments {
        std::fs::remove_file(segment).unwrap();
    }
    ledger.flush().unwrap();
    assert_eq!(totals(&ledger), (100, numbered_total(100)));
    ledger.close().unwrap();
    let reopened = Ledger::open(&url, fast(&dir.path().join("spill.jsonl"))).unwrap();
    assert_eq!(reopened.store().event_ids().unwrap().len(), 100);
}

#[test]
fn sync_durability_survives_sigkill_at_random_moments() {
    let exe = record_loop_exe();
    assert!(exe.exists(), "build the example first: {}", exe.display());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let spill = dir.path().join("k-spill");
    let mut printed: Vec<(String, u64)> = Vec::new(); // (prefix, ids printed)
                                                      // Random kill moments; the seed is printed (and taken from LLMLEDGER_TEST_SEED) to replay a failure.
    let seed = std::env::var("LLMLEDGER_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("SIGKILL test seed: {seed} (LLMLEDGER_TEST_SEED={seed} replays it)");
    let mut rng = seed;
    const KILLS: usize = 24;
    for run in 0..KILLS {
        let prefix = format!("r{run}");
        let mut child = std::process::Command::new(&exe)
            .args([&url, &spill.display().to_string(), &prefix])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || std::io::BufReader::new(stdout).lines().map_while(|l| l.ok()).count());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(20 + rng % 130));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
        let lines = reader.join().unwrap() as u64;
        printed.push((prefix, lines));
    }
    let total_printed: u64 = printed.iter().map(|p| p.1).sum();
    assert!(total_printed > 0, "the child never got to record");
    let ledger = Ledger::open(&url, LedgerConfig { spill_dir: Some(spill), ..LedgerConfig::default() }).unwrap();
    ledger.flush().unwrap();
    let ids = ledger.store().event_ids().unwrap();
    let stored: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(stored.len(), ids.len(), "an id is stored twice");
    for (prefix, n) in &printed {
        for i in 0..*n {
            assert!(stored.contains(format!("{prefix}-{i}").as_str()), "{prefix}-{i} was recorded but is missing");
        }
    }
    // Beyond the printed ids, at most the one whose record was in flight per run may be there.
    let allowed: HashSet<String> = printed.iter().map(|(p, n)| format!("{p}-{n}")).collect();
    let extra: Vec<&&str> = stored
        .iter()
        .filter(|id| !allowed.contains(**id) && !printed.iter().any(|(p, n)| is_printed(id, p, *n)))
        .collect();
    assert!(extra.is_empty(), "ids never recorded: {extra:?}");
    assert_eq!(totals(&ledger).0, ids.len() as u64);
    println!("SIGKILL x{KILLS}: {total_printed} ids printed after record returned, {} stored", ids.len());
    assert!(ids.len() as u64 >= total_printed && ids.len() as u64 <= total_printed + KILLS as u64);
}

fn is_printed(id: &str, prefix: &str, n: u64) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|i| i.parse::<u64>().ok())
        .is_some_and(|i| i < n)
}
