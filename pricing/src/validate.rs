//! Consistency checks over the price data, beyond what the schema's types enforce.
//!
//! Compiled twice, like `schema.rs`: into the crate and into `build.rs` via `#[path]`, where a
//! failure stops the build. Plain std only. Every problem is reported (not just the first), one
//! message each, in the form `kind: provider: model id: field = value: what is wrong`. The leading
//! `kind` (see [`Kind`]) is stable, so tools and tests can match on it.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use crate::schema::{ModelEntry, ModelMode, PriceFile, PriceVersion, TokenRates};

/// The stable kinds of problem, used as the first word of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An empty provider, model id or alias.
    EmptyName,
    /// A model id or alias used twice, in any file (an alias equal to another model's id too).
    Duplicate,
    /// A model without any price version.
    NoPrices,
    /// Price versions not strictly ascending by `effective_from`.
    UnsortedVersions,
    /// Tiers not strictly ascending by `above_prompt_tokens` (a repeated threshold included).
    UnsortedTiers,
    /// A tier whose `counted` list is empty.
    EmptyCounted,
    /// A price below zero.
    Negative,
    /// `batch_multiplier` or `regional_multiplier` outside (0, 2].
    Multiplier,
    /// Missing the components the model's mode needs.
    Mode,
    /// An empty `source`.
    EmptySource,
    /// The same size and quality listed twice in `per_image`.
    DuplicateImagePrice,
    /// A tier with neither or both of `above_prompt_tokens` and `at_least_prompt_tokens`.
    Threshold,
    /// A name that is not one the rule allows: a tier's service tier missing from the version's
    /// `service_tiers`, a search context size other than low/medium/high, an empty region or item kind.
    UnknownName,
}

impl Kind {
    /// The message prefix for this kind.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::EmptyName => "empty-name",
            Kind::Duplicate => "duplicate",
            Kind::NoPrices => "no-prices",
            Kind::UnsortedVersions => "unsorted-versions",
            Kind::UnsortedTiers => "unsorted-tiers",
            Kind::EmptyCounted => "empty-counted",
            Kind::Negative => "negative",
            Kind::Multiplier => "multiplier",
            Kind::Mode => "mode",
            Kind::EmptySource => "empty-source",
            Kind::DuplicateImagePrice => "duplicate-image-price",
            Kind::Threshold => "threshold",
            Kind::UnknownName => "unknown-name",
        }
    }
}

/// Checks every file; returns all problems found, or `Ok` when there are none.
pub fn validate(files: &[PriceFile]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    // name -> (provider, model id) of the first model that claimed it
    let mut names: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for file in files {
        let provider = file.provider.as_str();
        if provider.trim().is_empty() {
            let first = file.models.first().map_or("(no models)", |m| m.id.as_str());
            errors.push(format!("{}: (file of {first}): provider = \"\": must not be empty", Kind::EmptyName.tag()));
        }
        for model in &file.models {
            let mut report = |kind: Kind, field: &str, value: &dyn std::fmt::Display, what: &str| {
                errors.push(format!("{}: {provider}: {}: {field} = {value}: {what}", kind.tag(), model.id));
            };
            check_names(provider, model, &mut names, &mut report);
            check_model(model, &mut report);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

type Report<'r> = dyn FnMut(Kind, &str, &dyn std::fmt::Display, &str) + 'r;

fn check_names<'a>(
    provider: &'a str,
    model: &'a ModelEntry,
    names: &mut BTreeMap<&'a str, (&'a str, &'a str)>,
    report: &mut Report<'_>,
) {
    let all = std::iter::once(("id", &model.id)).chain(model.aliases.iter().map(|a| ("aliases", a)));
    for (field, name) in all {
        if name.trim().is_empty() {
            report(Kind::EmptyName, field, &format!("{name:?}"), "must not be empty");
            continue;
        }
        match names.get(name.as_str()) {
            Some((other_provider, other_model)) => {
                report(Kind::Duplicate, field, name, &format!("already used by {other_provider}: {other_model}"))
            }
            None => {
                names.insert(name, (provider, &model.id));
            }
        }
    }
}

fn check_model(model: &ModelEntry, report: &mut Report<'_>) {
    if model.prices.is_empty() {
        report(Kind::NoPrices, "prices", &"[]", "a model needs at least one price version");
    }
    for pair in model.prices.windows(2) {
        if pair[1].effective_from <= pair[0].effective_from {
            report(
                Kind::UnsortedVersions,
                "prices.effective_from",
                &pair[1].effective_from,
                &format!("must be after the previous version's {}", pair[0].effective_from),
            );
        }
    }
    for (i, version) in model.prices.iter().enumerate() {
        check_version(model.mode, i, version, report);
    }
}

fn check_version(mode: ModelMode, i: usize, v: &PriceVersion, report: &mut Report<'_>) {
    let at = |field: &str| format!("prices[{i}].{field}");
    if v.source.trim().is_empty() {
        report(Kind::EmptySource, &at("source"), &format!("{:?}", v.source), "every price needs a source");
    }
    check_rates(&at(""), &v.rates, report);
    // The smallest prompt of the previous tier, compared on that (so `above: N` equals `at_least: N + 1`).
    let mut last_min: Option<u64> = None;
    for (t, tier) in v.tiers.iter().enumerate() {
        let field = at(&format!("tiers[{t}]"));
        let name = if tier.at_least_prompt_tokens.is_some() { "at_least_prompt_tokens" } else { "above_prompt_tokens" };
        match (tier.min_prompt_tokens(), last_min) {
            (None, _) => {
                let (value, what) = if tier.above_prompt_tokens.is_some() {
                    ("both", "set above_prompt_tokens or at_least_prompt_tokens, not both")
                } else {
                    ("none", "needs above_prompt_tokens or at_least_prompt_tokens")
                };
                report(Kind::Threshold, &format!("{field}.{name}"), &value, what);
            }
            (Some(min), Some(last)) if min <= last => {
                let what = if min == last {
                    "repeats the previous tier's threshold"
                } else {
                    "must be above the previous tier's threshold"
                };
                report(Kind::UnsortedTiers, &format!("{field}.{name}"), &tier.threshold(), what);
            }
            _ => {}
        }
        if let Some(min) = tier.min_prompt_tokens() {
            last_min = Some(min);
        }
        if tier.counted.is_empty() {
            report(Kind::EmptyCounted, &format!("{field}.counted"), &"[]", "must name the token classes that count");
        }
        check_rates(&format!("{field}.rates."), &tier.rates, report);
        for (name, rates) in &tier.service_tiers {
            let f = format!("{field}.service_tiers.{name}");
            if !v.service_tiers.contains_key(name) {
                report(Kind::UnknownName, &f, name, "no service tier of that name in this version's service_tiers");
            }
            check_rates(&format!("{f}."), rates, report);
        }
    }
    for (name, rates) in &v.service_tiers {
        check_rates(&at(&format!("service_tiers.{name}.")), rates, report);
    }
    let mut seen_images = BTreeSet::new();
    for (p, image) in v.per_image.iter().enumerate() {
        non_negative(&at(&format!("per_image[{p}].price")), image.price, report);
        if !seen_images.insert((image.size.as_str(), image.quality.as_str())) {
            report(
                Kind::DuplicateImagePrice,
                &at(&format!("per_image[{p}]")),
                &format!("{} {}", image.size, image.quality),
                "size and quality listed twice",
            );
        }
    }
    for (size, price) in &v.web_search_per_1k_by_context {
        let f = at(&format!("web_search_per_1k_by_context.{size}"));
        if !matches!(size.as_str(), "low" | "medium" | "high") {
            report(Kind::UnknownName, &f, size, "a search context size is low, medium or high");
        }
        non_negative(&f, *price, report);
    }
    for (kind, price) in &v.per_item {
        let f = at(&format!("per_item.{kind}"));
        if kind.trim().is_empty() {
            report(Kind::UnknownName, &f, &format!("{kind:?}"), "an item kind must not be empty");
        }
        non_negative(&f, *price, report);
    }
    for (region, value) in &v.regional_multipliers {
        let f = at(&format!("regional_multipliers.{region}"));
        if region.trim().is_empty() {
            report(Kind::UnknownName, &f, &format!("{region:?}"), "a region must not be empty");
        }
        if *value <= Decimal::ZERO || *value > Decimal::TWO {
            report(Kind::Multiplier, &f, value, "must be in (0, 2]");
        }
    }
    let flat = [
        ("per_audio_minute", v.per_audio_minute),
        ("per_million_characters", v.per_million_characters),
        ("per_request", v.per_request),
        ("web_search_per_1k", v.web_search_per_1k),
        ("grounding_per_1k", v.grounding_per_1k),
        ("grounding_per_1k_prompts", v.grounding_per_1k_prompts),
        ("per_video_second", v.per_video_second),
        ("cache_storage_per_hour", v.cache_storage_per_hour),
    ];
    for (field, value) in flat {
        if let Some(value) = value {
            non_negative(&at(field), value, report);
        }
    }
    for (field, value) in [("batch_multiplier", v.batch_multiplier), ("regional_multiplier", v.regional_multiplier)] {
        if let Some(value) = value {
            if value <= Decimal::ZERO || value > Decimal::TWO {
                report(Kind::Multiplier, &at(field), &value, "must be in (0, 2]");
            }
        }
    }
    check_mode(mode, &at(""), v, report);
}

fn check_mode(mode: ModelMode, at: &str, v: &PriceVersion, report: &mut Report<'_>) {
    let r = &v.rates;
    let (ok, need) = match mode {
        ModelMode::Chat => (r.input.is_some() && r.output.is_some(), "a chat model needs input and output"),
        ModelMode::Embedding => (r.input.is_some(), "an embedding model needs input"),
        ModelMode::ImageGeneration => {
            (!v.per_image.is_empty() || r.image_output.is_some(), "an image model needs per_image or image_output")
        }
        ModelMode::AudioTranscription => (
            v.per_audio_minute.is_some() || r.audio_input.is_some(),
            "a transcription model needs per_audio_minute or audio_input",
        ),
        ModelMode::VideoGeneration => (
            v.per_video_second.is_some() || v.per_item.contains_key("video"),
            "a video model needs per_video_second or per_item.video",
        ),
        ModelMode::AudioSpeech => (
            v.per_million_characters.is_some() || r.audio_output.is_some(),
            "a speech model needs per_million_characters or audio_output",
        ),
    };
    if !ok {
        report(Kind::Mode, &format!("{at}mode"), &format!("{mode:?}"), need);
    }
}

/// The token rate fields by name, for checks that treat them alike.
fn rate_fields(r: &TokenRates) -> [(&'static str, Option<Decimal>); 13] {
    [
        ("input", r.input),
        ("output", r.output),
        ("cache_read", r.cache_read),
        ("cache_write_5m", r.cache_write_5m),
        ("cache_write_1h", r.cache_write_1h),
        ("cache_write_12h", r.cache_write_12h),
        ("reasoning_output", r.reasoning_output),
        ("audio_input", r.audio_input),
        ("audio_cache_read", r.audio_cache_read),
        ("audio_output", r.audio_output),
        ("image_input", r.image_input),
        ("image_cache_read", r.image_cache_read),
        ("image_output", r.image_output),
    ]
}

fn check_rates(prefix: &str, rates: &TokenRates, report: &mut Report<'_>) {
    for (field, value) in rate_fields(rates) {
        if let Some(value) = value {
            non_negative(&format!("{prefix}{field}"), value, report);
        }
    }
}

fn non_negative(field: &str, value: Decimal, report: &mut Report<'_>) {
    if value.is_sign_negative() && !value.is_zero() {
        report(Kind::Negative, field, &value, "must not be negative");
    }
}
