//! The dashboard's seeded ledger, shared by `cli/tests/serve.rs` and the browser test (through the
//! `dashboard_seed` example): four events with hand-written costs, one unpriced, one with a hostile user id.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use llmledger_core::event::{Attribution, UsageEvent};
use llmledger_core::ledger::{Ledger, LedgerConfig};
use llmledger_core::{Api, Breakdown, Cost, Provider, Usage};
use rust_decimal::Decimal;

pub const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// `who` is (user, workspace, project); a `usd` of `None` is an unpriced event.
fn event(
    id: &str,
    at: &str,
    provider: Provider,
    model: &str,
    who: (&str, &str, &str),
    usd: Option<&str>,
) -> UsageEvent {
    let (user, ws, project) = who;
    let usage = Usage { input_tokens: 1000, output_tokens: 100, ..Usage::default() };
    let attribution = Attribution {
        user_id: Some(user.into()),
        workspace_id: (!ws.is_empty()).then(|| ws.into()),
        project: Some(project.into()),
        ..Attribution::default()
    };
    let e = UsageEvent::new(provider, Api::ChatCompletions, model, usage)
        .with_id(id)
        .with_timestamp(DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc))
        .with_attribution(attribution)
        .with_latency_ms(100);
    match usd {
        None => e.unpriced("unknown_model"),
        Some(usd) => {
            let usd: Decimal = usd.parse().unwrap();
            e.with_cost(Cost {
                provider,
                model: model.into(),
                price_version: chrono::NaiveDate::default(),
                price_data: String::new(),
                breakdown: Breakdown { input: usd, ..Breakdown::default() },
                total_usd: usd,
                currency: "USD".into(),
                rate: Decimal::ONE,
                total: usd,
                tier_above: None,
                uncertain: false,
            })
        }
    }
}

/// Four events: $0.004 + $0.0125 + $0.00075 + one unpriced = $0.01725 over 4 requests.
pub fn seed(path: &std::path::Path) -> String {
    let url = format!("sqlite://{}", path.display());
    let ledger = Ledger::open(&url, LedgerConfig::default()).unwrap();
    for e in [
        event("e1", "2026-11-01T10:00:00Z", Provider::OpenAi, "gpt-4o", ("alice", "acme", "web"), Some("0.004")),
        event(
            "e2",
            "2026-11-02T10:00:00Z",
            Provider::Anthropic,
            "claude-sonnet-4",
            ("alice", "acme", "web"),
            Some("0.0125"),
        ),
        // 16:00Z is 01:00 on 3 Nov in Seoul (UTC+9).
        event("e3", "2026-11-02T16:00:00Z", Provider::OpenAi, "gpt-4o", (HOSTILE, "acme", "api"), Some("0.00075")),
        event("e4", "2026-11-02T13:00:00Z", Provider::OpenAi, "gpt-mystery", ("bob", "", "api"), None),
    ] {
        ledger.record(e).unwrap();
    }
    ledger.close().unwrap();
    url
}
