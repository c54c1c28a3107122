//! The ledger against a real PostgreSQL server (feature `postgres`): the SQL store cases of
//! `ledger_common::sql_cases`, as MySQL/MariaDB runs them. Run through
//! `scripts/with-postgres.sh cargo test -p llmledger-core --features postgres -- --include-ignored`, which
//! starts a throwaway server. The tests are `#[ignore]`d so that a plain `cargo test` reports them as
//! ignored instead of passing without a server; asked for without `LLMLEDGER_TEST_PG` they fail under
//! `CI=true` and otherwise return after reporting a skip (printed, and appended to `LLMLEDGER_SKIP_LOG`,
//! which `scripts/test.sh` counts as skipped rather than passed).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod ledger_common;

use ledger_common::{pg_server, sql_cases};

/// Serializes the tests: one of them stops and restarts the shared server.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

macro_rules! cases {
    ($($name:ident => $case:expr;)*) => {$(
        #[test]
        #[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
        fn $name() {
            let _one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
            let Some(server) = pg_server(stringify!($name)) else { return };
            let case: fn(&sql_cases::SqlServer, &str) = $case;
            case(&server, stringify!($name));
        }
    )*};
}

cases! {
    postgres_reports_rollups_and_idempotency => |s, _| sql_cases::reports_rollups_and_idempotency(s);
    postgres_duplicates_inside_one_batch_keep_the_first_occurrence =>
        |s, _| sql_cases::duplicates_inside_one_batch_keep_the_first_occurrence(s);
    postgres_sixteen_threads_exact => |s, _| sql_cases::sixteen_threads_exact(s);
    postgres_stopped_mid_run_and_restarted_loses_and_doubles_nothing =>
        sql_cases::stopped_mid_run_and_restarted_loses_and_doubles_nothing;
    postgres_money_exact_at_28_significant_digits => |s, _| sql_cases::money_exact_at_28_significant_digits(s);
    postgres_timezone_rollups_across_a_dst_change => |s, _| sql_cases::timezone_rollups_across_a_dst_change(s);
}
