//! The ledger under store outages as an operator sees it: health in each phase, one warning (not one per
//! event) when the store starts failing, one info line after it is back and the spill is replayed; and,
//! against a real PostgreSQL stopped with `pg_ctl`, a spill that survives the writing process being
//! killed and the temp directory being emptied (a reboot), and two processes sharing one spill directory.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_common::{numbered, numbered_total, FlakyStore};
use llmledger_core::ledger::{Ledger, LedgerConfig, NoticeKind, NoticeLevel, StoreState};
use llmledger_core::ErrorCode;

fn fast(dir: &std::path::Path) -> LedgerConfig {
    LedgerConfig {
        flush_interval: Duration::from_millis(10),
        max_retries: 1,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        spill_dir: Some(dir.to_path_buf()),
        ..LedgerConfig::default()
    }
}

/// Polls `f` until it holds (the writer works in the background), failing after 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn health_and_notices_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FlakyStore::new());
    let ledger = Ledger::with_store(store.clone(), fast(dir.path())).unwrap();
    eventually("the start-up check has run", || ledger.health().store_state == StoreState::Up);
    let h = ledger.health();
    assert_eq!((h.queued_events, h.spilled_events, h.recorded_events, h.written_events), (0, 0, 0, 0));
    assert_eq!(h.spill_dir, dir.path().display().to_string());
    assert!(ledger.take_notices(None).is_empty(), "a healthy start says nothing");

    for i in 0..100 {
        ledger.record(numbered("up", i)).unwrap();
    }
    ledger.flush().unwrap();
    assert_eq!(ledger.health().written_events, 100);

    store.down.store(true, Ordering::SeqCst);
    for round in 0..5 {
        for i in 0..200 {
            ledger.record(numbered(&format!("down{round}"), i)).unwrap();
        }
        assert_eq!(ledger.flush().map_err(|e| e.code()), Err(ErrorCode::Store));
    }
    let h = ledger.health();
    assert_eq!(h.store_state, StoreState::Down);
    assert_eq!(h.spilled_events, 1_000, "every event of the outage waits in the spill");
    assert_eq!(h.queued_events, 0);
    assert!(h.oldest_spilled_at.is_some() && h.down_since.is_some());
    assert!(h.last_error.as_deref().unwrap().contains("store is down"), "{:?}", h.last_error);
    let notices = ledger.take_notices(None);
    let kinds: Vec<_> = notices.iter().map(|n| (n.level, n.kind)).collect();
    assert_eq!(kinds, vec![(NoticeLevel::Warning, NoticeKind::StoreDown)], "one warning for five failed flushes");
    assert!(notices[0].message.contains(&dir.path().display().to_string()), "{}", notices[0].message);

    store.down.store(false, Ordering::SeqCst);
    ledger.flush().unwrap();
    let notices = ledger.take_notices(Some(Duration::from_secs(5)));
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!((notices[0].level, notices[0].kind), (NoticeLevel::Info, NoticeKind::StoreRecovered));
    assert_eq!(notices[0].replayed_events, 1_000);
    let h = ledger.health();
    assert_eq!((h.store_state, h.spilled_events, h.oldest_spilled_at), (StoreState::Up, 0, None));
    assert_eq!((h.recorded_events, h.written_events), (1_100, 1_100));
    let rows = ledger.query(&Default::default()).unwrap();
    assert_eq!(rows[0].cost_usd, numbered_total(100) + numbered_total(200) * rust_decimal::Decimal::from(5));
    ledger.close().unwrap();
}

#[test]
fn an_unreachable_store_is_reported_at_start_and_recovery_is_noticed_without_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FlakyStore::new());
    store.down.store(true, Ordering::SeqCst);
    let ledger = Ledger::with_store(store.clone(), fast(dir.path())).unwrap();
    let notices = ledger.take_notices(Some(Duration::from_secs(5)));
    assert_eq!(notices.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![NoticeKind::StoreUnreachable]);
    assert_eq!(ledger.health().store_state, StoreState::Down);
    store.down.store(false, Ordering::SeqCst);
    let back = ledger.take_notices(Some(Duration::from_secs(5)));
    assert_eq!(back.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![NoticeKind::StoreRecovered]);
    assert_eq!(ledger.health().store_state, StoreState::Up);
    ledger.close().unwrap();
}

#[test]
fn postgres_urls_spill_to_the_state_directory_not_the_temp_directory() {
    let (dir, name) = llmledger_core::ledger::spill_location("postgres://u:secret@db.example:5432/app", None).unwrap();
    assert!(!dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    assert_eq!(dir, llmledger_core::ledger::default_state_dir());
    assert!(!name.contains("secret"));
    let explicit = std::path::Path::new("/srv/llmledger-spill");
    assert_eq!(llmledger_core::ledger::spill_location("postgres://h/db", Some(explicit)).unwrap().0, explicit);
}

// ---- against a real PostgreSQL (scripts/with-postgres.sh), stopped and started with pg_ctl --------------

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::ledger_common::{fresh_db, pg_ctl, record_loop_exe, server, skip};

    /// The server URL when `scripts/with-postgres.sh` started it (these tests stop and start it), or
    /// `None` after reporting the skip (a failure under `CI=true`).
    fn server_with_ctl(test: &str) -> Option<String> {
        let url = server(test)?;
        if std::env::var("LLMLEDGER_TEST_PG_CTL").is_err() {
            skip(test, "needs the server started by scripts/with-postgres.sh (pg_ctl)");
            return None;
        }
        Some(url)
    }

    /// The `record_loop` example (sync durability: an id is printed only once it is fsynced), started
    /// with `home` as its per-user state directory and `tmp` as its temp directory.
    fn spawn_writer(
        url: &str,
        spill: &str,
        prefix: &str,
        home: &std::path::Path,
    ) -> (std::process::Child, std::thread::JoinHandle<u64>) {
        let exe = record_loop_exe();
        let mut child = std::process::Command::new(exe)
            .args([url, spill, prefix])
            .env("XDG_STATE_HOME", home.join("state"))
            .env("TMPDIR", home.join("tmp"))
            .env_remove("LLMLEDGER_SPILL_DIR")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader =
            std::thread::spawn(move || std::io::BufReader::new(stdout).lines().map_while(|l| l.ok()).count() as u64);
        (child, reader)
    }

    fn kill(child: (std::process::Child, std::thread::JoinHandle<u64>)) -> u64 {
        let (mut child, reader) = child;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap()
    }

    fn wait_for_lines(path: &std::path::Path, at_least: u64) {
        eventually(&format!("{} holds {at_least} events", path.display()), || {
            std::fs::read_dir(path)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().lines().count() as u64)
                        .sum::<u64>()
                })
                .unwrap_or(0)
                >= at_least
        });
    }

    /// Every id `prefix-0 .. prefix-(n-1)` is stored, and nothing else beyond one in-flight id per run.
    fn assert_exactly(ledger: &Ledger, printed: &[(String, u64)]) {
        let ids = ledger.store().event_ids().unwrap();
        let stored: HashSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(stored.len(), ids.len(), "an id is stored twice");
        for (prefix, n) in printed {
            for i in 0..*n {
                assert!(
                    stored.contains(format!("{prefix}-{i}").as_str()),
                    "{prefix}-{i} was acknowledged but is missing"
                );
            }
        }
        let total: u64 = printed.iter().map(|p| p.1).sum();
        assert!(ids.len() as u64 >= total && ids.len() as u64 <= total + printed.len() as u64);
        let rows = ledger.query(&Default::default()).unwrap();
        assert_eq!(rows[0].requests, ids.len() as u64);
        assert_eq!(ledger.verify().unwrap(), vec![]);
    }

    #[test]
    #[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
    fn outage_then_kill_then_reboot_then_recovery_keeps_every_acknowledged_event_once() {
        let _one = super::SERVER.lock().unwrap_or_else(|p| p.into_inner());
        let Some(server) = server_with_ctl("ledger_outage::reboot") else { return };
        let url = fresh_db(&server, "reboot");
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("tmp")).unwrap();
        let spill_dir = home.path().join("state").join("llmledger");
        assert!(pg_ctl("stop"), "pg_ctl stop failed");
        let writer = spawn_writer(&url, "-", "reboot", home.path());
        wait_for_lines(&spill_dir, 200);
        let printed = kill(writer);
        assert!(printed >= 200);
        // A reboot empties the temp directory; the spill is not there.
        std::fs::remove_dir_all(home.path().join("tmp")).unwrap();
        // The app starts again while PostgreSQL is still down, then PostgreSQL comes back.
        let ledger =
            Ledger::open(&url, LedgerConfig { spill_dir: Some(spill_dir.clone()), ..fast(&spill_dir) }).unwrap();
        assert!(ledger.health().spilled_events >= printed, "the dead writer's journal was adopted");
        assert_eq!(ledger.flush().map_err(|e| e.code()), Err(ErrorCode::Store));
        assert!(pg_ctl("start"), "pg_ctl start failed");
        eventually("the spill is replayed", || ledger.flush().is_ok() && ledger.health().spilled_events == 0);
        assert_exactly(&ledger, &[("reboot".into(), printed)]);
        let kinds: Vec<_> = ledger.take_notices(None).into_iter().map(|n| n.kind).collect();
        assert_eq!(kinds.first(), Some(&NoticeKind::StoreUnreachable), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&NoticeKind::StoreRecovered), "{kinds:?}");
        ledger.close().unwrap();
        let left: Vec<_> = std::fs::read_dir(&spill_dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "the spill directory is empty at the end: {left:?}");
    }

    #[test]
    #[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
    fn two_processes_sharing_a_spill_directory_through_an_outage() {
        let _one = super::SERVER.lock().unwrap_or_else(|p| p.into_inner());
        let Some(server) = server_with_ctl("ledger_outage::two_processes") else { return };
        let url = fresh_db(&server, "shared");
        let home = tempfile::tempdir().unwrap();
        let spill = home.path().join("spill");
        let spill_arg = spill.display().to_string();
        assert!(pg_ctl("stop"), "pg_ctl stop failed");
        let a = spawn_writer(&url, &spill_arg, "a", home.path());
        let b = spawn_writer(&url, &spill_arg, "b", home.path());
        wait_for_lines(&spill, 400);
        // A dies during the outage; B lives on and takes A's journal over (it holds A's lock then).
        let printed_a = kill(a);
        let summary = || llmledger_core::ledger::status(&url, Some(&spill)).unwrap().spill;
        eventually("B adopted A's journal", || summary().orphaned_owners == 0);
        // PostgreSQL comes back: B replays A's journal and its own, and drops A's lock file.
        assert!(pg_ctl("start"), "pg_ctl start failed");
        eventually("B replayed A's journal", || summary().live_owners == 1);
        let printed_b = kill(b);
        let ledger = Ledger::open(&url, fast(&spill)).unwrap();
        ledger.flush().unwrap();
        assert_exactly(&ledger, &[("a".into(), printed_a), ("b".into(), printed_b)]);
        ledger.close().unwrap();
    }
}

/// Serializes the tests that stop and start the shared PostgreSQL server.
#[allow(dead_code)]
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());
