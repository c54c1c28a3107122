//! `Tracker`: the core facade (`llmledger_core::tracker`) as a Python class. Arguments arrive already
//! shaped by the package (`llmledger/_tracker.py`, `llmledger/_wrap/`).

use llmledger_core::estimate::EstimateRequest;
use llmledger_core::tracker::{self, Tracker as CoreTracker};
use llmledger_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::call::{self, Attribution, Call, Client};
use crate::convert::{Config, Query};
use crate::error::{detached, held, invalid, optional_count_arg};
use crate::types::report_rows;

/// The native tracker. Use `llmledger.Tracker`, which adds wrapping, attribution and process hooks.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Tracker {
    inner: CoreTracker,
}

#[pymethods]
impl Tracker {
    /// `config`: one dict (`llmledger.Tracker._config`), read once.
    #[new]
    fn new(py: Python<'_>, config: Config) -> PyResult<Self> {
        let config = config.into_core()?;
        // Opening a store may create files or connect to PostgreSQL.
        let inner = detached(py, move || CoreTracker::new(config))?;
        Ok(Self { inner })
    }

    /// Starts one tracked call of `api` (from `Client.classify`); see `call::begin`. `context`: the
    /// attribution of the enclosing `attribute` blocks, laid over the client's.
    #[pyo3(signature = (client, api, path, json_data, extra_json, stream, context))]
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &self,
        client: &Client,
        api: &str,
        path: &str,
        json_data: Option<&Bound<'_, PyDict>>,
        extra_json: Option<&Bound<'_, PyDict>>,
        stream: bool,
        context: Option<&Attribution>,
    ) -> PyResult<Call> {
        call::begin(&self.inner, client, api, path, json_data, extra_json, stream, context)
    }

    /// Report rows (see `llmledger.Tracker.usage`); `query`: one dict of filters, groups and time zone.
    fn usage<'py>(&self, py: Python<'py>, query: Query) -> PyResult<Bound<'py, PyAny>> {
        let query = query.into_core()?;
        let rows = detached(py, || self.inner.usage_rows(&query))?;
        report_rows(py, &rows)
    }

    /// Pre-flight estimate in the tracker's currency (a dict; the package wraps it in `Estimate`).
    fn estimate<'py>(
        &self,
        py: Python<'py>,
        model: &str,
        messages_json: &str,
        tools_json: Option<&str>,
        max_output_tokens: Option<&Bound<'py, PyAny>>,
        expected_cache_hit: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let hit = parse_fraction(expected_cache_hit)?;
        let max_output_tokens = optional_count_arg("max_output_tokens", max_output_tokens)?;
        let e = detached(py, || {
            let (messages, tools) = chat_json(messages_json, tools_json)?;
            let request = EstimateRequest {
                model,
                messages: &messages,
                tools: tools.as_ref(),
                max_output_tokens,
                expected_cache_hit: hit,
            };
            self.inner.estimate(&request)
        })?;
        estimate_dict(py, e)
    }

    /// The ledger's health as JSON (`LedgerHealth`; the package parses it into a dict).
    fn health_json(&self) -> PyResult<String> {
        held(serde_json::to_string(&self.inner.health()).map_err(Error::from))
    }

    /// Operator notices as a JSON array; waits up to `wait_secs` (GIL released) for the first one.
    #[pyo3(signature = (wait_secs=None))]
    fn take_notices_json(&self, py: Python<'_>, wait_secs: Option<f64>) -> PyResult<String> {
        let wait = wait_secs.map(|s| std::time::Duration::from_secs_f64(s.clamp(0.0, 3600.0)));
        let notices = py.detach(|| self.inner.take_notices(wait));
        held(serde_json::to_string(&notices).map_err(Error::from))
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.flush())
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.close())
    }

    #[getter]
    fn currency(&self) -> &str {
        self.inner.currency()
    }
}

/// The messages (and tools) JSON of a chat request, parsed; `invalid_json` naming the argument otherwise.
pub fn chat_json(messages_json: &str, tools_json: Option<&str>) -> llmledger_core::Result<(Value, Option<Value>)> {
    let parse = |field: &str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| Error::from(e).with_field(field.to_string()))
    };
    Ok((parse("messages", messages_json)?, tools_json.map(|t| parse("tools", t)).transpose()?))
}

pub fn parse_fraction(value: Option<&str>) -> PyResult<Option<Decimal>> {
    value
        .map(|v| {
            v.parse::<Decimal>().map_err(|_| invalid("expected_cache_hit", v, "expected a decimal between 0 and 1"))
        })
        .transpose()
}

pub fn estimate_dict(py: Python<'_>, e: tracker::Estimate) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("model", e.model)?;
    dict.set_item("input_tokens", e.input_tokens)?;
    dict.set_item("exact", e.exact)?;
    dict.set_item("input_cost", e.input_cost)?;
    dict.set_item("max_output_tokens", e.max_output_tokens)?;
    dict.set_item("min_cost", e.min_cost)?;
    dict.set_item("max_cost", e.max_cost)?;
    dict.set_item("currency", e.currency)?;
    Ok(dict)
}
