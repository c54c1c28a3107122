//! Pre-flight estimates of a request's usage: the prompt counted locally ([`crate::tokens::count_chat`]),
//! split into expected cache reads and uncached input, and the worst case at `max_output_tokens`.
//!
//! Pricing the estimate (input cost, cost range) is a separate step on top of [`UsageEstimate`], which
//! carries both [`Usage`] values so the cost engine can price them unchanged.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::tokens::count_chat;
use crate::usage::{Usage, UsageFlag, UsageSource};

/// Counts above this are absurd for one request (the same bound the usage parsers use).
const MAX_TOKENS: u64 = 1_000_000_000_000;

/// What is about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct EstimateRequest<'a> {
    pub model: &'a str,
    /// The `messages` array as the Chat Completions API takes it.
    pub messages: &'a Value,
    /// The `tools` array, if any.
    pub tools: Option<&'a Value>,
    /// The request's output cap; `None` leaves the worst case without output (it is unbounded).
    pub max_output_tokens: Option<u64>,
    /// Fraction (0..=1) of the prompt tokens expected to be served from the provider's cache.
    pub expected_cache_hit: Option<Decimal>,
}

impl<'a> EstimateRequest<'a> {
    /// A request with no tools, no output cap and no expected cache hit.
    pub fn new(model: &'a str, messages: &'a Value) -> Self {
        Self { model, messages, tools: None, max_output_tokens: None, expected_cache_hit: None }
    }
}

/// The estimated usage of a request, before pricing.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEstimate {
    /// All prompt tokens (cached and uncached).
    pub input_tokens: u64,
    /// False when any part was approximated (model tokenizer, images without size, tool definitions).
    pub exact: bool,
    /// The prompt side only: `input_tokens` uncached + `cache_read_tokens`, no output.
    pub input_usage: Usage,
    /// `input_usage` plus `max_output_tokens` of output.
    pub worst_case_usage: Usage,
    /// The output cap the worst case assumes (`None`: unbounded, no output in `worst_case_usage`).
    pub max_output_tokens: Option<u64>,
}

/// Estimates the usage of `req` (usage source [`UsageSource::Estimated`]; flagged
/// [`UsageFlag::ApproximateTokenizer`] when not exact).
pub fn estimate_usage(req: &EstimateRequest<'_>) -> Result<UsageEstimate> {
    let hit = req.expected_cache_hit.unwrap_or(Decimal::ZERO);
    if hit < Decimal::ZERO || hit > Decimal::ONE {
        return Err(Error::invalid_value("expected_cache_hit", hit, "must be a fraction between 0 and 1"));
    }
    if let Some(max) = req.max_output_tokens.filter(|&m| m > MAX_TOKENS) {
        return Err(Error::invalid_value("max_output_tokens", max, "must be at most 10^12"));
    }
    let count = count_chat(req.model, req.messages, req.tools)?;
    let prompt = count.tokens;
    // Cache reads are whole tokens: round down, so the estimate never under-counts uncached input.
    let cached = (Decimal::from(prompt) * hit).floor().to_u64().unwrap_or(0).min(prompt);

    let mut input_usage = Usage {
        input_tokens: prompt - cached,
        cache_read_tokens: cached,
        usage_source: UsageSource::Estimated,
        ..Usage::default()
    };
    if !count.exact {
        input_usage.flag(UsageFlag::ApproximateTokenizer);
    }
    let worst_case_usage = Usage { output_tokens: req.max_output_tokens.unwrap_or(0), ..input_usage.clone() };
    Ok(UsageEstimate {
        input_tokens: prompt,
        exact: count.exact,
        input_usage,
        worst_case_usage,
        max_output_tokens: req.max_output_tokens,
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    fn chat20() -> Value {
        serde_json::from_str(include_str!("../tests/data/chat20.json")).unwrap_or_default()
    }

    #[test]
    fn splits_cache_and_adds_worst_case_output() {
        let msgs = chat20();
        let req = EstimateRequest {
            max_output_tokens: Some(1000),
            expected_cache_hit: Some(dec!(0.5)),
            ..EstimateRequest::new("gpt-4o", &msgs)
        };
        let est = estimate_usage(&req).ok();
        let est = est.as_ref();
        assert_eq!(est.map(|e| (e.input_tokens, e.exact)), Some((6837, true)));
        // floor(6837 * 0.5) = 3418 cached.
        assert_eq!(est.map(|e| (e.input_usage.input_tokens, e.input_usage.cache_read_tokens)), Some((3419, 3418)));
        assert_eq!(est.map(|e| e.input_usage.output_tokens), Some(0));
        assert_eq!(est.map(|e| e.input_usage.usage_source), Some(UsageSource::Estimated));
        assert_eq!(est.map(|e| e.input_usage.flags.is_empty()), Some(true));
        let worst = est.map(|e| &e.worst_case_usage);
        assert_eq!(worst.map(|u| (u.input_tokens, u.cache_read_tokens, u.output_tokens)), Some((3419, 3418, 1000)));
        assert_eq!(worst.map(|u| u.total_tokens()), Some(7837));
    }

    #[test]
    fn defaults_and_approximations() {
        let msgs = json!([{"role": "user", "content": "Hello there"}]);
        let est = estimate_usage(&EstimateRequest::new("claude-sonnet-4-5", &msgs)).ok();
        let est = est.as_ref();
        assert_eq!(est.map(|e| e.exact), Some(false));
        assert_eq!(est.map(|e| e.input_usage.flags.clone()), Some(vec![UsageFlag::ApproximateTokenizer]));
        assert_eq!(est.map(|e| (e.input_usage.cache_read_tokens, e.worst_case_usage.output_tokens)), Some((0, 0)));
        assert_eq!(est.map(|e| e.max_output_tokens), Some(None));
        let all_cached =
            EstimateRequest { expected_cache_hit: Some(Decimal::ONE), ..EstimateRequest::new("gpt-4o", &msgs) };
        let est = estimate_usage(&all_cached).ok();
        assert_eq!(
            est.map(|e| (e.input_usage.input_tokens, e.input_usage.cache_read_tokens == e.input_tokens)),
            Some((0, true))
        );
    }

    #[test]
    fn rejects_bad_input() {
        let msgs = json!([{"role": "user", "content": "Hello"}]);
        let code =
            |req: EstimateRequest<'_>| estimate_usage(&req).err().map(|e| (e.code(), e.field().map(String::from)));
        let base = EstimateRequest::new("gpt-4o", &msgs);
        let inv = |f: &str| Some((ErrorCode::InvalidValue, Some(f.to_string())));
        assert_eq!(code(EstimateRequest { expected_cache_hit: Some(dec!(1.01)), ..base }), inv("expected_cache_hit"));
        assert_eq!(code(EstimateRequest { expected_cache_hit: Some(dec!(-0.1)), ..base }), inv("expected_cache_hit"));
        assert_eq!(code(EstimateRequest { max_output_tokens: Some(MAX_TOKENS + 1), ..base }), inv("max_output_tokens"));
        let bad = json!([{"role": "user", "content": 3}]);
        assert_eq!(code(EstimateRequest::new("gpt-4o", &bad)), inv("messages[0].content"));
    }
}
