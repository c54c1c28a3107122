//! The one mapping of `llmledger_core::Error` to a JS `Error`.
//!
//! The thrown object is a plain `Error` carrying core's one error shape: `.code` (the stable
//! `ErrorCode::as_str()` string: `"unknown_model"`, `"config"`, …), `.message` (without a code prefix),
//! `.field` and `.value` (null when not applicable) and `.suggestions` (always an array) — the attributes
//! of a record's `pricing_error` and of the Python binding's exceptions. Match on `.code`, never on the
//! message.
//!
//! A spend-control refusal (`code: "budget_exceeded"`, raised before the request is sent — what OpenAI
//! reports after the fact as `insufficient_quota`) also carries core's `BudgetDetail`: as `.budget`, in
//! core's serialized shape (snake_case keys, decimals as strings), and its main fields on the error
//! itself: `.rule`, `.scope`, `.limit`, `.spent`, `.reserved`, `.requested` (exact decimal strings) and
//! `.currency`.

use napi::bindgen_prelude::{JsObjectValue, JsValue};
use napi::{Env, Status};

use crate::core::Error as CoreError;

/// Builds the JS error for `e`. Falls back to a bare napi error if the JS object cannot be built (the
/// environment is tearing down), so a failure here never hides the original error.
pub(crate) fn to_js_error(env: &Env, e: &CoreError) -> napi::Error {
    build(env, e).unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, e.to_string()))
}

fn build(env: &Env, e: &CoreError) -> napi::Result<napi::Error> {
    let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, e.message().to_string()))?;
    obj.set_named_property("code", e.code().as_str())?;
    obj.set_named_property("field", e.field())?;
    obj.set_named_property("value", e.value())?;
    obj.set_named_property("suggestions", e.suggestions().to_vec())?;
    if let Some(b) = e.budget() {
        obj.set_named_property("budget", env.to_js_value(b)?)?;
        obj.set_named_property("rule", b.rule.as_str())?;
        obj.set_named_property("scope", env.to_js_value(&b.scope)?)?;
        obj.set_named_property("limit", b.limit.to_string())?;
        obj.set_named_property("spent", b.spent.to_string())?;
        obj.set_named_property("reserved", b.reserved.to_string())?;
        obj.set_named_property("requested", b.requested.to_string())?;
        obj.set_named_property("currency", b.currency.as_deref())?;
    }
    Ok(napi::Error::from(obj.to_unknown()))
}

/// `core::Result<T>` → `napi::Result<T>` through [`to_js_error`].
pub(crate) trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for crate::core::Result<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| to_js_error(env, &e))
    }
}
