//! Enqueues alerts for one webhook endpoint and keeps its dispatcher running; prints `enqueued` once
//! the outbox rows are committed. The crash test (`tests/webhook_sqlite.rs`) SIGKILLs it while its
//! requests are in flight: the next dispatcher on the same store must deliver every alert.
//!
//! Usage: `webhook_enqueue <store-url> <endpoint-url> <secret> <alerts> <timeout-ms>`

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use llmledger_core::alert::{AlertEvent, AlertKind};
use llmledger_core::webhook::{WebhookConfig, WebhookEndpoint, Webhooks};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, url, secret, alerts, timeout_ms] = args.as_slice() else {
        return Err("usage: webhook_enqueue <store-url> <endpoint-url> <secret> <alerts> <timeout-ms>".into());
    };
    let timeout = Duration::from_millis(timeout_ms.parse()?);
    let config = WebhookConfig {
        endpoints: vec![WebhookEndpoint::new(url, secret)?],
        request_timeout: timeout,
        connect_timeout: timeout,
        poll_interval: Duration::from_millis(20),
        ..WebhookConfig::default()
    };
    let hooks = Webhooks::open(store, config)?;
    for i in 0..alerts.parse::<u32>()? {
        hooks.enqueue(&AlertEvent {
            alert_id: format!("crash:user_id=u{i}:2026-12-02:1"),
            kind: AlertKind::LimitThreshold,
            scope: BTreeMap::from([("user_id".to_string(), format!("u{i}"))]),
            period: "2026-12-02".into(),
            threshold: Decimal::ONE,
            amount: Decimal::new(500, 2),
            limit: Some(Decimal::new(500, 2)),
            currency: "USD".into(),
            fired_at: "2026-12-02T06:00:00Z".into(),
        })?;
    }
    println!("enqueued");
    std::io::stdout().flush()?;
    // Wait to be killed.
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
