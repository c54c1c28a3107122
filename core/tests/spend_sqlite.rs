//! Spend control on SQLite: the shared cases on a file store (a new connection per handle, as
//! separate processes would have) and on `memory://`, and many threads on one file.
#![allow(clippy::unwrap_used)]

mod spend_common;

use llmledger_core::spend::SpendConfig;
use spend_common::open_with;

#[test]
fn every_case_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    spend_common::all_cases(&|config: SpendConfig| open_with(&url, config), "file");
}

#[test]
fn every_case_in_memory() {
    // One in-memory database per handle would lose the state between handles: share one.
    let spend = open_with("memory://", SpendConfig::default());
    let shared = std::sync::Mutex::new(Vec::new());
    let open = |config: SpendConfig| {
        let mut kept = shared.lock().unwrap();
        if config == SpendConfig::default() {
            return spend.clone();
        }
        let other = open_with("memory://", config);
        kept.push(other.clone());
        other
    };
    spend_common::limits_are_upserted_listed_and_removed(&open, "m0");
    spend_common::top_ups_are_exact_and_idempotent(&open, "m1");
    spend_common::balances_reserve_settle_release(&open, "m2");
    spend_common::daily_limit_and_alerts(&open, "m3");
    spend_common::rate_limits_and_warn_limits(&open, "m4");
}

#[test]
fn sixteen_threads_on_one_sqlite_file_never_overspend() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    spend_common::concurrent_callers_never_overspend(&|config| open_with(&url, config), "conc", 16, 12);
}
