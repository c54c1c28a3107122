//! The most a call can cost, computed before it is sent: what [`super::Spend::reserve`] holds.
//!
//! The prompt is counted locally ([`crate::estimate::estimate_usage`] over `messages` and `tools`; a
//! `system` prompt, a string `input` or an unknown shape are counted as text), the output is the
//! request's own cap (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) or else the
//! configured default, and the pair is priced by the cost engine, which applies the long-context tier
//! the prompt falls in (and the requested service tier). Text to speech is priced from the request.
//! A call that cannot be priced (unknown model, images, transcriptions) has no maximum: the spend
//! policy decides ([`super::UnpricedPolicy`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::currency::Rates;
use crate::error::Error;
use crate::estimate::{estimate_usage, EstimateRequest};
use crate::pricing::{PriceDb, PriceOptions};
use crate::tokens::count_text;
use crate::usage::{self, Api, Provider, Usage, UsageSource};

/// A call's worst case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaxCost {
    /// In the tracker's currency; `None` when the call cannot be priced (see `unpriced`).
    pub max_cost: Option<Decimal>,
    /// Why there is no price.
    pub unpriced: Option<Error>,
    pub input_tokens: u64,
    pub max_output_tokens: u64,
    /// The long-context tier the reservation is priced at (its threshold), when one applies.
    pub tier_above: Option<u64>,
}

impl MaxCost {
    /// Prompt plus output tokens (for token limits).
    pub fn max_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.max_output_tokens)
    }
}

/// What a call's maximum is computed from.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub provider: Provider,
    pub api: Api,
    /// The model the call is priced as.
    pub model: &'a str,
    /// The request body.
    pub body: &'a Value,
    /// The output reserved when the request sets no cap.
    pub default_max_output_tokens: u64,
}

/// The request's own output cap.
fn output_cap(body: &Value) -> Option<u64> {
    ["max_completion_tokens", "max_output_tokens", "max_tokens"].iter().find_map(|k| body.get(k)?.as_u64())
}

/// Prompt tokens of a request body.
fn prompt_tokens(model: &str, body: &Value, output: u64) -> u64 {
    let as_text = |v: &Value| -> u64 {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        count_text(model, &text).map_or(0, |c| c.tokens)
    };
    let system = body.get("system").map_or(0, as_text);
    let messages = body.get("messages").or_else(|| body.get("input"));
    let counted = match messages {
        Some(list @ Value::Array(_)) => {
            let req = EstimateRequest {
                tools: body.get("tools"),
                max_output_tokens: Some(output),
                ..EstimateRequest::new(model, list)
            };
            // A shape the chat counter does not know (Responses items, Anthropic blocks) is counted as
            // its JSON text: more than its tokens, never fewer by much.
            estimate_usage(&req).map_or_else(|_| as_text(list), |e| e.input_tokens)
        }
        Some(other) => as_text(other),
        None => 0,
    };
    let instructions = body.get("instructions").map_or(0, as_text);
    system + counted + instructions
}

/// The most `req` can cost, in `currency`.
pub fn max_cost(prices: &PriceDb, rates: &Rates, currency: &str, req: &CallRequest<'_>, at: DateTime<Utc>) -> MaxCost {
    let opts = PriceOptions {
        service_tier: req.body.get("service_tier").and_then(Value::as_str).map(str::to_string),
        ..PriceOptions::default()
    };
    let (usage, input_tokens, output) = match req.api {
        Api::AudioSpeech => match usage::parse_response(req.provider, req.api, "{}", Some(req.body)) {
            Ok(u) => (u, 0, 0),
            Err(e) => return unpriced(e, 0, 0),
        },
        Api::Embeddings => {
            let input =
                req.body.get("input").map_or(0, |v| prompt_tokens(req.model, &serde_json::json!({"input": v}), 0));
            (Usage { input_tokens: input, usage_source: UsageSource::Estimated, ..Usage::default() }, input, 0)
        }
        Api::ChatCompletions | Api::Responses | Api::Messages | Api::GenerateContent => {
            let output = output_cap(req.body).unwrap_or(req.default_max_output_tokens);
            let input = prompt_tokens(req.model, req.body, output);
            let usage = Usage {
                input_tokens: input,
                output_tokens: output,
                usage_source: UsageSource::Estimated,
                ..Usage::default()
            };
            (usage, input, output)
        }
        other => {
            let e = Error::invalid_value("api", other.as_str(), "cannot be priced before the response");
            return unpriced(e, 0, 0);
        }
    };
    match prices.price(&usage, req.model, at, &opts).and_then(|c| c.convert(rates, currency)) {
        Ok(cost) => MaxCost {
            max_cost: Some(cost.total),
            unpriced: None,
            input_tokens,
            max_output_tokens: output,
            tier_above: cost.tier_above,
        },
        Err(e) => unpriced(e, input_tokens, output),
    }
}

fn unpriced(e: Error, input_tokens: u64, max_output_tokens: u64) -> MaxCost {
    MaxCost { max_cost: None, unpriced: Some(e), input_tokens, max_output_tokens, tier_above: None }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use serde_json::json;

    use super::*;

    fn words(n: usize) -> String {
        vec!["hello"; n].join(" ")
    }

    fn cost(model: &str, api: Api, body: &Value) -> MaxCost {
        let req = CallRequest { provider: Provider::OpenAi, api, model, body, default_max_output_tokens: 4096 };
        max_cost(&PriceDb::embedded(), &Rates::new(), "USD", &req, Utc::now())
    }

    #[test]
    fn the_long_context_tier_the_prompt_falls_in_is_reserved() {
        // "hello" then 999 × " hello": 1,000 tokens, + 3 (message) + 1 ("user") + 3 (reply priming).
        let short = json!({"max_completion_tokens": 1000, "messages": [{"role": "user", "content": words(1000)}]});
        let m = cost("gpt-5.4", Api::ChatCompletions, &short);
        // 1,007 × $2.50/M + 1,000 × $15/M = 0.0025175 + 0.015.
        assert_eq!((m.input_tokens, m.max_output_tokens, m.tier_above), (1007, 1000, None));
        assert_eq!(m.max_cost, Some(dec!(0.0175175)));
        // 272,007 prompt tokens are above gpt-5.4's 272,000 threshold: every token at the tier's rates.
        let long = json!({"max_completion_tokens": 1000, "messages": [{"role": "user", "content": words(272_000)}]});
        let m = cost("gpt-5.4", Api::ChatCompletions, &long);
        // 272,007 × $5/M + 1,000 × $22.50/M = 1.360035 + 0.0225.
        assert_eq!((m.input_tokens, m.tier_above), (272_007, Some(272_000)));
        assert_eq!(m.max_cost, Some(dec!(1.382535)));
        assert_eq!(m.max_tokens(), 273_007);
    }

    #[test]
    fn without_an_output_cap_the_default_is_reserved() {
        let body = json!({"messages": [{"role": "user", "content": "Hello"}]});
        let m = cost("gpt-4o", Api::ChatCompletions, &body);
        // 8 × $2.50/M + 4,096 × $10/M = 0.00002 + 0.04096.
        assert_eq!((m.input_tokens, m.max_output_tokens, m.max_cost), (8, 4096, Some(dec!(0.04098))));
        let anthropic =
            json!({"max_tokens": 100, "system": "Be brief.", "messages": [{"role": "user", "content": "Hello"}]});
        let m = cost("claude-haiku-4-5", Api::Messages, &anthropic);
        assert!(m.input_tokens > 8, "the system prompt is counted too: {}", m.input_tokens);
        assert_eq!(m.max_output_tokens, 100);
    }

    #[test]
    fn calls_that_cannot_be_priced_have_no_maximum() {
        let body = json!({"max_tokens": 10, "messages": [{"role": "user", "content": "Hello"}]});
        let unknown = cost("gpt-9-imaginary", Api::ChatCompletions, &body);
        assert_eq!(
            (unknown.max_cost, unknown.unpriced.map(|e| e.code())),
            (None, Some(crate::ErrorCode::UnknownModel))
        );
        let image = cost("gpt-image-1", Api::Images, &json!({"prompt": "a cat"}));
        assert_eq!(image.max_cost, None);
        // Speech is priced from the request: 11 characters at $15 per million.
        let speech =
            cost("tts-1", Api::AudioSpeech, &json!({"model": "tts-1", "input": "Hello world", "voice": "alloy"}));
        assert_eq!(speech.max_cost, Some(dec!(0.000165)));
    }
}
