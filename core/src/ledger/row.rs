//! The stored form shared by the SQL stores (SQLite, PostgreSQL): the `usage_events` and rollup
//! column sets, the event → column values encoding, the row → event / rollup decoding (through
//! [`ColumnReader`], which each store implements over its driver's row), and the `WHERE` filters of
//! their queries. Each store keeps only its dialect: column types, placeholders and how it binds.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::error::{Error, ErrorCode, Result};
use crate::event::{Attribution, Status, UsageEvent};
use crate::pricing::{Breakdown, Cost};
use crate::report::{RollupPlan, UsageQuery};
use crate::rollup::{RollupKey, Totals};
use crate::usage::{Api, Provider, Usage, UsageSource};

/// What a column holds, so each store can name its own SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// An integer (nanoseconds, milliseconds, token counts).
    Int,
    /// An exact decimal (TEXT in SQLite, NUMERIC in PostgreSQL).
    Dec,
}

/// The `usage_events` columns in insert/select order: name, kind, `NOT NULL`.
pub(crate) const EVENT_COLUMNS: [(&str, Kind, bool); 38] = [
    ("event_id", Kind::Text, true),
    ("ts_ns", Kind::Int, true),
    ("provider", Kind::Text, true),
    ("api", Kind::Text, true),
    ("model", Kind::Text, true),
    ("resolved_model", Kind::Text, false),
    ("user_id", Kind::Text, false),
    ("workspace_id", Kind::Text, false),
    ("project", Kind::Text, false),
    ("session_id", Kind::Text, false),
    ("conversation_id", Kind::Text, false),
    ("tags", Kind::Text, false),
    ("status", Kind::Text, true),
    ("error_class", Kind::Text, false),
    ("latency_ms", Kind::Int, false),
    ("input_tokens", Kind::Int, true),
    ("cache_read_tokens", Kind::Int, true),
    ("cache_write_tokens", Kind::Int, true),
    ("cache_write_1h_tokens", Kind::Int, true),
    ("output_tokens", Kind::Int, true),
    ("reasoning_tokens", Kind::Int, true),
    ("audio_input_tokens", Kind::Int, true),
    ("audio_cache_read_tokens", Kind::Int, true),
    ("audio_output_tokens", Kind::Int, true),
    ("image_input_tokens", Kind::Int, true),
    ("image_output_tokens", Kind::Int, true),
    ("usage_source", Kind::Text, true),
    ("flags", Kind::Text, false),
    ("cost_usd", Kind::Dec, false),
    ("currency", Kind::Text, false),
    ("rate", Kind::Dec, false),
    ("cost_total", Kind::Dec, false),
    ("price_version", Kind::Text, false),
    ("unpriced_reason", Kind::Text, false),
    // Schema version 2 (added to older databases by `MIGRATIONS`).
    ("usage_extra", Kind::Text, false),
    ("price_options", Kind::Text, false),
    ("price_data", Kind::Text, false),
    ("reprice_audit", Kind::Text, false),
];

/// The schema version the stores create and migrate to.
pub(crate) const SCHEMA_VERSION: i32 = 2;

/// Columns added by schema version 2: a version-1 database gets each one with `ALTER TABLE
/// usage_events ADD COLUMN` (all nullable, so old rows read as before).
pub(crate) const MIGRATIONS: [&str; 4] = ["usage_extra", "price_options", "price_data", "reprice_audit"];

/// The SQL type of a migrated column.
pub(crate) fn column_kind(name: &str) -> Kind {
    EVENT_COLUMNS.iter().find(|(n, _, _)| *n == name).map_or(Kind::Text, |&(_, k, _)| k)
}

/// The rollup columns (all `NOT NULL`); the first six are the primary key.
pub(crate) const ROLLUP_COLUMNS: [(&str, Kind); 18] = [
    ("period", Kind::Text),
    ("user_id", Kind::Text),
    ("workspace_id", Kind::Text),
    ("project", Kind::Text),
    ("provider", Kind::Text),
    ("model", Kind::Text),
    ("requests", Kind::Int),
    ("successful", Kind::Int),
    ("failed", Kind::Int),
    ("unpriced", Kind::Int),
    ("input_tokens", Kind::Int),
    ("cache_read_tokens", Kind::Int),
    ("cache_write_tokens", Kind::Int),
    ("output_tokens", Kind::Int),
    ("reasoning_tokens", Kind::Int),
    ("cost_usd", Kind::Dec),
    ("latency_sum_ms", Kind::Int),
    ("latency_count", Kind::Int),
];

/// The bookkeeping tables both stores create before the data tables.
pub(crate) const META_DDL: &str = "CREATE TABLE IF NOT EXISTS llmledger_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS llmledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// The rollup primary key columns.
pub(crate) const ROLLUP_KEY: &str = "period, user_id, workspace_id, project, provider, model";

/// `CREATE TABLE IF NOT EXISTS` for `usage_events` and its timestamp index, with `ty` naming a kind's SQL type.
pub(crate) fn events_ddl(ty: impl Fn(Kind) -> &'static str) -> String {
    let cols: Vec<String> = EVENT_COLUMNS
        .iter()
        .map(|&(name, kind, not_null)| {
            let pk = if name == "event_id" { " PRIMARY KEY" } else { "" };
            let nn = if not_null && pk.is_empty() { " NOT NULL" } else { "" };
            format!("{name} {}{pk}{nn}", ty(kind))
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS usage_events ({});\nCREATE INDEX IF NOT EXISTS usage_events_ts ON usage_events (ts_ns);",
        cols.join(", ")
    )
}

/// `CREATE TABLE IF NOT EXISTS` for a rollup table; `suffix` follows the closing parenthesis.
pub(crate) fn rollup_ddl(table: &str, ty: impl Fn(Kind) -> &'static str, suffix: &str) -> String {
    let cols: Vec<String> =
        ROLLUP_COLUMNS.iter().map(|&(name, kind)| format!("{name} {} NOT NULL", ty(kind))).collect();
    format!("CREATE TABLE IF NOT EXISTS {table} ({}, PRIMARY KEY ({ROLLUP_KEY})){suffix};", cols.join(", "))
}

/// `a, b, c` of `names`, each passed through `f` (e.g. to add a cast).
pub(crate) fn col_list<'a>(
    names: impl IntoIterator<Item = (&'a str, Kind)>,
    f: impl Fn(&str, Kind) -> String,
) -> String {
    names.into_iter().map(|(n, k)| f(n, k)).collect::<Vec<_>>().join(", ")
}

/// The event columns, optionally rendered (`f`) e.g. `cost_usd::text`.
pub(crate) fn event_cols(f: impl Fn(&str, Kind) -> String) -> String {
    col_list(EVENT_COLUMNS.iter().map(|&(n, k, _)| (n, k)), f)
}

/// The rollup columns, optionally rendered (`f`).
pub(crate) fn rollup_cols(f: impl Fn(&str, Kind) -> String) -> String {
    col_list(ROLLUP_COLUMNS.iter().copied(), f)
}

/// The rollup value columns (after the key), rendered by `f`, e.g. into `SET` assignments.
pub(crate) fn rollup_sets(f: impl Fn(&str, Kind) -> String) -> String {
    col_list(ROLLUP_COLUMNS[6..].iter().copied(), f)
}

/// The name as is.
pub(crate) fn plain(name: &str, _: Kind) -> String {
    name.to_string()
}

pub(crate) fn i64_of(field: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid_value(field, v, "too large for the ledger (max 2^63-1)"))
}

pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn dec_of(field: &str, s: &str) -> Result<Decimal> {
    Decimal::from_str(s).map_err(|_| Error::new(ErrorCode::Store, format!("stored {field} `{s}` is not a decimal")))
}

/// The values of an event's columns that are not stored as the event holds them.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub ts_ns: i64,
    pub latency_ms: Option<i64>,
    /// `input_tokens` … `image_output_tokens`, in column order.
    pub tokens: [i64; 11],
    /// JSON, `None` when empty (no serializer call for the common case).
    pub tags: Option<String>,
    pub flags: Option<String>,
    pub cost_usd: Option<String>,
    pub rate: Option<String>,
    pub cost_total: Option<String>,
    pub price_version: Option<String>,
    /// JSON of the usage fields that have no column of their own; `None` when they are all default.
    pub usage_extra: Option<String>,
    /// JSON of the event's `price_options`; `None` for the standard options.
    pub price_options: Option<String>,
}

impl Encoded {
    /// Converts `e`; counts above `i64::MAX` and timestamps outside 1677..2262 are input errors.
    pub fn of(e: &UsageEvent) -> Result<Self> {
        let a = &e.attribution;
        let u = &e.usage;
        let ts_ns = e
            .timestamp
            .timestamp_nanos_opt()
            .ok_or_else(|| Error::invalid_value("event.timestamp", e.timestamp, "outside 1677..2262"))?;
        let counts = [
            ("usage.input_tokens", u.input_tokens),
            ("usage.cache_read_tokens", u.cache_read_tokens),
            ("usage.cache_write_tokens", u.cache_write_tokens),
            ("usage.cache_write_1h_tokens", u.cache_write_1h_tokens),
            ("usage.output_tokens", u.output_tokens),
            ("usage.reasoning_tokens", u.reasoning_tokens),
            ("usage.audio_input_tokens", u.audio_input_tokens),
            ("usage.audio_cache_read_tokens", u.audio_cache_read_tokens),
            ("usage.audio_output_tokens", u.audio_output_tokens),
            ("usage.image_input_tokens", u.image_input_tokens),
            ("usage.image_output_tokens", u.image_output_tokens),
        ];
        let mut tokens = [0i64; 11];
        for (slot, (field, v)) in tokens.iter_mut().zip(counts) {
            *slot = i64_of(field, v)?;
        }
        let c = e.cost.as_ref();
        Ok(Self {
            ts_ns,
            latency_ms: e.latency_ms.map(|l| i64_of("event.latency_ms", l)).transpose()?,
            tokens,
            tags: if a.tags.is_empty() { None } else { Some(serde_json::to_string(&a.tags)?) },
            flags: if u.flags.is_empty() { None } else { Some(serde_json::to_string(&u.flags)?) },
            cost_usd: c.map(|c| c.total_usd.to_string()),
            rate: c.map(|c| c.rate.to_string()),
            cost_total: c.map(|c| c.total.to_string()),
            price_version: c.map(|c| c.price_version.to_string()),
            usage_extra: usage_extra(u)?,
            price_options: if e.price_options.is_default() {
                None
            } else {
                Some(serde_json::to_string(&e.price_options)?)
            },
        })
    }
}

/// Usage keys stored in columns of their own.
const USAGE_COLUMN_KEYS: [&str; 13] = [
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_cache_read_tokens",
    "audio_output_tokens",
    "image_input_tokens",
    "image_output_tokens",
    "usage_source",
    "flags",
];

/// The usage as the columns alone hold it.
fn column_usage(u: &Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        cache_read_tokens: u.cache_read_tokens,
        cache_write_tokens: u.cache_write_tokens,
        cache_write_1h_tokens: u.cache_write_1h_tokens,
        output_tokens: u.output_tokens,
        reasoning_tokens: u.reasoning_tokens,
        audio_input_tokens: u.audio_input_tokens,
        audio_cache_read_tokens: u.audio_cache_read_tokens,
        audio_output_tokens: u.audio_output_tokens,
        image_input_tokens: u.image_input_tokens,
        image_output_tokens: u.image_output_tokens,
        usage_source: u.usage_source,
        flags: u.flags.clone(),
        ..Usage::default()
    }
}

/// The rest of a usage (searches, images, seconds, characters, service tier, …) as JSON, so a
/// re-price sees every unit the call was billed for; `None` (no serializer call) when it is all default.
fn usage_extra(u: &Usage) -> Result<Option<String>> {
    if column_usage(u) == *u {
        return Ok(None);
    }
    let mut v = serde_json::to_value(u)?;
    if let Some(map) = v.as_object_mut() {
        for k in USAGE_COLUMN_KEYS {
            map.remove(k);
        }
    }
    Ok(Some(v.to_string()))
}

/// `usage` (read from the columns) completed with the stored `usage_extra` JSON.
fn with_extra(usage: Usage, extra: Option<String>) -> Result<Usage> {
    let Some(extra) = extra else { return Ok(usage) };
    let mut v = serde_json::to_value(&usage)?;
    let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&extra)?;
    if let Some(map) = v.as_object_mut() {
        map.extend(extra.into_iter().filter(|(k, _)| !USAGE_COLUMN_KEYS.contains(&k.as_str())));
    }
    Ok(serde_json::from_value(v)?)
}

/// The rollup counters in column order (`requests` … `reasoning_tokens`, then `latency_sum_ms`,
/// `latency_count`), checked to fit a signed 64-bit column.
pub(crate) fn rollup_counts(t: &Totals) -> Result<[i64; 11]> {
    let nums = [
        ("requests", t.requests),
        ("successful", t.successful),
        ("failed", t.failed),
        ("unpriced", t.unpriced),
        ("input_tokens", t.input_tokens),
        ("cache_read_tokens", t.cache_read_tokens),
        ("cache_write_tokens", t.cache_write_tokens),
        ("output_tokens", t.output_tokens),
        ("reasoning_tokens", t.reasoning_tokens),
        ("latency_sum_ms", t.latency_sum_ms),
        ("latency_count", t.latency_count),
    ];
    let mut out = [0i64; 11];
    for (slot, (field, v)) in out.iter_mut().zip(nums) {
        *slot = i64_of(field, v)?;
    }
    Ok(out)
}

/// Column `i` of a result row, as the stores' drivers return it (decimals are read as text).
pub(crate) trait ColumnReader {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
}

/// An event from a row of [`event_cols`] (the per-component breakdown is not stored).
pub(crate) fn event_from_row(r: &impl ColumnReader) -> Result<UsageEvent> {
    let n = |i: usize| -> Result<u64> { r.int(i).map(u64_of) };
    let provider = Provider::from_str(&r.text(2)?)?;
    let tags = match r.opt_text(11)? {
        Some(t) => serde_json::from_str(&t)?,
        None => Default::default(),
    };
    let flags = match r.opt_text(27)? {
        Some(t) => serde_json::from_str(&t)?,
        None => Vec::new(),
    };
    let usage = Usage {
        input_tokens: n(15)?,
        cache_read_tokens: n(16)?,
        cache_write_tokens: n(17)?,
        cache_write_1h_tokens: n(18)?,
        output_tokens: n(19)?,
        reasoning_tokens: n(20)?,
        audio_input_tokens: n(21)?,
        audio_cache_read_tokens: n(22)?,
        audio_output_tokens: n(23)?,
        image_input_tokens: n(24)?,
        image_output_tokens: n(25)?,
        usage_source: match r.text(26)?.as_str() {
            "reported" => UsageSource::Reported,
            "partial" => UsageSource::Partial,
            "estimated" => UsageSource::Estimated,
            _ => UsageSource::None,
        },
        flags,
        ..Usage::default()
    };
    let usage = with_extra(usage, r.opt_text(34)?)?;
    let price_options = match r.opt_text(35)? {
        Some(t) => serde_json::from_str(&t)?,
        None => Default::default(),
    };
    let resolved_model = r.opt_text(5)?;
    let cost = match r.opt_text(28)? {
        Some(total_usd) => {
            let total_usd = dec_of("cost_usd", &total_usd)?;
            Some(Cost {
                provider,
                model: resolved_model.clone().unwrap_or_default(),
                price_version: r.opt_text(32)?.and_then(|d| NaiveDate::from_str(&d).ok()).unwrap_or_default(),
                price_data: r.opt_text(36)?.unwrap_or_default(),
                breakdown: Breakdown::default(),
                total_usd,
                currency: r.opt_text(29)?.unwrap_or_else(|| "USD".into()),
                rate: r.opt_text(30)?.map(|x| dec_of("rate", &x)).transpose()?.unwrap_or(Decimal::ONE),
                total: r.opt_text(31)?.map(|t| dec_of("cost_total", &t)).transpose()?.unwrap_or(total_usd),
                tier_above: None,
                uncertain: false,
            })
        }
        None => None,
    };
    Ok(UsageEvent {
        event_id: r.text(0)?,
        timestamp: DateTime::<Utc>::from_timestamp_nanos(r.int(1)?),
        provider,
        api: Api::from_str(&r.text(3)?)?,
        model: r.text(4)?,
        resolved_model,
        usage,
        cost,
        unpriced_reason: r.opt_text(33)?,
        attribution: Attribution {
            user_id: r.opt_text(6)?,
            workspace_id: r.opt_text(7)?,
            project: r.opt_text(8)?,
            session_id: r.opt_text(9)?,
            conversation_id: r.opt_text(10)?,
            tags,
        },
        latency_ms: r.opt_int(14)?.map(u64_of),
        status: Status::parse(&r.text(12)?)?,
        error_class: r.opt_text(13)?,
        price_options,
    })
}

/// The `reprice_audit` column of a row of [`event_cols`].
pub(crate) fn audit_from_row(r: &impl ColumnReader) -> Result<Option<String>> {
    r.opt_text(37)
}

/// A rollup row from a row of [`rollup_cols`].
pub(crate) fn rollup_from_row(r: &impl ColumnReader) -> Result<(RollupKey, Totals)> {
    let g = |i: usize| -> Result<u64> { r.int(i).map(u64_of) };
    let key = RollupKey {
        period: r.text(0)?,
        user_id: r.text(1)?,
        workspace_id: r.text(2)?,
        project: r.text(3)?,
        provider: r.text(4)?,
        model: r.text(5)?,
    };
    let t = Totals {
        requests: g(6)?,
        successful: g(7)?,
        failed: g(8)?,
        unpriced: g(9)?,
        input_tokens: g(10)?,
        cache_read_tokens: g(11)?,
        cache_write_tokens: g(12)?,
        output_tokens: g(13)?,
        reasoning_tokens: g(14)?,
        cost_usd: dec_of("cost_usd", &r.text(15)?)?,
        latency_sum_ms: g(16)?,
        latency_count: g(17)?,
    };
    Ok((key, t))
}

/// A query parameter of a [`Filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// ` AND …` conditions (numbered placeholders `{p}1`, `{p}2`, … with `p` the store's `?` or `$`)
/// and their parameters.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Filter {
    fn and(&mut self, placeholder: char, cond: &str, v: Param) {
        self.params.push(v);
        self.sql.push_str(&format!(" AND {cond} {placeholder}{}", self.params.len()));
    }

    /// The conditions of a raw-event query (absent attribution matches `""`, as in reports).
    pub fn events(q: Option<&UsageQuery>, placeholder: char) -> Result<Self> {
        let mut f = Self::default();
        let Some(q) = q else { return Ok(f) };
        let fl = &q.filter;
        for (col, v) in [
            ("COALESCE(user_id, '') =", &fl.user_id),
            ("COALESCE(workspace_id, '') =", &fl.workspace_id),
            ("COALESCE(project, '') =", &fl.project),
            ("provider =", &fl.provider),
            ("COALESCE(resolved_model, model) =", &fl.model),
            ("COALESCE(session_id, '') =", &fl.session_id),
        ] {
            if let Some(v) = v {
                f.and(placeholder, col, Param::Text(v.clone()));
            }
        }
        for (cond, t) in [("ts_ns >=", fl.since), ("ts_ns <", fl.until)] {
            if let Some(t) = t {
                let ns = t
                    .timestamp_nanos_opt()
                    .ok_or_else(|| Error::invalid_value("filter.since/until", t, "out of range"))?;
                f.and(placeholder, cond, Param::Int(ns));
            }
        }
        Ok(f)
    }

    /// One chunk of a re-price: the time range, the model as requested or as resolved, and the events
    /// after `after` in event-id order, at most `rf.chunk_size()` of them (`sql` ends with the
    /// `ORDER BY … LIMIT`).
    pub fn reprice(rf: &super::RepriceFilter, placeholder: char, after: Option<&str>) -> Result<Self> {
        let mut q = UsageQuery::default();
        q.filter.since = rf.since;
        q.filter.until = rf.until;
        let mut f = Self::events(Some(&q), placeholder)?;
        if let Some(model) = &rf.model {
            f.params.push(Param::Text(model.clone()));
            let n = f.params.len();
            f.sql.push_str(&format!(" AND (model = {placeholder}{n} OR resolved_model = {placeholder}{n})"));
        }
        if let Some(after) = after {
            f.and(placeholder, "event_id >", Param::Text(after.to_string()));
        }
        f.sql.push_str(&format!(" ORDER BY event_id LIMIT {}", rf.chunk_size()));
        Ok(f)
    }

    /// The conditions of a rollup query: the filter's dimensions and the plan's period range.
    pub fn rollups(q: Option<(&UsageQuery, &RollupPlan)>, placeholder: char) -> Self {
        let mut f = Self::default();
        let Some((q, plan)) = q else { return f };
        let fl = &q.filter;
        for (cond, v) in [
            ("user_id =", &fl.user_id),
            ("workspace_id =", &fl.workspace_id),
            ("project =", &fl.project),
            ("provider =", &fl.provider),
            ("model =", &fl.model),
            ("period >=", &plan.from),
            ("period <", &plan.to),
        ] {
            if let Some(v) = v {
                f.and(placeholder, cond, Param::Text(v.clone()));
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::RollupTable;

    #[test]
    fn event_ddl_names_every_column_once_with_the_key_and_index() {
        let ddl = events_ddl(|k| match k {
            Kind::Int => "INTEGER",
            Kind::Text | Kind::Dec => "TEXT",
        });
        assert!(ddl.contains("(event_id TEXT PRIMARY KEY, ts_ns INTEGER NOT NULL, provider TEXT NOT NULL,"), "{ddl}");
        assert!(ddl.contains("latency_ms INTEGER, input_tokens INTEGER NOT NULL,"), "{ddl}");
        assert!(ddl.ends_with("ON usage_events (ts_ns);"), "{ddl}");
        assert_eq!(event_cols(plain).split(", ").count(), 38);
    }

    #[test]
    fn usage_fields_without_a_column_round_trip_through_usage_extra() {
        let plain = Usage {
            input_tokens: 5,
            output_tokens: 2,
            flags: vec![crate::usage::UsageFlag::TotalMismatch],
            ..Usage::default()
        };
        assert_eq!(usage_extra(&plain).map_err(|e| e.code()), Ok(None));
        let full = Usage {
            web_search_requests: 2,
            web_search_context_size: Some("high".into()),
            grounding_queries: 3,
            cache_write_tokens: 9,
            cache_write_12h_tokens: 4,
            audio_seconds: Some(Decimal::new(125, 1)),
            media_items: [("video".to_string(), 1)].into(),
            service_tier: Some("priority".into()),
            speed: Some("fast".into()),
            region: Some("us".into()),
            ..plain
        };
        let extra = usage_extra(&full).ok().flatten();
        assert!(extra.as_deref().is_some_and(|x| !x.contains("input_tokens")), "{extra:?}");
        assert_eq!(with_extra(column_usage(&full), extra).ok(), Some(full));
    }

    #[test]
    fn filters_number_their_placeholders() {
        let mut q = UsageQuery::default();
        q.filter.user_id = Some("u1".into());
        q.filter.model = Some("gpt-4o".into());
        q.filter.since = DateTime::from_timestamp(1, 0);
        let f = Filter::events(Some(&q), '$').map(|f| (f.sql, f.params)).map_err(|e| e.code());
        let want = " AND COALESCE(user_id, '') = $1 AND COALESCE(resolved_model, model) = $2 AND ts_ns >= $3";
        assert_eq!(
            f,
            Ok((
                want.to_string(),
                vec![Param::Text("u1".into()), Param::Text("gpt-4o".into()), Param::Int(1_000_000_000)]
            ))
        );
        let plan = RollupPlan { table: RollupTable::Monthly, from: Some("2026-01".into()), to: None };
        let r = Filter::rollups(Some((&q, &plan)), '?');
        assert_eq!(r.sql, " AND user_id = ?1 AND model = ?2 AND period >= ?3");
    }
}
