//! `llmledger ledger status` and `ledger replay`, run as the built binary: what an operator sees of a ledger
//! and its spill directory, with exit codes, and no password in any output.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use llmledger_core::event::UsageEvent;
use llmledger_core::ledger::{spill_location, Journal, Ledger, LedgerConfig};
use llmledger_core::{Api, Provider, Usage};

fn llmledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmledger")).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn status_of_a_missing_ledger_is_exit_1_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("missing.db").display());
    let out = llmledger(&["ledger", "status", "--store", &url, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let first_line = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
    let json: serde_json::Value = serde_json::from_str(&first_line).unwrap();
    assert_eq!(json["store_reachable"], false);
    assert_eq!(json["spill"]["events"], 0);
    assert!(!dir.path().join("missing.db").exists(), "status never creates a ledger");
}

#[test]
fn status_shows_a_dead_writers_spill_and_replay_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("l.db").display());
    Ledger::open(&url, LedgerConfig::default()).unwrap().close().unwrap();
    // What a writer killed during an outage leaves: a journal whose owner is gone.
    let (spill_dir, name) = spill_location(&url, None).unwrap();
    let journal = Journal::open(&spill_dir, &name).unwrap();
    for i in 0..7 {
        let usage = Usage { input_tokens: 10, output_tokens: 2, ..Usage::default() };
        let event =
            UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, "gpt-4o", usage).with_id(format!("left-{i}"));
        journal.append(&event, true).unwrap();
    }
    drop(journal);

    let out = llmledger(&["ledger", "status", "--store", &url, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["store_reachable"], true);
    assert_eq!(json["spill"]["events"], 7);
    assert_eq!(json["spill"]["orphaned_owners"], 1);
    assert_eq!(json["spill"]["live_owners"], 0);
    assert_eq!(json["spill"]["dir"], spill_dir.display().to_string());

    let table = llmledger(&["ledger", "status", "--store", &url]);
    assert!(text(&table).contains("spilled events") && text(&table).contains('7'), "{}", text(&table));

    let replay = llmledger(&["ledger", "replay", "--store", &url]);
    assert!(replay.status.success(), "{}", text(&replay));
    assert!(text(&replay).contains("replayed 7 spilled events"), "{}", text(&replay));
    let after: serde_json::Value =
        serde_json::from_slice(&llmledger(&["ledger", "status", "--store", &url, "--json"]).stdout).unwrap();
    assert_eq!((after["spill"]["events"].as_u64(), after["spill"]["orphaned_owners"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn a_postgres_password_never_appears() {
    let out = llmledger(&["ledger", "status", "--store", "postgres://ops:hunter2@127.0.0.1:1/ledger", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));
    assert!(text(&out).contains("ops:***@127.0.0.1"), "{}", text(&out));
}
