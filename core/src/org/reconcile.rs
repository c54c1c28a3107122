//! Reconciliation: what the apps tracked (the ledger) against what the providers billed (pulled cost
//! reports), side by side per group, with the difference, its percentage and a likely cause.
//!
//! Owns: the matching rule (billed line items and tracked calls are keyed by UTC day, provider, the
//! model's canonical id in our price data — so `gpt-4o-2024-08-06, input` and a call priced as `gpt-4o`
//! meet — and the workspace/project), the threshold flag and the causes that can be told from the
//! figures alone:
//! - billed, nothing tracked: calls made outside wrapped clients (another app, the console, a key we
//!   never saw);
//! - tracked, nothing billed: not yet in the provider's report (they lag by hours), or billed to
//!   another organisation;
//! - both, apart by more than the threshold, grouped by model: the model is priced differently here
//!   than billed (a price version change, batch or priority billed at another rate), or untracked calls
//!   of that model;
//! - both, apart, not grouped by model: untracked calls, or batch / priority billed differently.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::billing::BilledCost;
use crate::error::{Error, Result};
use crate::pricing::PriceDb;

/// A reconciliation dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileBy {
    Day,
    Provider,
    Model,
    Workspace,
}

impl ReconcileBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Provider => "provider",
            Self::Model => "model",
            Self::Workspace => "workspace",
        }
    }
}

impl std::str::FromStr for ReconcileBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "day" => Self::Day,
            "provider" => Self::Provider,
            "model" => Self::Model,
            "workspace" | "project" => Self::Workspace,
            other => return Err(Error::invalid_value("by", other, "expected day, provider, model or workspace")),
        })
    }
}

/// One tracked total, as read from the ledger (grouped by day, provider, model, workspace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedCost {
    pub day: NaiveDate,
    pub provider: String,
    pub model: String,
    pub workspace: String,
    pub cost_usd: Decimal,
}

/// One reconciled group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRow {
    /// `(dimension, value)` in the order asked for.
    pub key: Vec<(String, String)>,
    pub tracked_usd: Decimal,
    pub billed_usd: Decimal,
    /// `billed − tracked`.
    pub diff_usd: Decimal,
    /// `diff / billed × 100`, 2 decimals; `None` when nothing was billed.
    pub diff_pct: Option<Decimal>,
    /// Apart by more than the threshold (or one side is zero and the other is not).
    pub flagged: bool,
    /// The likely cause of a flagged row.
    pub cause: Option<String>,
}

impl ReconcileRow {
    /// The keys of [`ReconcileRow::flat`] whose values are exact decimals (as strings).
    pub const DECIMAL_KEYS: [&'static str; 4] = ["tracked_usd", "billed_usd", "diff_usd", "diff_pct"];

    /// The row as the bindings give it: the group keys at the top (`{"day": …, "provider": …,
    /// "tracked_usd": "1.25", …}`), like report rows; decimals as strings.
    pub fn flat(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut m: serde_json::Map<String, Value> =
            self.key.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let dec = |d: Decimal| Value::String(d.normalize().to_string());
        m.insert("tracked_usd".into(), dec(self.tracked_usd));
        m.insert("billed_usd".into(), dec(self.billed_usd));
        m.insert("diff_usd".into(), dec(self.diff_usd));
        m.insert("diff_pct".into(), self.diff_pct.map_or(Value::Null, dec));
        m.insert("flagged".into(), Value::Bool(self.flagged));
        m.insert("cause".into(), self.cause.clone().map_or(Value::Null, Value::String));
        m
    }
}

/// What `tracker.reconcile(...)` asks, as one object: days `since` through `until` (inclusive, UTC;
/// `until` defaults to today), grouped by `by` (default day, provider, model), rows apart by more than
/// `threshold_pct` per cent of the billed amount flagged (default 5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileQuery {
    pub since: chrono::NaiveDate,
    #[serde(default)]
    pub until: Option<chrono::NaiveDate>,
    #[serde(default = "ReconcileQuery::default_by")]
    pub by: Vec<ReconcileBy>,
    #[serde(default = "ReconcileQuery::default_threshold")]
    pub threshold_pct: Decimal,
}

impl ReconcileQuery {
    fn default_by() -> Vec<ReconcileBy> {
        vec![ReconcileBy::Day, ReconcileBy::Provider, ReconcileBy::Model]
    }

    fn default_threshold() -> Decimal {
        Decimal::from(5)
    }

    /// Parses the bindings' JSON; a bad key or value is an `invalid_value` error naming it.
    pub fn from_json(json: &str) -> Result<Self> {
        let q: Self = serde_json::from_str(json)
            .map_err(|e| Error::invalid_value("reconcile", json, &format!("not a reconcile query: {e}")))?;
        if q.threshold_pct < Decimal::ZERO {
            return Err(Error::invalid_value("threshold_pct", q.threshold_pct, "must not be negative"));
        }
        if q.until.is_some_and(|u| u < q.since) {
            return Err(Error::invalid_value("until", q.until.unwrap_or(q.since), "is before since"));
        }
        Ok(q)
    }
}

/// The model part of a billed line item: Anthropic names the model; OpenAI's `line_item` is
/// `<model>, <component>`.
fn billed_model(b: &BilledCost) -> String {
    match &b.model {
        Some(m) => m.clone(),
        None => b.item.split(", ").next().unwrap_or("").to_string(),
    }
}

/// Tracked and billed side by side, grouped by `by`, sorted by key; `threshold_pct` (e.g. 5) flags a
/// row whose difference exceeds that share of the billed amount.
pub fn reconcile(
    tracked: &[TrackedCost],
    billed: &[BilledCost],
    by: &[ReconcileBy],
    threshold_pct: Decimal,
    prices: &PriceDb,
) -> Vec<ReconcileRow> {
    let canonical = |model: &str| prices.resolve(model).map_or_else(|_| model.to_string(), |m| m.id().to_string());
    let key = |day: NaiveDate, provider: &str, model: &str, workspace: &str| -> Vec<String> {
        by.iter()
            .map(|b| match b {
                ReconcileBy::Day => day.to_string(),
                ReconcileBy::Provider => provider.to_string(),
                ReconcileBy::Model => canonical(model),
                ReconcileBy::Workspace => workspace.to_string(),
            })
            .collect()
    };
    let mut groups: BTreeMap<Vec<String>, (Decimal, Decimal)> = BTreeMap::new();
    for t in tracked {
        groups.entry(key(t.day, &t.provider, &t.model, &t.workspace)).or_default().0 += t.cost_usd;
    }
    for b in billed {
        groups.entry(key(b.day, b.provider.as_str(), &billed_model(b), &b.workspace)).or_default().1 += b.amount;
    }
    let by_model = by.contains(&ReconcileBy::Model);
    groups
        .into_iter()
        .map(|(values, (tracked, billed))| {
            let diff = billed - tracked;
            let pct = (!billed.is_zero()).then(|| (diff / billed * Decimal::ONE_HUNDRED).round_dp(2).normalize());
            let flagged = match pct {
                Some(p) => p.abs() > threshold_pct,
                None => !tracked.is_zero(),
            };
            let cause = flagged.then(|| {
                if tracked.is_zero() {
                    "billed but never tracked: calls made outside wrapped clients"
                } else if billed.is_zero() {
                    "tracked but not billed: not yet in the provider's report, or billed to another organisation"
                } else if by_model {
                    "this model is priced differently here than billed (a price version change; batch or priority billed at another rate), or calls of it outside wrapped clients"
                } else {
                    "calls made outside wrapped clients, or batch / priority billed differently"
                }
                .to_string()
            });
            ReconcileRow {
                key: by.iter().map(|b| b.as_str().to_string()).zip(values).collect(),
                tracked_usd: tracked.normalize(),
                billed_usd: billed.normalize(),
                diff_usd: diff.normalize(),
                diff_pct: pct,
                flagged,
                cause,
            }
        })
        .collect()
}
