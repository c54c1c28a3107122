//! Conversion of LiteLLM's `model_prices_and_context_window.json` into our price files.
//!
//! LiteLLM writes USD per token as JSON floats (`2.5e-06`). Each number's JSON text is read as a
//! decimal (through `RawValue`, never a binary float) and multiplied by 1,000,000, so the converted per-1M rate
//! is exactly the decimal LiteLLM wrote. Mapping:
//! - `<field>`, `<field>_above_<N>k_tokens` (a long-context tier above N×1000 prompt tokens, all input
//!   classes counted), `<field>_flex` / `<field>_priority` (service tiers), `<field>_batches` (→
//!   `batch_multiplier` when input and output batch rates are the same exact fraction of the base).
//!   A service tier inside a long-context tier (`…_above_200k_tokens_priority`) has no place in our
//!   schema and is dropped.
//! - `input_cost_per_second` of transcription models → `per_audio_minute` (× 60);
//!   `input_cost_per_character` → `per_million_characters`; `input_cost_per_request` → `per_request`;
//!   `search_context_cost_per_query.search_context_size_medium` → `web_search_per_1k` (× 1000), and each
//!   of `…_low` / `…_medium` / `…_high` → `web_search_per_1k_by_context` (× 1000).
//! - Only providers llmledger knows are kept (`openai`, `text-completion-openai`, `azure`,
//!   `azure_text`, `anthropic`, `gemini`, `bedrock`, `bedrock_converse`, `xai`); modes other than chat, realtime,
//!   completion, responses, embedding, image generation, transcription and speech are skipped, as are
//!   entries with no price we can represent (e.g. per-pixel or per-image only).
//! - Each LiteLLM key becomes a model id; a routed key (`gemini/gemini-2.5-pro`) also gets the bare name
//!   as an alias when no other entry uses or wants it (`azure/gpt-4o` does not take `gpt-4o`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use super::resolve::strip_routes;
use super::{ModelMode, PriceFile, PriceVersion, Tier, TokenClass, TokenRates};
use crate::error::{Error, ErrorCode, Result};
use crate::usage::Provider;

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

type Setter = fn(&mut TokenRates) -> &mut Option<Decimal>;

/// LiteLLM per-token field names and the rate each sets, longest first so that
/// `cache_creation_input_token_cost_above_1hr` is not read as a tier of `cache_creation_input_token_cost`.
const TOKEN_FIELDS: [(&str, Setter); 12] = [
    ("cache_creation_input_token_cost_above_1hr", |r| &mut r.cache_write_1h),
    ("cache_read_input_audio_token_cost", |r| &mut r.audio_cache_read),
    ("cache_read_input_image_token_cost", |r| &mut r.image_cache_read),
    ("cache_creation_input_token_cost", |r| &mut r.cache_write_5m),
    ("output_cost_per_reasoning_token", |r| &mut r.reasoning_output),
    ("cache_read_input_token_cost", |r| &mut r.cache_read),
    ("output_cost_per_audio_token", |r| &mut r.audio_output),
    ("output_cost_per_image_token", |r| &mut r.image_output),
    ("input_cost_per_audio_token", |r| &mut r.audio_input),
    ("input_cost_per_image_token", |r| &mut r.image_input),
    ("output_cost_per_token", |r| &mut r.output),
    ("input_cost_per_token", |r| &mut r.input),
];

fn provider(name: &str) -> Option<Provider> {
    Some(match name {
        "openai" | "text-completion-openai" => Provider::OpenAi,
        "azure" | "azure_text" => Provider::Azure,
        "anthropic" => Provider::Anthropic,
        "gemini" => Provider::Gemini,
        "bedrock" | "bedrock_converse" => Provider::Bedrock,
        "xai" => Provider::Xai,
        _ => return None,
    })
}

fn mode(name: Option<&str>) -> Option<ModelMode> {
    Some(match name {
        None | Some("chat" | "completion" | "responses" | "realtime") => ModelMode::Chat,
        Some("embedding") => ModelMode::Embedding,
        Some("image_generation") => ModelMode::ImageGeneration,
        Some("audio_transcription") => ModelMode::AudioTranscription,
        Some("audio_speech") => ModelMode::AudioSpeech,
        Some("video_generation") => ModelMode::VideoGeneration,
        Some(_) => return None,
    })
}

/// Where a suffixed per-token field goes.
#[derive(Debug, PartialEq, Eq)]
enum Slot<'a> {
    Base,
    Tier(u64),
    Service(&'a str),
    Batch,
    /// A combination our schema cannot hold (service tier within a long-context tier, unknown suffix).
    Dropped,
}

/// `""`, `_above_<N>k_tokens`, `_<service>`, `_above_<N>k_tokens_<service>`; `None` when `rest` is not a
/// suffix at all (so a shorter field name may still match).
fn slot(rest: &str) -> Option<Slot<'_>> {
    if rest.is_empty() {
        return Some(Slot::Base);
    }
    let rest = rest.strip_prefix('_')?;
    let (tier, service) = match rest.strip_prefix("above_") {
        Some(r) => {
            let (n, tail) = r.split_once("k_tokens")?;
            let thousands: u64 = n.parse().ok()?;
            let service = if tail.is_empty() { None } else { Some(tail.strip_prefix('_')?) };
            (Some(thousands.checked_mul(1000)?), service)
        }
        None => (None, Some(rest)),
    };
    Some(match (tier, service) {
        (None, None) => Slot::Base,
        (Some(n), None) => Slot::Tier(n),
        (None, Some("batches")) => Slot::Batch,
        (None, Some(s @ ("flex" | "priority"))) => Slot::Service(s),
        _ => Slot::Dropped,
    })
}

/// A JSON number's exact text as a non-negative decimal; `null` → `None`. Also used by the sync check ([`super::diff`]).
pub(super) fn number(model: &str, field: &str, raw: &RawValue) -> Result<Option<Decimal>> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    let parsed = if text.contains(['e', 'E']) { Decimal::from_scientific(text) } else { Decimal::from_str_exact(text) };
    match parsed {
        Ok(d) if d >= Decimal::ZERO => Ok(Some(d.normalize())),
        _ => Err(Error::new(ErrorCode::InvalidPriceData, format!("LiteLLM `{model}`.{field} = {text}: not a price"))
            .with_field(field.to_string())
            .with_value(text)),
    }
}

fn scaled(model: &str, field: &str, raw: &RawValue, by: Decimal) -> Result<Option<Decimal>> {
    Ok(match number(model, field, raw)? {
        Some(d) => Some(d.checked_mul(by).map(|x| x.normalize()).ok_or_else(|| {
            Error::new(ErrorCode::InvalidPriceData, format!("LiteLLM `{model}`.{field}: out of range"))
                .with_field(field.to_string())
        })?),
        None => None,
    })
}

fn string(raw: Option<&&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

fn has_price(r: &TokenRates) -> bool {
    *r != TokenRates::default()
}

/// The batch multiplier when input and output batch rates are one exact fraction of the base rates.
fn batch_multiplier(base: &TokenRates, batch: &TokenRates) -> Option<Decimal> {
    let (bi, i) = (batch.input?, base.input.filter(|d| !d.is_zero())?);
    let m = bi.checked_div(i)?.normalize();
    let exact = |b: Option<Decimal>, x: Option<Decimal>| match (b, x) {
        (Some(b), Some(x)) => x.checked_mul(m) == Some(b),
        (None, _) => true,
        (Some(_), None) => false,
    };
    (i.checked_mul(m) == Some(bi) && exact(batch.output, base.output)).then_some(m)
}

/// LiteLLM's JSON → our price files, one per provider.
pub(super) fn convert(text: &str) -> Result<Vec<PriceFile>> {
    let all: BTreeMap<String, &RawValue> = serde_json::from_str(text)?;
    let epoch = DateTime::<Utc>::UNIX_EPOCH.date_naive();
    let today = Utc::now().date_naive();
    let mut kept = Vec::new();
    for (id, raw) in &all {
        let Ok(fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
            continue;
        };
        let Some(provider) = string(fields.get("litellm_provider")).as_deref().and_then(provider) else {
            continue;
        };
        let Some(mode) = mode(string(fields.get("mode")).as_deref()) else {
            continue;
        };
        let mut base = TokenRates::default();
        let mut tiers: BTreeMap<u64, TokenRates> = BTreeMap::new();
        let mut services: BTreeMap<String, TokenRates> = BTreeMap::new();
        let mut batch = TokenRates::default();
        let mut version = PriceVersion {
            effective_from: epoch,
            source: "LiteLLM model_prices_and_context_window.json".to_string(),
            checked: today,
            uncertain: None,
            ..PriceVersion::default()
        };
        for (key, value) in &fields {
            let key = key.as_str();
            match key {
                "input_cost_per_second" if mode == ModelMode::AudioTranscription => {
                    version.per_audio_minute = scaled(id, key, value, Decimal::from(60))?;
                }
                "input_cost_per_character" => version.per_million_characters = scaled(id, key, value, MILLION)?,
                "input_cost_per_request" => version.per_request = number(id, key, value)?,
                "output_cost_per_video_per_second" => version.per_video_second = number(id, key, value)?,
                "search_context_cost_per_query" => {
                    let sizes: BTreeMap<String, &RawValue> = serde_json::from_str(value.get()).unwrap_or_default();
                    if let Some(medium) = sizes.get("search_context_size_medium") {
                        version.web_search_per_1k = scaled(id, key, medium, Decimal::from(1000))?;
                    }
                    // Each size's own rate, for calls whose request names one (medium is the default).
                    for (name, rate) in &sizes {
                        let size = name.strip_prefix("search_context_size_").unwrap_or("");
                        if !matches!(size, "low" | "medium" | "high") {
                            continue;
                        }
                        if let Some(per_1k) = scaled(id, key, rate, Decimal::from(1000))? {
                            version.web_search_per_1k_by_context.insert(size.to_string(), per_1k);
                        }
                    }
                }
                _ => {
                    let found = TOKEN_FIELDS
                        .iter()
                        .filter_map(|(name, set)| key.strip_prefix(name).and_then(slot).map(|s| (s, set)))
                        .next();
                    let Some((slot, set)) = found else { continue };
                    let target = match slot {
                        Slot::Base => &mut base,
                        Slot::Tier(n) => tiers.entry(n).or_default(),
                        Slot::Service(s) => services.entry(s.to_string()).or_default(),
                        Slot::Batch => &mut batch,
                        Slot::Dropped => continue,
                    };
                    *set(target) = scaled(id, key, value, MILLION)?;
                }
            }
        }
        version.batch_multiplier = batch_multiplier(&base, &batch);
        let counted = vec![
            TokenClass::Input,
            TokenClass::CacheRead,
            TokenClass::CacheWrite,
            TokenClass::AudioInput,
            TokenClass::ImageInput,
        ];
        version.tiers = tiers
            .into_iter()
            .filter(|(_, r)| has_price(r))
            .map(|(above, rates)| Tier {
                above_prompt_tokens: Some(above),
                counted: counted.clone(),
                rates,
                ..Tier::default()
            })
            .collect();
        version.service_tiers = services.into_iter().filter(|(_, r)| has_price(r)).collect();
        let priced = has_price(&base)
            || version.per_audio_minute.is_some()
            || version.per_million_characters.is_some()
            || version.per_request.is_some()
            || version.per_video_second.is_some();
        if !priced {
            continue;
        }
        version.rates = base;
        kept.push((
            provider,
            llmledger_pricing::schema::ModelEntry {
                id: id.clone(),
                mode,
                aliases: Vec::new(),
                retired: None,
                prices: vec![version],
            },
        ));
    }
    // `gemini/gemini-2.5-pro` also answers to `gemini-2.5-pro`, unless another kept entry has or wants that name.
    let mut wanted: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, m) in &kept {
        *wanted.entry(strip_routes(&m.id)).or_default() += 1;
    }
    let aliases: Vec<Option<String>> = kept
        .iter()
        .map(|(_, m)| {
            let short = strip_routes(&m.id);
            let free = short != m.id && wanted.get(short) == Some(&1);
            free.then(|| short.to_string())
        })
        .collect();
    let mut files: BTreeMap<Provider, PriceFile> = BTreeMap::new();
    for ((provider, mut model), alias) in kept.into_iter().zip(aliases) {
        model.aliases.extend(alias);
        files
            .entry(provider)
            .or_insert_with(|| PriceFile {
                provider: provider.as_str().to_string(),
                tier_rule: None,
                models: Vec::new(),
            })
            .models
            .push(model);
    }
    Ok(files.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pricing::{PriceDb, PriceOptions};
    use crate::usage::Usage;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    const SAMPLE: &str = include_str!("../../tests/fixtures/litellm_sample.json");

    fn version<'a>(db: &'a PriceDb, model: &str) -> &'a PriceVersion {
        db.resolve(model).expect("converted").versions().next().expect("one version")
    }

    #[test]
    fn converts_the_sample_exactly() {
        let db = PriceDb::from_litellm_json(SAMPLE).expect("valid");
        // 13 entries: `sample_spec` and the fireworks model are not ours.
        assert_eq!(db.len(), 11);
        assert_eq!(db.resolve("sample_spec").map_err(|e| e.code()).err(), Some(ErrorCode::UnknownModel));

        let gpt4o = version(&db, "gpt-4o");
        assert_eq!(
            (gpt4o.rates.input, gpt4o.rates.cache_read, gpt4o.rates.output),
            (Some(dec!(2.5)), Some(dec!(1.25)), Some(dec!(10)))
        );
        assert_eq!(gpt4o.batch_multiplier, Some(dec!(0.5)));
        assert_eq!(gpt4o.service_tiers["priority"].cache_read, Some(dec!(2.125)));

        let gpt5 = version(&db, "gpt-5");
        assert_eq!(gpt5.service_tiers["flex"].cache_read, Some(dec!(0.0625)));
        assert_eq!(gpt5.web_search_per_1k, Some(dec!(10)));

        let claude = version(&db, "claude-sonnet-4-5");
        assert_eq!((claude.rates.cache_write_5m, claude.rates.cache_write_1h), (Some(dec!(3.75)), Some(dec!(6))));

        let gemini = version(&db, "gemini-2.5-pro");
        assert_eq!(gemini.tiers.len(), 1);
        assert_eq!(gemini.tiers[0].above_prompt_tokens, Some(200_000));
        assert_eq!(gemini.tiers[0].rates.cache_read, Some(dec!(0.25)));
        assert_eq!(gemini.service_tiers["priority"].input, Some(dec!(2.25)));

        assert_eq!(version(&db, "whisper-1").per_audio_minute, Some(dec!(0.006)));
        assert_eq!(version(&db, "tts-1").per_million_characters, Some(dec!(15)));
        assert_eq!(version(&db, "grok-4.3").batch_multiplier, Some(dec!(0.8)));
        assert_eq!(version(&db, "gpt-audio").rates.audio_output, Some(dec!(64)));
        assert_eq!(db.resolve("azure/gpt-4o").map(|m| m.id()), Ok("azure/gpt-4o"));
        assert_eq!(db.resolve("gpt-4o").map(|m| m.id()), Ok("gpt-4o"), "azure/ does not take the bare name");
        assert_eq!(
            db.resolve("us.anthropic.claude-sonnet-4-20250514-v1:0").map(|m| m.provider()),
            Ok(Provider::Bedrock)
        );

        // Priced end to end: Gemini above 200k prompt tokens, cache reads counted.
        let at = Utc.with_ymd_and_hms(2025, 11, 1, 0, 0, 0).single().expect("date");
        let u = Usage { input_tokens: 150_000, cache_read_tokens: 50_001, output_tokens: 1000, ..Usage::default() };
        let c = db.price(&u, "gemini/gemini-2.5-pro", at, &PriceOptions::default()).expect("priced");
        assert_eq!(c.tier_above, Some(200_000));
        // 150,000 × 2.5e-6 + 50,001 × 0.25e-6 + 1,000 × 15e-6
        assert_eq!(c.total_usd, dec!(0.40250025));
    }

    #[test]
    fn suffixes() {
        assert_eq!(slot(""), Some(Slot::Base));
        assert_eq!(slot("_above_200k_tokens"), Some(Slot::Tier(200_000)));
        assert_eq!(slot("_above_272k_tokens_priority"), Some(Slot::Dropped));
        assert_eq!(slot("_flex"), Some(Slot::Service("flex")));
        assert_eq!(slot("_batches"), Some(Slot::Batch));
        assert_eq!(slot("_above_1hr"), None);
        assert_eq!(slot("x"), None);
    }

    #[test]
    fn numbers_are_read_from_their_text() {
        let raw: &RawValue = serde_json::from_str("3.0000000000000004e-07").expect("json");
        let exact = Decimal::from_str_exact("0.00000030000000000000004").expect("decimal");
        assert_eq!(number("m", "f", raw), Ok(Some(exact)));
        let neg: &RawValue = serde_json::from_str("-1e-06").expect("json");
        assert_eq!(number("m", "f", neg).map_err(|e| e.code()), Err(ErrorCode::InvalidPriceData));
    }
}
