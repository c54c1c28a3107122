//! Google Cloud's billing export read from a file: Google has no billing API for API keys, so its
//! bill reaches the billed-cost table this way (through [`super::Org::replace_billed`]).
//!
//! Owns: reading the export's rows — CSV with a header row, a JSON array, or newline-delimited JSON
//! (BigQuery's export format) — with the BigQuery export's columns: `service.description`,
//! `sku.description`, `usage_start_time`, `cost`, `currency`, `project.id`, and when present
//! `currency_conversion_rate` (local currency per USD) and `credits` (JSON: `[{ "amount": … }]`, added
//! to the cost as BigQuery's net cost does). Columns may be nested objects (JSON) or dotted /
//! underscored names (`service.description`, `service_description`). Only AI services are kept
//! (`service.description` containing `Vertex AI`, `Gemini` or `Generative Language`); the rest of the
//! bill (Compute, Storage …) is counted as skipped. Amounts are exact (the number's text); a
//! non-USD row needs its conversion rate. Each row becomes a [`BilledCost`]: the UTC day of
//! `usage_start_time`, workspace = `project.id`, item = `service.description: sku.description`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::billing::{exact, BilledCost, BillingProvider};
use super::subscription::split_csv;
use crate::error::{Error, Result};

/// The services whose costs are AI usage.
const AI_SERVICES: [&str; 3] = ["Vertex AI", "Gemini", "Generative Language"];

/// What a billing export held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpExport {
    /// The AI services' rows, USD.
    pub rows: Vec<BilledCost>,
    /// Rows of other services, left out.
    pub skipped: u64,
}

impl GcpExport {
    /// The days the rows cover, `[first, last + 1)`; `None` without rows.
    pub fn period(&self) -> Option<(NaiveDate, NaiveDate)> {
        let first = self.rows.iter().map(|r| r.day).min()?;
        let last = self.rows.iter().map(|r| r.day).max()?;
        Some((first, last.succ_opt().unwrap_or(last)))
    }
}

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpImportSummary {
    /// The replaced days, `until` exclusive; `None` when the file held no AI rows.
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    /// Rows the file held for AI services, and rows of other services left out.
    pub read: u64,
    pub skipped: u64,
    /// Rows stored (summed per day, project and SKU) and their USD total.
    pub rows: u64,
    pub total_usd: Decimal,
}

/// Reads an export: JSON when it starts with `[` or `{`, else CSV.
pub fn parse_export(text: &str) -> Result<GcpExport> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let records: Vec<Vec<(String, String)>> = if t.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(t)?;
        items.iter().map(flatten).collect()
    } else if t.starts_with('{') {
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).map(|v| flatten(&v)))
            .collect::<std::result::Result<_, _>>()?
    } else {
        let mut lines = t.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines.next().map(split_csv).unwrap_or_default();
        lines.map(|l| header.iter().cloned().zip(split_csv(l)).collect()).collect()
    };
    let mut export = GcpExport::default();
    for (n, record) in records.iter().enumerate() {
        let get = |name: &str| -> Option<&str> {
            let underscored = name.replace('.', "_");
            record
                .iter()
                .find(|(k, _)| k.trim() == name || k.trim() == underscored)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let at = |field: &str| format!("row {}: {field}", n + 1);
        let service = get("service.description").ok_or_else(|| Error::missing_field(at("service.description")))?;
        if !AI_SERVICES.iter().any(|s| service.contains(s)) {
            export.skipped += 1;
            continue;
        }
        let start = get("usage_start_time").ok_or_else(|| Error::missing_field(at("usage_start_time")))?;
        let day = utc_day(start).ok_or_else(|| {
            Error::invalid_value(at("usage_start_time"), start, "expected a timestamp such as 2026-11-01 00:00:00 UTC")
        })?;
        let mut cost = exact(&at("cost"), get("cost").ok_or_else(|| Error::missing_field(at("cost")))?)?;
        if let Some(credits) = get("credits") {
            cost +=
                credit_sum(credits).map_err(|_| Error::invalid_value(at("credits"), credits, "not a credit list"))?;
        }
        let currency = get("currency").unwrap_or("USD").to_ascii_uppercase();
        let usd = if currency == "USD" {
            cost
        } else {
            let rate = get("currency_conversion_rate")
                .ok_or_else(|| Error::missing_field(at("currency_conversion_rate")))
                .and_then(|r| exact(&at("currency_conversion_rate"), r))?;
            if rate <= Decimal::ZERO {
                return Err(Error::invalid_value(at("currency_conversion_rate"), rate, "must be above 0"));
            }
            cost / rate
        };
        let sku = get("sku.description").unwrap_or("");
        export.rows.push(BilledCost {
            provider: BillingProvider::Google,
            day,
            workspace: get("project.id").unwrap_or("").to_string(),
            item: if sku.is_empty() { service.to_string() } else { format!("{service}: {sku}") },
            model: None,
            amount: usd.normalize(),
            currency: "USD".into(),
        });
    }
    Ok(export)
}

/// A JSON record as `(dotted name, text)` pairs: nested objects flattened, numbers as their text,
/// arrays (`credits`) kept as JSON.
fn flatten(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&name, v, out);
                }
            }
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            Value::Null => {}
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// The sum of a `credits` list's amounts (negative in the export).
fn credit_sum(text: &str) -> Result<Decimal> {
    let list: Vec<Value> = serde_json::from_str(text)?;
    list.iter().map(|c| exact("credits.amount", &c.get("amount").map(Value::to_string).unwrap_or_default())).sum()
}

/// The UTC day of an export timestamp: `2026-11-01 00:00:00 UTC`, RFC 3339, or a naive UTC time.
fn utc_day(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc).date_naive());
    }
    let naive = t.trim_end_matches(" UTC").trim_end_matches('Z');
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(naive, f).ok())
        .map(|t| t.date())
        .or_else(|| naive.parse::<NaiveDate>().ok())
}
