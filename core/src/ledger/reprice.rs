//! Re-pricing stored events with the price data in force now: what changes, the audit trail of the
//! old figure, and the rollup deltas. The SQL stores ([`super::Store::reprice`]) read the events,
//! call [`plan`], and write the changed events and [`RollupDeltas`] in one transaction.
//!
//! Rules:
//! - An event is re-priced from its stored usage and `price_options`, at its own timestamp, under the
//!   name the caller asked for (falling back to the resolved id when that name is unknown now).
//! - It changes only when the figure, the resolved model or the price version differs; re-running
//!   with the same data changes nothing (idempotent).
//! - The cost keeps the event's currency and exchange rate (`total = total_usd × rate`); an event
//!   that was unpriced gets a USD cost (rate 1).
//! - A priced event that cannot be priced now keeps its cost (counted in `failed`); an unpriced one
//!   that still cannot be priced stays unpriced (counted in `still_unpriced`). Never `$0`.
//! - The old figure goes into the event's audit column (a JSON array, oldest first) before it is
//!   overwritten.
//! - Failed calls recorded without usage or cost (nothing to price) are skipped.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use {
    crate::error::{Error, ErrorCode, Result},
    crate::event::UsageEvent,
    crate::pricing::{Cost, PriceDb},
    crate::rollup::{RollupKey, Rollups, Totals},
    chrono_tz::Tz,
    serde::Deserialize,
    std::collections::BTreeMap,
};

/// Which events to re-price.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepriceFilter {
    /// Events at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Events before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Events whose report model (the resolved id, else the requested name) is this.
    pub model: Option<String>,
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Events read and re-priced per step (in event-id order, inside the one transaction), bounding
    /// memory on large ledgers; 0 = [`RepriceFilter::DEFAULT_CHUNK`].
    pub chunk: usize,
}

impl RepriceFilter {
    /// Events per step when `chunk` is 0.
    pub const DEFAULT_CHUNK: usize = 10_000;

    /// The chunk size in force.
    pub fn chunk_size(&self) -> usize {
        if self.chunk == 0 {
            Self::DEFAULT_CHUNK
        } else {
            self.chunk
        }
    }
}

/// One event whose figure changed (or would, in a dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepriceChange {
    pub event_id: String,
    pub timestamp: DateTime<Utc>,
    /// As requested.
    pub model: String,
    pub old_resolved_model: Option<String>,
    pub new_resolved_model: String,
    /// `None`: the event was unpriced.
    pub old_cost_usd: Option<Decimal>,
    pub new_cost_usd: Decimal,
    pub old_price_version: Option<NaiveDate>,
    pub new_price_version: NaiveDate,
    pub old_price_data: Option<String>,
    pub new_price_data: String,
}

/// What a re-price did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepriceReport {
    pub dry_run: bool,
    /// Events matching the filter that carry a cost or an unpriced reason.
    pub examined: u64,
    /// Events whose figure changed.
    pub changed: u64,
    /// Unpriced events that still cannot be priced.
    pub still_unpriced: u64,
    /// Priced events that cannot be priced with the current data; their cost is kept.
    pub failed: u64,
    /// Sum of `new - old` USD over changed events that were priced before.
    pub delta_usd: Decimal,
    /// USD of the events that were unpriced and now are priced.
    pub newly_priced_usd: Decimal,
    pub changes: Vec<RepriceChange>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl RepriceReport {
    /// Adds the outcome of one more chunk.
    pub(crate) fn absorb(&mut self, chunk: RepriceReport) {
        self.examined += chunk.examined;
        self.changed += chunk.changed;
        self.still_unpriced += chunk.still_unpriced;
        self.failed += chunk.failed;
        self.delta_usd += chunk.delta_usd;
        self.newly_priced_usd += chunk.newly_priced_usd;
        self.changes.extend(chunk.changes);
    }
}

/// An old figure, as kept in the audit column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuditEntry {
    repriced_at: DateTime<Utc>,
    resolved_model: Option<String>,
    cost_usd: Option<Decimal>,
    currency: Option<String>,
    rate: Option<Decimal>,
    cost_total: Option<Decimal>,
    price_version: Option<NaiveDate>,
    price_data: Option<String>,
    unpriced_reason: Option<String>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// An event to rewrite: its new form and its new audit column.
#[derive(Debug, Clone)]
pub(crate) struct Rewrite {
    pub event: UsageEvent,
    pub audit: String,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Rollup changes: per key, signed deltas of the counters (in `row::rollup_counts` order) and of the cost.
#[derive(Debug, Default)]
pub(crate) struct RollupDeltas {
    pub daily: BTreeMap<RollupKey, ([i64; 11], Decimal)>,
    pub monthly: BTreeMap<RollupKey, ([i64; 11], Decimal)>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The new cost of `e` under `db`, keeping its currency and rate.
fn new_cost(db: &PriceDb, e: &UsageEvent) -> Result<Cost> {
    let priced = match db.price(&e.usage, &e.model, e.timestamp, &e.price_options) {
        Err(err) if err.code() == ErrorCode::UnknownModel => match &e.resolved_model {
            Some(resolved) if *resolved != e.model => db.price(&e.usage, resolved, e.timestamp, &e.price_options),
            _ => Err(err),
        },
        other => other,
    }?;
    Ok(match &e.cost {
        Some(old) if old.rate != Decimal::ONE || old.currency != "USD" => {
            let total = priced
                .total_usd
                .checked_mul(old.rate)
                .ok_or_else(|| Error::invalid_value("rate", old.rate, "converted cost overflows"))?;
            Cost { currency: old.currency.clone(), rate: old.rate, total, ..priced }
        }
        _ => priced,
    })
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Decides what changes for `events` (each with its stored audit column) under `db`.
pub(crate) fn plan(
    db: &PriceDb,
    events: Vec<(UsageEvent, Option<String>)>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<(RepriceReport, Vec<(UsageEvent, Rewrite)>)> {
    let mut report = RepriceReport { dry_run, ..RepriceReport::default() };
    let mut rewrites = Vec::new();
    for (old, audit) in events {
        if old.cost.is_none() && old.unpriced_reason.is_none() {
            continue;
        }
        report.examined += 1;
        let cost = match new_cost(db, &old) {
            Ok(c) => c,
            Err(_) if old.cost.is_some() => {
                report.failed += 1;
                continue;
            }
            Err(_) => {
                report.still_unpriced += 1;
                continue;
            }
        };
        let same = old.cost.as_ref().is_some_and(|c| {
            c.total_usd == cost.total_usd
                && c.total == cost.total
                && c.price_version == cost.price_version
                && old.resolved_model.as_deref() == Some(cost.model.as_str())
        });
        if same {
            continue;
        }
        let oc = old.cost.as_ref();
        let entry = AuditEntry {
            repriced_at: now,
            resolved_model: old.resolved_model.clone(),
            cost_usd: oc.map(|c| c.total_usd),
            currency: oc.map(|c| c.currency.clone()),
            rate: oc.map(|c| c.rate),
            cost_total: oc.map(|c| c.total),
            price_version: oc.map(|c| c.price_version),
            price_data: oc.map(|c| c.price_data.clone()).filter(|d| !d.is_empty()),
            unpriced_reason: old.unpriced_reason.clone(),
        };
        let mut trail: Vec<AuditEntry> = match &audit {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::new(ErrorCode::Store, format!("stored reprice_audit is not valid: {e}")))?,
            None => Vec::new(),
        };
        trail.push(entry);
        match oc {
            Some(c) => {
                report.delta_usd += cost.total_usd - c.total_usd;
            }
            None => report.newly_priced_usd += cost.total_usd,
        }
        report.changed += 1;
        report.changes.push(RepriceChange {
            event_id: old.event_id.clone(),
            timestamp: old.timestamp,
            model: old.model.clone(),
            old_resolved_model: old.resolved_model.clone(),
            new_resolved_model: cost.model.clone(),
            old_cost_usd: oc.map(|c| c.total_usd),
            new_cost_usd: cost.total_usd,
            old_price_version: oc.map(|c| c.price_version),
            new_price_version: cost.price_version,
            old_price_data: oc.map(|c| c.price_data.clone()).filter(|d| !d.is_empty()),
            new_price_data: cost.price_data.clone(),
        });
        let event = old.clone().with_cost(cost);
        rewrites.push((old, Rewrite { event, audit: serde_json::to_string(&trail)? }));
    }
    Ok((report, rewrites))
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The rollup changes of replacing each old event by its rewrite: per key, new minus old.
pub(crate) fn rollup_deltas(rewrites: &[(UsageEvent, Rewrite)], tz: Tz) -> Result<RollupDeltas> {
    let mut old = Rollups::default();
    old.add_all(rewrites.iter().map(|(o, _)| o), tz);
    let mut new = Rollups::default();
    new.add_all(rewrites.iter().map(|(_, r)| &r.event), tz);
    Ok(RollupDeltas { daily: delta(&old.daily, &new.daily)?, monthly: delta(&old.monthly, &new.monthly)? })
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn delta(
    old: &BTreeMap<RollupKey, Totals>,
    new: &BTreeMap<RollupKey, Totals>,
) -> Result<BTreeMap<RollupKey, ([i64; 11], Decimal)>> {
    let zero = Totals::default();
    let mut out = BTreeMap::new();
    for key in old.keys().chain(new.keys()) {
        if out.contains_key(key) {
            continue;
        }
        let (o, n) = (old.get(key).unwrap_or(&zero), new.get(key).unwrap_or(&zero));
        let (oc, nc) = (super::row::rollup_counts(o)?, super::row::rollup_counts(n)?);
        let mut counts = [0i64; 11];
        for (slot, (a, b)) in counts.iter_mut().zip(oc.iter().zip(nc)) {
            *slot = b - a;
        }
        let cost = n.cost_usd - o.cost_usd;
        if counts != [0; 11] || !cost.is_zero() {
            out.insert(key.clone(), (counts, cost));
        }
    }
    Ok(out)
}
