//! Webhook delivery through a SQLite ledger file, against real local HTTP receivers (the cases are in
//! `webhook_common`), plus what is specific to opening: bad stores and settings, TLS set up without a
//! process-wide crypto provider, failure reasons without the URL.
#![allow(clippy::unwrap_used)]

mod ledger_common;
mod webhook_common;

use std::time::Duration;

use llmledger_core::webhook::{DeliveryState, WebhookConfig, WebhookEndpoint, Webhooks};
use llmledger_core::ErrorCode;
use webhook_common::{alert, fast, wait_until, Receiver, Reply};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("ledger.db").display())
}

#[test]
fn webhook_sqlite_flaky_receiver_gets_each_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    webhook_common::flaky_receiver_gets_each_alert_once(&sqlite_url(&dir));
}

#[test]
fn webhook_sqlite_dead_letter_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    webhook_common::dead_letter_after_max_attempts(&sqlite_url(&dir));
}

#[test]
fn webhook_sqlite_restart_delivers_what_was_pending() {
    let dir = tempfile::tempdir().unwrap();
    webhook_common::restart_delivers_what_was_pending(&sqlite_url(&dir));
}

#[test]
fn webhook_sqlite_sigkill_mid_send_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exe = ledger_common::example_exe("webhook_enqueue");
    webhook_common::sigkill_mid_send_loses_nothing(&sqlite_url(&dir), &exe);
}

#[test]
fn webhook_sqlite_two_dispatchers_never_send_a_row_twice() {
    let dir = tempfile::tempdir().unwrap();
    webhook_common::two_dispatchers_never_send_a_row_twice(&sqlite_url(&dir));
}

#[test]
fn webhook_outbox_shares_the_file_with_the_ledger() {
    use llmledger_core::ledger::{Ledger, LedgerConfig};
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let ledger = Ledger::open(&url, LedgerConfig::default()).unwrap();
    let receiver = Receiver::start(vec![], Reply::Status(200));
    let endpoint = WebhookEndpoint::new(&receiver.url("/h"), "whsec_l").unwrap();
    let hooks = Webhooks::open(&url, fast(vec![endpoint], 3)).unwrap();
    assert_eq!(hooks.enqueue(&alert(1)).unwrap(), 1);
    hooks.close().unwrap();
    ledger.close().unwrap();
    // Both live in the one file: the ledger's tables and the outbox, with its one delivered row.
    let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('usage_events', 'llmledger_webhook_outbox') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["llmledger_webhook_outbox", "usage_events"]);
    let state: String = conn.query_row("SELECT state FROM llmledger_webhook_outbox", [], |r| r.get(0)).unwrap();
    assert_eq!(state, "delivered");
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn webhook_https_uses_rustls_with_ring_and_reports_no_url() {
    // A plain-HTTP receiver behind an https:// URL: the TLS handshake fails (no panic for a missing
    // crypto provider), the attempt is recorded, and the reason names neither the host nor the path.
    let receiver = Receiver::start(vec![], Reply::Status(200));
    let url = receiver.url("/hooks/S3CR3TPATH").replace("http://127.0.0.1", "https://localhost");
    let endpoint = WebhookEndpoint::new(&url, "whsec_tls").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hooks = Webhooks::open(&sqlite_url(&dir), fast(vec![endpoint], 1)).unwrap();
    hooks.enqueue(&alert(3)).unwrap();
    wait_until("the dead letter", || hooks.deliveries().unwrap().iter().any(|d| d.state == DeliveryState::Dead));
    hooks.close().unwrap();
    let row = hooks.deliveries().unwrap().remove(0);
    let reason = row.last_error.unwrap();
    assert!(reason.starts_with("request failed") || reason.starts_with("could not connect"), "{reason}");
    assert!(!reason.contains("S3CR3TPATH") && !reason.contains("localhost"), "{reason}");
    assert_eq!(row.last_status, None);
}

#[test]
fn webhook_bad_store_and_settings_are_config_errors() {
    let endpoint = WebhookEndpoint::new("https://hooks.example.com/x", "whsec").unwrap();
    let err = Webhooks::open("jsonl:///tmp/x", fast(vec![endpoint.clone()], 3)).unwrap_err();
    assert_eq!((err.code(), err.field()), (ErrorCode::Config, Some("store")));
    let err = Webhooks::open("postgres://u:hunter2@db/x", WebhookConfig::default());
    if let Err(err) = err {
        // Without the `postgres` feature: a config error, the password redacted.
        assert_eq!(err.code(), ErrorCode::Config);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let zero = WebhookConfig { max_attempts: 0, ..fast(vec![endpoint.clone()], 3) };
    let err = Webhooks::open(&sqlite_url(&dir), zero).unwrap_err();
    assert_eq!((err.code(), err.field(), err.value()), (ErrorCode::Config, Some("max_attempts"), Some("0")));
    let inverted = WebhookConfig { max_backoff: Duration::from_millis(1), ..fast(vec![endpoint], 3) };
    let err = Webhooks::open(&sqlite_url(&dir), inverted).unwrap_err();
    assert_eq!((err.code(), err.field()), (ErrorCode::Config, Some("max_backoff")));
}

#[test]
fn webhook_enqueue_after_close_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = WebhookEndpoint::new("http://127.0.0.1:9/x", "whsec").unwrap();
    let hooks = Webhooks::open(&sqlite_url(&dir), fast(vec![endpoint], 3)).unwrap();
    hooks.close().unwrap();
    assert_eq!(hooks.enqueue(&alert(1)).unwrap_err().code(), ErrorCode::Closed);
    assert_eq!(hooks.close().unwrap_err().code(), ErrorCode::Closed);
}
