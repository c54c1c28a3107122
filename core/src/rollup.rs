//! Rollups: the additive [`Totals`] of a set of events per day and per month ([`Rollups`], keyed by
//! [`RollupKey`] in one time zone), which the stores keep beside raw events, and the check of stored
//! rollups against recomputed ones ([`RollupDiff`]). Depends on the event type only; queries over
//! rollups are planned in [`crate::report`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::event::{Status, UsageEvent};

/// Which rollup table can answer a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupTable {
    Daily,
    Monthly,
}

/// Additive totals: what a rollup row holds and what a report row is derived from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub successful: u64,
    pub failed: u64,
    /// Events with no cost (flagged, not priced at $0).
    pub unpriced: u64,
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Exact USD total of the priced events.
    pub cost_usd: Decimal,
    pub latency_sum_ms: u64,
    /// Events that carried a latency.
    pub latency_count: u64,
}

impl Totals {
    /// The totals of one event.
    pub fn of(e: &UsageEvent) -> Self {
        let ok = e.status == Status::Success;
        Self {
            requests: 1,
            successful: u64::from(ok),
            failed: u64::from(!ok),
            unpriced: u64::from(e.cost.is_none()),
            input_tokens: e.usage.input_tokens,
            cache_read_tokens: e.usage.cache_read_tokens,
            cache_write_tokens: e.usage.cache_write_tokens,
            output_tokens: e.usage.output_tokens,
            reasoning_tokens: e.usage.reasoning_tokens,
            cost_usd: e.cost_usd(),
            latency_sum_ms: e.latency_ms.unwrap_or(0),
            latency_count: u64::from(e.latency_ms.is_some()),
        }
    }

    /// Adds `o` (saturating on counters: a ledger never holds 2^64 tokens, and a panic is worse).
    pub fn add(&mut self, o: &Totals) {
        self.requests = self.requests.saturating_add(o.requests);
        self.successful = self.successful.saturating_add(o.successful);
        self.failed = self.failed.saturating_add(o.failed);
        self.unpriced = self.unpriced.saturating_add(o.unpriced);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(o.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(o.cache_write_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(o.reasoning_tokens);
        self.cost_usd += o.cost_usd;
        self.latency_sum_ms = self.latency_sum_ms.saturating_add(o.latency_sum_ms);
        self.latency_count = self.latency_count.saturating_add(o.latency_count);
    }
}

/// The key of a rollup row; absent attribution is stored as `""`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RollupKey {
    /// `YYYY-MM-DD` (daily) or `YYYY-MM` (monthly), local to the store's rollup time zone.
    pub period: String,
    pub user_id: String,
    pub workspace_id: String,
    pub project: String,
    pub provider: String,
    pub model: String,
}

impl RollupKey {
    /// The daily and monthly keys of `e` in `tz`.
    pub fn of(e: &UsageEvent, tz: Tz) -> (RollupKey, RollupKey) {
        let local = e.timestamp.with_timezone(&tz).date_naive();
        let a = &e.attribution;
        let daily = RollupKey {
            period: local.format("%Y-%m-%d").to_string(),
            user_id: a.user_id.clone().unwrap_or_default(),
            workspace_id: a.workspace_id.clone().unwrap_or_default(),
            project: a.project.clone().unwrap_or_default(),
            provider: e.provider.as_str().to_string(),
            model: e.report_model().to_string(),
        };
        let monthly = RollupKey { period: local.format("%Y-%m").to_string(), ..daily.clone() };
        (daily, monthly)
    }
}

/// Daily and monthly rollups of a set of events, keyed in one time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollups {
    pub daily: BTreeMap<RollupKey, Totals>,
    pub monthly: BTreeMap<RollupKey, Totals>,
}

impl Rollups {
    pub fn add(&mut self, e: &UsageEvent, tz: Tz) {
        let t = Totals::of(e);
        let (d, m) = RollupKey::of(e, tz);
        self.daily.entry(d).or_default().add(&t);
        self.monthly.entry(m).or_default().add(&t);
    }

    /// Adds many events, formatting each distinct (date, user, workspace, project, provider, model) key once.
    pub fn add_all<'e>(&mut self, events: impl IntoIterator<Item = &'e UsageEvent>, tz: Tz) {
        type Key<'k> = (NaiveDate, &'k str, &'k str, &'k str, &'static str, &'k str);
        let mut acc: std::collections::HashMap<Key<'e>, Totals> = std::collections::HashMap::new();
        for e in events {
            let a = &e.attribution;
            let key = (
                e.timestamp.with_timezone(&tz).date_naive(),
                a.user_id.as_deref().unwrap_or(""),
                a.workspace_id.as_deref().unwrap_or(""),
                a.project.as_deref().unwrap_or(""),
                e.provider.as_str(),
                e.report_model(),
            );
            acc.entry(key).or_default().add(&Totals::of(e));
        }
        for ((date, user, ws, project, provider, model), t) in acc {
            let daily = RollupKey {
                period: date.format("%Y-%m-%d").to_string(),
                user_id: user.to_string(),
                workspace_id: ws.to_string(),
                project: project.to_string(),
                provider: provider.to_string(),
                model: model.to_string(),
            };
            let monthly =
                RollupKey { period: daily.period.get(..7).unwrap_or(&daily.period).to_string(), ..daily.clone() };
            self.daily.entry(daily).or_default().add(&t);
            self.monthly.entry(monthly).or_default().add(&t);
        }
    }

    /// Rows that differ between `stored` (self) and `recomputed`.
    pub fn diff(&self, recomputed: &Rollups) -> Vec<RollupDiff> {
        let mut out = Vec::new();
        for (table, a, b) in [
            (RollupTable::Daily, &self.daily, &recomputed.daily),
            (RollupTable::Monthly, &self.monthly, &recomputed.monthly),
        ] {
            for (k, v) in a {
                if b.get(k) != Some(v) {
                    out.push(RollupDiff {
                        table,
                        key: k.clone(),
                        stored: Some(v.clone()),
                        recomputed: b.get(k).cloned(),
                    });
                }
            }
            for (k, v) in b {
                if !a.contains_key(k) {
                    out.push(RollupDiff { table, key: k.clone(), stored: None, recomputed: Some(v.clone()) });
                }
            }
        }
        out
    }
}

/// One rollup row whose stored totals differ from the totals recomputed from raw events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDiff {
    pub table: RollupTable,
    pub key: RollupKey,
    /// `None`: the row is missing from the rollup table.
    pub stored: Option<Totals>,
    /// `None`: no raw event backs the row.
    pub recomputed: Option<Totals>,
}

impl fmt::Display for RollupDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        let table = match self.table {
            RollupTable::Daily => "daily",
            RollupTable::Monthly => "monthly",
        };
        let show = |t: &Option<Totals>| {
            t.as_ref().map_or("missing".to_string(), |t| format!("{} requests, ${}", t.requests, t.cost_usd))
        };
        write!(
            f,
            "{table} {} user={:?} workspace={:?} project={:?} {}/{}: stored {}, recomputed {}",
            k.period,
            k.user_id,
            k.workspace_id,
            k.project,
            k.provider,
            k.model,
            show(&self.stored),
            show(&self.recomputed)
        )
    }
}
