//! Node.js bindings of llmledger (napi-rs): only glue between the JS layer (`bindings-node/js/`) and
//! `llmledger_core`. Module names mirror the Python binding's (bindings-python/src):
//!
//! - [`tracker`]: the native classes (`NativeTracker`, `NativeClient`, `NativeAttribution`, `NativeCall`,
//!   `NativeStream`);
//! - [`types`]: the JS-facing objects and their conversions to and from core types;
//! - [`error`]: the one mapping of core errors to JS errors;
//! - this file: the free functions (token counts, estimates, `cost`).
//!
//! No accounting logic lives here; the SDK interception lives in the JS layer.

mod error;
mod tracker;
mod types;

use chrono::Utc;
use napi::Env;
use napi_derive::napi;
use rust_decimal::Decimal;

use error::OrThrow;
use types::{num, CallCost, CostOptions, EstimateInput, EstimateResult, Money, TokenCountResult, UsageInput};

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

/// Prices `usage` for `model`, converted to `to` = (rates, currency) when given; `CallCost` JSON.
pub(crate) fn price(
    db: &PriceDb,
    model: &str,
    usage: UsageInput,
    options: CostOptions,
    to: Option<(&Rates, &str)>,
) -> Result<String> {
    let usage = usage.into_usage()?;
    let (at, opts) = options.split()?;
    let cost = db.price(&usage, model, at, &opts)?;
    let cost = match to {
        Some((rates, currency)) if currency != cost.currency => cost.convert(rates, currency)?,
        _ => cost,
    };
    // Plain strings, numbers and maps: serializing cannot fail.
    Ok(serde_json::to_string(&CallCost::from(&cost)).unwrap_or_else(|_| "{}".to_string()))
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
    let est = estimate_with(
        |req| core_tracker::estimate(EMBEDDED.get_or_init(PriceDb::embedded), &Rates::new(), "USD", req, Utc::now()),
        input,
    )
    .or_throw(&env)?;
    Ok(estimate_result(est))
}

/// The cost of a given usage with the embedded prices, USD; `CallCost` JSON. Arguments as
/// `NativeTracker.cost`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn cost(
    env: Env,
    model: String,
    input_tokens: Option<f64>,
    cache_read_tokens: Option<f64>,
    cache_write_tokens: Option<f64>,
    cache_write_1h_tokens: Option<f64>,
    output_tokens: Option<f64>,
    reasoning_tokens: Option<f64>,
    audio_input_tokens: Option<f64>,
    audio_output_tokens: Option<f64>,
    image_input_tokens: Option<f64>,
    image_output_tokens: Option<f64>,
    web_search_requests: Option<f64>,
    input_characters: Option<f64>,
    audio_seconds: Option<String>,
    service_tier: Option<String>,
    at: Option<String>,
    batch: Option<bool>,
    regional: Option<bool>,
) -> napi::Result<String> {
    let usage = UsageInput {
        input_tokens,
        cache_read_tokens,
        cache_write_tokens,
        cache_write_1h_tokens,
        output_tokens,
        reasoning_tokens,
        audio_input_tokens,
        audio_output_tokens,
        image_input_tokens,
        image_output_tokens,
        web_search_requests,
        input_characters,
        audio_seconds,
        service_tier: service_tier.clone(),
    };
    let options = CostOptions { at, batch, service_tier, regional };
    price(EMBEDDED.get_or_init(PriceDb::embedded), &model, usage, options, None).or_throw(&env)
}

/// The embedded prices, loaded once (module-level `cost()` and `estimate()`).
static EMBEDDED: std::sync::OnceLock<PriceDb> = std::sync::OnceLock::new();
