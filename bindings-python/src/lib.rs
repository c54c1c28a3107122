//! `llmledger._native`: the Python binding of llmledger-core. Glue only: argument conversion, one error
//! mapping, GIL release around anything slow. The `llmledger` package (bindings-python/python) holds the
//! SDK hooks and the public API; everything it needs from Rust is here. Module names mirror the Node
//! binding's (bindings-node/src):
//!
//! - `tracker`: the native classes (`Tracker`, `Client`, `Attribution`, `Call`, `Stream`);
//! - `spend`: spend control (`Spend`: limits, balances) and the alert sink;
//! - `types`: the Python-facing values (`Usage`, `Cost`, report rows) and the structured inputs;
//! - `error`: the one mapping of core errors to `llmledger.errors` exceptions;
//! - this file: the free functions (token counts, estimates, `cost`).

mod error;
mod spend;
mod tracker;
mod types;

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

/// A count argument of `cost` as the caller gave it, or absent (0). Kept raw so that every value, `None`
/// included, is checked by [`CountArg::value`] with the argument's name (PyO3 would read `None` into an
/// `Option` as absent).
#[derive(Debug)]
struct CountArg<'py>(Option<Bound<'py, PyAny>>);

impl<'a, 'py> FromPyObject<'a, 'py> for CountArg<'py> {
    type Error = std::convert::Infallible;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> Result<Self, Self::Error> {
        Ok(Self(Some(obj.to_owned())))
    }
}

impl CountArg<'_> {
    const ABSENT: Self = Self(None);

    /// The count, common case first: a plain `int` that fits a u64 is one C call. PyO3's i128 extraction
    /// (what [`count_arg`] needs to name a negative or too large value) cost ~20 % of the native call for
    /// 11 counts when measured; anything but a plain in-range `int` (a bool, a subclass, a negative, a
    /// float, `None`) still goes through `count_arg` and its typed error.
    fn value(&self, field: &str) -> PyResult<u64> {
        let Some(value) = &self.0 else { return Ok(0) };
        if value.is_exact_instance_of::<PyInt>() {
            if let Ok(n) = value.extract::<u64>() {
                return Ok(n);
            }
        }
        count_arg(field, value)
    }
}

/// The exact cost of a usage with the embedded prices. Buckets follow :class:`Usage`: input buckets are
/// disjoint (``input_tokens`` = uncached text), ``reasoning_tokens`` is part of ``output_tokens``.
///
/// This is `llmledger.cost` itself, keyword arguments and defaults included: a Python wrapper in front
/// of it cost a third of the call (measured), and the caller's keywords are already the structured input.
/// Sub-microsecond work: the GIL is kept.
#[pyfunction]
#[pyo3(signature = (model, input_tokens=CountArg::ABSENT, output_tokens=CountArg::ABSENT,
                    cache_read_tokens=CountArg::ABSENT, cache_write_tokens=CountArg::ABSENT,
                    cache_write_1h_tokens=CountArg::ABSENT, reasoning_tokens=CountArg::ABSENT,
                    audio_input_tokens=CountArg::ABSENT, audio_output_tokens=CountArg::ABSENT,
                    image_input_tokens=CountArg::ABSENT, image_output_tokens=CountArg::ABSENT,
                    web_search_requests=CountArg::ABSENT, *, provider=None, currency="USD", rates=None, at=None,
                    batch=false, service_tier=None),
       text_signature = "(model, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, \
                         cache_write_1h_tokens=0, reasoning_tokens=0, audio_input_tokens=0, audio_output_tokens=0, \
                         image_input_tokens=0, image_output_tokens=0, web_search_requests=0, *, provider=None, \
                         currency='USD', rates=None, at=None, batch=False, service_tier=None)")]
#[allow(clippy::too_many_arguments)]
fn cost(
    model: &str,
    input_tokens: CountArg<'_>,
    output_tokens: CountArg<'_>,
    cache_read_tokens: CountArg<'_>,
    cache_write_tokens: CountArg<'_>,
    cache_write_1h_tokens: CountArg<'_>,
    reasoning_tokens: CountArg<'_>,
    audio_input_tokens: CountArg<'_>,
    audio_output_tokens: CountArg<'_>,
    image_input_tokens: CountArg<'_>,
    image_output_tokens: CountArg<'_>,
    web_search_requests: CountArg<'_>,
    provider: Option<&str>,
    currency: &str,
    rates: Option<&Bound<'_, PyAny>>,
    at: Option<DateTime<Utc>>,
    batch: bool,
    service_tier: Option<String>,
) -> PyResult<types::Cost> {
    let usage = CoreUsage {
        input_tokens: input_tokens.value("input_tokens")?,
        output_tokens: output_tokens.value("output_tokens")?,
        cache_read_tokens: cache_read_tokens.value("cache_read_tokens")?,
        cache_write_tokens: cache_write_tokens.value("cache_write_tokens")?,
        cache_write_1h_tokens: cache_write_1h_tokens.value("cache_write_1h_tokens")?,
        reasoning_tokens: reasoning_tokens.value("reasoning_tokens")?,
        audio_input_tokens: audio_input_tokens.value("audio_input_tokens")?,
        audio_output_tokens: audio_output_tokens.value("audio_output_tokens")?,
        image_input_tokens: image_input_tokens.value("image_input_tokens")?,
        image_output_tokens: image_output_tokens.value("image_output_tokens")?,
        web_search_requests: web_search_requests.value("web_search_requests")?,
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
        // Rates as a mapping of currency code to rate, each read as its `str()` (a `Decimal`, a string).
        let mut table = Rates::new();
        if let Some(rates) = rates.filter(|r| !r.is_none()) {
            for item in rates.call_method0("items")?.try_iter()? {
                let (code, rate): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
                table = held(table.with(&code.str()?.to_cow()?, &rate.str()?.to_cow()?))?;
            }
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
    m.add_class::<spend::Spend>()?;
    m.add_class::<types::Usage>()?;
    m.add_class::<types::Cost>()?;
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(count_chat, m)?)?;
    m.add_function(wrap_pyfunction!(estimate, m)?)?;
    m.add_function(wrap_pyfunction!(cost, m)?)?;
    m.add_function(wrap_pyfunction!(redact_credentials, m)?)?;
    Ok(())
}
