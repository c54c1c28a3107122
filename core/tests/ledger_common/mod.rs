//! Helpers shared by the ledger integration tests: deterministic events with exact decimal costs.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, Utc};
use llmledger_core::ledger::{Attribution, UsageEvent};
use llmledger_core::{Api, Breakdown, Cost, Provider, Usage};
use rust_decimal::Decimal;

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn cost(model: &str, total: Decimal) -> Cost {
    Cost {
        provider: Provider::OpenAi,
        model: model.into(),
        price_version: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        price_data: "test".into(),
        breakdown: Breakdown { input: total, ..Breakdown::default() },
        total_usd: total,
        currency: "USD".into(),
        rate: Decimal::ONE,
        total,
        tier_above: None,
        uncertain: false,
    }
}

/// Event `id` by `user` in `workspace` on `model` at `ts`, costing `cost_micro` × 10^-9 USD (odd scale on purpose).
pub fn event(id: &str, user: &str, workspace: &str, model: &str, ts: &str, cost_nano: i64) -> UsageEvent {
    let usage = Usage {
        input_tokens: 1000,
        cache_read_tokens: 200,
        output_tokens: 50,
        reasoning_tokens: 10,
        ..Usage::default()
    };
    UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, model, usage)
        .with_id(id)
        .with_timestamp(utc(ts))
        .with_cost(cost(model, Decimal::new(cost_nano, 9)))
        .with_latency_ms(100)
        .with_attribution(Attribution {
            user_id: Some(user.into()),
            workspace_id: Some(workspace.into()),
            project: Some("proj".into()),
            session_id: Some(format!("s-{user}")),
            ..Attribution::default()
        })
}

/// Event number `i` of a generated stream: user `u{i%7}`, cost `(i % 1000 + 1) × 10^-10` USD.
pub fn numbered(prefix: &str, i: u64) -> UsageEvent {
    let user = format!("u{}", i % 7);
    let nano = i64::try_from(i % 1000 + 1).unwrap();
    let mut e = event(&format!("{prefix}-{i}"), &user, "ws", "gpt-4o", "2026-11-01T12:00:00Z", nano);
    e.cost = Some(cost("gpt-4o", Decimal::new(nano, 10)));
    e
}

/// The exact total of `numbered(_, i)` for i in 0..n.
pub fn numbered_total(n: u64) -> Decimal {
    (0..n).map(|i| Decimal::new(i64::try_from(i % 1000 + 1).unwrap(), 10)).sum()
}

/// A 123-event batch of ids `m-0`..`m-117` that repeats ids, near and far apart, with a cost of 5 USD,
/// for a store already holding `m-3` and `m-4`. Returns the batch, how many events are new (116) and the exact total of the 118 stored
/// events: each first occurrence counts once (`m-100`'s 5 USD repeat comes first, so it is the one kept).
pub fn repeating_batch() -> (Vec<UsageEvent>, usize, Decimal) {
    let mut batch: Vec<UsageEvent> = (0..118).map(|i| numbered("m", i)).collect();
    for (id, at) in [(10, 60), (70, 110), (117, 120), (100, 20), (3, 0)] {
        let mut e = numbered("m", id);
        e.cost = Some(cost("gpt-4o", Decimal::from(5)));
        batch.insert(at, e);
    }
    let total = numbered_total(118) - Decimal::new(101, 10) + Decimal::from(5);
    (batch, 116, total)
}
