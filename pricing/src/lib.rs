//! The llmledger price database, as data.
//!
//! `data/*.json` (one file per provider, format in [`schema`]) is checked by `build.rs` with
//! [`validate::validate`] — a bad schema, a duplicate id or alias, unsorted versions or tiers, or a
//! negative price fails the build — and embedded here as one JSON array of [`schema::PriceFile`].
//! Resolution of model names and the cost engine live in `llmledger-core`; this crate holds the
//! facts and nothing else.

mod fingerprint;
pub mod schema;
pub mod validate;

/// All embedded price files, as one JSON array of [`schema::PriceFile`] (validated at build time).
pub const EMBEDDED_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/prices.json"));

/// The version of the embedded price data: `<newest checked date>.<FNV-1a of the data, 16 hex>`, e.g.
/// `2026-11-25.0123456789abcdef`. Every priced event records the data version it was priced with.
pub const DATA_VERSION: &str = include_str!(concat!(env!("OUT_DIR"), "/data_version.txt"));

pub use fingerprint::fingerprint;

/// The embedded price files, parsed.
pub fn embedded() -> Vec<schema::PriceFile> {
    // Validated by build.rs with the same types, so this cannot fail for a built crate.
    serde_json::from_str(EMBEDDED_JSON).expect("embedded price data was validated at build time")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::schema::{ModelMode, PriceFile};
    use super::validate::{validate, Kind};
    use super::*;

    fn parse(json: &str) -> PriceFile {
        serde_json::from_str(json).expect("test JSON matches the schema")
    }

    /// One provider file with the given models (JSON objects).
    fn file(provider: &str, models: &str) -> PriceFile {
        parse(&format!(r#"{{"provider": "{provider}", "models": [{models}]}}"#))
    }

    /// A valid chat model with one version; `extra` is spliced into the version object.
    fn chat(id: &str, aliases: &str, extra: &str) -> String {
        format!(
            r#"{{"id": "{id}", "mode": "chat", "aliases": [{aliases}], "prices": [{{
                "effective_from": "2025-01-01", "source": "https://example.test/pricing", "checked": "2025-02-01",
                "input": "1.00", "output": "2.00"{extra}}}]}}"#
        )
    }

    fn errors_of(files: &[PriceFile]) -> Vec<String> {
        match validate(files) {
            Ok(()) => Vec::new(),
            Err(errors) => errors,
        }
    }

    /// The messages of one kind.
    fn of_kind(errors: &[String], kind: Kind) -> Vec<String> {
        let prefix = format!("{}: ", kind.tag());
        errors.iter().filter(|e| e.starts_with(&prefix)).cloned().collect()
    }

    #[test]
    fn valid_data_passes() {
        let files = [file("a", &chat("m1", r#""m1-2025""#, "")), file("b", &chat("m2", "", ""))];
        assert_eq!(validate(&files), Ok(()));
    }

    #[test]
    fn duplicate_ids_and_aliases_across_files_are_reported() {
        let files = [
            file("openai", &chat("gpt-x", r#""gpt-x-2025""#, "")),
            // same id in another file; an alias equal to another model's id; an alias repeated
            file("azure", &format!("{},{}", chat("gpt-x", "", ""), chat("other", r#""gpt-x-2025", "o""#, ""))),
            file("xai", &chat("grok", r#""o""#, "")),
        ];
        let errors = errors_of(&files);
        let dups = of_kind(&errors, Kind::Duplicate);
        assert_eq!(dups.len(), 3, "{errors:?}");
        assert!(dups[0].starts_with("duplicate: azure: gpt-x: id = gpt-x: already used by openai: gpt-x"), "{dups:?}");
        assert!(dups[1].contains("azure: other: aliases = gpt-x-2025"), "{dups:?}");
        assert!(dups[2].contains("xai: grok: aliases = o: already used by azure: other"), "{dups:?}");
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn unsorted_versions_are_reported() {
        let model = r#"{"id": "m", "mode": "embedding", "prices": [
            {"effective_from": "2025-03-01", "source": "s", "checked": "2025-04-01", "input": "1"},
            {"effective_from": "2025-01-01", "source": "s", "checked": "2025-04-01", "input": "2"},
            {"effective_from": "2025-01-01", "source": "s", "checked": "2025-04-01", "input": "3"}]}"#;
        let errors = errors_of(&[file("p", model)]);
        let unsorted = of_kind(&errors, Kind::UnsortedVersions);
        assert_eq!(unsorted.len(), 2, "{errors:?}");
        assert!(unsorted[0].contains("p: m: prices.effective_from = 2025-01-01"), "{unsorted:?}");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn unsorted_and_repeated_tiers_and_empty_counted_are_reported() {
        let tiers = r#", "tiers": [
            {"above_prompt_tokens": 200000, "counted": ["input"], "rates": {"input": "2"}},
            {"above_prompt_tokens": 128000, "counted": ["input"], "rates": {"input": "3"}},
            {"above_prompt_tokens": 128000, "counted": [], "rates": {"input": "4"}}]"#;
        let errors = errors_of(&[file("p", &chat("m", "", tiers))]);
        let unsorted = of_kind(&errors, Kind::UnsortedTiers);
        assert_eq!(unsorted.len(), 2, "{errors:?}");
        assert!(unsorted[0].contains("prices[0].tiers[1].above_prompt_tokens = 128000"), "{unsorted:?}");
        assert!(unsorted[1].contains("prices[0].tiers[2].above_prompt_tokens = 128000: repeats"), "{unsorted:?}");
        let counted = of_kind(&errors, Kind::EmptyCounted);
        assert_eq!(counted.len(), 1);
        assert!(counted[0].contains("prices[0].tiers[2].counted"));
    }

    #[test]
    fn negative_prices_are_reported_wherever_they_are() {
        let extra = r#", "cache_read": "-0.1",
            "tiers": [{"above_prompt_tokens": 1000, "counted": ["input"], "rates": {"output": "-5"}}],
            "service_tiers": {"flex": {"input": "-0.5"}},
            "per_image": [{"size": "1024x1024", "quality": "standard", "price": "-0.04"}],
            "web_search_per_1k": "-10", "per_request": "-0.01""#;
        let errors = errors_of(&[file("p", &chat("m", "", extra))]);
        let negative = of_kind(&errors, Kind::Negative);
        let fields: BTreeSet<&str> =
            negative.iter().filter_map(|e| e.split(": ").nth(3)).filter_map(|f| f.split(" = ").next()).collect();
        let expected: BTreeSet<&str> = [
            "prices[0].cache_read",
            "prices[0].tiers[0].rates.output",
            "prices[0].service_tiers.flex.input",
            "prices[0].per_image[0].price",
            "prices[0].web_search_per_1k",
            "prices[0].per_request",
        ]
        .into();
        assert_eq!(fields, expected, "{errors:?}");
        assert!(negative.iter().any(|e| e.contains("prices[0].cache_read = -0.1: must not be negative")));
        assert_eq!(errors.len(), 6);
    }

    #[test]
    fn multipliers_out_of_range_are_reported() {
        let errors = errors_of(&[
            file("p", &chat("a", "", r#", "batch_multiplier": "0""#)),
            file("q", &chat("b", "", r#", "regional_multiplier": "2.5""#)),
            file("r", &chat("c", "", r#", "batch_multiplier": "2", "regional_multiplier": "1.1""#)),
        ]);
        let bad = of_kind(&errors, Kind::Multiplier);
        assert_eq!(bad.len(), 2, "{errors:?}");
        assert!(bad[0].contains("p: a: prices[0].batch_multiplier = 0"));
        assert!(bad[1].contains("q: b: prices[0].regional_multiplier = 2.5"));
    }

    #[test]
    fn rules_of_the_newer_fields_are_checked() {
        let extra = r#", "regional_multipliers": {"us": "1.1", "eu": "3", "": "1.1"},
            "web_search_per_1k_by_context": {"low": "5", "huge": "9", "high": "-1"},
            "grounding_per_1k": "-14", "per_video_second": "-0.1", "cache_storage_per_hour": "-1",
            "per_item": {"image": "-0.02"}, "cache_write_12h": "-2",
            "service_tiers": {"priority": {"input": "2"}},
            "tiers": [{"at_least_prompt_tokens": 1000, "counted": ["input"], "rates": {},
                       "service_tiers": {"priority": {"input": "4"}, "flex": {"input": "1"}}},
                      {"above_prompt_tokens": 999, "counted": ["input"], "rates": {}},
                      {"counted": ["input"], "rates": {}}]"#;
        let errors = errors_of(&[file("p", &chat("m", "", extra))]);
        let fields = |kind: Kind| -> Vec<String> {
            of_kind(&errors, kind)
                .iter()
                .filter_map(|e| e.split(": ").nth(3).and_then(|f| f.split(" = ").next()).map(str::to_string))
                .collect()
        };
        assert_eq!(fields(Kind::Multiplier), ["prices[0].regional_multipliers.eu"], "{errors:?}");
        let mut negative = fields(Kind::Negative);
        negative.sort();
        assert_eq!(
            negative,
            [
                "prices[0].cache_storage_per_hour",
                "prices[0].cache_write_12h",
                "prices[0].grounding_per_1k",
                "prices[0].per_item.image",
                "prices[0].per_video_second",
                "prices[0].web_search_per_1k_by_context.high",
            ],
            "{errors:?}"
        );
        assert_eq!(
            fields(Kind::UnknownName),
            [
                "prices[0].tiers[0].service_tiers.flex",
                "prices[0].web_search_per_1k_by_context.huge",
                "prices[0].regional_multipliers.",
            ],
            "{errors:?}"
        );
        // `above: 999` is the same threshold as `at_least: 1000`; the third tier has none.
        assert_eq!(fields(Kind::UnsortedTiers), ["prices[0].tiers[1].above_prompt_tokens"], "{errors:?}");
        assert_eq!(fields(Kind::Threshold), ["prices[0].tiers[2].above_prompt_tokens"], "{errors:?}");
        assert_eq!(errors.len(), 12, "{errors:?}");
    }

    #[test]
    fn empty_source_is_reported_and_early_checks_are_not() {
        let model = r#"{"id": "m", "mode": "chat", "prices": [
            {"effective_from": "2025-03-01", "source": " ", "checked": "2025-02-01", "input": "1", "output": "1"}]}"#;
        let errors = errors_of(&[file("p", model)]);
        // A price announced ahead of its date is valid: `checked` may precede `effective_from`.
        assert_eq!(of_kind(&errors, Kind::EmptySource).len(), 1, "{errors:?}");
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn empty_prices_and_mode_gaps_are_reported() {
        let version = r#"{"effective_from": "2025-01-01", "source": "s", "checked": "2025-01-01", "input": "1"}"#;
        let models = [
            r#"{"id": "none", "mode": "chat", "prices": []}"#.to_string(),
            format!(r#"{{"id": "chat-no-output", "mode": "chat", "prices": [{version}]}}"#),
            format!(r#"{{"id": "emb", "mode": "embedding", "prices": [{version}]}}"#),
            format!(r#"{{"id": "img", "mode": "image_generation", "prices": [{version}]}}"#),
            format!(r#"{{"id": "stt", "mode": "audio_transcription", "prices": [{version}]}}"#),
            format!(r#"{{"id": "tts", "mode": "audio_speech", "prices": [{version}]}}"#),
        ];
        let errors = errors_of(&[file("p", &models.join(","))]);
        assert_eq!(of_kind(&errors, Kind::NoPrices).len(), 1, "{errors:?}");
        let mode: Vec<String> = of_kind(&errors, Kind::Mode);
        let ids: Vec<&str> = mode.iter().filter_map(|e| e.split(": ").nth(2)).collect();
        assert_eq!(ids, ["chat-no-output", "img", "stt", "tts"], "{errors:?}");
    }

    #[test]
    fn duplicate_image_sizes_and_empty_names_are_reported() {
        let model = r#"{"id": "img", "mode": "image_generation", "aliases": [""], "prices": [
            {"effective_from": "2025-01-01", "source": "s", "checked": "2025-01-01", "per_image": [
                {"size": "1024x1024", "quality": "hd", "price": "0.08"},
                {"size": "1024x1024", "quality": "hd", "price": "0.09"}]}]}"#;
        let errors = errors_of(&[file("", model)]);
        assert_eq!(of_kind(&errors, Kind::DuplicateImagePrice).len(), 1, "{errors:?}");
        assert_eq!(of_kind(&errors, Kind::EmptyName).len(), 2, "{errors:?}");
    }

    /// Ids the rest of llmledger, its docs and its test vectors rely on.
    #[rustfmt::skip]
    const MUST_HAVE: &[&str] = &[
        // OpenAI
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-chat-latest", "gpt-5.1", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
        "gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-mini", "gpt-4o-audio-preview", "gpt-4o-mini-audio-preview", "o1", "o1-mini",
        "o1-pro", "o3", "o3-mini", "o3-pro", "o4-mini", "gpt-4-turbo", "gpt-4", "gpt-4-32k", "gpt-3.5-turbo",
        "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002", "dall-e-2", "dall-e-3",
        "gpt-image-1", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "tts-1", "tts-1-hd",
        "gpt-4o-mini-tts",
        // Anthropic
        "claude-3-haiku", "claude-3-sonnet", "claude-3-opus", "claude-3-5-haiku", "claude-3-5-sonnet",
        "claude-3-7-sonnet", "claude-sonnet-4", "claude-sonnet-4-5", "claude-opus-4", "claude-opus-4-1",
        "claude-haiku-4-5", "claude-opus-4-5",
        // Gemini
        "gemini-1.5-flash", "gemini-1.5-pro", "gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-2.5-flash",
        "gemini-2.5-flash-lite", "gemini-2.5-pro",
        // xAI
        "grok-3", "grok-3-mini", "grok-4", "grok-4-fast-reasoning", "grok-4-fast-non-reasoning", "grok-code-fast-1",
    ];

    /// Aliases that must resolve to a given canonical id (dated snapshots, Azure and Bedrock names).
    const MUST_ALIAS: &[(&str, &str)] = &[
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-35-turbo", "gpt-3.5-turbo"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("gemini-1.5-flash-latest", "gemini-1.5-flash"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("grok-4-0709", "grok-4"),
    ];

    #[test]
    fn embedded_data_is_valid_and_covers_the_required_models() {
        let files = embedded();
        assert_eq!(validate(&files), Ok(()));
        let providers: BTreeSet<&str> = files.iter().map(|f| f.provider.as_str()).collect();
        assert_eq!(providers, ["anthropic", "gemini", "openai", "xai"].into());
        let models: Vec<_> = files.iter().flat_map(|f| &f.models).collect();
        let ids: BTreeSet<&str> = models.iter().map(|m| m.id.as_str()).collect();
        let missing: Vec<&&str> = MUST_HAVE.iter().filter(|id| !ids.contains(**id)).collect();
        assert!(missing.is_empty(), "missing models: {missing:?}");
        for (alias, id) in MUST_ALIAS {
            let owner = models.iter().find(|m| m.aliases.iter().any(|a| a == alias)).map(|m| m.id.as_str());
            assert_eq!(owner, Some(*id), "alias {alias}");
        }
        // every provider file says how its tiers work
        assert!(files.iter().all(|f| f.tier_rule.as_deref().is_some_and(|t| !t.is_empty())));
    }

    #[test]
    fn embedded_data_carries_the_documented_rules() {
        let files = embedded();
        let find = |id: &str| files.iter().flat_map(|f| &f.models).find(|m| m.id == id).expect("model present");
        let dec = |s: &str| s.parse::<rust_decimal::Decimal>().expect("decimal literal");
        // Sonnet 4.5: long-context tier above 200k counting input and both cache classes, and 1.10 regional.
        let sonnet = find("claude-sonnet-4-5").prices.last().expect("a version");
        assert_eq!(sonnet.tiers.len(), 1);
        assert_eq!(sonnet.tiers[0].above_prompt_tokens, Some(200_000));
        assert_eq!(sonnet.tiers[0].rates.input, Some(dec("6.00")));
        assert_eq!(sonnet.tiers[0].rates.output, Some(dec("22.50")));
        assert_eq!(sonnet.rates.cache_write_1h, Some(dec("6.00")));
        assert_eq!(sonnet.regional_multiplier, Some(dec("1.10")));
        // o3's 2025-06-10 price cut is a second dated version.
        let o3 = &find("o3").prices;
        assert_eq!(o3.len(), 2);
        assert_eq!(o3[0].rates.input, Some(dec("10.00")));
        assert_eq!(o3[1].rates.input, Some(dec("2.00")));
        assert_eq!(o3[1].effective_from.to_string(), "2025-06-10");
        // Claude 4.6: the long-context tier ended when the 1M window went flat on 2026-03-13.
        let opus46 = &find("claude-opus-4-6").prices;
        assert_eq!(opus46.len(), 2);
        assert_eq!(opus46[0].tiers[0].rates.output, Some(dec("37.50")));
        assert!(opus46[1].tiers.is_empty());
        // gpt-5.4's long-context tier starts above 272k.
        assert_eq!(find("gpt-5.4").prices[0].tiers[0].above_prompt_tokens, Some(272_000));
        // Units outside tokens.
        let whisper = find("whisper-1");
        assert_eq!(whisper.mode, ModelMode::AudioTranscription);
        assert_eq!(whisper.prices[0].per_audio_minute, Some(dec("0.006")));
        let dalle3 = &find("dall-e-3").prices[0].per_image;
        assert!(dalle3.iter().any(|p| p.size == "1024x1792" && p.quality == "hd" && p.price == dec("0.120")));
        assert_eq!(find("tts-1").prices[0].per_million_characters, Some(dec("15.00")));
    }
}
