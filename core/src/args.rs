//! Checks of the numbers that arrive through the language bindings: the one rule every binding applies
//! to a numeric argument (a count of tokens, requests, characters …), so that bad input is the same
//! typed [`ErrorCode::InvalidValue`](crate::ErrorCode) naming the field in every language, never an
//! overflow, a wrap-around or a silent truncation.

use crate::error::{Error, Result};

/// Largest integer a JavaScript number holds exactly (2^53 − 1).
const MAX_SAFE_JS: f64 = 9_007_199_254_740_991.0;

/// The error for a value given where an integer count was expected (a float, a string, `None` …);
/// `value` is the caller's rendering of it.
pub fn not_an_integer_count(field: &str, value: impl std::fmt::Display) -> Error {
    Error::invalid_value(field, value, "must be a whole number from 0 to 2^64 - 1")
}

/// A money amount given as decimal text (`"5.00"`, a Python `Decimal`'s `str`, a JS string): exact,
/// never through a float. Anything else is [`ErrorCode::InvalidValue`](crate::ErrorCode) naming `field`.
/// The sign is the caller's rule (a limit may be 0, a credit must be positive).
pub fn amount_from_text(field: &str, text: &str) -> Result<rust_decimal::Decimal> {
    use std::str::FromStr;
    let trimmed = text.trim();
    // Plain notation first; scientific (`2E-3`, what `str(Decimal("0.002"))` may give) is exact too.
    rust_decimal::Decimal::from_str(trimmed)
        .or_else(|_| rust_decimal::Decimal::from_scientific(trimmed))
        .map(|d| d.normalize())
        .map_err(|_| Error::invalid_value(field, text, "must be a decimal amount such as \"5.00\""))
}

/// The error for an amount given as something other than decimal text or an exact decimal (a float,
/// a bool, `None` …); `value` is the caller's rendering of it.
pub fn not_an_amount(field: &str, value: impl std::fmt::Display) -> Error {
    Error::invalid_value(field, value, "give money as a decimal string or Decimal (never a float)")
}

/// A count given as an integer (Python `int`): 0 ..= u64::MAX.
pub fn count_from_int(field: &str, value: i128) -> Result<u64> {
    u64::try_from(value).map_err(|_| not_an_integer_count(field, value))
}

/// A count given as a JavaScript number: whole, 0 ..= 2^53 − 1 (NaN, infinities and fractions refused).
pub fn count_from_f64(field: &str, value: f64) -> Result<u64> {
    if (0.0..=MAX_SAFE_JS).contains(&value) && value.fract() == 0.0 {
        // Exact: a whole number below 2^53 converts without rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(value as u64)
    } else {
        Err(Error::invalid_value(field, value, "must be a whole number from 0 to 2^53 - 1"))
    }
}

/// A count the caller may leave out (`None` → 0).
pub fn optional_count_from_f64(field: &str, value: Option<f64>) -> Result<u64> {
    value.map_or(Ok(0), |v| count_from_f64(field, v))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn amounts_are_exact_decimal_text_or_a_typed_error_naming_the_field() {
        assert_eq!(amount_from_text("amount", " 5.00 ").ok(), Some(rust_decimal::Decimal::new(5, 0)));
        assert_eq!(amount_from_text("amount", "-0.10").ok(), Some(rust_decimal::Decimal::new(-1, 1)));
        assert_eq!(amount_from_text("amount", "2E-3").ok(), Some(rust_decimal::Decimal::new(2, 3)));
        for bad in ["", "abc", "NaN", "1,5", "Infinity"] {
            let err = amount_from_text("amount", bad).unwrap_err();
            assert_eq!((err.code(), err.field()), (ErrorCode::InvalidValue, Some("amount")), "{bad:?}");
        }
    }

    #[test]
    fn counts_are_whole_and_in_range_or_a_typed_error_naming_the_field() {
        assert_eq!(count_from_int("input_tokens", 12).ok(), Some(12));
        assert_eq!(count_from_int("input_tokens", i128::from(u64::MAX)).ok(), Some(u64::MAX));
        let err = count_from_int("input_tokens", -1).unwrap_err();
        assert_eq!((err.code(), err.field(), err.value()), (ErrorCode::InvalidValue, Some("input_tokens"), Some("-1")));
        assert!(count_from_int("x", i128::from(u64::MAX) + 1).is_err());
        assert_eq!(count_from_f64("inputTokens", 3.0).ok(), Some(3));
        assert_eq!(optional_count_from_f64("inputTokens", None).ok(), Some(0));
        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY, 9_007_199_254_740_992.0] {
            let err = count_from_f64("inputTokens", bad).unwrap_err();
            assert_eq!((err.code(), err.field()), (ErrorCode::InvalidValue, Some("inputTokens")), "{bad}");
        }
    }
}
