//! The native classes behind `llmledger.Tracker` and the SDK wrappers: `Tracker` (recording, reports, the
//! ledger's lifecycle), `Client` (one wrapped SDK client: its provider and which calls are tracked),
//! `Attribution` (who a call is for; the overlay rule is core's), `Call` (one request in flight) and
//! `Stream` (one streamed response). Glue over `llmledger_core::tracker` and `llmledger_core::call`: the
//! package's wrappers (`llmledger/_wrap/`) only hook the SDK's request layer and hand these the request
//! dict and the response bytes. Module names mirror the Node binding's (bindings-node/src).

use std::collections::BTreeMap;

use llmledger_core::call::{CallStream, Client as CoreClient, ClientSpec, PendingCall, RequestFacts};
use llmledger_core::ledger::Attribution as CoreAttribution;
use llmledger_core::org::reconcile::ReconcileQuery;
use llmledger_core::tracker::{Tracker as CoreTracker, TrackerOptions};
use llmledger_core::{Api, Error};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict};

use crate::error::{detached, held, invalid};
use crate::spend::{set_alert_sink, Spend};
use crate::types::{reconcile_rows, report_rows, Config, EstimateInput, Query, Usage};

/// The native tracker. Use `llmledger.Tracker`, which adds wrapping, attribution and process hooks.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Tracker {
    inner: CoreTracker,
}

#[pymethods]
impl Tracker {
    /// `config`: one dict (`llmledger.Tracker._config`), read once; `options_json`: core's
    /// `TrackerOptions` as JSON (spend control, webhooks), parsed and checked by core.
    #[new]
    #[pyo3(signature = (config, options_json=None))]
    fn new(py: Python<'_>, config: Config, options_json: Option<&str>) -> PyResult<Self> {
        let config = config.into_core()?;
        let options = match options_json {
            Some(json) => held(TrackerOptions::from_json(json))?,
            None => TrackerOptions::default(),
        };
        // Opening a store may create files or connect to PostgreSQL.
        let inner = detached(py, move || CoreTracker::with_options(config, options))?;
        Ok(Self { inner })
    }

    /// Spend control over the tracker's store (`tracker.budgets`, `tracker.balances`).
    fn spend(&self) -> PyResult<Spend> {
        Spend::of(&self.inner)
    }

    /// The in-process alert receiver (`Tracker(on_alert=...)`), called with each alert's JSON.
    #[pyo3(signature = (callback=None))]
    fn set_alert_sink(&self, callback: Option<Py<PyAny>>) -> PyResult<()> {
        set_alert_sink(&self.inner, callback)
    }

    /// Hands every pending alert to the webhooks and the sink now (GIL released: the sink takes it).
    fn deliver_alerts(&self, py: Python<'_>) -> PyResult<usize> {
        detached(py, || self.inner.deliver_alerts())
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
        begin(&self.inner, client, api, path, json_data, extra_json, stream, context)
    }

    /// Report rows (see `llmledger.Tracker.usage`); `query`: one dict of filters, groups and time zone.
    fn usage<'py>(&self, py: Python<'py>, query: Query) -> PyResult<Bound<'py, PyAny>> {
        let (query, timeframe) = query.into_core()?;
        let rows = detached(py, || match timeframe {
            Some(t) => self.inner.usage_rows_in(&query, t),
            None => self.inner.usage_rows(&query),
        })?;
        report_rows(py, &rows)
    }

    /// Tracked against billed: `query_json` is core's `ReconcileQuery`; rows as `ReconcileRow::flat`.
    fn reconcile<'py>(&self, py: Python<'py>, query_json: &str) -> PyResult<Bound<'py, PyAny>> {
        let query = held(ReconcileQuery::from_json(query_json))?;
        let rows = detached(py, || self.inner.reconcile(&query))?;
        reconcile_rows(py, &rows)
    }

    /// Pre-flight estimate in the tracker's currency (a dict; the package wraps it in `Estimate`).
    fn estimate<'py>(&self, py: Python<'py>, input: EstimateInput<'py>) -> PyResult<Bound<'py, PyDict>> {
        input.run(py, |request| self.inner.estimate(request))
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

/// Who a call is for. Immutable; `overlay` layers one on another (core's rule).
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub inner: CoreAttribution,
}

#[pymethods]
impl Attribution {
    #[new]
    #[pyo3(signature = (user_id=None, workspace_id=None, project=None, session_id=None, conversation_id=None, tags=None))]
    fn new(
        user_id: Option<String>,
        workspace_id: Option<String>,
        project: Option<String>,
        session_id: Option<String>,
        conversation_id: Option<String>,
        tags: Option<BTreeMap<String, String>>,
    ) -> Self {
        let tags = tags.unwrap_or_default();
        Self { inner: CoreAttribution { user_id, workspace_id, project, session_id, conversation_id, tags } }
    }

    /// `self` with every value `top` sets replacing it; tags merged (`top` wins per key).
    fn overlay(&self, top: &Attribution) -> Attribution {
        Attribution { inner: self.inner.overlay(&top.inner) }
    }

    #[getter]
    fn user_id(&self) -> Option<&str> {
        self.inner.user_id.as_deref()
    }
    #[getter]
    fn workspace_id(&self) -> Option<&str> {
        self.inner.workspace_id.as_deref()
    }
    #[getter]
    fn project(&self) -> Option<&str> {
        self.inner.project.as_deref()
    }
    #[getter]
    fn session_id(&self) -> Option<&str> {
        self.inner.session_id.as_deref()
    }
    #[getter]
    fn conversation_id(&self) -> Option<&str> {
        self.inner.conversation_id.as_deref()
    }
    #[getter]
    fn tags(&self) -> BTreeMap<String, String> {
        self.inner.tags.clone()
    }
    fn __repr__(&self) -> String {
        format!("Attribution({:?})", self.inner)
    }
}

/// A wrapped SDK client: core's `Client` (the provider, decided once) and the attribution given to `wrap`.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Client {
    inner: CoreClient,
    attribution: CoreAttribution,
}

#[pymethods]
impl Client {
    /// `spec_json`: core's `ClientSpec` as JSON (sdk, base_url, azure, bedrock, provider, azure_deployment).
    #[new]
    fn new(spec_json: &str, attribution: &Attribution) -> PyResult<Self> {
        let spec: ClientSpec = held(serde_json::from_str(spec_json).map_err(Error::from))?;
        Ok(Self { inner: held(CoreClient::new(&spec))?, attribution: attribution.inner.clone() })
    }

    #[getter]
    fn provider(&self) -> &'static str {
        self.inner.provider().as_str()
    }

    /// The API name of a request, or None when it is not tracked (it then passes through untouched).
    fn classify(&self, method: &str, path: &str) -> Option<&'static str> {
        self.inner.classify(method, path).map(Api::as_str)
    }
}

/// The request's `key` when it is a string.
fn str_item(dict: Option<&Bound<'_, PyDict>>, key: &str) -> PyResult<Option<PyBackedStr>> {
    let Some(dict) = dict else { return Ok(None) };
    Ok(dict.get_item(key)?.and_then(|v| v.extract::<PyBackedStr>().ok()))
}

/// Starts one tracked call: the request facts read from the SDK's request dict with a few key lookups.
/// Positional on purpose, being the per-call path: measured (2 shared cores under load) `begin` costs
/// ≈ 2 µs including core's work, and one argument dict instead would add ≈ 0.3 µs to build in Python plus
/// its reading here, on every call.
#[allow(clippy::too_many_arguments)]
pub fn begin(
    tracker: &CoreTracker,
    client: &Client,
    api: &str,
    path: &str,
    json_data: Option<&Bound<'_, PyDict>>,
    extra_json: Option<&Bound<'_, PyDict>>,
    stream: bool,
    context: Option<&Attribution>,
) -> PyResult<Call> {
    let api = held(api.parse::<Api>())?;
    let model = match str_item(json_data, "model")? {
        Some(m) => Some(m),
        None => str_item(extra_json, "model")?,
    };
    let service_tier = str_item(json_data, "service_tier")?;
    let include_usage = match json_data.map(|d| d.get_item("stream_options")).transpose()?.flatten() {
        Some(options) => options
            .cast::<PyDict>()
            .ok()
            .and_then(|o| o.get_item("include_usage").ok().flatten())
            .and_then(|v| v.extract::<bool>().ok()),
        None => None,
    };
    let has_tools = match json_data {
        Some(d) => d.contains("tools")? || d.contains("web_search_options")?,
        None => false,
    };
    let facts = RequestFacts {
        path,
        model: model.as_deref(),
        stream,
        service_tier: service_tier.as_deref(),
        include_usage,
        has_tools,
    };
    let attribution = match context {
        Some(top) => client.attribution.overlay(&top.inner),
        None => client.attribution.clone(),
    };
    let pending = tracker.begin(&client.inner, api, &facts, attribution);
    Ok(Call { inner: Some(pending) })
}

/// One tracked request in flight; ends once with `finish`, `fail` or `into_stream`.
#[pyclass(module = "llmledger._native")]
#[derive(Debug)]
pub struct Call {
    inner: Option<PendingCall>,
}

impl Call {
    fn take(&mut self) -> PyResult<PendingCall> {
        self.inner.take().ok_or_else(|| invalid("call", "ended", "the call was already finished"))
    }
}

#[pymethods]
impl Call {
    #[getter]
    fn api(&self) -> Option<&'static str> {
        self.inner.as_ref().map(|c| c.api().as_str())
    }
    /// Set `stream_options.include_usage = true` in the request before it is sent.
    #[getter]
    fn inject_include_usage(&self) -> bool {
        self.inner.as_ref().is_some_and(PendingCall::inject_include_usage)
    }
    /// Whether core reads the request body (`set_request_body`); otherwise it is never serialized.
    #[getter]
    fn wants_request_body(&self) -> bool {
        self.inner.as_ref().is_some_and(PendingCall::wants_request_body)
    }
    fn set_request_body(&mut self, json: &str) {
        if let Some(call) = self.inner.as_mut() {
            call.set_request_body(json);
        }
    }
    /// Whether `admit` has a reservation to make (spend control is active); the async wrapper runs it
    /// off the event loop only then.
    #[getter]
    fn checks_spend(&self) -> bool {
        self.inner.as_ref().is_some_and(PendingCall::checks_spend)
    }
    /// Reserves the call's maximum cost before it is sent, or raises `BudgetExceeded` (do not send).
    /// A store transaction: the GIL is released, and only when there is something to check.
    fn admit(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.inner.as_mut() {
            Some(call) if call.checks_spend() => detached(py, || call.admit()),
            _ => Ok(()),
        }
    }
    /// Records the response from its body (the SDK's raw `bytes`, read in place, or a `str`).
    fn finish(&mut self, py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<Usage> {
        let call = self.take()?;
        // Released: with `durability="sync"` this waits for the journal's fsync.
        let tracked = match body.cast::<PyBytes>() {
            Ok(bytes) => {
                // `bytes` are immutable and held by the caller while the GIL is released.
                let body = bytes.as_bytes();
                detached(py, || call.finish(body))?
            }
            Err(_) => {
                let text = body.extract::<PyBackedStr>()?;
                detached(py, || call.finish(text.as_bytes()))?
            }
        };
        Ok(Usage::new(tracked))
    }
    /// Records a call the provider failed (`error_class`: the SDK exception's class name).
    fn fail(&mut self, py: Python<'_>, error_class: &str) -> PyResult<Usage> {
        let call = self.take()?;
        let tracked = detached(py, || call.fail(error_class))?;
        Ok(Usage::new(tracked))
    }
    /// The response is a stream: accumulate it.
    #[allow(clippy::wrong_self_convention)] // core's name; a Python object is never taken by value
    fn into_stream(&mut self) -> PyResult<Stream> {
        let call = self.take()?;
        Ok(Stream { inner: call.into_stream() })
    }
}

/// One streamed response. Dropped unfinished (the caller abandoned it), core records it as aborted.
#[pyclass(module = "llmledger._native")]
#[derive(Debug)]
pub struct Stream {
    inner: CallStream,
}

#[pymethods]
impl Stream {
    /// One SSE event as the SDK split it (`event:` name, `data:` payload). True: hide it from the caller
    /// (the usage-only chunk core asked for). After `finish`, a quiet no-op.
    fn push(&mut self, event: Option<&str>, data: &str) -> PyResult<bool> {
        held(self.inner.push_event(event, data))
    }
    /// Records the stream; `aborted`: stopped early or broken. Later calls return None.
    fn finish(&mut self, py: Python<'_>, aborted: bool) -> PyResult<Option<Usage>> {
        let stream = &mut self.inner;
        let tracked = detached(py, || stream.finish(aborted))?;
        Ok(tracked.map(Usage::new))
    }
}
