//! The one mapping of core errors to Python exceptions, and the one helper that runs core code with the GIL
//! released and converts its error, so each call site is a single line.
//!
//! The exception classes live in `llmledger/errors.py` (rooted at `LlmledgerError`, subclasses also deriving
//! `ValueError` / `KeyError` / `OSError` as apt); `BY_CODE` there maps each stable core code to its class.
//! A `budget_exceeded` error also carries core's `BudgetDetail` (`BudgetExceeded.scope`, `.limit`, …).

use llmledger_core::{Error, Result};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

static BY_CODE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    BY_CODE
        .get_or_try_init(py, || -> PyResult<Py<PyDict>> {
            let module = py.import("llmledger.errors")?;
            Ok(module.getattr("BY_CODE")?.cast_into::<PyDict>()?.unbind())
        })
        .map(|d| d.bind(py))
}

/// `err` as the `llmledger.errors` exception for its code, with `.code`, `.field`, `.value`, `.suggestions`.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| {
        let code = err.code().as_str();
        let built = classes(py).and_then(|by_code| {
            let class = match by_code.get_item(code)? {
                Some(class) => class,
                None => py.import("llmledger.errors")?.getattr("LlmledgerError")?,
            };
            let suggestions = PyTuple::new(py, err.suggestions())?;
            match err.budget() {
                // `BudgetExceeded`: what refused the call, its amounts as `Decimal`.
                Some(b) => {
                    let detail = PyDict::new(py);
                    detail.set_item("rule", &b.rule)?;
                    detail.set_item("rule_id", &b.rule_id)?;
                    detail.set_item("scope", b.scope.clone())?;
                    detail.set_item("per", &b.per)?;
                    detail.set_item("metric", &b.metric)?;
                    detail.set_item("period", &b.period)?;
                    detail.set_item("limit", b.limit)?;
                    detail.set_item("spent", b.spent)?;
                    detail.set_item("reserved", b.reserved)?;
                    detail.set_item("requested", b.requested)?;
                    detail.set_item("currency", &b.currency)?;
                    class.call1((err.message(), code, err.field(), err.value(), suggestions, detail))
                }
                None => class.call1((err.message(), code, err.field(), err.value(), suggestions)),
            }
        });
        match built {
            Ok(instance) => PyErr::from_value(instance),
            // The package is not importable (the native module used on its own): keep code and message.
            Err(_) => PyRuntimeError::new_err(err.to_string()),
        }
    })
}

/// Runs `f` with the GIL released and converts its error. For anything that may take more than a few
/// microseconds: counting, pricing in bulk, store I/O.
pub fn detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    py.detach(f).map_err(to_py)
}

/// Converts a core result without releasing the GIL (for sub-microsecond calls).
pub fn held<T>(result: Result<T>) -> PyResult<T> {
    result.map_err(to_py)
}

/// A numeric argument that must be a count (core's one rule, `llmledger_core::args`): anything but a
/// non-negative `int` below 2^64 is an `InvalidInputError` naming `field` — never an `OverflowError`.
pub fn count_arg(field: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    let as_int = if value.is_instance_of::<pyo3::types::PyBool>() { None } else { value.extract::<i128>().ok() };
    match as_int {
        Some(n) => held(llmledger_core::args::count_from_int(field, n)),
        None => {
            let shown = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
            Err(to_py(llmledger_core::args::not_an_integer_count(field, shown)))
        }
    }
}

/// An optional count (`None` stays `None`).
pub fn optional_count_arg(field: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    value.filter(|v| !v.is_none()).map(|v| count_arg(field, v)).transpose()
}

/// An `invalid_value` error for a bad argument, raised like any core error.
pub fn invalid(field: &str, value: impl std::fmt::Display, reason: &str) -> PyErr {
    to_py(Error::invalid_value(field, value, reason))
}
