//! Conversion of USD costs into other currencies through a rate table the caller configures.
//!
//! Owns [`Rates`] (ISO 4217 code → units of that currency per USD) and [`Cost::convert`]. There is no
//! network access: the caller supplies every rate, and the rate used is kept in the converted [`Cost`]
//! beside the amount. USD is implicit at rate 1.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::{Error, ErrorCode, Result};
use crate::pricing::Cost;

/// Units of each currency per USD, e.g. `KRW` → `1391.50`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rates {
    rates: BTreeMap<String, Decimal>,
}

/// `code` must be three upper-case ASCII letters.
fn check_code(code: &str) -> Result<()> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Error::invalid_value("currency", code, "must be an ISO 4217 code of three upper-case letters"))
    }
}

impl Rates {
    /// A table with only USD (rate 1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `code` at `rate` (a decimal string, units per USD), builder style.
    pub fn with(mut self, code: &str, rate: &str) -> Result<Self> {
        let parsed = Decimal::from_str(rate.trim())
            .map_err(|_| Error::invalid_value(format!("rates.{code}"), rate, "not a decimal number"))?;
        self.insert(code, parsed)?;
        Ok(self)
    }

    /// Sets the rate of `code` (units per USD; must be positive). USD itself is always 1.
    pub fn insert(&mut self, code: &str, rate: Decimal) -> Result<()> {
        check_code(code)?;
        if rate <= Decimal::ZERO {
            return Err(Error::invalid_value(format!("rates.{code}"), rate, "must be positive"));
        }
        if code == "USD" && rate != Decimal::ONE {
            return Err(Error::invalid_value("rates.USD", rate, "USD is the base currency, its rate is 1"));
        }
        self.rates.insert(code.to_string(), rate);
        Ok(())
    }

    /// Units of `code` per USD, when known.
    pub fn get(&self, code: &str) -> Option<Decimal> {
        if code == "USD" {
            Some(Decimal::ONE)
        } else {
            self.rates.get(code).copied()
        }
    }

    /// The configured codes (USD not included unless inserted).
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.rates.keys().map(String::as_str)
    }
}

impl Cost {
    /// This cost in `currency`: `total = total_usd × rate`, unrounded, with the rate kept. The
    /// breakdown stays in USD.
    pub fn convert(&self, rates: &Rates, currency: &str) -> Result<Cost> {
        check_code(currency)?;
        let rate = rates.get(currency).ok_or_else(|| {
            Error::new(ErrorCode::UnknownCurrency, format!("no exchange rate configured for {currency}"))
                .with_field("currency")
                .with_value(currency)
        })?;
        let total = self
            .total_usd
            .checked_mul(rate)
            .ok_or_else(|| Error::invalid_value(format!("rates.{currency}"), rate, "converted cost overflows"))?;
        Ok(Cost { currency: currency.to_string(), rate, total, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Breakdown;
    use crate::usage::Provider;
    use rust_decimal_macros::dec;

    fn cost(total_usd: Decimal) -> Cost {
        Cost {
            provider: Provider::OpenAi,
            model: "gpt-4o".into(),
            price_version: chrono::NaiveDate::default(),
            price_data: String::new(),
            breakdown: Breakdown { input: total_usd, ..Breakdown::default() },
            total_usd,
            currency: "USD".into(),
            rate: Decimal::ONE,
            total: total_usd,
            tier_above: None,
            uncertain: false,
        }
    }

    #[test]
    fn krw_is_exact_and_keeps_the_rate() {
        let rates = Rates::new().with("KRW", "1391.50").expect("valid rate");
        let c = cost(dec!(0.0075)).convert(&rates, "KRW").expect("known currency");
        assert_eq!(c.total, dec!(10.436250));
        assert_eq!(c.rate, dec!(1391.50));
        assert_eq!(c.currency, "KRW");
        assert_eq!(c.total_usd, dec!(0.0075));
        // Converting again starts from USD, not from the converted amount.
        let back = c.convert(&rates, "USD").expect("USD is implicit");
        assert_eq!((back.total, back.rate), (dec!(0.0075), Decimal::ONE));
    }

    #[test]
    fn unknown_currency_and_bad_rates() {
        let rates = Rates::new();
        assert_eq!(cost(dec!(1)).convert(&rates, "EUR").map_err(|e| e.code()), Err(ErrorCode::UnknownCurrency));
        assert_eq!(cost(dec!(1)).convert(&rates, "eur").map_err(|e| e.code()), Err(ErrorCode::InvalidValue));
        let bad = |code: &str, rate: &str| Rates::new().with(code, rate).map_err(|e| e.code());
        assert_eq!(bad("KRW", "0"), Err(ErrorCode::InvalidValue));
        assert_eq!(bad("KRW", "-3"), Err(ErrorCode::InvalidValue));
        assert_eq!(bad("KRW", "abc"), Err(ErrorCode::InvalidValue));
        assert_eq!(bad("KRWX", "1"), Err(ErrorCode::InvalidValue));
        assert_eq!(bad("USD", "2"), Err(ErrorCode::InvalidValue));
        assert_eq!(Rates::new().with("EUR", "0.92").expect("valid").get("EUR"), Some(dec!(0.92)));
    }
}
