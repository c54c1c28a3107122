//! Webhook delivery through a real PostgreSQL ledger database (feature `postgres`): the cases of
//! `webhook_common`, each in a fresh database. Run through
//! `scripts/with-postgres.sh cargo test -p llmledger-core --features postgres -- --include-ignored webhook`;
//! `#[ignore]`d and skipped without `LLMLEDGER_TEST_PG` exactly as `ledger_postgres.rs` is.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod ledger_common;
mod webhook_common;

macro_rules! cases {
    ($($name:ident ($db:literal) => $case:path;)*) => {$(
        #[test]
        #[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
        fn $name() {
            let Some(server) = ledger_common::server(stringify!($name)) else { return };
            let url = ledger_common::fresh_db(&server, $db);
            $case(&url);
        }
    )*};
}

cases! {
    webhook_postgres_flaky_receiver_gets_each_alert_once("wh_flaky") => webhook_common::flaky_receiver_gets_each_alert_once;
    webhook_postgres_dead_letter_after_max_attempts("wh_dead") => webhook_common::dead_letter_after_max_attempts;
    webhook_postgres_restart_delivers_what_was_pending("wh_restart") => webhook_common::restart_delivers_what_was_pending;
    webhook_postgres_two_dispatchers_never_send_a_row_twice("wh_two") =>
        webhook_common::two_dispatchers_never_send_a_row_twice;
    webhook_postgres_sigkill_mid_send_loses_nothing("wh_kill") => sigkill_mid_send_loses_nothing;
}

fn sigkill_mid_send_loses_nothing(url: &str) {
    webhook_common::sigkill_mid_send_loses_nothing(url, &ledger_common::example_exe("webhook_enqueue"));
}
