//! The ledger's unit of record: one priced (or flagged unpriced) LLM call, [`UsageEvent`], with who
//! it is billed to ([`Attribution`], and the one rule for layering it, [`Attribution::overlay`]).
//! The stores ([`crate::ledger`]) and reports ([`crate::report`]) both depend on these types.
//!
//! An event carries counts, cost and attribution only — never prompt or completion text — and
//! round-trips exactly through JSON (decimals as strings), which is the format of the spill file and
//! the JSONL store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pricing::{Cost, PriceOptions};
use crate::usage::{Api, Provider, Usage};

/// Who a call is billed to. Every field is optional; empty strings are treated as absent in reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Attribution {
    /// `self` with every field `top` sets replacing it; tags merged, `top` winning per key. The one rule
    /// for layering attribution (tracker defaults, then `wrap`'s, then the request context's, innermost
    /// last), used by both bindings.
    pub fn overlay(&self, top: &Attribution) -> Attribution {
        let pick = |mine: &Option<String>, theirs: &Option<String>| theirs.clone().or_else(|| mine.clone());
        let mut tags = self.tags.clone();
        tags.extend(top.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Attribution {
            user_id: pick(&self.user_id, &top.user_id),
            workspace_id: pick(&self.workspace_id, &top.workspace_id),
            project: pick(&self.project, &top.project),
            session_id: pick(&self.session_id, &top.session_id),
            conversation_id: pick(&self.conversation_id, &top.conversation_id),
            tags,
        }
    }
}

/// Whether the call succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Success,
    Failure,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            other => Err(Error::invalid_value("status", other, "expected success or failure")),
        }
    }
}

/// One recorded LLM call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// Idempotency key: the provider's response/request id when there is one, else a UUIDv7.
    pub event_id: String,
    pub timestamp: DateTime<Utc>,
    pub provider: Provider,
    pub api: Api,
    /// The model name the caller asked for.
    pub model: String,
    /// The canonical priced model; `None` when the call could not be priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_model: Option<String>,
    pub usage: Usage,
    /// The exact cost; `None` means unpriced and then `unpriced_reason` says why (never a silent $0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The error code (e.g. `unknown_model`) that left this event unpriced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpriced_reason: Option<String>,
    #[serde(default)]
    pub attribution: Attribution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub status: Status,
    /// For failures: an error class such as `rate_limit` or `timeout` — never a message body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// How the call was billed beyond its usage (batch, requested service tier, region), so a
    /// re-price ([`crate::ledger::Store::reprice`]) bills it the same way.
    #[serde(default, skip_serializing_if = "PriceOptions::is_default")]
    pub price_options: PriceOptions,
}

impl UsageEvent {
    /// A successful, not yet priced event stamped now with a fresh UUIDv7 id.
    pub fn new(provider: Provider, api: Api, model: impl Into<String>, usage: Usage) -> Self {
        Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            timestamp: Utc::now(),
            provider,
            api,
            model: model.into(),
            resolved_model: None,
            usage,
            cost: None,
            unpriced_reason: None,
            attribution: Attribution::default(),
            latency_ms: None,
            status: Status::Success,
            error_class: None,
            price_options: PriceOptions::default(),
        }
    }

    /// Records how the call was billed beyond its usage.
    pub fn with_price_options(mut self, options: PriceOptions) -> Self {
        self.price_options = options;
        self
    }

    /// Uses the provider's response id as the idempotency key.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = id.into();
        self
    }

    pub fn with_timestamp(mut self, ts: DateTime<Utc>) -> Self {
        self.timestamp = ts;
        self
    }

    /// Attaches the cost; the resolved model becomes the cost's model and any unpriced reason is cleared.
    pub fn with_cost(mut self, cost: Cost) -> Self {
        self.resolved_model = Some(cost.model.clone());
        self.cost = Some(cost);
        self.unpriced_reason = None;
        self
    }

    /// Marks the event unpriced with the error code that prevented pricing.
    pub fn unpriced(mut self, reason: impl Into<String>) -> Self {
        self.cost = None;
        self.resolved_model = None;
        self.unpriced_reason = Some(reason.into());
        self
    }

    pub fn with_attribution(mut self, attribution: Attribution) -> Self {
        self.attribution = attribution;
        self
    }

    pub fn with_latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// Marks the call failed with an error class (not a message body).
    pub fn failed(mut self, error_class: impl Into<String>) -> Self {
        self.status = Status::Failure;
        self.error_class = Some(error_class.into());
        self
    }

    /// USD cost, zero for unpriced events (which reports count separately as `unpriced`).
    pub fn cost_usd(&self) -> Decimal {
        self.cost.as_ref().map_or(Decimal::ZERO, |c| c.total_usd)
    }

    /// The model name reports group by: the resolved model when priced, else the requested name.
    pub fn report_model(&self) -> &str {
        self.resolved_model.as_deref().unwrap_or(&self.model)
    }

    /// Checks what a store relies on: a non-empty id of sane length.
    pub fn validate(&self) -> Result<()> {
        if self.event_id.is_empty() {
            return Err(Error::invalid_value("event.event_id", "\"\"", "must not be empty"));
        }
        if self.event_id.len() > 256 {
            return Err(Error::invalid_value("event.event_id", &self.event_id, "longer than 256 bytes"));
        }
        Ok(())
    }

    /// One JSON line (no trailing newline).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    pub fn from_json(line: &str) -> Result<Self> {
        Ok(serde_json::from_str(line)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Breakdown;
    use chrono::NaiveDate;
    use rust_decimal_macros::dec;

    #[test]
    fn overlay_sets_what_the_top_sets_and_merges_tags() {
        let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let base = Attribution {
            user_id: Some("u1".into()),
            project: Some("p".into()),
            tags: tags(&[("team", "a"), ("env", "prod")]),
            ..Attribution::default()
        };
        let top = Attribution { user_id: Some("u2".into()), tags: tags(&[("team", "b")]), ..Attribution::default() };
        let merged = base.overlay(&top);
        assert_eq!(merged.user_id.as_deref(), Some("u2"));
        assert_eq!(merged.project.as_deref(), Some("p"));
        assert_eq!(merged.tags, tags(&[("env", "prod"), ("team", "b")]));
        assert_eq!(Attribution::default().overlay(&base), base);
    }

    pub(crate) fn priced_event() -> UsageEvent {
        let usage = Usage { input_tokens: 1200, cache_read_tokens: 300, output_tokens: 80, ..Usage::default() };
        let cost = Cost {
            provider: Provider::OpenAi,
            model: "gpt-4o".into(),
            price_version: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            price_data: "test".into(),
            breakdown: Breakdown {
                input: dec!(0.003),
                cache_read: dec!(0.000375),
                output: dec!(0.0008),
                ..Breakdown::default()
            },
            total_usd: dec!(0.004175),
            currency: "USD".into(),
            rate: Decimal::ONE,
            total: dec!(0.004175),
            tier_above: None,
            uncertain: false,
        };
        let mut tags = BTreeMap::new();
        tags.insert("feature".into(), "chat".into());
        UsageEvent::new(Provider::OpenAi, Api::ChatCompletions, "gpt-4o-2024-08-06", usage)
            .with_id("chatcmpl-123")
            .with_cost(cost)
            .with_latency_ms(412)
            .with_attribution(Attribution { user_id: Some("u1".into()), tags, ..Attribution::default() })
    }

    #[test]
    fn json_round_trip_is_exact() {
        let e = priced_event();
        let line = e.to_json().unwrap_or_default();
        assert!(line.contains("\"total_usd\":\"0.004175\""), "decimals are strings: {line}");
        assert_eq!(UsageEvent::from_json(&line).ok(), Some(e));
    }

    #[test]
    fn unpriced_event_keeps_reason_and_zero_cost() {
        let e = priced_event().unpriced("unknown_model");
        assert_eq!(e.cost_usd(), Decimal::ZERO);
        assert_eq!(e.report_model(), "gpt-4o-2024-08-06");
        let back = UsageEvent::from_json(&e.to_json().unwrap_or_default()).ok();
        assert_eq!(back.and_then(|b| b.unpriced_reason), Some("unknown_model".to_string()));
    }

    #[test]
    fn fresh_ids_are_uuid_v7_and_validated() {
        let e = UsageEvent::new(Provider::Anthropic, Api::Messages, "claude", Usage::default());
        assert_eq!(uuid::Uuid::parse_str(&e.event_id).map(|u| u.get_version_num()).ok(), Some(7));
        assert_eq!(e.clone().with_id("").validate().map_err(|e| e.code()), Err(crate::ErrorCode::InvalidValue));
        assert!(e.validate().is_ok());
    }
}
