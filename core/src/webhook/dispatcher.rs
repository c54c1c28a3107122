//! The dispatcher: one background thread that leases due outbox rows, sends them concurrently over
//! HTTP (reqwest on a current-thread tokio runtime owned by the thread), and records each outcome —
//! a 2xx is `delivered`; anything else (another status, a timeout, a refused connection) is retried
//! with exponential backoff and jitter until the last allowed attempt, then `dead`. Between rounds it
//! sleeps until the next row is due, a new alert is enqueued, or the poll interval ends (rows other
//! processes enqueue are found by polling). Store errors never stop it: it counts them, waits and tries
//! again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

use super::outbox::{Claimed, Outcome};
use super::signature::{signature_header, ALERT_ID_HEADER, DELIVERY_ID_HEADER, SIGNATURE_HEADER};
use super::{now_ms, Shared, WebhookConfig, WebhookEndpoint};
use crate::backoff::Backoff;
use crate::error::{Error, ErrorCode, Result};

/// The HTTP client of the dispatcher: rustls with the `ring` provider given to this client only (the
/// process-wide default provider is left to the application), the platform's certificate verifier,
/// HTTP/1.1, the configured timeouts, and no redirects (a 3xx is a failed attempt, as in Stripe's
/// webhooks: a receiver that moved must be reconfigured, not silently followed).
pub(super) fn http_client(config: &WebhookConfig) -> Result<reqwest::Client> {
    let tls_err = |e: rustls::Error| Error::new(ErrorCode::Config, format!("cannot set up TLS for webhooks: {e}"));
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_platform_verifier()
        .map_err(tls_err)?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("llmledger/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::new(ErrorCode::Config, format!("cannot build the webhook HTTP client: {}", e.without_url()))
        })
}

/// The delay before attempt `attempts + 1`: `initial_backoff × 2^(attempts − 1)`, capped at
/// `max_backoff`, with jitter when configured.
pub(super) fn backoff(config: &WebhookConfig, attempts: u32, rng: &mut u64) -> Duration {
    let schedule =
        Backoff { initial: config.initial_backoff, multiplier: 2, max: config.max_backoff, jitter: config.jitter };
    schedule.delay(attempts.saturating_sub(1), rng)
}

/// The thread's body; returns when the handle is closed (after a last round of what is due).
pub(super) fn run(shared: &Shared, rt: &tokio::runtime::Runtime, client: &reqwest::Client) {
    let mut rng = u64::from(std::process::id()) ^ u64::try_from(now_ms()).unwrap_or(0).rotate_left(20);
    loop {
        let closing = shared.closing.load(Ordering::Acquire);
        match round(shared, rt, client, &mut rng) {
            Ok(0) => {}
            // More may be due right away (a full batch, or rows that came due while sending).
            Ok(_) => continue,
            Err(e) => shared.store_error(&e),
        }
        if closing {
            return;
        }
        let now = now_ms();
        let until_due = match shared.outbox.next_due(&shared.endpoint_keys) {
            Ok(next) => next.map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0))),
            Err(e) => {
                shared.store_error(&e);
                None
            }
        };
        let wait = until_due.map_or(shared.config.poll_interval, |d| d.min(shared.config.poll_interval));
        shared.wait_for_work(wait);
    }
}

/// Leases what is due, sends it, records the outcomes; returns how many rows it sent.
fn round(shared: &Shared, rt: &tokio::runtime::Runtime, client: &reqwest::Client, rng: &mut u64) -> Result<usize> {
    let config = &shared.config;
    // Long enough that a lease never ends while its request may still be in flight.
    let lease = config.connect_timeout + config.request_timeout + Duration::from_secs(1);
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let claimed =
        shared.outbox.claim(&shared.endpoint_keys, now_ms(), lease_ms, config.max_attempts, config.batch_size)?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let tasks: Vec<_> = claimed
        .iter()
        .map(|c| {
            let endpoint = config.endpoints.iter().find(|e| e.key() == c.endpoint).cloned();
            rt.spawn(send(client.clone(), endpoint, c.clone()))
        })
        .collect();
    let results: Vec<_> = rt.block_on(async {
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.unwrap_or_else(|_| Err((None, "the send task stopped".to_string()))));
        }
        results
    });
    let mut first_error = None;
    for (c, result) in claimed.iter().zip(results) {
        let outcome = match result {
            Ok(status) => {
                shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
                Outcome::Delivered { status }
            }
            Err((status, error)) => {
                shared.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let retry_at_ms = (c.attempts < config.max_attempts).then(|| {
                    let delay = backoff(config, c.attempts, rng);
                    now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
                });
                if retry_at_ms.is_none() {
                    shared.stats.dead.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Failed { status, error, retry_at_ms }
            }
        };
        // Keep recording the others: a lost outcome only means one more (deduped) attempt later.
        if let Err(e) = shared.outbox.finish(&c.delivery_id, &outcome, now_ms()) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(claimed.len()), Err)
}

/// One attempt: `Ok(status)` for a 2xx, else the status (if any) and a reason safe to log.
async fn send(
    client: reqwest::Client,
    endpoint: Option<WebhookEndpoint>,
    row: Claimed,
) -> std::result::Result<u16, (Option<u16>, String)> {
    let endpoint = endpoint.ok_or((None, "the endpoint is no longer configured".to_string()))?;
    let now = now_ms() / 1000;
    let signature = signature_header(endpoint.secret(), now, row.body.as_bytes()).map_err(|e| (None, e.to_string()))?;
    let sent = client
        .post(endpoint.url().clone())
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(DELIVERY_ID_HEADER, &row.delivery_id)
        .header(ALERT_ID_HEADER, &row.alert_id)
        .body(row.body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
        Ok(response) => Err((Some(response.status().as_u16()), format!("HTTP {}", response.status().as_u16()))),
        Err(e) => Err((None, describe(&e, &endpoint))),
    }
}

/// Why a request failed, without the URL (reqwest's own message includes it) or its host.
fn describe(e: &reqwest::Error, endpoint: &WebhookEndpoint) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let url = endpoint.url();
    let mut text = text.replace(url.as_str(), "<url>");
    if let Some(host) = url.host_str() {
        text = text.replace(host, "<host>");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(jitter: bool) -> WebhookConfig {
        WebhookConfig {
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            jitter,
            ..WebhookConfig::default()
        }
    }

    #[test]
    fn backoff_doubles_from_the_first_retry_and_caps() {
        let mut rng = 7;
        let delays: Vec<u64> = (1..=6).map(|n| backoff(&config(false), n, &mut rng).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn jitter_stays_between_half_and_the_full_delay() {
        let mut rng = 42;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = backoff(&config(true), 3, &mut rng);
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(20), "{d:?}");
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 100, "jitter should spread the delays: {} distinct", seen.len());
    }

    #[test]
    fn the_client_builds_with_the_ring_provider_and_no_process_default() {
        // No provider is installed process-wide in this test binary; reqwest would panic building a
        // client without ours.
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        assert!(http_client(&WebhookConfig::default()).is_ok());
    }
}
