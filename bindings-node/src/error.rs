//! The one mapping of `llmledger_core::Error` to a JS `Error`.
//!
//! The thrown object is a plain `Error` carrying core's one error shape: `.code` (the stable
//! `ErrorCode::as_str()` string: `"unknown_model"`, `"config"`, …), `.message` (without a code prefix),
//! `.field` and `.value` (null when not applicable) and `.suggestions` (always an array) — the attributes
//! of a record's `pricing_error` and of the Python binding's exceptions. Match on `.code`, never on the
//! message.

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
