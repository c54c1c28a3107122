//! Usage reports: the query ([`UsageQuery`]), its result rows ([`ReportRow`], shown as
//! [`ReportRowView`]) and the one aggregation routine every store uses ([`Aggregator`]), so that all
//! stores compute a report the same way. Depends on the event and rollup types, never on the stores.
//!
//! A store answers from its daily/monthly rollups when the query allows it
//! ([`UsageQuery::rollup_plan`]) and from raw events otherwise (session grouping or filter, p95,
//! another time zone, or time bounds that are not local midnights).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::UsageEvent;
use crate::rollup::{RollupKey, RollupTable, Totals};

/// A dimension a report can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    User,
    Workspace,
    Project,
    Provider,
    Model,
    Session,
    /// Local date `YYYY-MM-DD` in the query's time zone.
    Day,
    /// Local month `YYYY-MM` in the query's time zone.
    Month,
}

impl GroupBy {
    pub const ALL: [GroupBy; 8] = [
        Self::User,
        Self::Workspace,
        Self::Project,
        Self::Provider,
        Self::Model,
        Self::Session,
        Self::Day,
        Self::Month,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Workspace => "workspace",
            Self::Project => "project",
            Self::Provider => "provider",
            Self::Model => "model",
            Self::Session => "session",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s).ok_or_else(|| {
            Error::invalid_value(
                "group_by",
                s,
                "expected user, workspace, project, provider, model, session, day or month",
            )
        })
    }
}

/// Which events a report covers. `None` = no restriction. `since` is inclusive, `until` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub project: Option<String>,
    pub provider: Option<String>,
    /// Matches the report model (resolved model when priced, else the requested name).
    pub model: Option<String>,
    pub session_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl UsageFilter {
    /// True when `e` passes every set field.
    pub fn matches(&self, e: &UsageEvent) -> bool {
        let a = &e.attribution;
        eq_opt(&self.user_id, a.user_id.as_deref())
            && eq_opt(&self.workspace_id, a.workspace_id.as_deref())
            && eq_opt(&self.project, a.project.as_deref())
            && eq_opt(&self.provider, Some(e.provider.as_str()))
            && eq_opt(&self.model, Some(e.report_model()))
            && eq_opt(&self.session_id, a.session_id.as_deref())
            && self.since.is_none_or(|s| e.timestamp >= s)
            && self.until.is_none_or(|u| e.timestamp < u)
    }

    /// True when the filter only uses dimensions that rollups keep.
    fn rollup_dims_only(&self) -> bool {
        self.session_id.is_none()
    }
}

fn eq_opt(want: &Option<String>, have: Option<&str>) -> bool {
    match want {
        None => true,
        Some(w) => have.unwrap_or("") == w,
    }
}

/// The instant local midnight of `date` begins in `tz` (the earliest one if ambiguous; for a
/// midnight skipped by DST, the first instant of that day).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // A DST gap at midnight: the day starts at the first valid local time after it.
            let mut probe = naive;
            for _ in 0..8 {
                probe += chrono::Duration::minutes(30);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&naive)
        }
    }
}

/// Parses an IANA time-zone name; `field` names the setting in the error.
pub fn parse_tz(field: &str, name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| Error::config(field, name, "not an IANA time zone (e.g. UTC, Asia/Seoul)"))
}

/// The current day, week (Monday to Sunday) or month, in a query's time zone: `tracker.usage(...,
/// timeframe="today")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timeframe {
    Today,
    Week,
    Month,
}

impl std::str::FromStr for Timeframe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "today" => Ok(Self::Today),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => Err(Error::invalid_value("timeframe", other, "expected today, week or month")),
        }
    }
}

impl Timeframe {
    /// The local dates `[first, next)` of the period `now` falls in, in `tz`.
    pub fn dates(self, now: DateTime<Utc>, tz: Tz) -> (NaiveDate, NaiveDate) {
        use chrono::{Days, Months};
        let today = now.with_timezone(&tz).date_naive();
        let (first, next) = match self {
            Self::Today => (today, today.checked_add_days(Days::new(1))),
            Self::Week => {
                let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
                (monday, monday.checked_add_days(Days::new(7)))
            }
            Self::Month => {
                let first = today.with_day(1).unwrap_or(today);
                (first, first.checked_add_months(Months::new(1)))
            }
        };
        (first, next.unwrap_or(NaiveDate::MAX))
    }
}

/// A usage report request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    pub filter: UsageFilter,
    pub group_by: Vec<GroupBy>,
    /// IANA time zone of the `day` / `month` groups and of [`UsageQuery::between_dates`]. `None`: the
    /// tracker's zone when the query goes through [`crate::tracker::Tracker::usage`], UTC when it goes
    /// to a ledger or store directly.
    pub timezone: Option<String>,
    /// Compute p95 latency (forces a scan of raw events).
    pub p95: bool,
}

/// A rollup-answerable query: the table and the period keys (inclusive/exclusive, `YYYY-MM-DD` or `YYYY-MM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupPlan {
    pub table: RollupTable,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl RollupPlan {
    /// True when rollup row `key` is in the plan's period range and passes `f`'s dimension fields.
    pub fn matches(&self, key: &RollupKey, f: &UsageFilter) -> bool {
        eq_opt(&f.user_id, Some(&key.user_id))
            && eq_opt(&f.workspace_id, Some(&key.workspace_id))
            && eq_opt(&f.project, Some(&key.project))
            && eq_opt(&f.provider, Some(&key.provider))
            && eq_opt(&f.model, Some(&key.model))
            && self.from.as_deref().is_none_or(|from| key.period.as_str() >= from)
            && self.to.as_deref().is_none_or(|to| key.period.as_str() < to)
    }
}

impl UsageQuery {
    /// The parsed time zone (`None` = UTC); a bad name is an [`crate::ErrorCode::Config`] error.
    pub fn tz(&self) -> Result<Tz> {
        match &self.timezone {
            None => Ok(Tz::UTC),
            Some(name) => parse_tz("timezone", name),
        }
    }

    /// Sets `since`/`until` from local dates in the query's time zone (`until` exclusive).
    pub fn between_dates(mut self, since: Option<NaiveDate>, until: Option<NaiveDate>) -> Result<Self> {
        let tz = self.tz()?;
        self.filter.since = since.map(|d| local_midnight(d, tz));
        self.filter.until = until.map(|d| local_midnight(d, tz));
        Ok(self)
    }

    /// Restricts the query to the `timeframe` that `now` falls in, in the query's time zone (which
    /// [`crate::tracker::Tracker::usage_in`] sets to the tracker's); an earlier `since` or later
    /// `until` is narrowed, never widened.
    pub fn within(self, timeframe: Timeframe, now: DateTime<Utc>) -> Result<Self> {
        let (first, next) = timeframe.dates(now, self.tz()?);
        let (since, until) = (self.filter.since, self.filter.until);
        let mut q = self.between_dates(Some(first), Some(next))?;
        q.filter.since = q.filter.since.max(since);
        q.filter.until = match (q.filter.until, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(q)
    }

    /// How to answer from rollups kept in `rollup_tz`, or `None` when raw events are needed.
    pub fn rollup_plan(&self, rollup_tz: Tz) -> Option<RollupPlan> {
        let tz = self.tz().ok()?;
        if self.p95 || !self.filter.rollup_dims_only() || self.group_by.contains(&GroupBy::Session) {
            return None;
        }
        let timed = self.group_by.iter().any(|g| matches!(g, GroupBy::Day | GroupBy::Month))
            || self.filter.since.is_some()
            || self.filter.until.is_some();
        if timed && tz != rollup_tz {
            return None;
        }
        let since = match self.filter.since {
            Some(s) => Some(midnight_date(s, rollup_tz)?),
            None => None,
        };
        let until = match self.filter.until {
            Some(u) => Some(midnight_date(u, rollup_tz)?),
            None => None,
        };
        let month_aligned = since.is_none_or(|d| d.day() == 1) && until.is_none_or(|d| d.day() == 1);
        if !self.group_by.contains(&GroupBy::Day) && month_aligned {
            let fmt = |d: NaiveDate| d.format("%Y-%m").to_string();
            return Some(RollupPlan { table: RollupTable::Monthly, from: since.map(fmt), to: until.map(fmt) });
        }
        let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        Some(RollupPlan { table: RollupTable::Daily, from: since.map(fmt), to: until.map(fmt) })
    }
}

/// The local date of `t` in `tz` when `t` is exactly that date's local midnight.
fn midnight_date(t: DateTime<Utc>, tz: Tz) -> Option<NaiveDate> {
    let date = t.with_timezone(&tz).date_naive();
    (local_midnight(date, tz) == t).then_some(date)
}

/// One row of a report, in USD, as the stores compute it; the bindings and the CLI show it as a
/// [`ReportRowView`] (its one serialized shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// The group's value per `group_by` dimension, in query order; absent attribution is `""`.
    pub key: Vec<(GroupBy, String)>,
    pub requests: u64,
    pub successful: u64,
    pub failed: u64,
    pub unpriced: u64,
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Exact USD total.
    pub cost_usd: Decimal,
    /// Mean latency over the events that carried one (exact to 3 decimals).
    pub avg_latency_ms: Option<Decimal>,
    /// Nearest-rank 95th percentile latency; only when the query asked for it.
    pub p95_latency_ms: Option<u64>,
}

impl ReportRow {
    /// The key value for `g`, if the report was grouped by it.
    pub fn get(&self, g: GroupBy) -> Option<&str> {
        self.key.iter().find(|(k, _)| *k == g).map(|(_, v)| v.as_str())
    }

    /// This row with its cost in `currency` at `rate` (units per USD).
    pub fn in_currency(self, currency: &str, rate: Decimal) -> ReportRowView {
        ReportRowView { cost: self.cost_usd.saturating_mul(rate), currency: currency.to_string(), row: self }
    }
}

/// A report row as the bindings return it, with its cost in the tracker's currency: `row.cost_usd ×
/// rate`, exact. Build it with [`ReportRow::in_currency`].
///
/// # Serialized shape (the binding contract)
///
/// One flat object: first the group keys, in `group_by` order, named by [`GroupBy::as_str`] (`user`,
/// `workspace`, `project`, `provider`, `model`, `session`, `day`, `month`; absent attribution is `""`),
/// then exactly [`ReportRowView::KEYS`]: the counts and token totals (numbers), `cost` (in `currency`)
/// and `cost_usd` (decimal strings without trailing zeros), `currency`, `avg_latency_ms` (decimal
/// string, or null when no event carried a latency) and `p95_latency_ms` (number, null unless the
/// query asked for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRowView {
    pub row: ReportRow,
    /// `row.cost_usd` in `currency`.
    pub cost: Decimal,
    pub currency: String,
}

impl ReportRowView {
    /// The keys after the group keys, in order.
    pub const KEYS: [&'static str; 14] = [
        "requests",
        "successful",
        "failed",
        "unpriced",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost",
        "cost_usd",
        "currency",
        "avg_latency_ms",
        "p95_latency_ms",
    ];
}

impl Serialize for ReportRowView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Decimals without trailing zeros, as in the record.
        let dec = |d: Decimal| d.normalize().to_string();
        let r = &self.row;
        let mut m = s.serialize_map(Some(r.key.len() + Self::KEYS.len()))?;
        for (group, value) in &r.key {
            m.serialize_entry(group.as_str(), value)?;
        }
        m.serialize_entry("requests", &r.requests)?;
        m.serialize_entry("successful", &r.successful)?;
        m.serialize_entry("failed", &r.failed)?;
        m.serialize_entry("unpriced", &r.unpriced)?;
        m.serialize_entry("input_tokens", &r.input_tokens)?;
        m.serialize_entry("cache_read_tokens", &r.cache_read_tokens)?;
        m.serialize_entry("cache_write_tokens", &r.cache_write_tokens)?;
        m.serialize_entry("output_tokens", &r.output_tokens)?;
        m.serialize_entry("reasoning_tokens", &r.reasoning_tokens)?;
        m.serialize_entry("cost", &dec(self.cost))?;
        m.serialize_entry("cost_usd", &dec(r.cost_usd))?;
        m.serialize_entry("currency", &self.currency)?;
        m.serialize_entry("avg_latency_ms", &r.avg_latency_ms.map(dec))?;
        m.serialize_entry("p95_latency_ms", &r.p95_latency_ms)?;
        m.end()
    }
}

/// Groups totals into report rows. Feed it raw events ([`Aggregator::add_event`]) or rollup rows
/// ([`Aggregator::add_rollup`]), then [`Aggregator::finish`].
#[derive(Debug)]
pub struct Aggregator<'q> {
    query: &'q UsageQuery,
    tz: Tz,
    groups: BTreeMap<Vec<String>, (Totals, Vec<u64>)>,
}

impl<'q> Aggregator<'q> {
    /// Fails with [`crate::ErrorCode::Config`] on a bad time zone.
    pub fn new(query: &'q UsageQuery) -> Result<Self> {
        Ok(Self { query, tz: query.tz()?, groups: BTreeMap::new() })
    }

    /// Adds one raw event if it passes the filter.
    pub fn add_event(&mut self, e: &UsageEvent) {
        if !self.query.filter.matches(e) {
            return;
        }
        let local = e.timestamp.with_timezone(&self.tz).date_naive();
        let a = &e.attribution;
        let key = self
            .query
            .group_by
            .iter()
            .map(|g| match g {
                GroupBy::User => a.user_id.clone().unwrap_or_default(),
                GroupBy::Workspace => a.workspace_id.clone().unwrap_or_default(),
                GroupBy::Project => a.project.clone().unwrap_or_default(),
                GroupBy::Provider => e.provider.as_str().to_string(),
                GroupBy::Model => e.report_model().to_string(),
                GroupBy::Session => a.session_id.clone().unwrap_or_default(),
                GroupBy::Day => local.format("%Y-%m-%d").to_string(),
                GroupBy::Month => local.format("%Y-%m").to_string(),
            })
            .collect();
        let slot = self.groups.entry(key).or_default();
        slot.0.add(&Totals::of(e));
        if self.query.p95 {
            if let Some(l) = e.latency_ms {
                slot.1.push(l);
            }
        }
    }

    /// Adds one rollup row (the caller checked it against the plan with [`RollupPlan::matches`]).
    /// A monthly row grouped by day is impossible: [`UsageQuery::rollup_plan`] picks the daily table then.
    pub fn add_rollup(&mut self, k: &RollupKey, t: &Totals) {
        let key = self
            .query
            .group_by
            .iter()
            .map(|g| match g {
                GroupBy::User => k.user_id.clone(),
                GroupBy::Workspace => k.workspace_id.clone(),
                GroupBy::Project => k.project.clone(),
                GroupBy::Provider => k.provider.clone(),
                GroupBy::Model => k.model.clone(),
                GroupBy::Session => String::new(),
                GroupBy::Day => k.period.clone(),
                GroupBy::Month => k.period.get(..7).unwrap_or(&k.period).to_string(),
            })
            .collect();
        self.groups.entry(key).or_default().0.add(t);
    }

    pub fn finish(self) -> Vec<ReportRow> {
        let dims = &self.query.group_by;
        self.groups
            .into_iter()
            .map(|(key, (t, mut lat))| {
                let avg = (t.latency_count > 0)
                    .then(|| (Decimal::from(t.latency_sum_ms) / Decimal::from(t.latency_count)).round_dp(3));
                let p95 = if lat.is_empty() {
                    None
                } else {
                    lat.sort_unstable();
                    // Nearest rank: ceil(0.95 n), 1-based.
                    let rank = (lat.len() * 95).div_ceil(100).max(1);
                    lat.get(rank - 1).copied()
                };
                ReportRow {
                    key: dims.iter().copied().zip(key).collect(),
                    requests: t.requests,
                    successful: t.successful,
                    failed: t.failed,
                    unpriced: t.unpriced,
                    input_tokens: t.input_tokens,
                    cache_read_tokens: t.cache_read_tokens,
                    cache_write_tokens: t.cache_write_tokens,
                    output_tokens: t.output_tokens,
                    reasoning_tokens: t.reasoning_tokens,
                    cost_usd: t.cost_usd,
                    avg_latency_ms: avg,
                    p95_latency_ms: p95,
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn timeframes_are_the_current_period_in_the_query_zone() {
        // 2026-12-06T16:00Z is Monday 7 Dec 01:00 in Seoul, still Sunday 6 Dec in UTC.
        let now = utc("2026-12-06T16:00:00Z");
        let seoul = UsageQuery { timezone: Some("Asia/Seoul".into()), ..UsageQuery::default() };
        let today = seoul.clone().within(Timeframe::Today, now).unwrap().filter;
        assert_eq!((today.since, today.until), (Some(utc("2026-12-06T15:00:00Z")), Some(utc("2026-12-07T15:00:00Z"))));
        let week = seoul.clone().within(Timeframe::Week, now).unwrap().filter;
        assert_eq!((week.since, week.until), (Some(utc("2026-12-06T15:00:00Z")), Some(utc("2026-12-13T15:00:00Z"))));
        let month = seoul.within(Timeframe::Month, now).unwrap().filter;
        assert_eq!((month.since, month.until), (Some(utc("2026-11-30T15:00:00Z")), Some(utc("2026-12-31T15:00:00Z"))));
        let utc_week = UsageQuery::default().within(Timeframe::Week, now).unwrap().filter;
        assert_eq!(utc_week.since, Some(utc("2026-11-30T00:00:00Z")), "Monday 30 Nov in UTC");
        let narrower = UsageQuery {
            filter: UsageFilter { since: Some(utc("2026-12-10T00:00:00Z")), ..UsageFilter::default() },
            ..UsageQuery::default()
        };
        assert_eq!(narrower.within(Timeframe::Month, now).unwrap().filter.since, Some(utc("2026-12-10T00:00:00Z")));
        assert_eq!("fortnight".parse::<Timeframe>().map_err(|e| e.code()), Err(crate::ErrorCode::InvalidValue));
    }

    #[test]
    fn seoul_midnight_and_plans() {
        let seoul: Tz = parse_tz("timezone", "Asia/Seoul").unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        assert_eq!(local_midnight(d, seoul), utc("2026-11-01T15:00:00Z"));
        let q =
            UsageQuery { timezone: Some("Asia/Seoul".into()), group_by: vec![GroupBy::Day], ..UsageQuery::default() }
                .between_dates(Some(d), None)
                .unwrap();
        let plan = q.rollup_plan(seoul);
        assert_eq!(plan.map(|p| (p.table, p.from)), Some((RollupTable::Daily, Some("2026-11-02".to_string()))));
        // Rollups kept in UTC cannot answer a Seoul-day report.
        assert_eq!(q.rollup_plan(Tz::UTC), None);
        let monthly = UsageQuery { group_by: vec![GroupBy::User, GroupBy::Month], ..UsageQuery::default() };
        assert_eq!(monthly.rollup_plan(Tz::UTC).map(|p| p.table), Some(RollupTable::Monthly));
        let p95 = UsageQuery { p95: true, ..UsageQuery::default() };
        assert_eq!(p95.rollup_plan(Tz::UTC), None);
    }

    #[test]
    fn bad_tz_and_group_are_errors() {
        assert_eq!(parse_tz("timezone", "Mars/Olympus").map_err(|e| e.code()), Err(crate::ErrorCode::Config));
        assert_eq!("week".parse::<GroupBy>().map_err(|e| e.code()), Err(crate::ErrorCode::InvalidValue));
        let q = UsageQuery { timezone: Some("Nowhere/City".into()), ..UsageQuery::default() };
        assert_eq!(Aggregator::new(&q).map(|_| ()).map_err(|e| e.code()), Err(crate::ErrorCode::Config));
    }
}
