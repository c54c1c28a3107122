//! Bedrock Converse / ConverseStream `usage`.
//!
//! `inputTokens` excludes cache reads and writes (they are reported as `cacheReadInputTokens` /
//! `cacheWriteInputTokens`), and `totalTokens` = input + output + cache read + cache write, checked.
//! Cache writes are 5-minute unless `cacheDetails` (cache writes per checkpoint, with `ttl` `5m`/`1h`)
//! says otherwise. Claude through Bedrock InvokeModel uses the Anthropic parser.

use serde::Deserialize;

use super::raw::{obj, objs, sub, Count, Text};
use super::{check_total, Usage, UsageSource};
use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct CacheDetail<'a> {
    #[serde(borrow)]
    ttl: Text<'a>,
    input_tokens: Count,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ConverseUsage<'a> {
    input_tokens: Count,
    output_tokens: Count,
    total_tokens: Count,
    cache_read_input_tokens: Count,
    cache_write_input_tokens: Count,
    #[serde(borrow, deserialize_with = "objs")]
    cache_details: Option<Vec<CacheDetail<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ConverseResponse<'a> {
    #[serde(borrow, deserialize_with = "obj")]
    pub(crate) usage: Option<ConverseUsage<'a>>,
}

impl ConverseUsage<'_> {
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
        let mut h1 = 0u64;
        for d in self.cache_details.iter().flatten() {
            let n = d.input_tokens.or_zero(p, "cacheDetails.inputTokens")?;
            if d.ttl.as_str() == Some("1h") {
                h1 = h1.saturating_add(n);
            }
        }
        u.cache_write_1h_tokens =
            sub(u.cache_write_tokens, h1, p, "cacheDetails", "1h writes exceed cacheWriteInputTokens").map(|_| h1)?;
        check_total(&mut u);
        Ok(u)
    }
}

pub(crate) fn converse(r: &ConverseResponse<'_>) -> Result<Usage> {
    r.usage.as_ref().ok_or_else(|| Error::missing_field("usage.inputTokens"))?.normalize("usage")
}
