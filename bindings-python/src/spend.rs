//! Spend control from Python: `Spend`, the native side of `tracker.budgets` and `tracker.balances`
//! (limits, balances, their history and alerts), and the alert sink behind `Tracker(on_alert=...)`.
//! Glue over `llmledger_core::spend` and `llmledger_core::alert_pump`: arguments become core's request
//! types (amounts through core's one rule, `args::amount_from_text`), results cross as core's JSON,
//! which the package reads with `Decimal`s. Every store call releases the GIL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use llmledger_core::alert::AlertEvent;
use llmledger_core::args::{amount_from_text, not_an_amount};
use llmledger_core::spend::{Account, CreditRequest, EntryKind, HistoryQuery, LimitSpec, Scope, Spend as CoreSpend};
use llmledger_core::tracker::Tracker as CoreTracker;
use llmledger_core::Error;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString};
use rust_decimal::Decimal;

use crate::error::{detached, held, optional_count_arg, to_py};

/// A money argument: a `str`, `decimal.Decimal` or `int`, read exactly; a float or anything else is an
/// `InvalidInputError` naming `field`.
fn amount(field: &str, value: &Bound<'_, PyAny>) -> PyResult<Decimal> {
    if let Ok(text) = value.cast::<PyString>() {
        return held(amount_from_text(field, &text.to_cow()?));
    }
    let int = value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>();
    if int || value.is_instance(&value.py().import("decimal")?.getattr("Decimal")?)? {
        return held(amount_from_text(field, &value.str()?.to_cow()?));
    }
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
    Err(to_py(not_an_amount(field, shown)))
}

fn optional_amount(field: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Decimal>> {
    value.filter(|v| !v.is_none()).map(|v| amount(field, v)).transpose()
}

/// An account: `"u1"` (a user), `"workspace_id=w1"`, or a one-key dict `{"workspace_id": "w1"}`.
pub fn account(value: &Bound<'_, PyAny>) -> PyResult<Account> {
    if let Ok(text) = value.cast::<PyString>() {
        return held(text.to_cow()?.parse::<Account>());
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        if dict.len() == 1 {
            if let Some((key, id)) = dict.iter().next() {
                return held(Account::new(&key.str()?.to_cow()?, id.str()?.to_string()));
            }
        }
    }
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
    Err(to_py(Error::invalid_value("account", shown, "a user id, \"workspace_id=<id>\" or a one-key dict")))
}

fn scope(map: Option<BTreeMap<String, String>>) -> PyResult<Option<Scope>> {
    map.map(|m| held(Scope::new(m))).transpose()
}

fn json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    held(serde_json::to_string(value).map_err(Error::from))
}

/// `tracker.budgets.set_limit(...)`'s arguments, as the package gathers them.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct LimitInput<'py> {
    scope: Option<BTreeMap<String, String>>,
    per: String,
    amount: Option<Bound<'py, PyAny>>,
    requests: Option<Bound<'py, PyAny>>,
    tokens: Option<Bound<'py, PyAny>>,
    currency: Option<String>,
    action: String,
    thresholds: Option<Vec<Bound<'py, PyAny>>>,
    timezone: Option<String>,
}

impl LimitInput<'_> {
    fn into_core(self) -> PyResult<LimitSpec> {
        let thresholds = match &self.thresholds {
            Some(list) => Some(list.iter().map(|t| amount("thresholds", t)).collect::<PyResult<Vec<_>>>()?),
            None => None,
        };
        Ok(LimitSpec {
            scope: scope(self.scope)?.unwrap_or_default(),
            per: held(self.per.parse())?,
            amount: optional_amount("amount", self.amount.as_ref())?,
            currency: self.currency,
            requests: optional_count_arg("requests", self.requests.as_ref())?,
            tokens: optional_count_arg("tokens", self.tokens.as_ref())?,
            action: held(self.action.parse())?,
            thresholds,
            timezone: self.timezone,
        })
    }
}

/// `tracker.balances.top_up(...)` / `grant(...)`'s arguments.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct CreditInput<'py> {
    account: Bound<'py, PyAny>,
    amount: Bound<'py, PyAny>,
    kind: String,
    currency: Option<String>,
    idempotency_key: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    note: Option<String>,
}

/// The native side of `tracker.budgets` and `tracker.balances`: core's `Spend` of one tracker.
#[pyclass(frozen, module = "llmledger._native")]
#[derive(Debug)]
pub struct Spend {
    inner: CoreSpend,
}

impl Spend {
    /// The tracker's spend handle (`StoreError` with code `unsupported` when it has none: disabled, JSONL).
    pub fn of(tracker: &CoreTracker) -> PyResult<Self> {
        Ok(Self { inner: held(tracker.spend())?.clone() })
    }
}

#[pymethods]
impl Spend {
    /// Creates or updates the limit of (scope, per, metric); the stored limit as JSON.
    fn set_limit(&self, py: Python<'_>, input: LimitInput<'_>) -> PyResult<String> {
        let spec = input.into_core()?;
        json(&detached(py, || self.inner.set_limit(&spec))?)
    }

    /// Every limit, or those of one scope, as a JSON array.
    #[pyo3(signature = (scope=None))]
    fn limits(&self, py: Python<'_>, scope: Option<BTreeMap<String, String>>) -> PyResult<String> {
        let scope = self::scope(scope)?;
        json(&detached(py, || self.inner.limits(scope.as_ref()))?)
    }

    fn remove_limit(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        detached(py, || self.inner.remove_limit(id))
    }

    /// The limits (of one scope) with their use this period, as a JSON array.
    #[pyo3(signature = (scope=None))]
    fn status(&self, py: Python<'_>, scope: Option<BTreeMap<String, String>>) -> PyResult<String> {
        let scope = self::scope(scope)?;
        json(&detached(py, || self.inner.limit_status(scope.as_ref(), None))?)
    }

    /// A top-up or grant (once per idempotency key); the entry as JSON.
    fn credit(&self, py: Python<'_>, input: CreditInput<'_>) -> PyResult<String> {
        let kind: EntryKind = held(input.kind.parse())?;
        let req = CreditRequest {
            account: account(&input.account)?,
            amount: amount("amount", &input.amount)?,
            currency: input.currency,
            idempotency_key: input.idempotency_key,
            kind,
            expires_at: input.expires_at,
            note: input.note,
            at: None,
        };
        json(&detached(py, || self.inner.credit(&req))?)
    }

    /// The account's balance now, as JSON.
    fn balance(&self, py: Python<'_>, account: &Bound<'_, PyAny>) -> PyResult<String> {
        let account = self::account(account)?;
        json(&detached(py, || self.inner.balance(&account, None))?)
    }

    /// The account's entries, newest first, as a JSON array.
    #[pyo3(signature = (account, limit=None, before=None))]
    fn history(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        limit: Option<u32>,
        before: Option<i64>,
    ) -> PyResult<String> {
        let q = HistoryQuery { account: self::account(account)?, limit, before };
        json(&detached(py, || self.inner.history(&q))?)
    }

    /// A `balance_low` alert below `below` (None: off).
    #[pyo3(signature = (account, below=None))]
    fn set_balance_alert(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        below: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (account, below) = (self::account(account)?, optional_amount("below", below)?);
        detached(py, || self.inner.set_balance_alert(&account, below))
    }

    /// Fired alerts not yet handed on, as a JSON array (for tests and operators).
    #[pyo3(signature = (limit=100))]
    fn pending_alerts(&self, py: Python<'_>, limit: u32) -> PyResult<String> {
        json(&detached(py, || self.inner.pending_alerts(limit))?)
    }

    /// Releases every open reservation past its expiry now; how many.
    fn expire_stale(&self, py: Python<'_>) -> PyResult<u64> {
        detached(py, || self.inner.expire_stale(None))
    }

    /// Running totals that differ from their entries and holds, as a JSON array (empty: consistent).
    fn verify(&self, py: Python<'_>) -> PyResult<String> {
        json(&detached(py, || self.inner.verify())?)
    }
}

/// Sets `callback` (called with each alert as JSON text, on core's alert thread, with the GIL taken)
/// as the tracker's alert sink; `None` removes it. The package's callback catches and logs whatever
/// the user's `on_alert` raises.
pub fn set_alert_sink(tracker: &CoreTracker, callback: Option<Py<PyAny>>) -> PyResult<()> {
    let sink = callback.map(|callback| -> llmledger_core::alert_pump::AlertSink {
        Box::new(move |alert: &AlertEvent| {
            let Ok(text) = serde_json::to_string(alert) else { return };
            Python::attach(|py| {
                if let Err(e) = callback.call1(py, (text,)) {
                    e.write_unraisable(py, None);
                }
            });
        })
    });
    held(tracker.set_alert_sink(sink))
}
