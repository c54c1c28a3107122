//! `llmledger._native`: the Python binding of llmledger-core. Glue only: argument conversion, one error
//! mapping, GIL release around anything slow. The `llmledger` package (bindings-python/python) holds the
//! SDK hooks and the public API; everything it needs from Rust is here. Module names mirror the Node
//! binding's (bindings-node/src):
//!
//! - `tracker`: the native classes (`Tracker`, `Client`, `Attribution`, `Call`, `Stream`);
//! - `types`: the Python-facing values (`Usage`, `Cost`, report rows) and the structured inputs;
//! - `error`: the one mapping of core errors to `llmledger.errors` exceptions;
//! - this file: the free functions (token counts, estimates, `cost`).

mod error;
mod tracker;
mod types;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use llmledger_core::currency::Rates;
use llmledger_core::tokens;
use llmledger_core::{PriceDb, PriceOptions, Usage as CoreUsage, UsageSource};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt};

use crate::error::{count_arg, detached, held};

/// The embedded price data, loaded once, for the module-level `estimate` and `cost`.
fn embedded_prices() -> &'static PriceDb {
    static DB: OnceLock<PriceDb> = OnceLock::new();
    DB.get_or_init(PriceDb::embedded)
}

/// Tokens of `text` as `model` counts them (no special tokens).
#[pyfunction]
fn count_tokens(py: Python<'_>, text: &str, model: &str) -> PyResult<u64> {
    detached(py, || tokens::count_text(model, text)).map(|c| c.tokens)
}

/// Tokens of a chat request (`messages_json`, optional `tools_json`) including the format's overhead.
#[pyfunction]
#[pyo3(signature = (messages_json, model, tools_json=None))]
fn count_chat(py: Python<'_>, messages_json: &str, model: &str, tools_json: Option<&str>) -> PyResult<u64> {
    detached(py, || {
        let (messages, tools) = types::chat_json(messages_json, tools_json)?;
        tokens::count_chat(model, &messages, tools.as_ref())
    })
    .map(|c| c.tokens)
}

/// Pre-flight estimate in USD with the embedded prices (a dict; the package wraps it in `Estimate`).
#[pyfunction]
fn estimate<'py>(py: Python<'py>, input: types::EstimateInput<'py>) -> PyResult<Bound<'py, PyDict>> {
    input.run(py, |request| {
        llmledger_core::tracker::estimate(embedded_prices(), &Rates::new(), "USD", request, Utc::now())
    })
}

/// A count argument of `cost`, common case first: a plain `int` that fits a u64 is one C call. PyO3's
/// i128 extraction (what [`count_arg`] needs to name a negative or too large value) cost ~20 % of the
/// native call for 11 counts when measured; anything but a plain in-range `int` (a bool, a subclass, a
/// negative, a float) still goes through `count_arg` and its typed error.
fn fast_count(field: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_exact_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<u64>() {
            return Ok(n);
        }
    }
    count_arg(field, value)
}

/// The exact cost of the given token counts (see `llmledger.cost`). Sub-microsecond work: the GIL is kept.
#[pyfunction]
#[pyo3(signature = (model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                    reasoning_tokens, audio_input_tokens, audio_output_tokens, image_input_tokens, image_output_tokens,
                    web_search_requests, provider, currency, rates, at, batch, service_tier))]
#[allow(clippy::too_many_arguments)]
fn cost(
    model: &str,
    input_tokens: &Bound<'_, PyAny>,
    output_tokens: &Bound<'_, PyAny>,
    cache_read_tokens: &Bound<'_, PyAny>,
    cache_write_tokens: &Bound<'_, PyAny>,
    cache_write_1h_tokens: &Bound<'_, PyAny>,
    reasoning_tokens: &Bound<'_, PyAny>,
    audio_input_tokens: &Bound<'_, PyAny>,
    audio_output_tokens: &Bound<'_, PyAny>,
    image_input_tokens: &Bound<'_, PyAny>,
    image_output_tokens: &Bound<'_, PyAny>,
    web_search_requests: &Bound<'_, PyAny>,
    provider: Option<&str>,
    currency: &str,
    rates: Option<BTreeMap<String, String>>,
    at: Option<DateTime<Utc>>,
    batch: bool,
    service_tier: Option<String>,
) -> PyResult<types::Cost> {
    let usage = CoreUsage {
        input_tokens: fast_count("input_tokens", input_tokens)?,
        output_tokens: fast_count("output_tokens", output_tokens)?,
        cache_read_tokens: fast_count("cache_read_tokens", cache_read_tokens)?,
        cache_write_tokens: fast_count("cache_write_tokens", cache_write_tokens)?,
        cache_write_1h_tokens: fast_count("cache_write_1h_tokens", cache_write_1h_tokens)?,
        reasoning_tokens: fast_count("reasoning_tokens", reasoning_tokens)?,
        audio_input_tokens: fast_count("audio_input_tokens", audio_input_tokens)?,
        audio_output_tokens: fast_count("audio_output_tokens", audio_output_tokens)?,
        image_input_tokens: fast_count("image_input_tokens", image_input_tokens)?,
        image_output_tokens: fast_count("image_output_tokens", image_output_tokens)?,
        web_search_requests: fast_count("web_search_requests", web_search_requests)?,
        usage_source: UsageSource::Reported,
        ..CoreUsage::default()
    };
    // As a LiteLLM-style route prefix (`azure/gpt-4o`), which model resolution understands.
    let name = provider.map_or_else(|| model.to_string(), |p| format!("{p}/{model}"));
    let options = PriceOptions { batch, service_tier, ..PriceOptions::default() };
    let usd = held(embedded_prices().price(&usage, &name, at.unwrap_or_else(Utc::now), &options))?;
    let cost = if currency == "USD" {
        usd
    } else {
        let mut table = Rates::new();
        for (code, rate) in rates.unwrap_or_default() {
            table = held(table.with(&code, &rate))?;
        }
        held(usd.convert(&table, currency))?
    };
    Ok(types::Cost { cost })
}

/// `text` with the password of every `scheme://user:password@host` replaced by `***` (for reprs and logs).
#[pyfunction]
fn redact_credentials(text: &str) -> String {
    llmledger_core::ledger::health::redact_credentials(text)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<tracker::Tracker>()?;
    m.add_class::<tracker::Attribution>()?;
    m.add_class::<tracker::Client>()?;
    m.add_class::<tracker::Call>()?;
    m.add_class::<tracker::Stream>()?;
    m.add_class::<types::Usage>()?;
    m.add_class::<types::Cost>()?;
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(count_chat, m)?)?;
    m.add_function(wrap_pyfunction!(estimate, m)?)?;
    m.add_function(wrap_pyfunction!(cost, m)?)?;
    m.add_function(wrap_pyfunction!(redact_credentials, m)?)?;
    Ok(())
}
