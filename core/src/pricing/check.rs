//! Run-time validation of price data loaded after build time (our format, LiteLLM conversions, custom
//! prices).
//!
//! MERGE NOTE: this is a stand-in with the same signature as `llmledger_pricing::validate::validate`,
//! which is being written with the price data. When that lands, the body of [`validate`] becomes
//! `llmledger_pricing::validate::validate(files)` and the helpers below are deleted, so build time and
//! run time apply one set of rules.

use std::collections::HashSet;

use rust_decimal::Decimal;

use super::{PriceFile, PriceVersion, TokenRates};
use crate::usage::Provider;

/// Every problem found, each naming the file, model and field.
pub(super) fn validate(files: &[PriceFile]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut names: HashSet<&str> = HashSet::new();
    for file in files {
        if file.provider.parse::<Provider>().is_err() {
            problems.push(format!("unknown provider `{}`", file.provider));
        }
        for model in &file.models {
            let at = format!("{}/{}", file.provider, model.id);
            for name in std::iter::once(&model.id).chain(&model.aliases) {
                if name.trim().is_empty() {
                    problems.push(format!("{at}: empty id or alias"));
                } else if !names.insert(name) {
                    problems.push(format!("{at}: duplicate id or alias `{name}`"));
                }
            }
            if model.prices.is_empty() {
                problems.push(format!("{at}: no price versions"));
            }
            for pair in model.prices.windows(2) {
                if pair[0].effective_from >= pair[1].effective_from {
                    problems.push(format!("{at}: price versions not sorted by effective_from"));
                }
            }
            for version in &model.prices {
                check_version(&format!("{at}@{}", version.effective_from), version, &mut problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_version(at: &str, v: &PriceVersion, problems: &mut Vec<String>) {
    check_rates(at, &v.rates, problems);
    for pair in v.tiers.windows(2) {
        if pair[0].above_prompt_tokens >= pair[1].above_prompt_tokens {
            problems.push(format!("{at}: tiers not sorted by above_prompt_tokens"));
        }
    }
    for tier in &v.tiers {
        if tier.counted.is_empty() {
            problems.push(format!("{at}: tier above {} counts no token class", tier.above_prompt_tokens));
        }
        check_rates(&format!("{at} tier above {}", tier.above_prompt_tokens), &tier.rates, problems);
    }
    for (name, rates) in &v.service_tiers {
        check_rates(&format!("{at} service tier {name}"), rates, problems);
    }
    let mut images = HashSet::new();
    for image in &v.per_image {
        nonnegative(at, "per_image.price", Some(image.price), problems);
        if !images.insert((&image.size, &image.quality)) {
            problems.push(format!("{at}: duplicate per_image {}/{}", image.size, image.quality));
        }
    }
    nonnegative(at, "per_audio_minute", v.per_audio_minute, problems);
    nonnegative(at, "per_million_characters", v.per_million_characters, problems);
    nonnegative(at, "per_request", v.per_request, problems);
    nonnegative(at, "web_search_per_1k", v.web_search_per_1k, problems);
    for (field, mult) in [("batch_multiplier", v.batch_multiplier), ("regional_multiplier", v.regional_multiplier)] {
        if mult.is_some_and(|m| m <= Decimal::ZERO) {
            problems.push(format!("{at}: {field} must be positive"));
        }
    }
}

fn check_rates(at: &str, r: &TokenRates, problems: &mut Vec<String>) {
    let fields = [
        ("input", r.input),
        ("output", r.output),
        ("cache_read", r.cache_read),
        ("cache_write_5m", r.cache_write_5m),
        ("cache_write_1h", r.cache_write_1h),
        ("reasoning_output", r.reasoning_output),
        ("audio_input", r.audio_input),
        ("audio_cache_read", r.audio_cache_read),
        ("audio_output", r.audio_output),
        ("image_input", r.image_input),
        ("image_cache_read", r.image_cache_read),
        ("image_output", r.image_output),
    ];
    for (field, value) in fields {
        nonnegative(at, field, value, problems);
    }
}

fn nonnegative(at: &str, field: &str, value: Option<Decimal>, problems: &mut Vec<String>) {
    if let Some(v) = value.filter(|v| *v < Decimal::ZERO) {
        problems.push(format!("{at}: {field} = {v} is negative"));
    }
}
