//! Conversions between Python and core values. In: the structured inputs that cross as one dict each
//! (`Tracker` configuration, a report query), read once with `FromPyObject` (keys are the core field
//! names; the package always passes every key). Out: `Usage` (one recorded call, the `_token_usage` of a
//! result), `Cost`, and report rows; values convert on access, so building a `Usage` per call costs no
//! Python objects beyond itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use llmledger_core::estimate::EstimateRequest;
use llmledger_core::org::reconcile::ReconcileRow;
use llmledger_core::report::{GroupBy, ReportRowView, Timeframe, UsageFilter, UsageQuery};
use llmledger_core::tracker::{Estimate, Tracked, TrackerConfig};
use llmledger_core::{Breakdown, Cost as CoreCost, Error};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::{detached, held, invalid, optional_count_arg, to_py};

/// `llmledger.Tracker(...)`'s arguments, as the package gathers them (`Tracker._config`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Config {
    store: Option<String>,
    currency: String,
    rates: BTreeMap<String, String>,
    timezone: String,
    unknown_model: String,
    durability: String,
    prices_path: Option<PathBuf>,
    litellm_prices_path: Option<PathBuf>,
    azure_deployments: BTreeMap<String, String>,
    spill_dir: Option<PathBuf>,
}

impl Config {
    pub fn into_core(self) -> PyResult<TrackerConfig> {
        Ok(TrackerConfig {
            store: self.store,
            currency: self.currency,
            rates: self.rates,
            timezone: self.timezone,
            unknown_model: held(self.unknown_model.parse())?,
            durability: held(self.durability.parse())?,
            prices_path: self.prices_path,
            litellm_prices_path: self.litellm_prices_path,
            azure_deployments: self.azure_deployments,
            spill_dir: self.spill_dir,
            // Python hooks nothing on records made by a dropped stream (issue 9 plan).
            keep_dropped_records: false,
        })
    }
}

/// `llmledger.Tracker.usage(...)`'s arguments: the filter, the groups, the report's time zone.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Query {
    user_id: Option<String>,
    workspace_id: Option<String>,
    project: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    session_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    group_by: Vec<String>,
    /// `None`: the tracker's time zone (core's default).
    timezone: Option<String>,
    p95: bool,
    /// `today`, `week` or `month`: the current period in the report's zone.
    timeframe: Option<String>,
}

impl Query {
    pub fn into_core(self) -> PyResult<(UsageQuery, Option<Timeframe>)> {
        let Query { user_id, workspace_id, project, provider, model, session_id, since, until, .. } = self;
        let query = UsageQuery {
            filter: UsageFilter { user_id, workspace_id, project, provider, model, session_id, since, until },
            group_by: self.group_by.iter().map(|g| held(g.parse::<GroupBy>())).collect::<PyResult<_>>()?,
            timezone: self.timezone,
            p95: self.p95,
        };
        Ok((query, self.timeframe.map(|t| held(t.parse::<Timeframe>())).transpose()?))
    }
}

/// `estimate(...)`'s arguments (the module function's and `Tracker.estimate`'s): the model, the chat
/// request as JSON, and the output bound and expected cache hit.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct EstimateInput<'py> {
    model: String,
    messages_json: String,
    tools_json: Option<String>,
    max_output_tokens: Option<Bound<'py, PyAny>>,
    expected_cache_hit: Option<String>,
}

impl EstimateInput<'_> {
    /// Checks the numbers, then runs `estimate` on the parsed request with the GIL released; the result as
    /// a dict.
    pub fn run<'py, F>(&self, py: Python<'py>, estimate: F) -> PyResult<Bound<'py, PyDict>>
    where
        F: FnOnce(&EstimateRequest<'_>) -> llmledger_core::Result<Estimate> + Send,
    {
        let hit = parse_fraction(self.expected_cache_hit.as_deref())?;
        let max_output_tokens = optional_count_arg("max_output_tokens", self.max_output_tokens.as_ref())?;
        let (model, messages_json, tools_json) = (self.model.as_str(), &self.messages_json, self.tools_json.as_deref());
        let e = detached(py, || {
            let (messages, tools) = chat_json(messages_json, tools_json)?;
            estimate(&EstimateRequest {
                model,
                messages: &messages,
                tools: tools.as_ref(),
                max_output_tokens,
                expected_cache_hit: hit,
            })
        })?;
        estimate_dict(py, e)
    }
}

/// The messages (and tools) JSON of a chat request, parsed; `invalid_json` naming the argument otherwise.
pub fn chat_json(messages_json: &str, tools_json: Option<&str>) -> llmledger_core::Result<(Value, Option<Value>)> {
    let parse = |field: &str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| Error::from(e).with_field(field.to_string()))
    };
    Ok((parse("messages", messages_json)?, tools_json.map(|t| parse("tools", t)).transpose()?))
}

fn parse_fraction(value: Option<&str>) -> PyResult<Option<Decimal>> {
    value
        .map(|v| {
            v.parse::<Decimal>().map_err(|_| invalid("expected_cache_hit", v, "expected a decimal between 0 and 1"))
        })
        .transpose()
}

fn estimate_dict(py: Python<'_>, e: Estimate) -> PyResult<Bound<'_, PyDict>> {
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

/// The components of a breakdown, by name, each multiplied by `rate` (1 for USD); zero components left out.
fn breakdown_dict<'py>(py: Python<'py>, b: &Breakdown, rate: Decimal) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, usd) in b.components() {
        if !usd.is_zero() {
            // Saturating: never a panic; a component cannot overflow when the converted total did not.
            dict.set_item(name, usd.saturating_mul(rate).normalize())?;
        }
    }
    Ok(dict)
}

/// Record keys whose JSON values are decimal strings; Python shows them as `Decimal`.
const DECIMAL_KEYS: [&str; 3] = ["audio_seconds", "video_seconds", "cache_storage_token_hours"];

/// One recorded call (`result._token_usage`): core's one record, every key of its JSON shape
/// (`Tracked::KEYS`) an attribute. Values are the JSON's, except where Python has a richer type: `cost`
/// is a [`Cost`], money and decimal units are `Decimal`, `timestamp` a `datetime`, `pricing_error` the
/// `llmledger.errors` exception the same error raises (`code`, `message`, `field`, `value`,
/// `suggestions`). `to_dict()` is the JSON parsed as is.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Usage {
    pub tracked: Tracked,
    /// The record's JSON object, built on first access (a wrapped call that is never looked at costs none).
    record: OnceLock<Map<String, Value>>,
}

impl Usage {
    pub fn new(tracked: Tracked) -> Self {
        Self { tracked, record: OnceLock::new() }
    }

    fn record(&self) -> &Map<String, Value> {
        self.record.get_or_init(|| match serde_json::to_value(&self.tracked) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(), // unreachable: the record serializes as an object of plain values
        })
    }
}

#[pymethods]
impl Usage {
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let t = &self.tracked;
        match name {
            "cost" => return t.cost.clone().map(|cost| Cost { cost }).into_py_any(py),
            "breakdown" => {
                return match &t.cost {
                    Some(c) => breakdown_dict(py, &c.breakdown, c.rate)?.into_py_any(py),
                    None => Ok(py.None()),
                }
            }
            "timestamp" => return t.timestamp.into_py_any(py),
            _ => {}
        }
        let Some(value) = self.record().get(name) else {
            return Err(PyAttributeError::new_err(format!("'Usage' object has no attribute '{name}'")));
        };
        decimal_or_json(py, name, value, &DECIMAL_KEYS)
    }
    /// A getter rather than a `__getattr__` key: the wrappers read it on every call, and `__getattr__`
    /// is reached only after a failed generic lookup has raised and dropped an `AttributeError`.
    #[getter]
    fn pricing_error(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.tracked.pricing_error.clone().map(|e| to_py(e).into_value(py).into_any()).into_py_any(py)
    }
    fn __dir__(&self) -> Vec<&'static str> {
        Tracked::KEYS.into_iter().chain(["to_dict", "to_json"]).collect()
    }
    /// The record as JSON text (core's one shape).
    fn to_json(&self) -> String {
        self.tracked.to_json()
    }
    /// The record's JSON parsed: the same keys, order and values as Node's `_tokenUsage` (decimals as
    /// strings).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_loads(py, &self.tracked.to_json())
    }
    fn __repr__(&self) -> String {
        let t = &self.tracked;
        let cost =
            t.cost.as_ref().map_or_else(|| "None".to_string(), |c| format!("{} {}", c.total.normalize(), t.currency));
        format!(
            "Usage(provider='{}', model='{}', input_tokens={}, output_tokens={}, cost={}, usage_source='{}')",
            t.provider,
            t.model,
            t.usage.input_tokens,
            t.usage.output_tokens,
            cost,
            t.usage.usage_source.as_str(),
        )
    }
}

/// `value` as a `Decimal` when `key` is one of `decimal_keys` and it is a string, else as `json.loads` gives it.
fn decimal_or_json(py: Python<'_>, key: &str, value: &Value, decimal_keys: &[&str]) -> PyResult<Py<PyAny>> {
    match value {
        Value::String(text) if decimal_keys.contains(&key) => {
            held(text.parse::<Decimal>().map_err(|e| Error::invalid_value(key, text, &e.to_string())))?.into_py_any(py)
        }
        _ => json_to_py(py, value),
    }
}

/// A JSON value as the Python value `json.loads` gives.
fn json_to_py(py: Python<'_>, value: &Value) -> PyResult<Py<PyAny>> {
    match value {
        Value::Null => Ok(py.None()),
        Value::Bool(b) => b.into_py_any(py),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_py_any(py),
            (None, Some(i)) => i.into_py_any(py),
            _ => n.as_f64().into_py_any(py),
        },
        Value::String(s) => s.into_py_any(py),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_py_any(py)
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_py_any(py)
        }
    }
}

/// The exact cost of a usage (`llmledger.cost(...)`). Decimals handed to Python are normalized (no trailing zeros
/// from the price data's scale): the same exact values.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Cost {
    pub cost: CoreCost,
}

#[pymethods]
impl Cost {
    /// Total in `currency`, exact (`decimal.Decimal`).
    #[getter]
    fn total(&self) -> Decimal {
        self.cost.total.normalize()
    }
    #[getter]
    fn total_usd(&self) -> Decimal {
        self.cost.total_usd.normalize()
    }
    #[getter]
    fn currency(&self) -> &str {
        &self.cost.currency
    }
    /// Units of `currency` per USD used.
    #[getter]
    fn rate(&self) -> Decimal {
        self.cost.rate
    }
    #[getter]
    fn provider(&self) -> &'static str {
        self.cost.provider.as_str()
    }
    /// The canonical id of the priced model.
    #[getter]
    fn model(&self) -> &str {
        &self.cost.model
    }
    /// `effective_from` of the price version used.
    #[getter]
    fn price_version(&self) -> chrono::NaiveDate {
        self.cost.price_version
    }
    /// Cost per component in `currency` (non-zero components only).
    #[getter]
    fn breakdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        breakdown_dict(py, &self.cost.breakdown, self.cost.rate)
    }
    /// Cost per component in USD (non-zero components only); sums to `total_usd`.
    #[getter]
    fn breakdown_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        breakdown_dict(py, &self.cost.breakdown, Decimal::ONE)
    }
    /// The version of the whole price database used.
    #[getter]
    fn price_data(&self) -> &str {
        &self.cost.price_data
    }
    /// The long-context tier's threshold, when one applied.
    #[getter]
    fn tier_above(&self) -> Option<u64> {
        self.cost.tier_above
    }
    #[getter]
    fn uncertain(&self) -> bool {
        self.cost.uncertain
    }
    fn __repr__(&self) -> String {
        format!(
            "Cost(model='{}', total=Decimal('{}'), currency='{}')",
            self.cost.model, self.cost.total, self.cost.currency
        )
    }
}

/// Report-row keys whose JSON values are decimal strings; Python shows them as `Decimal`.
const ROW_DECIMAL_KEYS: [&str; 3] = ["cost", "cost_usd", "avg_latency_ms"];

/// Core's report rows (`ReportRowView`'s one shape, the same keys in the same order as Node's) as a list
/// of dicts, decimal strings as `Decimal`.
pub fn report_rows<'py>(py: Python<'py>, rows: &[ReportRowView]) -> PyResult<Bound<'py, PyAny>> {
    json_rows(py, &held(serde_json::to_string(rows).map_err(Error::from))?, &ROW_DECIMAL_KEYS)
}

/// Core's reconciliation rows (`ReconcileRow::flat`, the same keys as Node's) as a list of dicts,
/// decimal strings as `Decimal`.
pub fn reconcile_rows<'py>(py: Python<'py>, rows: &[ReconcileRow]) -> PyResult<Bound<'py, PyAny>> {
    let flat: Vec<_> = rows.iter().map(ReconcileRow::flat).collect();
    json_rows(py, &held(serde_json::to_string(&flat).map_err(Error::from))?, &ReconcileRow::DECIMAL_KEYS)
}

/// A JSON array of objects as a list of dicts, the values of `decimal_keys` as `Decimal`.
fn json_rows<'py>(py: Python<'py>, json: &str, decimal_keys: &[&str]) -> PyResult<Bound<'py, PyAny>> {
    let list = json_loads(py, json)?;
    let decimal = py.import("decimal")?.getattr("Decimal")?;
    for row in list.try_iter()? {
        let row = row?.cast_into::<PyDict>()?;
        for key in decimal_keys {
            if let Some(value) = row.get_item(key)?.filter(|v| !v.is_none()) {
                row.set_item(key, decimal.call1((value,))?)?;
            }
        }
    }
    Ok(list)
}

/// `json.loads(text)`: keeps the keys in the order core wrote them.
fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}
