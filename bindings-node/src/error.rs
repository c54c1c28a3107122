//! The one mapping of `llmledger_core::Error` to a JS `Error`.
//!
//! The thrown object is a plain `Error` whose `.code` is the stable `ErrorCode::as_str()` string
//! (`"unknown_model"`, `"config"`, …), with `.field`, `.value` and `.suggestions` when the core error has
//! them. The JS layer and users match on `.code`, never on the message.

use napi::bindgen_prelude::{JsObjectValue, JsValue};
use napi::{Env, Status};

use crate::core::Error as CoreError;

/// Builds the JS error for `e`. Falls back to a bare napi error if the JS object cannot be built (the
/// environment is tearing down), so a failure here never hides the original error.
pub(crate) fn to_js_error(env: &Env, e: &CoreError) -> napi::Error {
    build(env, e).unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, e.to_string()))
}

fn build(env: &Env, e: &CoreError) -> napi::Result<napi::Error> {
    let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, e.to_string()))?;
    obj.set_named_property("code", e.code().as_str())?;
    if let Some(field) = e.field() {
        obj.set_named_property("field", field)?;
    }
    if let Some(value) = e.value() {
        obj.set_named_property("value", value)?;
    }
    if !e.suggestions().is_empty() {
        obj.set_named_property("suggestions", e.suggestions().to_vec())?;
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
