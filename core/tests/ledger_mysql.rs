//! The ledger against a real MySQL/MariaDB server (feature `mysql`): the SQL store cases of
//! `ledger_common::sql_cases`, as PostgreSQL runs them. Run through
//! `scripts/with-mariadb.sh cargo test -p llmledger-core --features mysql --test ledger_mysql -- --include-ignored`,
//! which starts a throwaway MariaDB. The tests are `#[ignore]`d so that a plain `cargo test` reports them
//! as ignored instead of passing without a server; asked for without `LLMLEDGER_TEST_MYSQL` they fail under
//! `CI=true` and otherwise return after reporting a skip (see `ledger_common::skip`).
#![cfg(feature = "mysql")]
#![allow(clippy::unwrap_used)]

mod ledger_common;

use ledger_common::{mysql_server, sql_cases};

/// Serializes the tests: one of them stops and restarts the shared server.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

macro_rules! cases {
    ($($name:ident => $case:expr;)*) => {$(
        #[test]
        #[ignore = "needs MySQL/MariaDB: run through scripts/with-mariadb.sh with -- --include-ignored"]
        fn $name() {
            let _one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
            let Some(server) = mysql_server(stringify!($name)) else { return };
            let case: fn(&sql_cases::SqlServer, &str) = $case;
            case(&server, stringify!($name));
        }
    )*};
}

cases! {
    mysql_reports_rollups_and_idempotency => |s, _| sql_cases::reports_rollups_and_idempotency(s);
    mysql_duplicates_inside_one_batch_keep_the_first_occurrence =>
        |s, _| sql_cases::duplicates_inside_one_batch_keep_the_first_occurrence(s);
    mysql_sixteen_threads_exact => |s, _| sql_cases::sixteen_threads_exact(s);
    mysql_stopped_mid_run_and_restarted_loses_and_doubles_nothing =>
        sql_cases::stopped_mid_run_and_restarted_loses_and_doubles_nothing;
    mysql_money_exact_at_28_significant_digits => |s, _| sql_cases::money_exact_at_28_significant_digits(s);
    mysql_timezone_rollups_across_a_dst_change => |s, _| sql_cases::timezone_rollups_across_a_dst_change(s);
}
