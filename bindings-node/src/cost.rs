//! `cost()` on its measured fast path: the price of a given usage, with the embedded prices (module-level
//! `cost`) or a tracker's prices and currency (`NativeTracker.cost`, which calls [`price_compact`]).
//!
//! Why this shape (measured with `bench/peers`, case `llmledger.cost`): 18 positional arguments and a
//! JSON result cost ~3.9 µs a call on a quiet machine; under a third of it was pricing, the rest reading
//! 18 arguments (a type check each), building the result (a map, serde) and `JSON.parse` in JS. Here the
//! 12 counts come in one `Float64Array` that the JS glue (`js/cost.cjs`) reuses — one typed-array read —
//! the rarely given options in one optional object, and the result goes back as one string of fields
//! separated by U+001F, which the glue splits into the same plain object (no JSON on either side).

use napi::bindgen_prelude::Float64ArraySlice;
use napi::Env;
use napi_derive::napi;

use std::fmt::Write;

use rust_decimal::Decimal;

use crate::core::{PriceDb, Rates, Result};
use crate::error::OrThrow;
use crate::types::{CostOptions, UsageInput};

/// Separates the fields of the compact result (never in a model id, a decimal or a date).
const SEP: char = '\u{1f}';

/// The rarely given parts of a `cost()` input; the glue passes `undefined` when none is set.
#[napi(object)]
#[derive(Debug, Default)]
pub struct CostExtras {
    /// Seconds of audio, as a decimal string.
    pub audio_seconds: Option<String>,
    pub service_tier: Option<String>,
    /// RFC 3339 instant whose prices apply; default now.
    pub at: Option<String>,
    pub batch: Option<bool>,
    pub regional: Option<bool>,
}

/// Reads the counts (in the glue's `COUNT_FIELDS` order: inputTokens, cacheReadTokens, cacheWriteTokens,
/// cacheWrite1hTokens, outputTokens, reasoningTokens, audioInputTokens, audioOutputTokens,
/// imageInputTokens, imageOutputTokens, webSearchRequests, inputCharacters; the glue writes 0 for an absent
/// count and NaN for a value that is not a number, which core's count rule refuses, naming the field) into the binding's usage input.
fn usage_input(counts: &[f64], extras: &mut CostExtras) -> UsageInput {
    let at = |i: usize| counts.get(i).copied();
    UsageInput {
        input_tokens: at(0),
        cache_read_tokens: at(1),
        cache_write_tokens: at(2),
        cache_write_1h_tokens: at(3),
        output_tokens: at(4),
        reasoning_tokens: at(5),
        audio_input_tokens: at(6),
        audio_output_tokens: at(7),
        image_input_tokens: at(8),
        image_output_tokens: at(9),
        web_search_requests: at(10),
        input_characters: at(11),
        audio_seconds: extras.audio_seconds.take(),
        service_tier: extras.service_tier.clone(),
    }
}

/// Prices the usage for `model`, converted to `to` = (rates, currency) when given, as the compact string:
/// `exact SEP usd SEP rate SEP currency SEP model SEP priceVersion SEP uncertain(1|0)` then
/// `SEP component SEP amount` per non-zero breakdown component (USD, camelCase, in core's order).
pub(crate) fn price_compact(
    db: &PriceDb,
    model: &str,
    counts: &[f64],
    extras: Option<CostExtras>,
    to: Option<(&Rates, &str)>,
) -> Result<String> {
    let mut extras = extras.unwrap_or_default();
    let usage = usage_input(counts, &mut extras).into_usage()?;
    let options = CostOptions {
        at: extras.at,
        batch: extras.batch,
        service_tier: extras.service_tier,
        regional: extras.regional,
    };
    let (at, opts) = options.split()?;
    let cost = db.price(&usage, model, at, &opts)?;
    let cost = match to {
        Some((rates, currency)) if currency != cost.currency => cost.convert(rates, currency)?,
        _ => cost,
    };
    // Written straight into one buffer (no intermediate strings, no map): this is most of the call.
    let mut out = String::with_capacity(160);
    let decimal = |out: &mut String, d: Decimal| {
        let _ = write!(out, "{}", d.normalize());
        out.push(SEP);
    };
    decimal(&mut out, cost.total);
    decimal(&mut out, cost.total_usd);
    decimal(&mut out, cost.rate);
    for field in [cost.currency.as_str(), cost.model.as_str()] {
        out.push_str(field);
        out.push(SEP);
    }
    let _ = write!(out, "{}", cost.price_version);
    out.push(SEP);
    out.push(if cost.uncertain { '1' } else { '0' });
    for (name, amount) in cost.breakdown.components() {
        if amount.is_zero() {
            continue;
        }
        out.push(SEP);
        push_camel(&mut out, name);
        out.push(SEP);
        let _ = write!(out, "{}", amount.normalize());
    }
    Ok(out)
}

/// `cache_write_5m` → `cacheWrite5m`, appended to `out`.
fn push_camel(out: &mut String, name: &str) {
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
}

/// The cost of a given usage with the embedded prices, USD, as the compact string of [`price_compact`].
#[napi]
pub fn cost(env: Env, model: String, counts: Float64ArraySlice, extras: Option<CostExtras>) -> napi::Result<String> {
    price_compact(crate::embedded_prices(), &model, &counts, extras, None).or_throw(&env)
}
