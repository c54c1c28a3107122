//! Exact-decimal tests of resolution and pricing on a small inline price set.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal_macros::dec;

use super::*;
use crate::currency::Rates;
use crate::usage::ImageGeneration;

const DATA: &str = r#"[
  {"provider": "openai", "models": [
    {"id": "gpt-4o", "mode": "chat", "aliases": ["gpt-4o-2024-08-06"], "prices": [
      {"effective_from": "2024-05-13", "source": "t", "checked": "2026-11-25", "input": "5.00", "output": "15.00"},
      {"effective_from": "2024-10-01", "source": "t", "checked": "2026-11-25",
       "input": "2.50", "cache_read": "1.25", "output": "10.00", "batch_multiplier": "0.5"}]},
    {"id": "o3", "mode": "chat", "prices": [
      {"effective_from": "2025-04-16", "source": "t", "checked": "2026-11-25", "uncertain": "test",
       "input": "2.00", "cache_read": "0.50", "output": "8.00", "reasoning_output": "9.00",
       "service_tiers": {"flex": {"input": "1.00", "cache_read": "0.25", "output": "4.00"},
                         "priority": {"input": "3.50", "output": "14.00"}},
       "regional_multiplier": "1.10"}]},
    {"id": "gpt-4o-audio", "mode": "chat", "prices": [
      {"effective_from": "2024-10-01", "source": "t", "checked": "2026-11-25",
       "input": "2.50", "output": "10.00", "audio_input": "40.00", "audio_output": "80.00"}]},
    {"id": "dall-e-3", "mode": "image_generation", "prices": [
      {"effective_from": "2023-11-06", "source": "t", "checked": "2026-11-25", "per_image": [
        {"size": "1024x1024", "quality": "standard", "price": "0.04"},
        {"size": "1024x1024", "quality": "hd", "price": "0.08"}]}]},
    {"id": "whisper-1", "mode": "audio_transcription", "prices": [
      {"effective_from": "2023-03-01", "source": "t", "checked": "2026-11-25", "per_audio_minute": "0.006"}]},
    {"id": "tts-1", "mode": "audio_speech", "prices": [
      {"effective_from": "2023-11-06", "source": "t", "checked": "2026-11-25", "per_million_characters": "15.00"}]},
    {"id": "gpt-4o-search", "mode": "chat", "prices": [
      {"effective_from": "2025-03-11", "source": "t", "checked": "2026-11-25",
       "input": "2.50", "output": "10.00", "web_search_per_1k": "25.00", "per_request": "0.001"}]}
  ]},
  {"provider": "anthropic", "models": [
    {"id": "claude-sonnet-4", "mode": "chat",
     "aliases": ["claude-sonnet-4-20250514", "anthropic.claude-sonnet-4-20250514-v1:0"], "prices": [
      {"effective_from": "2025-05-22", "source": "t", "checked": "2026-11-25",
       "input": "3.00", "output": "15.00", "cache_read": "0.30", "cache_write_5m": "3.75", "cache_write_1h": "6.00",
       "batch_multiplier": "0.5",
       "tiers": [{"above_prompt_tokens": 200000, "counted": ["input", "cache_read", "cache_write"],
                  "rates": {"input": "6.00", "output": "22.50", "cache_read": "0.60", "cache_write_5m": "7.50",
                            "cache_write_1h": "12.00"}}]}]}
  ]},
  {"provider": "gemini", "models": [
    {"id": "gemini-2.5-pro", "mode": "chat", "prices": [
      {"effective_from": "2025-06-17", "source": "t", "checked": "2026-11-25",
       "input": "1.25", "output": "10.00", "cache_read": "0.31"}]}
  ]}
]"#;

fn db() -> PriceDb {
    PriceDb::from_json(DATA).expect("test data is valid")
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().expect("valid date")
}

fn now() -> DateTime<Utc> {
    at(2025, 11, 1)
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn price(model: &str, u: &Usage) -> Result<Cost> {
    db().price(u, model, now(), &PriceOptions::default())
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> ErrorCode {
    r.expect_err("expected an error").code()
}

#[test]
fn plain_chat_usage() {
    let c = price("gpt-4o", &usage(1000, 500)).expect("priced");
    assert_eq!(c.breakdown.input, dec!(0.0025));
    assert_eq!(c.breakdown.output, dec!(0.005));
    assert_eq!(c.total_usd, dec!(0.0075));
    assert_eq!((c.total, c.rate, c.currency.as_str()), (dec!(0.0075), Decimal::ONE, "USD"));
    assert_eq!((c.provider, c.model.as_str()), (Provider::OpenAi, "gpt-4o"));
    assert_eq!(c.price_version, NaiveDate::from_ymd_opt(2024, 10, 1).expect("date"));
    assert!(!c.uncertain);
    assert_eq!(c.tier_above, None);
}

#[test]
fn cached_read() {
    let u = Usage { cache_read_tokens: 200, ..usage(800, 100) };
    let c = price("gpt-4o", &u).expect("priced");
    assert_eq!(c.breakdown.cache_read, dec!(0.00025));
    assert_eq!(c.total_usd, dec!(0.00325));
}

#[test]
fn anthropic_cache_writes_by_ttl() {
    let u = Usage { cache_write_tokens: 3000, cache_write_1h_tokens: 1000, cache_read_tokens: 5000, ..usage(100, 200) };
    let c = price("claude-sonnet-4", &u).expect("priced");
    assert_eq!(c.breakdown.cache_write_5m, dec!(0.0075));
    assert_eq!(c.breakdown.cache_write_1h, dec!(0.006));
    assert_eq!(c.breakdown.cache_read, dec!(0.0015));
    assert_eq!(c.total_usd, dec!(0.0183));
}

#[test]
fn reasoning_has_its_own_rate() {
    let u = Usage { reasoning_tokens: 600, ..usage(0, 1000) };
    let c = price("o3", &u).expect("priced");
    assert_eq!(c.breakdown.output, dec!(0.0032));
    assert_eq!(c.breakdown.reasoning, dec!(0.0054));
    assert_eq!(c.total_usd, dec!(0.0086));
    assert!(c.uncertain, "o3's version is marked uncertain in the test data");
}

#[test]
fn long_context_tier_is_strictly_above_and_counts_cache_reads() {
    let below = Usage { cache_read_tokens: 99_999, ..usage(100_000, 1000) };
    let c = price("claude-sonnet-4", &below).expect("priced");
    assert_eq!(c.tier_above, None);
    assert_eq!(c.total_usd, dec!(0.3449997));

    let exactly = Usage { cache_read_tokens: 100_000, ..usage(100_000, 1000) };
    assert_eq!(price("claude-sonnet-4", &exactly).expect("priced").tier_above, None);

    let above = Usage { cache_read_tokens: 100_001, ..usage(100_000, 1000) };
    let c = price("claude-sonnet-4", &above).expect("priced");
    assert_eq!(c.tier_above, Some(200_000));
    assert_eq!(c.breakdown.input, dec!(0.6));
    assert_eq!(c.breakdown.cache_read, dec!(0.0600006));
    assert_eq!(c.breakdown.output, dec!(0.0225));
    assert_eq!(c.total_usd, dec!(0.6825006));
}

#[test]
fn batch() {
    let opts = PriceOptions { batch: true, ..PriceOptions::default() };
    let c = db().price(&usage(1000, 500), "gpt-4o", now(), &opts).expect("priced");
    assert_eq!(c.total_usd, dec!(0.00375));
    // Anthropic reports `batch` as the service tier of a batch call.
    let u = Usage { service_tier: Some("batch".into()), ..usage(1000, 1000) };
    assert_eq!(price("claude-sonnet-4", &u).expect("priced").total_usd, dec!(0.009));
    let err = db().price(&usage(1, 1), "gemini-2.5-pro", now(), &opts).expect_err("no batch price");
    assert_eq!((err.code(), err.field()), (ErrorCode::MissingPrice, Some("batch_multiplier")));
}

#[test]
fn service_tiers() {
    let tier = |name: &str| PriceOptions { service_tier: Some(name.into()), ..PriceOptions::default() };
    let db = db();
    let u = usage(1000, 1000);
    assert_eq!(db.price(&u, "o3", now(), &tier("flex")).expect("priced").total_usd, dec!(0.005));
    assert_eq!(db.price(&u, "o3", now(), &tier("priority")).expect("priced").total_usd, dec!(0.0175));
    assert_eq!(db.price(&u, "o3", now(), &tier("default")).expect("priced").total_usd, dec!(0.01));
    // What the provider reports wins over what the caller asked for.
    let reported = Usage { service_tier: Some("flex".into()), ..u.clone() };
    assert_eq!(db.price(&reported, "o3", now(), &tier("priority")).expect("priced").total_usd, dec!(0.005));
    // A tier without data: base rates, marked uncertain.
    let c = db.price(&usage(1000, 500), "gpt-4o", now(), &tier("scale")).expect("priced");
    assert_eq!((c.total_usd, c.uncertain), (dec!(0.0075), true));
}

#[test]
fn regional_uplift() {
    let opts = PriceOptions { regional: true, ..PriceOptions::default() };
    let db = db();
    let c = db.price(&usage(1000, 1000), "o3", now(), &opts).expect("priced");
    assert_eq!((c.breakdown.input, c.total_usd), (dec!(0.0022), dec!(0.011)));
    // No uplift in the data: none applied.
    assert_eq!(db.price(&usage(1000, 500), "gpt-4o", now(), &opts).expect("priced").total_usd, dec!(0.0075));
}

#[test]
fn version_in_force_at_the_event_date() {
    let db = db();
    let u = Usage { cache_read_tokens: 200, ..usage(1000, 500) };
    let old = db.price(&u, "gpt-4o", at(2024, 6, 1), &PriceOptions::default()).expect("priced");
    // The old version has no cache_read rate: cached input falls back to the input rate.
    assert_eq!(old.breakdown.cache_read, dec!(0.001));
    assert_eq!(old.total_usd, dec!(0.0135));
    assert_eq!(old.price_version, NaiveDate::from_ymd_opt(2024, 5, 13).expect("date"));
    let switch_day = db.price(&usage(1000, 500), "gpt-4o", at(2024, 10, 1), &PriceOptions::default());
    assert_eq!(switch_day.expect("priced").total_usd, dec!(0.0075));
    let err = db.price(&u, "gpt-4o", at(2024, 5, 12), &PriceOptions::default()).expect_err("before first");
    assert_eq!((err.code(), err.field()), (ErrorCode::MissingPrice, Some("effective_from")));
}

#[test]
fn per_image() {
    let images = |size: &str, quality: &str| Usage {
        images: Some(ImageGeneration { count: 2, size: size.into(), quality: quality.into() }),
        ..Usage::default()
    };
    assert_eq!(price("dall-e-3", &images("1024x1024", "hd")).expect("priced").breakdown.images, dec!(0.16));
    let err = price("dall-e-3", &images("1792x1024", "hd")).expect_err("no such image price");
    assert_eq!((err.code(), err.field()), (ErrorCode::MissingPrice, Some("per_image")));
    assert!(err.message().contains("1024x1024/standard"));
}

#[test]
fn per_minute_audio_and_characters_and_search() {
    let audio = Usage { audio_seconds: Some(dec!(61.5)), ..Usage::default() };
    let c = price("whisper-1", &audio).expect("priced");
    assert_eq!((c.breakdown.audio_duration, c.total_usd), (dec!(0.00615), dec!(0.00615)));

    let speech = Usage { input_characters: 1234, ..Usage::default() };
    assert_eq!(price("tts-1", &speech).expect("priced").breakdown.characters, dec!(0.01851));

    let search = Usage { web_search_requests: 3, ..Usage::default() };
    let c = price("gpt-4o-search", &search).expect("priced");
    assert_eq!((c.breakdown.web_search, c.breakdown.request, c.total_usd), (dec!(0.075), dec!(0.001), dec!(0.076)));
}

#[test]
fn audio_tokens() {
    let u = Usage { audio_input_tokens: 100, audio_output_tokens: 50, ..usage(0, 80) };
    let c = price("gpt-4o-audio", &u).expect("priced");
    assert_eq!(c.breakdown.audio_input, dec!(0.004));
    assert_eq!(c.breakdown.audio_output, dec!(0.004));
    assert_eq!(c.breakdown.output, dec!(0.0003));
    assert_eq!(c.total_usd, dec!(0.0083));
}

#[test]
fn a_used_bucket_without_a_rate_is_an_error() {
    let err = price("gpt-4o", &Usage { audio_input_tokens: 10, ..Usage::default() }).expect_err("no audio rate");
    assert_eq!((err.code(), err.field()), (ErrorCode::MissingPrice, Some("audio_input")));
    assert_eq!(code(price("dall-e-3", &usage(5, 0))), ErrorCode::MissingPrice);
    assert_eq!(code(price("whisper-1", &Usage { input_characters: 3, ..Usage::default() })), ErrorCode::MissingPrice);
    // A zero bucket needs no rate.
    assert_eq!(price("whisper-1", &Usage::default()).expect("priced").total_usd, Decimal::ZERO);
}

#[test]
fn inconsistent_usage_is_rejected() {
    let parts_too_big = Usage { reasoning_tokens: 60, audio_output_tokens: 50, ..usage(0, 100) };
    assert_eq!(code(price("o3", &parts_too_big)), ErrorCode::InvalidValue);
    let ttl_too_big = Usage { cache_write_tokens: 1, cache_write_1h_tokens: 2, ..Usage::default() };
    assert_eq!(code(price("claude-sonnet-4", &ttl_too_big)), ErrorCode::InvalidValue);
    let negative_seconds = Usage { audio_seconds: Some(dec!(-1)), ..Usage::default() };
    assert_eq!(code(price("whisper-1", &negative_seconds)), ErrorCode::InvalidValue);
}

#[test]
fn unknown_model_suggests_close_names() {
    let err = db().resolve("gpt-4oo").expect_err("unknown");
    assert_eq!(err.code(), ErrorCode::UnknownModel);
    assert_eq!(err.suggestions().first().map(String::as_str), Some("gpt-4o"));
    assert!(err.suggestions().len() <= 3);
    assert!(db().resolve("completely-different").expect_err("unknown").suggestions().is_empty());
}

#[test]
fn resolution_order() {
    let db = db();
    let id = |name: &str| db.resolve(name).map(|m| m.id().to_string()).map_err(|e| e.code());
    assert_eq!(id("gpt-4o"), Ok("gpt-4o".into()));
    assert_eq!(id("gpt-4o-2024-08-06"), Ok("gpt-4o".into()));
    assert_eq!(id("openai/gpt-4o"), Ok("gpt-4o".into()));
    assert_eq!(id("azure/gpt-4o-2024-08-06"), Ok("gpt-4o".into()));
    assert_eq!(id("GPT-4o"), Ok("gpt-4o".into()));
    assert_eq!(id("us.anthropic.claude-sonnet-4-20250514-v1:0"), Ok("claude-sonnet-4".into()));
    assert_eq!(id("anthropic.claude-sonnet-4-20250514-v1:0"), Ok("claude-sonnet-4".into()));
    // A snapshot the data does not list: vendor, version and date stripped.
    assert_eq!(id("global.anthropic.claude-sonnet-4-20991231-v2:0"), Ok("claude-sonnet-4".into()));
    assert_eq!(id("models/gemini-2.5-pro"), Ok("gemini-2.5-pro".into()));
    assert_eq!(id("gpt-4o-2025-01-31"), Ok("gpt-4o".into()));
    assert_eq!(id("claude-sonnet-4-20990101"), Ok("claude-sonnet-4".into()));
    assert_eq!(id("openai/gpt-4"), Err(ErrorCode::UnknownModel));
    assert_eq!(db.resolve("gpt-4o").map(|m| (m.provider(), m.mode())), Ok((Provider::OpenAi, ModelMode::Chat)));
}

#[test]
fn from_json_accepts_one_file_and_rejects_bad_data() {
    let one = r#"{"provider": "xai", "models": [{"id": "grok-4", "mode": "chat", "prices": [
        {"effective_from": "2025-07-09", "source": "t", "checked": "2026-11-25", "input": "3", "output": "15"}]}]}"#;
    let db = PriceDb::from_json(one).expect("valid");
    assert_eq!(db.len(), 1);
    assert_eq!(
        db.price(&usage(1000, 0), "xai/grok-4", now(), &PriceOptions::default()).expect("priced").total_usd,
        dec!(0.003)
    );

    assert_eq!(code(PriceDb::from_json(&one.replace("\"3\"", "\"-3\""))), ErrorCode::InvalidPriceData);
    assert_eq!(code(PriceDb::from_json(&one.replace("\"xai\"", "\"acme\""))), ErrorCode::InvalidPriceData);
    assert_eq!(code(PriceDb::from_json(&one.replace("\"input\"", "\"inptu\""))), ErrorCode::InvalidPriceData);
    assert_eq!(code(PriceDb::from_json("not json")), ErrorCode::InvalidJson);
    let twice = format!("[{one}, {one}]");
    assert_eq!(code(PriceDb::from_json(&twice)), ErrorCode::InvalidPriceData);
    let unsorted = one.replace(
        r#""prices": ["#,
        r#""prices": [{"effective_from": "2026-01-01", "source": "t", "checked": "2026-11-25", "input": "1"},"#,
    );
    assert_eq!(code(PriceDb::from_json(&unsorted)), ErrorCode::InvalidPriceData);
}

fn version(input: &str, output: &str) -> PriceVersion {
    PriceVersion {
        effective_from: NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"),
        source: "contract".into(),
        checked: NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
        uncertain: None,
        rates: TokenRates {
            input: Some(input.parse().expect("decimal")),
            output: Some(output.parse().expect("decimal")),
            ..TokenRates::default()
        },
        ..PriceVersion::default()
    }
}

#[test]
fn extend_replaces_same_names() {
    let mut db = db();
    let newer = r#"{"provider": "openai", "models": [{"id": "gpt-4o-new", "mode": "chat",
        "aliases": ["gpt-4o-2024-08-06"], "prices": [
        {"effective_from": "2024-01-01", "source": "t", "checked": "2026-11-25", "input": "1", "output": "1"}]}]}"#;
    db.extend(PriceDb::from_json(newer).expect("valid"));
    assert_eq!(db.resolve("gpt-4o-2024-08-06").map(|m| m.id()), Ok("gpt-4o-new"));
    assert_eq!(db.resolve("gpt-4o").map(|m| m.id()), Ok("gpt-4o"));
    let listed = db.models(Some(Provider::OpenAi));
    let gpt4o = listed.iter().find(|m| m.id == "gpt-4o").expect("listed");
    assert!(gpt4o.aliases.is_empty(), "its alias was taken over");

    let replacing = newer.replace("gpt-4o-new", "gpt-4o").replace(r#""aliases": ["gpt-4o-2024-08-06"], "#, "");
    db.extend(PriceDb::from_json(&replacing).expect("valid"));
    assert_eq!(price_with(&db, "gpt-4o", &usage(1_000_000, 0)), dec!(1));
}

fn price_with(db: &PriceDb, model: &str, u: &Usage) -> Decimal {
    db.price(u, model, now(), &PriceOptions::default()).expect("priced").total_usd
}

#[test]
fn custom_price_wins_at_every_date_and_survives_extend() {
    let mut db = db();
    db.set_custom(Provider::OpenAi, "gpt-4o", version("1.00", "2.00")).expect("valid");
    let u = usage(1_000_000, 1_000_000);
    assert_eq!(price_with(&db, "gpt-4o", &u), dec!(3));
    assert_eq!(price_with(&db, "gpt-4o-2024-08-06", &u), dec!(3), "aliases follow the model");
    db.extend(PriceDb::from_json(DATA).expect("valid"));
    assert_eq!(price_with(&db, "gpt-4o", &u), dec!(3));
    db.set_custom(Provider::Azure, "my-deployment", version("0.5", "0.5")).expect("valid");
    assert_eq!(price_with(&db, "azure/my-deployment", &u), dec!(1));
    assert!(db.resolve("my-deployment").expect("added").is_custom());
    assert_eq!(
        code(db.set_custom(Provider::OpenAi, "x", version("-1", "1"))),
        ErrorCode::InvalidPriceData,
        "custom prices are validated"
    );
}

#[test]
fn models_lists_by_provider() {
    let db = db();
    let anthropic = db.models(Some(Provider::Anthropic));
    assert_eq!(anthropic.len(), 1);
    assert_eq!(anthropic[0].id, "claude-sonnet-4");
    assert_eq!(anthropic[0].aliases, ["claude-sonnet-4-20250514", "anthropic.claude-sonnet-4-20250514-v1:0"]);
    assert_eq!(anthropic[0].current.rates.input, Some(dec!(3.00)));
    let all = db.models(None);
    assert_eq!(all.len(), 9);
    assert_eq!(
        all.iter().find(|m| m.id == "gpt-4o").map(|m| m.current.effective_from),
        NaiveDate::from_ymd_opt(2024, 10, 1)
    );
}

#[test]
fn embedded_data_is_shared_and_priced() {
    let a = PriceDb::embedded();
    let b = PriceDb::embedded();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    assert!(a.resolve("gpt-4o").is_ok());
    assert!(PriceDb::empty().is_empty());
}

#[test]
fn krw_conversion_of_a_priced_call() {
    let rates = Rates::new().with("KRW", "1391.50").expect("valid");
    let c = price("gpt-4o", &usage(1000, 500)).expect("priced").convert(&rates, "KRW").expect("converted");
    assert_eq!((c.total, c.rate, c.total_usd), (dec!(10.43625), dec!(1391.50), dec!(0.0075)));
}

fn add(a: &Usage, b: &Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens + b.input_tokens,
        cache_read_tokens: a.cache_read_tokens + b.cache_read_tokens,
        cache_write_tokens: a.cache_write_tokens + b.cache_write_tokens,
        cache_write_1h_tokens: a.cache_write_1h_tokens + b.cache_write_1h_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        reasoning_tokens: a.reasoning_tokens + b.reasoning_tokens,
        web_search_requests: a.web_search_requests + b.web_search_requests,
        ..Usage::default()
    }
}

prop_compose! {
    /// Usage below every long-context threshold even when two are added.
    fn small_usage()(input in 0u64..30_000, cache_read in 0u64..30_000, cache_write in 0u64..30_000,
                     one_hour_pct in 0u64..=100, output in 0u64..30_000, reasoning_pct in 0u64..=100,
                     searches in 0u64..50) -> Usage {
        Usage {
            input_tokens: input,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            cache_write_1h_tokens: cache_write * one_hour_pct / 100,
            output_tokens: output,
            reasoning_tokens: output * reasoning_pct / 100,
            web_search_requests: searches,
            ..Usage::default()
        }
    }
}

proptest! {
    #[test]
    fn pricing_is_additive(a in small_usage(), b in small_usage(), model in 0usize..3, batch: bool) {
        let db = db();
        let (model, searches_priced) = [("claude-sonnet-4", false), ("o3", false), ("gpt-4o-search", true)][model];
        let strip = |u: Usage| if searches_priced { u } else { Usage { web_search_requests: 0, ..u } };
        let (a, b) = (strip(a), strip(b));
        let opts = PriceOptions { batch: batch && model == "claude-sonnet-4", ..PriceOptions::default() };
        let cost = |u: &Usage| db.price(u, model, now(), &opts).expect("priced");
        let (ca, cb, cab) = (cost(&a), cost(&b), cost(&add(&a, &b)));
        let request = cab.breakdown.request; // billed once per call, not per token
        prop_assert_eq!(cab.total_usd, ca.total_usd + cb.total_usd - request);
        prop_assert_eq!(cab.breakdown.cache_write_1h, ca.breakdown.cache_write_1h + cb.breakdown.cache_write_1h);
        prop_assert_eq!(cab.breakdown.reasoning, ca.breakdown.reasoning + cb.breakdown.reasoning);
    }

    #[test]
    fn pricing_is_never_negative(input in 0u64..1_000_000_000_000, cache_read in 0u64..1_000_000_000_000,
                                 output in 0u64..1_000_000_000_000, reasoning in 0u64..1_000_000_000_000,
                                 audio in 0u64..1_000_000, model in 0usize..4, tier in 0usize..4,
                                 regional: bool) {
        let u = Usage { input_tokens: input, cache_read_tokens: cache_read, output_tokens: output,
                        reasoning_tokens: reasoning, audio_input_tokens: audio, ..Usage::default() };
        let model = ["gpt-4o", "o3", "claude-sonnet-4", "gpt-4o-audio"][model];
        let service_tier = [None, Some("flex"), Some("priority"), Some("odd")][tier].map(String::from);
        let opts = PriceOptions { service_tier, regional, ..PriceOptions::default() };
        match db().price(&u, model, now(), &opts) {
            Ok(c) => {
                prop_assert!(c.total_usd >= Decimal::ZERO);
                let mut b = c.breakdown.clone();
                prop_assert!(b.parts_mut().iter().all(|p| **p >= Decimal::ZERO));
            }
            Err(e) => prop_assert!(matches!(e.code(), ErrorCode::InvalidValue | ErrorCode::MissingPrice)),
        }
    }
}

/// A chat model with every per-unit price of the newer rules: video seconds, cache storage, media items.
const UNITS: &str = r#"{"provider": "gemini", "models": [{"id": "media-model", "mode": "chat", "prices": [
    {"effective_from": "2025-01-01", "source": "t", "checked": "2026-11-25", "input": "1.00", "output": "4.00",
     "per_video_second": "0.10", "cache_storage_per_hour": "4.50", "per_item": {"image": "0.02", "video": "0.50"}}]}]}"#;

#[test]
fn per_unit_prices_for_video_seconds_cache_storage_and_items() {
    let db = PriceDb::from_json(UNITS).expect("valid");
    let u = Usage {
        video_seconds: Some(dec!(8)),
        cache_storage_token_hours: Some(dec!(20000)),
        media_items: [("image".to_string(), 3), ("video".to_string(), 1)].into(),
        ..usage(1000, 100)
    };
    let c = db.price(&u, "media-model", now(), &PriceOptions::default()).expect("priced");
    // 8 s × 0.10 = 0.8; 20,000 token-hours × 4.50 / 1M = 0.09; 3 × 0.02 + 1 × 0.50 = 0.56;
    // tokens 1000 × 1/1M + 100 × 4/1M = 0.0014.
    assert_eq!(c.breakdown.video, dec!(0.8));
    assert_eq!(c.breakdown.cache_storage, dec!(0.09));
    assert_eq!(c.breakdown.items, dec!(0.56));
    assert_eq!(c.total_usd, dec!(1.4514));
    // A unit the model has no price for is an error naming the field, never $0.
    let unpriced = Usage { media_items: [("audio".to_string(), 1)].into(), ..usage(1, 1) };
    let e = db.price(&unpriced, "media-model", now(), &PriceOptions::default()).expect_err("no audio item price");
    assert_eq!((e.code(), e.field()), (ErrorCode::MissingPrice, Some("per_item.audio")));
    let video = Usage { video_seconds: Some(dec!(1)), ..usage(1, 1) };
    let e = price("gpt-4o", &video).expect_err("gpt-4o has no video price");
    assert_eq!((e.code(), e.field()), (ErrorCode::MissingPrice, Some("per_video_second")));
    let grounded = Usage { grounding_queries: 2, ..usage(1, 1) };
    let e = price("gpt-4o", &grounded).expect_err("no grounding price");
    assert_eq!((e.code(), e.field()), (ErrorCode::MissingPrice, Some("grounding_per_1k")));
    let negative = Usage { video_seconds: Some(dec!(-1)), ..usage(1, 1) };
    assert_eq!(code(db.price(&negative, "media-model", now(), &PriceOptions::default())), ErrorCode::InvalidValue);
}

#[test]
fn requested_and_reported_service_tiers_and_speed() {
    let tier = |name: &str| PriceOptions { service_tier: Some(name.into()), ..PriceOptions::default() };
    let db = db();
    // o3 priority: 1000 × 3.50/1M + 100 × 14/1M = 0.0049; flex: 1000 × 1/1M + 100 × 4/1M = 0.0014.
    let reported = Usage { service_tier: Some("priority".into()), ..usage(1000, 100) };
    assert_eq!(db.price(&reported, "o3", now(), &tier("flex")).expect("priced").total_usd, dec!(0.0049));
    // A reported speed other than standard is the tier of that name; o3 has no `fast` rates → base rates.
    let fast = Usage { speed: Some("fast".into()), ..usage(1000, 100) };
    assert_eq!(db.price(&fast, "o3", now(), &tier("flex")).expect("priced").total_usd, dec!(0.0028));
    // `standard` speed leaves the tier to the service tier.
    let standard = Usage { speed: Some("standard".into()), ..usage(1000, 100) };
    assert_eq!(db.price(&standard, "o3", now(), &tier("flex")).expect("priced").total_usd, dec!(0.0014));
}

#[test]
fn cache_write_parts_must_fit_their_whole() {
    let u = Usage { cache_write_tokens: 10, cache_write_1h_tokens: 6, cache_write_12h_tokens: 5, ..usage(0, 0) };
    assert_eq!(code(price("claude-sonnet-4", &u)), ErrorCode::InvalidValue);
}

#[test]
fn every_cost_records_the_data_version() {
    let embedded = PriceDb::embedded();
    assert_eq!(embedded.data_version(), llmledger_pricing::DATA_VERSION);
    let (date, hash) = embedded.data_version().split_once('.').expect("date.hash");
    assert!(NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && hash.len() == 16, "{}", embedded.data_version());
    let db = db();
    assert!(db.data_version().starts_with("file."), "{}", db.data_version());
    assert_eq!(price("gpt-4o", &usage(1, 1)).expect("priced").price_data, db.data_version());
    // The same data gives the same version; any change gives another.
    assert_eq!(PriceDb::from_json(DATA).expect("valid").data_version(), db.data_version());
    assert_ne!(
        PriceDb::from_json(&DATA.replace("\"5.00\"", "\"5.01\"")).expect("valid").data_version(),
        db.data_version()
    );
    let mut extended = embedded.clone();
    extended.extend(db.clone());
    assert_eq!(extended.data_version(), format!("{}+{}", embedded.data_version(), db.data_version()));
    let mut custom = extended.clone();
    custom.set_custom(Provider::OpenAi, "gpt-4o", version("1", "1")).expect("valid");
    assert!(custom.data_version().starts_with("mix.") || custom.data_version().contains("+custom."));
    assert_ne!(custom.data_version(), extended.data_version());
}

#[test]
fn price_files_with_problems_are_rejected_naming_file_model_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("my-prices.json");
    let bad = r#"{"provider": "openai", "models": [{"id": "new-model", "mode": "chat", "prices": [
        {"effective_from": "2026-01-01", "source": "t", "checked": "2026-01-01", "input": "1", "output": "-2"}]}]}"#;
    std::fs::write(&path, bad).expect("writable");
    let e = PriceDb::from_json_file(&path).expect_err("negative output");
    assert_eq!(e.code(), ErrorCode::InvalidPriceData);
    for part in ["my-prices.json", "negative: openai: new-model: prices[0].output = -2"] {
        assert!(e.message().contains(part), "{} lacks {part}", e.message());
    }
    // Both thresholds on a tier conflict; a tier's service tier must exist in the version.
    let conflicting = bad.replace(
        r#""output": "-2""#,
        r#""output": "2", "tiers": [{"above_prompt_tokens": 10, "at_least_prompt_tokens": 11, "counted": ["input"],
            "rates": {}, "service_tiers": {"priority": {"input": "3"}}}]"#,
    );
    std::fs::write(&path, conflicting).expect("writable");
    let e = PriceDb::from_json_file(&path).expect_err("conflicting thresholds");
    assert!(e.message().contains("threshold: openai: new-model: prices[0].tiers[0]"), "{}", e.message());
    let no_threshold = bad.replace(
        r#""output": "-2""#,
        r#""output": "2", "tiers": [{"counted": ["input"], "rates": {}, "service_tiers": {"priority": {}}}]"#,
    );
    std::fs::write(&path, no_threshold).expect("writable");
    let e = PriceDb::from_json_file(&path).expect_err("missing threshold");
    assert!(e.message().contains("needs above_prompt_tokens or at_least_prompt_tokens"), "{}", e.message());
    assert!(e.message().contains("unknown-name: openai: new-model: prices[0].tiers[0].service_tiers.priority"));
    // Missing component (a chat model without output), unknown field, unreadable file.
    std::fs::write(&path, bad.replace(r#", "output": "-2""#, "")).expect("writable");
    assert!(PriceDb::from_json_file(&path).expect_err("no output").message().contains("mode: openai: new-model"));
    std::fs::write(&path, bad.replace("\"input\"", "\"inptu\"")).expect("writable");
    assert_eq!(code(PriceDb::from_json_file(&path)), ErrorCode::InvalidPriceData);
    assert_eq!(code(PriceDb::from_json_file(&dir.path().join("missing.json"))), ErrorCode::Config);
}
