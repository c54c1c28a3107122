//! `Tracker` and `TrackedStream`: the core facade (`llmledger_core::tracker`) as Python classes. Arguments
//! arrive already shaped by the package (`llmledger/_tracker.py`, `llmledger/_wrap/`).

use std::sync::Mutex;

use llmledger_core::estimate::EstimateRequest;
use llmledger_core::tracker::{self, CallInfo, TrackedStream as CoreStream, Tracker as CoreTracker};
use llmledger_core::{Api, Error, Provider};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyList};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::convert::{Config, Query};
use crate::error::{detached, held, invalid, optional_count_arg};
use crate::types::{attribution, report_rows, AttributionTuple, Usage};

/// Calls `f` with a response body given as the SDK's raw `bytes` (read in place, no copy) or as a `str`.
fn with_body<R>(body: &Bound<'_, PyAny>, f: impl FnOnce(&str) -> PyResult<R>) -> PyResult<R> {
    if let Ok(bytes) = body.cast::<PyBytes>() {
        f(std::str::from_utf8(bytes.as_bytes()).map_err(|e| invalid("response", e, "response body is not UTF-8"))?)
    } else {
        f(&body.extract::<PyBackedStr>()?)
    }
}

fn call_info(
    provider: &str,
    api: &str,
    model: String,
    attr: AttributionTuple,
    service_tier: Option<String>,
) -> PyResult<CallInfo> {
    Ok(CallInfo {
        provider: held(provider.parse::<Provider>())?,
        api: held(api.parse::<Api>())?,
        model,
        attribution: attribution(attr),
        batch: false,
        service_tier,
    })
}

/// The native tracker. Use `llmledger.Tracker`, which adds wrapping, attribution and process hooks.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Tracker {
    inner: CoreTracker,
    currency: String,
    /// The default time zone of a report's day/month groups.
    timezone: String,
}

#[pymethods]
impl Tracker {
    /// `config`: one dict (`llmledger.Tracker._config`), read once.
    #[new]
    fn new(py: Python<'_>, config: Config) -> PyResult<Self> {
        let config = config.into_core()?;
        let (currency, timezone) = (config.currency.clone(), config.timezone.clone());
        // Opening a store may create files or connect to PostgreSQL.
        let inner = detached(py, move || CoreTracker::new(config))?;
        Ok(Self { inner, currency, timezone })
    }

    /// Records a finished non-streaming call from its response body; returns its `Usage`.
    #[pyo3(signature = (provider, api, model, attribution, request_json, response, latency_ms, service_tier=None))]
    #[allow(clippy::too_many_arguments)]
    fn record_response(
        &self,
        py: Python<'_>,
        provider: &str,
        api: &str,
        model: String,
        attribution: AttributionTuple,
        request_json: Option<&str>,
        response: &Bound<'_, PyAny>,
        latency_ms: u64,
        service_tier: Option<String>,
    ) -> PyResult<Usage> {
        let call = call_info(provider, api, model, attribution, service_tier)?;
        // Released: with `durability="sync"` this waits for the journal's fsync.
        let tracked = with_body(response, |body| {
            detached(py, || self.inner.record_response(&call, request_json, body, latency_ms))
        })?;
        Ok(Usage { tracked, currency: self.currency.clone() })
    }

    /// Records a call the provider failed (`error_class`: the SDK exception's class name).
    #[allow(clippy::too_many_arguments)]
    fn record_failure(
        &self,
        py: Python<'_>,
        provider: &str,
        api: &str,
        model: String,
        attribution: AttributionTuple,
        error_class: &str,
        latency_ms: u64,
    ) -> PyResult<Usage> {
        let call = call_info(provider, api, model, attribution, None)?;
        let tracked = detached(py, || self.inner.record_failure(&call, error_class, latency_ms))?;
        Ok(Usage { tracked, currency: self.currency.clone() })
    }

    /// Starts accumulating a stream. `hide_usage_chunk`: the wrapper asked for `include_usage` itself.
    #[pyo3(signature = (provider, api, model, attribution, request_json, hide_usage_chunk, service_tier=None))]
    #[allow(clippy::too_many_arguments)]
    fn start_stream(
        &self,
        provider: &str,
        api: &str,
        model: String,
        attribution: AttributionTuple,
        request_json: Option<&str>,
        hide_usage_chunk: bool,
        service_tier: Option<String>,
    ) -> PyResult<TrackedStream> {
        let call = call_info(provider, api, model, attribution, service_tier)?;
        let mut stream = self.inner.start_stream(call, request_json);
        stream.hide_usage_chunk(hide_usage_chunk);
        Ok(TrackedStream { inner: Mutex::new(Some(stream)), currency: self.currency.clone() })
    }

    /// Report rows (see `llmledger.Tracker.usage`); `query`: one dict of filters, groups and time zone.
    fn usage<'py>(&self, py: Python<'py>, query: Query) -> PyResult<Bound<'py, PyList>> {
        let query = query.into_core(&self.timezone)?;
        let rows = detached(py, || self.inner.usage(&query))?;
        // The ledger keeps USD; reports show the tracker's currency too, at the configured rate.
        let rate = self.inner.rates().get(self.inner.currency()).unwrap_or(Decimal::ONE);
        report_rows(py, &rows, rate)
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
        &self.currency
    }
}

/// One stream being accumulated; fed the raw SSE events, finished once.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct TrackedStream {
    inner: Mutex<Option<CoreStream>>,
    currency: String,
}

#[pymethods]
impl TrackedStream {
    /// One raw event (`event:` field, `data:` payload). True: the caller must not see this event's chunk
    /// (the usage-only chunk the wrapper asked for).
    #[pyo3(signature = (event, data))]
    fn push(&self, event: Option<&str>, data: &str) -> PyResult<bool> {
        let mut guard = self.inner.lock().map_err(|_| invalid("stream", "poisoned", "stream state is unusable"))?;
        match guard.as_mut() {
            Some(stream) => held(stream.push(event, data)),
            None => Ok(false),
        }
    }

    /// Records the stream; `aborted`: the caller stopped early or an error broke it. Later calls return None.
    fn finish(&self, py: Python<'_>, latency_ms: u64, aborted: bool) -> PyResult<Option<Usage>> {
        let taken = self.inner.lock().map_err(|_| invalid("stream", "poisoned", "stream state is unusable"))?.take();
        let Some(stream) = taken else { return Ok(None) };
        let tracked = detached(py, move || stream.finish(latency_ms, aborted))?;
        Ok(Some(Usage { tracked, currency: self.currency.clone() }))
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
