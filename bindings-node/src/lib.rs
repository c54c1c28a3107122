//! Node.js bindings of llmledger (napi-rs): only glue between the JS layer (`bindings-node/js/`) and
//! `llmledger_core`. Module names mirror the Python binding's (bindings-python/src):
//!
//! - [`tracker`]: the native classes (`NativeTracker`, `NativeClient`, `NativeAttribution`, `NativeCall`,
//!   `NativeStream`);
//! - [`types`]: the JS-facing objects and their conversions to and from core types;
//! - [`error`]: the one mapping of core errors to JS errors;
//! - [`cost`]: `cost()` on its measured fast path;
//! - [`spend`]: spend control (`NativeSpend`: limits, balances) and its inputs;
//! - this file: the free functions (token counts, estimates).
//!
//! No accounting logic lives here; the SDK interception lives in the JS layer.

pub mod cost;
mod error;
mod spend;
mod tracker;
mod types;

use chrono::Utc;
use napi::Env;
use napi_derive::napi;
use rust_decimal::Decimal;

use error::OrThrow;
use types::{num, EstimateInput, EstimateResult, Money, TokenCountResult};

pub(crate) use llmledger_core as core;

use crate::core::args::count_from_f64;
use crate::core::estimate::EstimateRequest;
use crate::core::tracker as core_tracker;
use crate::core::{tokens, Error, PriceDb, Rates, Result};

/// Parses the JSON parts of an estimate's input and runs `run` on the request.
pub(crate) fn estimate_with(
    run: impl FnOnce(&EstimateRequest<'_>) -> Result<core_tracker::Estimate>,
    input: EstimateInput,
) -> Result<core_tracker::Estimate> {
    let messages: serde_json::Value = serde_json::from_str(&input.messages_json)?;
    let tools: Option<serde_json::Value> = input.tools_json.as_deref().map(serde_json::from_str).transpose()?;
    let request = EstimateRequest {
        model: &input.model,
        messages: &messages,
        tools: tools.as_ref(),
        max_output_tokens: input.max_output_tokens.map(|v| count_from_f64("maxOutputTokens", v)).transpose()?,
        expected_cache_hit: parse_fraction(input.expected_cache_hit)?,
    };
    run(&request)
}

fn parse_fraction(s: Option<String>) -> Result<Option<Decimal>> {
    s.map(|s| {
        s.parse::<Decimal>()
            .map_err(|_| Error::invalid_value("expectedCacheHit", &s, "expected a decimal between 0 and 1"))
    })
    .transpose()
}

pub(crate) fn estimate_result(e: core_tracker::Estimate) -> EstimateResult {
    EstimateResult {
        input_tokens: num(e.input_tokens),
        exact: e.exact,
        input_cost: Money::new(e.input_cost, &e.currency),
        max_output_tokens: num(e.max_output_tokens),
        min_cost: Money::new(e.min_cost, &e.currency),
        max_cost: Money::new(e.max_cost, &e.currency),
        model: e.model,
        currency: e.currency,
    }
}

/// Tokens of `text` as `model` counts them.
#[napi]
pub fn count_tokens(env: Env, model: String, text: String) -> napi::Result<TokenCountResult> {
    let c = tokens::count_text(&model, &text).or_throw(&env)?;
    Ok(TokenCountResult { tokens: num(c.tokens), exact: c.exact })
}

/// Tokens of a chat request (`messages` and optional `tools` as JSON), with the model's message overhead.
#[napi]
pub fn count_chat(
    env: Env,
    model: String,
    messages_json: String,
    tools_json: Option<String>,
) -> napi::Result<TokenCountResult> {
    let messages: serde_json::Value = serde_json::from_str(&messages_json).map_err(Error::from).or_throw(&env)?;
    let tools: Option<serde_json::Value> =
        tools_json.as_deref().map(serde_json::from_str).transpose().map_err(Error::from).or_throw(&env)?;
    let c = tokens::count_chat(&model, &messages, tools.as_ref()).or_throw(&env)?;
    Ok(TokenCountResult { tokens: num(c.tokens), exact: c.exact })
}

/// A pre-flight estimate with the embedded prices, USD.
#[napi]
pub fn estimate(env: Env, input: EstimateInput) -> napi::Result<EstimateResult> {
    let est =
        estimate_with(|req| core_tracker::estimate(embedded_prices(), &Rates::new(), "USD", req, Utc::now()), input)
            .or_throw(&env)?;
    Ok(estimate_result(est))
}

/// The embedded prices, loaded once (module-level `cost()` and `estimate()`).
pub(crate) fn embedded_prices() -> &'static PriceDb {
    static EMBEDDED: std::sync::OnceLock<PriceDb> = std::sync::OnceLock::new();
    EMBEDDED.get_or_init(PriceDb::embedded)
}
