//! Fixed costs no API reports: subscriptions (Claude Max/Pro, ChatGPT Plus/Team, Cursor, Copilot, …,
//! per seat or per team) and one-off manual entries, and how they are spread over days.
//!
//! Owns: the shapes ([`Subscription`], [`ManualEntry`]), their validation, their stable ids, the CSV
//! import format ([`parse_csv`]) and the daily spread ([`Subscription::daily`]).
//!
//! Spread rule: a subscription is billed per period anchored on its start date (monthly: the same day
//! each month, clamped to the month's end, counted from the start so Jan 31 → Feb 28 → Mar 31; yearly:
//! every 12 months). Each period's amount is spread evenly over that period's days; an end date inside
//! a period keeps only the days up to it (prorated), and days before the start cost nothing. The daily
//! shares of a whole period add up exactly to its amount (cumulative rounding to 12 decimals).
//! Amounts are in the subscription's currency with a rate in units per USD (as [`crate::Rates`]); USD
//! figures are `amount / rate`.

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How often a subscription is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Monthly,
    Yearly,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Yearly => 12,
        }
    }
}

impl std::str::FromStr for Period {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "monthly" | "month" => Ok(Self::Monthly),
            "yearly" | "year" | "annual" => Ok(Self::Yearly),
            other => Err(Error::invalid_value("period", other, "expected monthly or yearly")),
        }
    }
}

/// A recurring fixed cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_` + a hash of the other fields: adding the same subscription twice stores it once.
    pub id: String,
    /// The service, e.g. `Claude Max`, `Cursor Pro`.
    pub service: String,
    /// The provider it is paid to, when known (`anthropic`, `openai`, `cursor`); reports group by it.
    pub provider: Option<String>,
    /// The member holding the seat; `None` for a team-wide subscription.
    pub member: Option<String>,
    pub team: Option<String>,
    pub period: Period,
    /// Per period, in `currency`.
    pub amount: Decimal,
    pub currency: String,
    /// Units of `currency` per USD (1 for USD).
    pub rate: Decimal,
    pub start: NaiveDate,
    /// The last day billed (inclusive); `None` while it runs.
    pub end: Option<NaiveDate>,
    pub note: Option<String>,
}

/// A one-off cost on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualEntry {
    /// `man_` + a hash of the other fields.
    pub id: String,
    pub date: NaiveDate,
    pub service: String,
    pub provider: Option<String>,
    pub member: Option<String>,
    pub team: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub rate: Decimal,
    pub note: Option<String>,
}

fn stable_id(prefix: &str, fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for f in fields {
        h.update(f.as_bytes());
        h.update([0x1f]);
    }
    let hex: String = h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

fn check_money(amount: Decimal, currency: &str, rate: Decimal) -> Result<()> {
    if amount.is_sign_negative() {
        return Err(Error::invalid_value("amount", amount, "must not be negative"));
    }
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Error::invalid_value("currency", currency, "expected an ISO 4217 code such as USD or EUR"));
    }
    if rate <= Decimal::ZERO {
        return Err(Error::invalid_value("rate", rate, "must be positive (units of the currency per USD)"));
    }
    if currency == "USD" && rate != Decimal::ONE {
        return Err(Error::invalid_value("rate", rate, "USD has rate 1"));
    }
    Ok(())
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

impl Subscription {
    /// Validates the fields and gives the subscription its id.
    pub fn new(mut self) -> Result<Self> {
        if self.service.trim().is_empty() {
            return Err(Error::invalid_value("service", "", "must not be empty"));
        }
        check_money(self.amount, &self.currency, self.rate)?;
        if let Some(end) = self.end.filter(|e| *e < self.start) {
            return Err(Error::invalid_value("end", end, "is before the start date"));
        }
        self.id = stable_id(
            "sub",
            &[
                &self.service,
                opt(&self.provider),
                opt(&self.member),
                opt(&self.team),
                self.period.as_str(),
                &self.amount.normalize().to_string(),
                &self.currency,
                &self.rate.normalize().to_string(),
                &self.start.to_string(),
                &self.end.map(|d| d.to_string()).unwrap_or_default(),
            ],
        );
        Ok(self)
    }

    fn period_start(&self, k: u32) -> Option<NaiveDate> {
        self.start.checked_add_months(Months::new(k.checked_mul(self.period.months())?))
    }

    /// The USD cost of each day in `[from, to]` (inclusive) that the subscription bills, in order.
    pub fn daily(&self, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, Decimal)> {
        let mut out = Vec::new();
        let last = match self.end {
            Some(end) => end.min(to),
            None => to,
        };
        let usd = self.amount / self.rate;
        let mut k = 0u32;
        while let (Some(p0), Some(p1)) = (self.period_start(k), self.period_start(k + 1)) {
            if p0 > last {
                break;
            }
            k += 1;
            if p1 <= from {
                continue;
            }
            let days = (p1 - p0).num_days();
            let share = |i: i64| (usd * Decimal::from(i) / Decimal::from(days)).round_dp(12);
            for i in 0..days {
                let day = p0 + chrono::Duration::days(i);
                if day > last {
                    break;
                }
                if day >= from {
                    out.push((day, (share(i + 1) - share(i)).normalize()));
                }
            }
        }
        out
    }
}

impl ManualEntry {
    /// Validates the fields and gives the entry its id.
    pub fn new(mut self) -> Result<Self> {
        if self.service.trim().is_empty() {
            return Err(Error::invalid_value("service", "", "must not be empty"));
        }
        check_money(self.amount, &self.currency, self.rate)?;
        self.id = stable_id(
            "man",
            &[
                &self.date.to_string(),
                &self.service,
                opt(&self.provider),
                opt(&self.member),
                opt(&self.team),
                &self.amount.normalize().to_string(),
                &self.currency,
                &self.rate.normalize().to_string(),
                opt(&self.note),
            ],
        );
        Ok(self)
    }

    /// The entry's USD amount.
    pub fn usd(&self) -> Decimal {
        (self.amount / self.rate).round_dp(12).normalize()
    }
}

/// What a CSV file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvRows {
    pub subscriptions: Vec<Subscription>,
    pub entries: Vec<ManualEntry>,
}

/// Parses the CSV import format: a header row naming (in any order) `service`, `amount`, `start`
/// (required), `period` (`monthly`, `yearly`, or `once` for a one-off entry on `start`; default
/// monthly), `currency` (default USD), `rate` (required for a currency other than USD), `end`,
/// `provider`, `member`, `team`, `note`. A bad row is an error naming its line and field.
pub fn parse_csv(text: &str) -> Result<CsvRows> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { return Ok(CsvRows::default()) };
    let header: Vec<String> = split_csv(header).into_iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    for required in ["service", "amount", "start"] {
        if !header.iter().any(|h| h == required) {
            return Err(Error::missing_field(format!("csv.{required}")));
        }
    }
    let mut rows = CsvRows::default();
    for (n, line) in lines {
        let cells = split_csv(line);
        let get = |name: &str| -> Option<String> {
            let i = header.iter().position(|h| h == name)?;
            cells.get(i).map(|c| c.trim().to_string()).filter(|c| !c.is_empty())
        };
        let at = |field: &str| format!("csv line {}: {field}", n + 1);
        let date = |field: &str, v: Option<String>| -> Result<Option<NaiveDate>> {
            v.map(|v| v.parse::<NaiveDate>().map_err(|_| Error::invalid_value(at(field), &v, "expected YYYY-MM-DD")))
                .transpose()
        };
        let dec = |field: &str, v: Option<String>| -> Result<Option<Decimal>> {
            v.map(|v| v.parse::<Decimal>().map_err(|_| Error::invalid_value(at(field), &v, "expected a decimal")))
                .transpose()
        };
        let service = get("service").ok_or_else(|| Error::missing_field(at("service")))?;
        let amount = dec("amount", get("amount"))?.ok_or_else(|| Error::missing_field(at("amount")))?;
        let start = date("start", get("start"))?.ok_or_else(|| Error::missing_field(at("start")))?;
        let currency = get("currency").unwrap_or_else(|| "USD".into()).to_ascii_uppercase();
        let rate = match dec("rate", get("rate"))? {
            Some(r) => r,
            None if currency == "USD" => Decimal::ONE,
            None => return Err(Error::missing_field(at("rate"))),
        };
        let (provider, member, team, note) = (get("provider"), get("member"), get("team"), get("note"));
        let period = get("period").unwrap_or_else(|| "monthly".into());
        if period == "once" {
            rows.entries.push(
                ManualEntry {
                    id: String::new(),
                    date: start,
                    service,
                    provider,
                    member,
                    team,
                    amount,
                    currency,
                    rate,
                    note,
                }
                .new()?,
            );
        } else {
            rows.subscriptions.push(
                Subscription {
                    id: String::new(),
                    service,
                    provider,
                    member,
                    team,
                    period: period
                        .parse()
                        .map_err(|_| Error::invalid_value(at("period"), &period, "expected monthly, yearly or once"))?,
                    amount,
                    currency,
                    rate,
                    start,
                    end: date("end", get("end"))?,
                    note,
                }
                .new()?,
            );
        }
    }
    Ok(rows)
}

/// Splits one CSV line: commas, double-quoted cells with `""` for a quote.
pub(crate) fn split_csv(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(s) = cells.last_mut() {
                    s.push('"');
                }
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => {
                if let Some(s) = cells.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    cells
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn sub(period: Period, amount: &str, start: &str, end: Option<&str>) -> Subscription {
        Subscription {
            id: String::new(),
            service: "Claude Max".into(),
            provider: Some("anthropic".into()),
            member: Some("ana".into()),
            team: Some("eng".into()),
            period,
            amount: dec(amount),
            currency: "USD".into(),
            rate: Decimal::ONE,
            start: d(start),
            end: end.map(d),
            note: None,
        }
        .new()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn total(days: &[(NaiveDate, Decimal)]) -> Decimal {
        days.iter().map(|(_, x)| *x).sum::<Decimal>().normalize()
    }

    #[test]
    fn a_month_adds_up_to_its_amount_and_edges_are_prorated() {
        // $100 from Nov 15: the period Nov 15 – Dec 14 has 30 days; November holds 16 of them.
        let s = sub(Period::Monthly, "100", "2026-11-15", None);
        let nov = s.daily(d("2026-11-01"), d("2026-11-30"));
        assert_eq!(nov.len(), 16);
        assert_eq!(nov[0].0, d("2026-11-15"));
        // 100 × 16 / 30 = 53.333333333333 (12 decimals, cumulative)
        assert_eq!(total(&nov), dec("53.333333333333"));
        assert_eq!(total(&s.daily(d("2026-11-15"), d("2026-12-14"))), dec("100"));
        // Ended Dec 1: 17 of the 30 days, 100 × 17 / 30 = 56.666666666667
        let ended = sub(Period::Monthly, "100", "2026-11-15", Some("2026-12-01"));
        assert_eq!(total(&ended.daily(d("2026-01-01"), d("2027-12-31"))), dec("56.666666666667"));
    }

    #[test]
    fn periods_anchor_on_the_start_day_and_a_year_spreads_over_its_days() {
        // From Jan 31: periods Jan 31 – Feb 27 (28 days), Feb 28 – Mar 30 (31 days): $28 → $1 a day.
        let s = sub(Period::Monthly, "28", "2026-01-31", None);
        let feb = s.daily(d("2026-02-01"), d("2026-02-27"));
        assert_eq!((feb.len(), total(&feb)), (27, dec("27")));
        // $365 a year from 2026-03-01 (365 days to 2027-03-01): $1 a day.
        let y = sub(Period::Yearly, "365", "2026-03-01", None);
        assert_eq!(total(&y.daily(d("2026-11-01"), d("2026-11-30"))), dec("30"));
    }

    #[test]
    fn ids_are_stable_and_bad_fields_are_typed_errors() {
        assert_eq!(
            sub(Period::Monthly, "20", "2026-11-01", None).id,
            sub(Period::Monthly, "20.00", "2026-11-01", None).id
        );
        assert_ne!(sub(Period::Monthly, "20", "2026-11-01", None).id, sub(Period::Yearly, "20", "2026-11-01", None).id);
        let mut bad = sub(Period::Monthly, "20", "2026-11-01", None);
        bad.currency = "EUR".into();
        bad.rate = Decimal::ZERO;
        assert_eq!(bad.new().unwrap_err().field(), Some("rate"));
    }

    #[test]
    fn csv_rows_are_subscriptions_or_one_off_entries() {
        let rows = parse_csv(
            "service,member,team,period,amount,currency,rate,start,end,note\n\
             Cursor Pro,ana,eng,monthly,20,,,2026-11-01,,\n\
             \"Midjourney, Pro\",,design,yearly,576,EUR,0.9,2026-01-01,2026-12-31,\"team \"\"seat\"\"\"\n\
             Workshop,,eng,once,1500,USD,1,2026-11-20,,offsite\n",
        )
        .unwrap_or_default();
        assert_eq!(rows.subscriptions.len(), 2);
        assert_eq!(rows.subscriptions[1].service, "Midjourney, Pro");
        assert_eq!(rows.subscriptions[1].note.as_deref(), Some("team \"seat\""));
        assert_eq!(rows.entries.len(), 1);
        // 1500 USD
        assert_eq!(rows.entries[0].usd(), dec("1500"));
        let err = parse_csv("service,amount,start\nX,abc,2026-11-01\n").unwrap_err();
        assert_eq!(err.field(), Some("csv line 2: amount"));
    }
}
