//! Bedrock Converse / ConverseStream `usage`.
//!
//! `inputTokens` excludes cache reads and writes (they are reported as `cacheReadInputTokens` /
//! `cacheWriteInputTokens`), and `totalTokens` = input + output + cache read + cache write, checked.
//! Bedrock cache writes use the 5-minute TTL. Claude through Bedrock InvokeModel uses the Anthropic parser.

use serde::Deserialize;

use super::raw::{obj, Count};
use super::{check_total, Usage, UsageSource};
use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ConverseUsage {
    input_tokens: Count,
    output_tokens: Count,
    total_tokens: Count,
    cache_read_input_tokens: Count,
    cache_write_input_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ConverseResponse {
    #[serde(deserialize_with = "obj")]
    pub(crate) usage: Option<ConverseUsage>,
}

impl ConverseUsage {
    pub(crate) fn normalize(&self, p: &str) -> Result<Usage> {
        let mut u = Usage {
            input_tokens: self.input_tokens.required(p, "inputTokens")?,
            output_tokens: self.output_tokens.required(p, "outputTokens")?,
            cache_read_tokens: self.cache_read_input_tokens.or_zero(p, "cacheReadInputTokens")?,
            cache_write_tokens: self.cache_write_input_tokens.or_zero(p, "cacheWriteInputTokens")?,
            provider_total_tokens: self.total_tokens.get(p, "totalTokens")?,
            usage_source: UsageSource::Reported,
            ..Usage::default()
        };
        check_total(&mut u);
        Ok(u)
    }
}

pub(crate) fn converse(r: &ConverseResponse) -> Result<Usage> {
    r.usage.as_ref().ok_or_else(|| Error::missing_field("usage.inputTokens"))?.normalize("usage")
}
