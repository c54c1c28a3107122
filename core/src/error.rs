//! The one public error type of llmledger, with stable codes.
//!
//! Every fallible function in core returns [`Result`]. Bindings map [`Error`] once (Python:
//! exceptions rooted at `LlmledgerError`; Node: `Error` with `.code`) and tests assert
//! [`Error::code`], never message text. Messages name the offending field and value.

use std::fmt;

/// Shorthand for `Result<T, llmledger_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable, machine-readable error codes. Never renumber or rename one: bindings and users match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The input is not JSON (or not the JSON shape expected at the top level).
    InvalidJson,
    /// A required field is missing.
    MissingField,
    /// A field has a value of the wrong type, a negative or absurd number, or an unknown enum value.
    InvalidValue,
    /// A stream event type this provider never sends.
    UnknownEventType,
    /// No price entry matches the model name.
    UnknownModel,
    /// The model is known but has no price for a bucket the usage contains, or no version at the date.
    MissingPrice,
    /// A currency was asked for without a rate.
    UnknownCurrency,
    /// Bad configuration: unknown store URL scheme, bad time zone, unwritable path, bad option.
    Config,
    /// Price data given at run time does not validate.
    InvalidPriceData,
    /// The ledger store failed (after retries) or is unavailable.
    Store,
    /// A local file operation failed (spill file, JSONL, price file).
    Io,
    /// The ledger writer was closed.
    Closed,
    /// The operation is not available here (e.g. re-pricing a JSONL or memory store).
    Unsupported,
    /// Spend control refused a call before it was sent: a block limit or a balance would be exceeded
    /// (or a model without a price under the `fail_closed` policy). [`Error::budget`] says which.
    BudgetExceeded,
}

impl ErrorCode {
    /// The code as the bindings expose it, e.g. `"unknown_model"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::MissingField => "missing_field",
            Self::InvalidValue => "invalid_value",
            Self::UnknownEventType => "unknown_event_type",
            Self::UnknownModel => "unknown_model",
            Self::MissingPrice => "missing_price",
            Self::UnknownCurrency => "unknown_currency",
            Self::Config => "config",
            Self::InvalidPriceData => "invalid_price_data",
            Self::Store => "store",
            Self::Io => "io",
            Self::Closed => "closed",
            Self::Unsupported => "unsupported",
            Self::BudgetExceeded => "budget_exceeded",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The llmledger error: a stable [`ErrorCode`], a message, and where it applies the field, value and
/// suggestions (close model names for [`ErrorCode::UnknownModel`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    value: Option<String>,
    suggestions: Vec<String>,
    /// For [`ErrorCode::BudgetExceeded`]: the rule that refused, boxed so every other error stays small.
    budget: Option<Box<BudgetDetail>>,
}

/// What refused a call ([`ErrorCode::BudgetExceeded`]), serialized as the error's `budget` key; the
/// bindings expose its fields on their `BudgetExceeded` error (`.scope`, `.limit`, `.spent`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetDetail {
    /// `limit` (a block limit), `balance` (an account's available credit) or `unpriced` (a model
    /// without a price under the `fail_closed` policy).
    pub rule: String,
    /// The limit's id (`lim_…`), or the account (`user_id=u1`).
    pub rule_id: String,
    /// The scope of the limit or account, e.g. `{"user_id": "u1"}`.
    pub scope: std::collections::BTreeMap<String, String>,
    /// For limits: `minute`, `day` or `month`.
    pub per: Option<String>,
    /// `spend`, `requests` or `tokens`.
    pub metric: String,
    /// The period the limit was counted in (`2026-12-02`), for limits.
    pub period: Option<String>,
    /// The limit, or for a balance the balance (what is left after every settled debit).
    pub limit: rust_decimal::Decimal,
    /// Settled use in the period (limits); 0 for a balance, whose debits are already out of it.
    pub spent: rust_decimal::Decimal,
    /// Held by open reservations.
    pub reserved: rust_decimal::Decimal,
    /// What this call asked to reserve.
    pub requested: rust_decimal::Decimal,
    /// Currency of the amounts for `spend` (None for requests and tokens).
    pub currency: Option<String>,
}

impl Error {
    /// A new error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None, value: None, suggestions: Vec::new(), budget: None }
    }

    /// A refusal by spend control, with what refused it.
    pub fn budget_exceeded(message: impl Into<String>, detail: BudgetDetail) -> Self {
        let mut e = Self::new(ErrorCode::BudgetExceeded, message);
        e.budget = Some(Box::new(detail));
        e
    }

    /// `field` is missing, e.g. `usage.prompt_tokens`.
    pub fn missing_field(field: impl Into<String>) -> Self {
        let field = field.into();
        Self::new(ErrorCode::MissingField, format!("missing field `{field}`")).with_field(field)
    }

    /// `field` has `value`, which is wrong because `reason`.
    pub fn invalid_value(field: impl Into<String>, value: impl fmt::Display, reason: &str) -> Self {
        let (field, value) = (field.into(), value.to_string());
        Self::new(ErrorCode::InvalidValue, format!("field `{field}` = {value}: {reason}"))
            .with_field(field)
            .with_value(value)
    }

    /// Configuration `field` has `value`, which is wrong because `reason`.
    pub fn config(field: impl Into<String>, value: impl fmt::Display, reason: &str) -> Self {
        let (field, value) = (field.into(), value.to_string());
        Self::new(ErrorCode::Config, format!("config `{field}` = {value:?}: {reason}"))
            .with_field(field)
            .with_value(value)
    }

    /// No price entry for `model`; `suggestions` are close known names.
    pub fn unknown_model(model: &str, suggestions: Vec<String>) -> Self {
        let hint =
            if suggestions.is_empty() { String::new() } else { format!("; did you mean {}?", suggestions.join(", ")) };
        let mut e = Self::new(ErrorCode::UnknownModel, format!("unknown model `{model}`{hint}"))
            .with_field("model")
            .with_value(model);
        e.suggestions = suggestions;
        e
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The input field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The offending value, rendered, when there is one.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// Close known names, for [`ErrorCode::UnknownModel`].
    pub fn suggestions(&self) -> &[String] {
        &self.suggestions
    }

    /// What refused the call, for [`ErrorCode::BudgetExceeded`].
    pub fn budget(&self) -> Option<&BudgetDetail> {
        self.budget.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// The one serialized error shape, `{code, message, field, value, suggestions}` (the record's
/// `pricing_error`; the bindings give their raised errors the same attributes): `message` without the
/// `[code]` prefix of `Display`, `field` / `value` null when not applicable, `suggestions` always a list;
/// a `budget_exceeded` error adds `budget` ([`BudgetDetail`]), other errors have no `budget` key.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Error", 6)?;
        m.serialize_field("code", self.code.as_str())?;
        m.serialize_field("message", &self.message)?;
        m.serialize_field("field", &self.field)?;
        m.serialize_field("value", &self.value)?;
        m.serialize_field("suggestions", &self.suggestions)?;
        match &self.budget {
            Some(budget) => m.serialize_field("budget", budget)?,
            None => m.skip_field("budget")?,
        }
        m.end()
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::new(ErrorCode::InvalidJson, format!("invalid JSON: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorCode::Io, format!("I/O error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_field_and_value() {
        let e = Error::invalid_value("usage.prompt_tokens", -3, "must not be negative");
        assert_eq!(e.code(), ErrorCode::InvalidValue);
        assert_eq!(e.field(), Some("usage.prompt_tokens"));
        assert_eq!(e.value(), Some("-3"));
        assert_eq!(e.to_string(), "[invalid_value] field `usage.prompt_tokens` = -3: must not be negative");
    }

    #[test]
    fn unknown_model_carries_suggestions() {
        let e = Error::unknown_model("gpt-4oo", vec!["gpt-4o".into()]);
        assert_eq!(e.code().as_str(), "unknown_model");
        assert_eq!(e.suggestions(), ["gpt-4o".to_string()]);
        assert!(e.message().contains("did you mean gpt-4o"));
    }

    #[test]
    fn serializes_as_the_one_error_shape() {
        let e = Error::unknown_model("gpt-4oo", vec!["gpt-4o".into()]);
        let json = serde_json::to_value(&e).unwrap_or_default();
        let expected = serde_json::json!({
            "code": "unknown_model",
            "message": "unknown model `gpt-4oo`; did you mean gpt-4o?",
            "field": "model",
            "value": "gpt-4oo",
            "suggestions": ["gpt-4o"],
        });
        assert_eq!(json, expected);
        let bare = serde_json::to_value(Error::new(ErrorCode::Store, "down")).unwrap_or_default();
        let expected =
            serde_json::json!({"code": "store", "message": "down", "field": null, "value": null, "suggestions": []});
        assert_eq!(bare, expected);
    }
}
