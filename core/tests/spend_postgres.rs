//! Spend control against a real PostgreSQL server (feature `postgres`): the shared cases of
//! `spend_common`, each handle on its own connection, and sixteen threads on sixteen connections
//! against one balance and one limit. `#[ignore]`d like `ledger_postgres.rs`; run through
//! `scripts/with-postgres.sh cargo test -p llmledger-core --features postgres -- --include-ignored spend`.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod ledger_common;
mod spend_common;

use llmledger_core::spend::SpendConfig;
use spend_common::open_with;

/// A fresh database for `test`, or `None` after reporting the skip (a failure under `CI=true`).
fn database(test: &str) -> Option<String> {
    let server = ledger_common::server(test)?;
    Some(ledger_common::fresh_db(&server, test))
}

#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn spend_every_case_on_postgres() {
    let Some(url) = database("spend_cases") else { return };
    spend_common::all_cases(&|config: SpendConfig| open_with(&url, config), "pg");
}

#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn spend_sixteen_connections_never_overspend_on_postgres() {
    let Some(url) = database("spend_conc") else { return };
    spend_common::concurrent_callers_never_overspend(&|config| open_with(&url, config), "pgconc", 16, 12);
}
