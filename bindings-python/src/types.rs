//! Python views of core values: `Usage` (one recorded call, the `_token_usage` of a result), `Cost`, and the
//! conversions of attribution and report rows. Getters convert on access, so building a `Usage` per call
//! costs no Python objects beyond itself.

use std::collections::BTreeMap;

use llmledger_core::report::ReportRow;
use llmledger_core::tracker::Tracked;
use llmledger_core::{Breakdown, Cost as CoreCost, UsageSource};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rust_decimal::Decimal;

/// The components of a breakdown, by name, each multiplied by `rate` (1 for USD); zero components left out.
fn breakdown_dict<'py>(py: Python<'py>, b: &Breakdown, rate: Decimal) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, usd) in b.components() {
        if !usd.is_zero() {
            dict.set_item(name, (usd * rate).normalize())?;
        }
    }
    Ok(dict)
}

/// One recorded call: tokens per bucket, exact cost, attribution, latency. `result._token_usage`.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Usage {
    pub tracked: Tracked,
    /// The tracker's currency, for unpriced calls (no `Cost`).
    pub currency: String,
}

#[pymethods]
impl Usage {
    #[getter]
    fn provider(&self) -> &'static str {
        self.tracked.provider.as_str()
    }
    #[getter]
    fn api(&self) -> &'static str {
        self.tracked.api.as_str()
    }
    /// The model as requested (Azure: the deployment name).
    #[getter]
    fn model(&self) -> &str {
        &self.tracked.model
    }
    /// The canonical priced model id, when the model resolved.
    #[getter]
    fn resolved_model(&self) -> Option<&str> {
        self.tracked.resolved_model.as_deref()
    }
    #[getter]
    fn input_tokens(&self) -> u64 {
        self.tracked.usage.input_tokens
    }
    #[getter]
    fn cache_read_tokens(&self) -> u64 {
        self.tracked.usage.cache_read_tokens
    }
    #[getter]
    fn cache_write_tokens(&self) -> u64 {
        self.tracked.usage.cache_write_tokens
    }
    #[getter]
    fn cache_write_1h_tokens(&self) -> u64 {
        self.tracked.usage.cache_write_1h_tokens
    }
    #[getter]
    fn output_tokens(&self) -> u64 {
        self.tracked.usage.output_tokens
    }
    #[getter]
    fn reasoning_tokens(&self) -> u64 {
        self.tracked.usage.reasoning_tokens
    }
    #[getter]
    fn audio_input_tokens(&self) -> u64 {
        self.tracked.usage.audio_input_tokens
    }
    #[getter]
    fn audio_output_tokens(&self) -> u64 {
        self.tracked.usage.audio_output_tokens
    }
    #[getter]
    fn image_input_tokens(&self) -> u64 {
        self.tracked.usage.image_input_tokens
    }
    #[getter]
    fn image_output_tokens(&self) -> u64 {
        self.tracked.usage.image_output_tokens
    }
    /// All prompt-side buckets plus output.
    #[getter]
    fn total_tokens(&self) -> u64 {
        self.tracked.usage.total_tokens()
    }
    /// Exact cost in `currency` (`decimal.Decimal`), None when the call could not be priced.
    #[getter]
    fn cost(&self) -> Option<Decimal> {
        self.tracked.cost.as_ref().map(|c| c.total.normalize())
    }
    #[getter]
    fn cost_usd(&self) -> Option<Decimal> {
        self.tracked.cost.as_ref().map(|c| c.total_usd.normalize())
    }
    #[getter]
    fn currency(&self) -> &str {
        self.tracked.cost.as_ref().map_or(self.currency.as_str(), |c| c.currency.as_str())
    }
    /// Cost per component in `currency` (non-zero components only); sums to `cost`.
    #[getter]
    fn breakdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        match &self.tracked.cost {
            Some(c) => breakdown_dict(py, &c.breakdown, c.rate),
            None => Ok(PyDict::new(py)),
        }
    }
    /// `reported`, `partial`, `estimated` or `none`.
    #[getter]
    fn usage_source(&self) -> &'static str {
        self.tracked.usage.usage_source.as_str()
    }
    /// True when some counts were computed locally (`partial` or `estimated`).
    #[getter]
    fn estimated(&self) -> bool {
        matches!(self.tracked.usage.usage_source, UsageSource::Partial | UsageSource::Estimated)
    }
    #[getter]
    fn flags(&self) -> Vec<String> {
        self.tracked.usage.flags.iter().map(|f| flag_name(*f)).collect()
    }
    /// Why the call is unpriced (e.g. `[unknown_model] …`), None when priced.
    #[getter]
    fn pricing_error(&self) -> Option<String> {
        self.tracked.pricing_error.as_ref().map(|e| e.to_string())
    }
    #[getter]
    fn pricing_error_code(&self) -> Option<&'static str> {
        self.tracked.pricing_error.as_ref().map(|e| e.code().as_str())
    }
    #[getter]
    fn service_tier(&self) -> Option<&str> {
        self.tracked.usage.service_tier.as_deref()
    }
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.tracked.request_id.as_deref()
    }
    #[getter]
    fn user_id(&self) -> Option<&str> {
        self.tracked.attribution.user_id.as_deref()
    }
    #[getter]
    fn workspace_id(&self) -> Option<&str> {
        self.tracked.attribution.workspace_id.as_deref()
    }
    #[getter]
    fn project(&self) -> Option<&str> {
        self.tracked.attribution.project.as_deref()
    }
    #[getter]
    fn session_id(&self) -> Option<&str> {
        self.tracked.attribution.session_id.as_deref()
    }
    #[getter]
    fn conversation_id(&self) -> Option<&str> {
        self.tracked.attribution.conversation_id.as_deref()
    }
    #[getter]
    fn tags(&self) -> BTreeMap<String, String> {
        self.tracked.attribution.tags.clone()
    }
    #[getter]
    fn latency_ms(&self) -> u64 {
        self.tracked.latency_ms
    }
    #[getter]
    fn success(&self) -> bool {
        self.tracked.success
    }
    #[getter]
    fn error_class(&self) -> Option<&str> {
        self.tracked.error_class.as_deref()
    }
    #[getter]
    fn event_id(&self) -> &str {
        &self.tracked.event_id
    }
    #[getter]
    fn timestamp(&self) -> chrono::DateTime<chrono::Utc> {
        self.tracked.timestamp
    }
    /// The recorded event as one JSON object (the core's stable shape).
    fn to_json(&self) -> String {
        self.tracked.to_json()
    }
    /// The public fields as a dict.
    fn as_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(slf.py());
        for name in FIELDS {
            dict.set_item(name, slf.getattr(name)?)?;
        }
        Ok(dict)
    }
    fn __repr__(&self) -> String {
        let t = &self.tracked;
        let cost =
            t.cost.as_ref().map_or_else(|| "None".to_string(), |c| format!("Decimal('{}')", c.total.normalize()));
        format!(
            "Usage(provider='{}', model='{}', input_tokens={}, cache_read_tokens={}, cache_write_tokens={}, \
             output_tokens={}, reasoning_tokens={}, cost={}, currency='{}', usage_source='{}', user_id={})",
            t.provider,
            t.model,
            t.usage.input_tokens,
            t.usage.cache_read_tokens,
            t.usage.cache_write_tokens,
            t.usage.output_tokens,
            t.usage.reasoning_tokens,
            cost,
            self.currency(),
            t.usage.usage_source.as_str(),
            t.attribution.user_id.as_deref().map_or_else(|| "None".to_string(), py_str),
        )
    }
}

/// `s` as Python's `repr` of a str shows it (single quotes).
fn py_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

const FIELDS: [&str; 24] = [
    "provider",
    "api",
    "model",
    "resolved_model",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "currency",
    "breakdown",
    "usage_source",
    "estimated",
    "flags",
    "request_id",
    "user_id",
    "workspace_id",
    "project",
    "session_id",
    "latency_ms",
    "success",
    "error_class",
];

fn flag_name(flag: llmledger_core::UsageFlag) -> String {
    use llmledger_core::UsageFlag as F;
    match flag {
        F::TotalMismatch => "total_mismatch",
        F::StreamAborted => "stream_aborted",
        F::StreamWithoutUsage => "stream_without_usage",
        F::ApproximateTokenizer => "approximate_tokenizer",
    }
    .to_string()
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

/// A report row as a dict: group keys, counts, token totals, `cost_usd` and `cost` (`cost_usd × rate`, the
/// tracker's currency; both Decimal), latency.
pub fn report_row<'py>(py: Python<'py>, row: &ReportRow, rate: Decimal) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (group, value) in &row.key {
        dict.set_item(group.as_str(), value)?;
    }
    dict.set_item("requests", row.requests)?;
    dict.set_item("successful", row.successful)?;
    dict.set_item("failed", row.failed)?;
    dict.set_item("unpriced", row.unpriced)?;
    dict.set_item("input_tokens", row.input_tokens)?;
    dict.set_item("cache_read_tokens", row.cache_read_tokens)?;
    dict.set_item("cache_write_tokens", row.cache_write_tokens)?;
    dict.set_item("output_tokens", row.output_tokens)?;
    dict.set_item("reasoning_tokens", row.reasoning_tokens)?;
    dict.set_item("cost_usd", row.cost_usd.normalize())?;
    dict.set_item("cost", (row.cost_usd * rate).normalize())?;
    dict.set_item("avg_latency_ms", row.avg_latency_ms)?;
    dict.set_item("p95_latency_ms", row.p95_latency_ms)?;
    Ok(dict)
}

pub fn report_rows<'py>(py: Python<'py>, rows: &[ReportRow], rate: Decimal) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for row in rows {
        list.append(report_row(py, row, rate)?)?;
    }
    Ok(list)
}
