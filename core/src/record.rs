//! The one record of a tracked call, [`Tracked`], and its serialized shape: the flat JSON object both
//! bindings expose as is (Python's `Usage` attributes and `to_dict()`, Node's `_tokenUsage`).
//!
//! The shape is written here once, by hand, so that its key set is fixed: every key is always present
//! (`null`, `0`, `[]` or `{}` when it does not apply), keys are snake_case, counts are JSON numbers and
//! every decimal (money, seconds, token-hours, rates) is a string without trailing zeros.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::event::{Attribution, Status, UsageEvent};
use crate::pricing::{Breakdown, Cost, PriceOptions};
use crate::usage::{Api, Provider, Usage};

/// One recorded call, as the caller sees it: the record `result._token_usage` (Python) and
/// `result._tokenUsage` (Node) are built from.
///
/// # Serialized shape (the binding contract)
///
/// One flat JSON object with exactly these keys, in this order ([`Tracked::KEYS`]):
///
/// | key | JSON | meaning |
/// |---|---|---|
/// | `event_id` | string | the idempotency key: the provider's response id, else a UUIDv7 |
/// | `timestamp` | string | RFC 3339, UTC, microseconds (`2026-11-02T01:30:00.000000Z`) |
/// | `provider`, `api` | string | `openai`, … / `chat_completions`, … |
/// | `model` | string | as requested (Azure: the deployment name) |
/// | `resolved_model` | string \| null | the priced model id; null when unpriced |
/// | `input_tokens` … `image_input_tokens` | number | the disjoint input buckets of [`Usage`]: `input_tokens`, `cache_read_tokens`, `cache_write_tokens` (of which `cache_write_1h_tokens`, `cache_write_12h_tokens`), `audio_input_tokens`, `audio_cache_read_tokens`, `image_input_tokens` |
/// | `output_tokens` … `image_output_tokens` | number | all billed output, and its parts `reasoning_tokens`, `audio_output_tokens`, `image_output_tokens` |
/// | `prompt_tokens`, `total_tokens` | number | [`Usage::prompt_tokens`], [`Usage::total_tokens`] |
/// | `provider_total_tokens` | number \| null | the provider's own total, when reported |
/// | `web_search_requests`, `grounding_queries`, `input_characters` | number | per-call units |
/// | `web_search_context_size` | string \| null | `low` / `medium` / `high` |
/// | `audio_seconds`, `video_seconds`, `cache_storage_token_hours` | string \| null | decimal units |
/// | `images` | object \| null | `{count, size, quality}` |
/// | `media_items` | object | kind → count |
/// | `usage_source` | string | `reported`, `partial`, `estimated`, `none` |
/// | `estimated` | bool | [`crate::UsageSource::is_estimate`]: true unless the provider reported every count |
/// | `flags` | string[] | `total_mismatch`, `stream_aborted`, `stream_without_usage`, `approximate_tokenizer` |
/// | `service_tier`, `speed`, `region` | string \| null | what the provider reported |
/// | `cost` | object \| null | [`CostView`]; null when unpriced |
/// | `breakdown` | object \| null | `cost.breakdown`: per component in `currency`, summing exactly to `cost.total` |
/// | `currency` | string | the tracker's currency, also when unpriced |
/// | `pricing_error` | object \| null | why unpriced: `{code, message, field, value, suggestions}` ([`Error`]'s shape) |
/// | `request_id` | string \| null | the provider's response id |
/// | `user_id`, `workspace_id`, `project`, `session_id`, `conversation_id` | string \| null | attribution |
/// | `tags` | object | attribution tags, string → string |
/// | `latency_ms` | number | from the start of the call to its end |
/// | `success` | bool | false when the provider or the connection failed |
/// | `error_class` | string \| null | the failure's class (never a message body) |
#[derive(Debug, Clone)]
pub struct Tracked {
    pub event_id: String,
    pub timestamp: DateTime<Utc>,
    pub provider: Provider,
    pub api: Api,
    /// As requested.
    pub model: String,
    /// The canonical priced model id, when it resolved.
    pub resolved_model: Option<String>,
    pub usage: Usage,
    /// In the tracker's currency; `None` when unpriced (see `pricing_error`).
    pub cost: Option<Cost>,
    /// The tracker's currency (the same as `cost.currency` when priced).
    pub currency: String,
    pub pricing_error: Option<Error>,
    pub attribution: Attribution,
    pub latency_ms: u64,
    pub success: bool,
    pub error_class: Option<String>,
    pub request_id: Option<String>,
}

impl Tracked {
    /// Every key of the serialized record, in order.
    pub const KEYS: [&'static str; 50] = [
        "event_id",
        "timestamp",
        "provider",
        "api",
        "model",
        "resolved_model",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "cache_write_12h_tokens",
        "audio_input_tokens",
        "audio_cache_read_tokens",
        "image_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "audio_output_tokens",
        "image_output_tokens",
        "prompt_tokens",
        "total_tokens",
        "provider_total_tokens",
        "web_search_requests",
        "web_search_context_size",
        "grounding_queries",
        "input_characters",
        "audio_seconds",
        "video_seconds",
        "cache_storage_token_hours",
        "images",
        "media_items",
        "usage_source",
        "estimated",
        "flags",
        "service_tier",
        "speed",
        "region",
        "cost",
        "breakdown",
        "currency",
        "pricing_error",
        "request_id",
        "user_id",
        "workspace_id",
        "project",
        "session_id",
        "conversation_id",
        "tags",
        "latency_ms",
        "success",
        "error_class",
    ];

    /// The ledger's record of this call: counts, cost and attribution, never any text.
    pub(crate) fn to_event(&self, price_options: PriceOptions) -> UsageEvent {
        // One struct literal rather than `UsageEvent::new` and its builders: that would mint a UUID
        // (a `getrandom` syscall) only to overwrite it, and move the large event once per builder.
        let (cost, resolved_model, unpriced_reason) = match (&self.cost, &self.pricing_error) {
            (Some(cost), _) => (Some(cost.clone()), Some(cost.model.clone()), None),
            (None, Some(e)) => (None, None, Some(e.code().as_str().to_string())),
            (None, None) => (None, None, None),
        };
        let error_class = self.error_class.clone().filter(|_| !self.success);
        UsageEvent {
            event_id: self.event_id.clone(),
            timestamp: self.timestamp,
            provider: self.provider,
            api: self.api,
            model: self.model.clone(),
            resolved_model,
            usage: self.usage.clone(),
            cost,
            unpriced_reason,
            attribution: self.attribution.clone(),
            latency_ms: Some(self.latency_ms),
            status: if error_class.is_some() { Status::Failure } else { Status::Success },
            error_class,
            price_options,
        }
    }

    /// The record as JSON text (the shape above).
    pub fn to_json(&self) -> String {
        // Plain strings, numbers and maps: serialization cannot fail; the fallback is unreachable.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A decimal as a string without trailing zeros (`7.263630` → `"7.26363"`).
struct Dec(Decimal);

impl Serialize for Dec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.normalize())
    }
}

impl Serialize for Tracked {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = &self.usage;
        let a = &self.attribution;
        let dec = |d: Option<Decimal>| d.map(Dec);
        let mut m = s.serialize_struct("Tracked", Self::KEYS.len())?;
        m.serialize_field("event_id", &self.event_id)?;
        m.serialize_field("timestamp", &self.timestamp.to_rfc3339_opts(SecondsFormat::Micros, true))?;
        // `as_str`, not serde: the enum's serde name of OpenAI is `open_ai` (kept for stored events).
        m.serialize_field("provider", self.provider.as_str())?;
        m.serialize_field("api", self.api.as_str())?;
        m.serialize_field("model", &self.model)?;
        m.serialize_field("resolved_model", &self.resolved_model)?;
        m.serialize_field("input_tokens", &u.input_tokens)?;
        m.serialize_field("cache_read_tokens", &u.cache_read_tokens)?;
        m.serialize_field("cache_write_tokens", &u.cache_write_tokens)?;
        m.serialize_field("cache_write_1h_tokens", &u.cache_write_1h_tokens)?;
        m.serialize_field("cache_write_12h_tokens", &u.cache_write_12h_tokens)?;
        m.serialize_field("audio_input_tokens", &u.audio_input_tokens)?;
        m.serialize_field("audio_cache_read_tokens", &u.audio_cache_read_tokens)?;
        m.serialize_field("image_input_tokens", &u.image_input_tokens)?;
        m.serialize_field("output_tokens", &u.output_tokens)?;
        m.serialize_field("reasoning_tokens", &u.reasoning_tokens)?;
        m.serialize_field("audio_output_tokens", &u.audio_output_tokens)?;
        m.serialize_field("image_output_tokens", &u.image_output_tokens)?;
        m.serialize_field("prompt_tokens", &u.prompt_tokens())?;
        m.serialize_field("total_tokens", &u.total_tokens())?;
        m.serialize_field("provider_total_tokens", &u.provider_total_tokens)?;
        m.serialize_field("web_search_requests", &u.web_search_requests)?;
        m.serialize_field("web_search_context_size", &u.web_search_context_size)?;
        m.serialize_field("grounding_queries", &u.grounding_queries)?;
        m.serialize_field("input_characters", &u.input_characters)?;
        m.serialize_field("audio_seconds", &dec(u.audio_seconds))?;
        m.serialize_field("video_seconds", &dec(u.video_seconds))?;
        m.serialize_field("cache_storage_token_hours", &dec(u.cache_storage_token_hours))?;
        m.serialize_field("images", &u.images)?;
        m.serialize_field("media_items", &u.media_items)?;
        m.serialize_field("usage_source", &u.usage_source)?;
        m.serialize_field("estimated", &u.usage_source.is_estimate())?;
        m.serialize_field("flags", &u.flags)?;
        m.serialize_field("service_tier", &u.service_tier)?;
        m.serialize_field("speed", &u.speed)?;
        m.serialize_field("region", &u.region)?;
        let breakdown = self.cost.as_ref().map(|c| BreakdownView::new(&c.breakdown, c.rate));
        let cost = self.cost.as_ref().zip(breakdown.as_ref()).map(|(cost, breakdown)| CostFields { cost, breakdown });
        m.serialize_field("cost", &cost)?;
        m.serialize_field("breakdown", &breakdown)?;
        m.serialize_field("currency", &self.currency)?;
        m.serialize_field("pricing_error", &self.pricing_error)?;
        m.serialize_field("request_id", &self.request_id)?;
        m.serialize_field("user_id", &a.user_id)?;
        m.serialize_field("workspace_id", &a.workspace_id)?;
        m.serialize_field("project", &a.project)?;
        m.serialize_field("session_id", &a.session_id)?;
        m.serialize_field("conversation_id", &a.conversation_id)?;
        m.serialize_field("tags", &a.tags)?;
        m.serialize_field("latency_ms", &self.latency_ms)?;
        m.serialize_field("success", &self.success)?;
        m.serialize_field("error_class", &self.error_class)?;
        m.end()
    }
}

/// The non-zero components of a breakdown, each multiplied by `rate`, in field order, rendered once
/// (the record shows the converted breakdown twice). With the rate a cost was converted at, they sum
/// exactly to its `total`: `Σ cᵢ·r = (Σ cᵢ)·r`, and no product here is rounded.
#[derive(Debug)]
pub struct BreakdownView(Vec<(&'static str, String)>);

impl BreakdownView {
    pub fn new(breakdown: &Breakdown, rate: Decimal) -> Self {
        let parts = breakdown.components().into_iter().filter(|(_, v)| !v.is_zero());
        // Saturating: never a panic; a component cannot overflow when the converted total did not.
        Self(parts.map(|(name, v)| (name, v.saturating_mul(rate).normalize().to_string())).collect())
    }
}

impl Serialize for BreakdownView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, amount) in &self.0 {
            m.serialize_entry(name, amount)?;
        }
        m.end()
    }
}

/// A [`Cost`] as the record's `cost` (and the bindings' `cost()` result) serializes it:
/// `{total, total_usd, currency, rate, breakdown, breakdown_usd, model, price_version, price_data,
/// tier_above, uncertain}` — `breakdown` in `currency` summing to `total`, `breakdown_usd` in USD
/// summing to `total_usd` (non-zero components only), `price_version` `YYYY-MM-DD`.
#[derive(Debug)]
pub struct CostView<'a>(pub &'a Cost);

impl CostView<'_> {
    /// Every key of the serialized cost, in order.
    pub const KEYS: [&'static str; 11] = [
        "total",
        "total_usd",
        "currency",
        "rate",
        "breakdown",
        "breakdown_usd",
        "model",
        "price_version",
        "price_data",
        "tier_above",
        "uncertain",
    ];
}

impl Serialize for CostView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CostFields { cost: self.0, breakdown: &BreakdownView::new(&self.0.breakdown, self.0.rate) }.serialize(s)
    }
}

/// [`CostView`] with its converted breakdown already rendered.
struct CostFields<'a> {
    cost: &'a Cost,
    breakdown: &'a BreakdownView,
}

impl Serialize for CostFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.cost;
        let mut m = s.serialize_struct("Cost", CostView::KEYS.len())?;
        m.serialize_field("total", &Dec(c.total))?;
        m.serialize_field("total_usd", &Dec(c.total_usd))?;
        m.serialize_field("currency", &c.currency)?;
        m.serialize_field("rate", &Dec(c.rate))?;
        m.serialize_field("breakdown", self.breakdown)?;
        if c.rate == Decimal::ONE {
            m.serialize_field("breakdown_usd", self.breakdown)?;
        } else {
            m.serialize_field("breakdown_usd", &BreakdownView::new(&c.breakdown, Decimal::ONE))?;
        }
        m.serialize_field("model", &c.model)?;
        m.serialize_field("price_version", &c.price_version)?;
        m.serialize_field("price_data", &c.price_data)?;
        m.serialize_field("tier_above", &c.tier_above)?;
        m.serialize_field("uncertain", &c.uncertain)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, TimeZone};
    use rust_decimal_macros::dec;
    use serde_json::json;

    use super::*;
    use crate::usage::{UsageFlag, UsageSource};

    /// gpt-4o, 1,200 prompt tokens of which 1,024 cached, 350 output, billed in KRW at 1,391.50 per USD.
    fn krw_record() -> Tracked {
        let usage = Usage {
            input_tokens: 176,
            cache_read_tokens: 1024,
            output_tokens: 350,
            provider_total_tokens: Some(1550),
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        // $2.50/M × 176 = 0.00044; $1.25/M × 1,024 = 0.00128; $10/M × 350 = 0.0035; Σ = $0.00522.
        let cost = Cost {
            provider: Provider::OpenAi,
            model: "gpt-4o-2024-08-06".into(),
            price_version: NaiveDate::from_ymd_opt(2024, 8, 6).unwrap_or_default(),
            price_data: "2026.11.1".into(),
            breakdown: Breakdown {
                input: dec!(0.00044),
                cache_read: dec!(0.00128),
                output: dec!(0.0035),
                ..Breakdown::default()
            },
            total_usd: dec!(0.00522),
            currency: "KRW".into(),
            rate: dec!(1391.50),
            total: dec!(7.2636300),
            tier_above: None,
            uncertain: false,
        };
        let mut tags = BTreeMap::new();
        tags.insert("feature".to_string(), "chat".to_string());
        Tracked {
            event_id: "chatcmpl-1".into(),
            timestamp: Utc.with_ymd_and_hms(2026, 11, 2, 1, 30, 0).single().unwrap_or_default(),
            provider: Provider::OpenAi,
            api: Api::ChatCompletions,
            model: "gpt-4o".into(),
            resolved_model: Some("gpt-4o-2024-08-06".into()),
            usage,
            cost: Some(cost),
            currency: "KRW".into(),
            pricing_error: None,
            attribution: Attribution { user_id: Some("u1".into()), tags, ..Attribution::default() },
            latency_ms: 412,
            success: true,
            error_class: None,
            request_id: Some("chatcmpl-1".into()),
        }
    }

    #[test]
    fn the_record_has_the_documented_keys_and_values() {
        let record: serde_json::Value = serde_json::from_str(&krw_record().to_json()).unwrap_or_default();
        // KRW = USD × 1,391.5: 0.00044 → 0.61226, 0.00128 → 1.78112, 0.0035 → 4.87025;
        // Σ = 7.26363 = 0.00522 × 1,391.5.
        let expected: serde_json::Value = serde_json::from_str(
            r#"{
            "event_id": "chatcmpl-1",
            "timestamp": "2026-11-02T01:30:00.000000Z",
            "provider": "openai",
            "api": "chat_completions",
            "model": "gpt-4o",
            "resolved_model": "gpt-4o-2024-08-06",
            "input_tokens": 176,
            "cache_read_tokens": 1024,
            "cache_write_tokens": 0,
            "cache_write_1h_tokens": 0,
            "cache_write_12h_tokens": 0,
            "audio_input_tokens": 0,
            "audio_cache_read_tokens": 0,
            "image_input_tokens": 0,
            "output_tokens": 350,
            "reasoning_tokens": 0,
            "audio_output_tokens": 0,
            "image_output_tokens": 0,
            "prompt_tokens": 1200,
            "total_tokens": 1550,
            "provider_total_tokens": 1550,
            "web_search_requests": 0,
            "web_search_context_size": null,
            "grounding_queries": 0,
            "input_characters": 0,
            "audio_seconds": null,
            "video_seconds": null,
            "cache_storage_token_hours": null,
            "images": null,
            "media_items": {},
            "usage_source": "reported",
            "estimated": false,
            "flags": [],
            "service_tier": null,
            "speed": null,
            "region": null,
            "cost": {
                "total": "7.26363",
                "total_usd": "0.00522",
                "currency": "KRW",
                "rate": "1391.5",
                "breakdown": {"input": "0.61226", "cache_read": "1.78112", "output": "4.87025"},
                "breakdown_usd": {"input": "0.00044", "cache_read": "0.00128", "output": "0.0035"},
                "model": "gpt-4o-2024-08-06",
                "price_version": "2024-08-06",
                "price_data": "2026.11.1",
                "tier_above": null,
                "uncertain": false
            },
            "breakdown": {"input": "0.61226", "cache_read": "1.78112", "output": "4.87025"},
            "currency": "KRW",
            "pricing_error": null,
            "request_id": "chatcmpl-1",
            "user_id": "u1",
            "workspace_id": null,
            "project": null,
            "session_id": null,
            "conversation_id": null,
            "tags": {"feature": "chat"},
            "latency_ms": 412,
            "success": true,
            "error_class": null
        }"#,
        )
        .unwrap_or_default();
        assert_eq!(record, expected);
        let keys: Vec<&str> = record.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        let mut documented = Tracked::KEYS.to_vec();
        documented.sort_unstable();
        assert_eq!(keys, documented, "serde_json orders keys; the set is what counts");
        assert_eq!(record["cost"].as_object().map(|c| c.len()), Some(CostView::KEYS.len()));
    }

    #[test]
    fn an_unpriced_record_keeps_the_currency_and_the_error_shape() {
        let mut t = krw_record();
        t.cost = None;
        t.resolved_model = None;
        t.pricing_error = Some(Error::unknown_model("gpt-4oo", vec!["gpt-4o".into()]));
        t.usage.usage_source = UsageSource::Estimated;
        t.usage.flags = vec![UsageFlag::StreamAborted];
        t.usage.audio_seconds = Some(dec!(12.50));
        let record: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap_or_default();
        assert_eq!(
            (&record["cost"], &record["breakdown"], &record["currency"]),
            (&json!(null), &json!(null), &json!("KRW"))
        );
        let error = json!({
            "code": "unknown_model",
            "message": "unknown model `gpt-4oo`; did you mean gpt-4o?",
            "field": "model",
            "value": "gpt-4oo",
            "suggestions": ["gpt-4o"],
        });
        assert_eq!(record["pricing_error"], error);
        assert_eq!((&record["estimated"], &record["flags"]), (&json!(true), &json!(["stream_aborted"])));
        assert_eq!(record["audio_seconds"], json!("12.5"));
        assert_eq!(record.as_object().map(|o| o.len()), Some(Tracked::KEYS.len()));
    }
}
