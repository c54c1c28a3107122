//! What a spend alert says: the one payload that the in-process callbacks receive and that webhooks
//! send as their signed body. [`crate::spend`] decides when an alert fires (once per rule, scope and
//! period, in the same transaction as the spend that crossed it); [`crate::webhook`] delivers it.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why an alert fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Spend in a limit's period reached `threshold` (a fraction: 0.5, 0.8, 1) of the limit.
    LimitThreshold,
    /// A balance's available amount fell below `threshold` (an amount in `currency`).
    BalanceLow,
    /// A scope's spend today is far above its trailing daily average: `threshold` is the factor,
    /// `limit` the average (the mean over the days with spend among the previous 7; at least 3 needed).
    /// Watched on per-day spend limits, whose counters are the daily history.
    SpendSpike,
}

/// One fired alert. `alert_id` is unique per (rule, scope, period): receivers dedupe on it, and every
/// delivery attempt of one alert to one endpoint carries the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable id of this firing, e.g. `lim_3f…:user_id=u1:2026-12-02:0.8`; the same inputs always give
    /// the same id, which is what makes "once per period" hold across processes.
    pub alert_id: String,
    pub kind: AlertKind,
    /// The scope the rule applies to, e.g. `{"user_id": "u1"}`.
    pub scope: BTreeMap<String, String>,
    /// The period the alert belongs to (`2026-12-02`, `2026-12`, or `balance` for balance alerts).
    pub period: String,
    /// The rule's threshold: a fraction of the limit, an amount, or a factor (see [`AlertKind`]).
    pub threshold: Decimal,
    /// Spent (or, for [`AlertKind::BalanceLow`], available) when the alert fired.
    pub amount: Decimal,
    /// What the amount is measured against: the limit, or for a spike the trailing average.
    pub limit: Option<Decimal>,
    /// ISO 4217 code of `amount` and `limit`.
    pub currency: String,
    /// RFC 3339 UTC time of the firing.
    pub fired_at: String,
}
