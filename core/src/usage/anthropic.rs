//! Anthropic Messages usage (direct, and Claude through Bedrock InvokeModel / Vertex).
//!
//! `input_tokens` EXCLUDES cache reads and writes (unlike OpenAI's `prompt_tokens`), so it maps to
//! uncached input as is. `cache_creation_input_tokens` is all cache writes; `cache_creation`
//! splits them into `ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens` (different rates).
//! Anthropic reports no total. `service_tier`, `speed` (fast mode) and `inference_geo` (the region that
//! served the call) sit inside `usage`; pricing uses them over what was requested.

use serde::Deserialize;

use super::raw::{obj, Count, Text};
use super::{Usage, UsageFlag, UsageSource};
use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CacheCreation {
    ephemeral_5m_input_tokens: Count,
    ephemeral_1h_input_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServerToolUse {
    web_search_requests: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AnthropicUsage<'a> {
    input_tokens: Count,
    output_tokens: Count,
    cache_creation_input_tokens: Count,
    cache_read_input_tokens: Count,
    #[serde(deserialize_with = "obj")]
    cache_creation: Option<CacheCreation>,
    #[serde(deserialize_with = "obj")]
    server_tool_use: Option<ServerToolUse>,
    #[serde(borrow)]
    service_tier: Text<'a>,
    #[serde(borrow)]
    speed: Text<'a>,
    #[serde(borrow)]
    inference_geo: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Message<'a> {
    #[serde(borrow, deserialize_with = "obj")]
    pub(crate) usage: Option<AnthropicUsage<'a>>,
}

impl AnthropicUsage<'_> {
    /// `input_tokens`, which every full report (a message, a stream's `message_start`) carries.
    pub(crate) fn input_tokens_required(&self, p: &str) -> Result<u64> {
        self.input_tokens.required(p, "input_tokens")
    }

    /// Overwrites the buckets this object reports, leaving the others as they are. A full message
    /// reports all of them; a stream's `message_delta` (cumulative) only some.
    pub(crate) fn apply(&self, u: &mut Usage, p: &str) -> Result<()> {
        if let Some(n) = self.input_tokens.get(p, "input_tokens")? {
            u.input_tokens = n;
        }
        if let Some(n) = self.output_tokens.get(p, "output_tokens")? {
            u.output_tokens = n;
        }
        if let Some(n) = self.cache_read_input_tokens.get(p, "cache_read_input_tokens")? {
            u.cache_read_tokens = n;
        }
        let total_write = self.cache_creation_input_tokens.get(p, "cache_creation_input_tokens")?;
        if let Some(n) = total_write {
            u.cache_write_tokens = n;
        }
        if let Some(cc) = &self.cache_creation {
            let m5 = cc.ephemeral_5m_input_tokens.get(p, "cache_creation.ephemeral_5m_input_tokens")?;
            let h1 = cc.ephemeral_1h_input_tokens.get(p, "cache_creation.ephemeral_1h_input_tokens")?;
            let split = m5.unwrap_or(0) + h1.unwrap_or(0);
            match total_write {
                Some(t) if (m5.is_some() || h1.is_some()) && t != split => u.flag(UsageFlag::TotalMismatch),
                Some(_) => {}
                None => u.cache_write_tokens = split,
            }
            if let Some(h1) = h1 {
                if h1 > u.cache_write_tokens {
                    return Err(Error::invalid_value(
                        format!("{p}.cache_creation.ephemeral_1h_input_tokens"),
                        h1,
                        "exceeds cache_creation_input_tokens",
                    ));
                }
                u.cache_write_1h_tokens = h1;
            }
        }
        if let Some(st) = &self.server_tool_use {
            if let Some(n) = st.web_search_requests.get(p, "server_tool_use.web_search_requests")? {
                u.web_search_requests = n;
            }
        }
        if let Some(tier) = self.service_tier.as_str() {
            u.service_tier = Some(tier.to_owned());
        }
        if let Some(speed) = self.speed.as_str() {
            u.speed = Some(speed.to_owned());
        }
        if let Some(geo) = self.inference_geo.as_str() {
            u.region = Some(geo.to_owned());
        }
        Ok(())
    }
}

pub(crate) fn message(m: &Message<'_>) -> Result<Usage> {
    let usage = m.usage.as_ref().ok_or_else(|| Error::missing_field("usage.input_tokens"))?;
    usage.input_tokens_required("usage")?;
    usage.output_tokens.required("usage", "output_tokens")?;
    let mut u = Usage { usage_source: UsageSource::Reported, ..Usage::default() };
    usage.apply(&mut u, "usage")?;
    Ok(u)
}
