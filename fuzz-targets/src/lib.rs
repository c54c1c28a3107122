//! The fuzz targets: one function per parser that reads outside input, each taking raw bytes. They
//! panic only when an invariant breaks (a panic is the finding); errors on bad input are expected.
//! `fuzz/` runs them under libFuzzer (`cargo fuzz`, nightly); `fuzz-loop` runs them on stable Rust
//! with a seeded mutation loop over the committed corpus (`fuzz/corpus/<target>/`).

use chrono::{TimeZone, Utc};
use llmledger_core::event::UsageEvent;
use llmledger_core::stream::StreamAccumulator;
use llmledger_core::usage::{parse_response, parse_response_value, Api, Provider};
use llmledger_core::{tokens, PriceDb, PriceOptions, Usage};
use serde_json::Value;

/// A target: its name (the corpus directory) and the function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order the loop runs them.
pub const TARGETS: &[Target] = &[
    ("parse_response", parse_response_target),
    ("stream_push", stream_push_target),
    ("price_file", price_file_target),
    ("litellm_prices", litellm_prices_target),
    ("spill_line", spill_line_target),
    ("chat_count", chat_count_target),
];

/// Responses: any text, every provider × API; the `&str` and the `Value` entry points must agree (same
/// usage, or errors with the same code) — except on JSON with duplicate object keys, where they are
/// known to differ: a `Value` keeps the last one, the `&str` parser rejects a duplicated field.
pub fn parse_response_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let value: Option<Value> = serde_json::from_str(text).ok().filter(|_| !has_duplicate_keys(text));
    for provider in Provider::ALL {
        for api in Api::ALL {
            let by_str = parse_response(provider, api, text, value.as_ref());
            if let Some(v) = &value {
                let by_value = parse_response_value(provider, api, v, value.as_ref());
                match (&by_str, &by_value) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{provider}/{api}: &str and Value usages differ"),
                    (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{provider}/{api}: error codes differ"),
                    _ => panic!("{provider}/{api}: &str gave {by_str:?}, Value gave {by_value:?}"),
                }
            }
            if let Ok(usage) = by_str {
                price_any(&usage);
            }
        }
    }
}

/// Streams as bytes: one event per line (`event NUL data`, or just data), pushed to an accumulator of
/// every provider × API both as text and as parsed JSON; the two must agree event by event (same result
/// or same error code; events with duplicate keys are pushed as text only, see
/// [`parse_response_target`]), and both must finish, normally and abandoned.
pub fn stream_push_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let events: Vec<(Option<&str>, &str)> = text
        .lines()
        .map(|line| match line.split_once('\0') {
            Some((e, d)) => (Some(e), d),
            None => (None, line),
        })
        .collect();
    for provider in Provider::ALL {
        for api in Api::ALL {
            let mut by_str = StreamAccumulator::new(provider, api, "gpt-4o").with_prompt_estimate(10);
            let mut by_value = by_str.clone();
            for (event, payload) in &events {
                let a = by_str.push(*event, payload);
                let Ok(v) = serde_json::from_str::<Value>(payload) else { continue };
                if !v.is_object() || has_duplicate_keys(payload) {
                    continue;
                }
                let b = by_value.push_value(*event, &v);
                assert_eq!(a.map_err(|e| e.code()), b.map_err(|e| e.code()), "{provider}/{api}: push results differ");
            }
            let aborted = by_str.clone().finish_aborted();
            let finished = by_str.finish();
            price_any(&finished);
            price_any(&aborted);
            price_any(&by_value.finish());
        }
    }
}

/// Price files in llmledger's format: a file that loads must price every model it holds without a panic.
pub fn price_file_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(db) = PriceDb::from_json(text) {
        price_every_model(&db);
    }
}

/// LiteLLM's `model_prices_and_context_window.json`: converted exactly, then every model priced.
pub fn litellm_prices_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(db) = PriceDb::from_litellm_json(text) {
        price_every_model(&db);
    }
}

/// Spill-file lines (replayed at start-up): a line that parses must survive a round trip unchanged.
pub fn spill_line_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(event) = UsageEvent::from_json(text) else { return };
    let again = event.to_json().map(|line| UsageEvent::from_json(&line));
    match again {
        Ok(Ok(back)) => assert_eq!(back, event, "spill line changed in a round trip"),
        other => panic!("a parsed spill line does not serialize back: {other:?}"),
    }
}

/// Chat messages (and tools) as the estimate reads them: counting is deterministic and never panics.
pub fn chat_count_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(body) = serde_json::from_str::<Value>(text) else { return };
    let (messages, tools) = match body.get("messages") {
        Some(m) => (m.clone(), body.get("tools").cloned()),
        None => (body, None),
    };
    for model in ["gpt-4o", "gpt-4", "claude-sonnet-4-5", "gemini-2.5-flash"] {
        let first = tokens::count_chat(model, &messages, tools.as_ref()).map_err(|e| e.code());
        let second = tokens::count_chat(model, &messages, tools.as_ref()).map_err(|e| e.code());
        assert_eq!(first, second, "{model}: counting twice gave different results");
    }
}

/// Whether some JSON object in `text` repeats a key (or `text` is not JSON).
pub fn has_duplicate_keys(text: &str) -> bool {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    /// Walks any JSON value and fails on the first object that repeats a key.
    struct Unique;
    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(UniqueVisitor)
        }
    }
    struct UniqueVisitor;
    impl<'de> Visitor<'de> for UniqueVisitor {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                map.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
            while seq.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
    }
    serde_json::from_str::<Unique>(text).is_err()
}

fn price_any(usage: &Usage) {
    let db = PriceDb::embedded();
    let at = Utc::now();
    for model in ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "whisper-1", "dall-e-3", "tts-1"] {
        if let Ok(cost) = db.price(usage, model, at, &PriceOptions::default()) {
            assert!(!cost.total_usd.is_sign_negative(), "{model}: negative cost {} for {usage:?}", cost.total_usd);
        }
    }
}

fn price_every_model(db: &PriceDb) {
    let usage = Usage { input_tokens: 1_000, output_tokens: 100, ..Usage::default() };
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_else(Utc::now);
    for model in db.models(None) {
        if let Ok(cost) = db.price(&usage, model.id, at, &PriceOptions::default()) {
            assert!(!cost.total_usd.is_sign_negative(), "{}: negative cost {}", model.id, cost.total_usd);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn seeds(target: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
        let mut out: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        out.sort();
        out
    }

    /// The committed seeds reach past the first parse: a corpus of inputs the parser rejects outright
    /// would fuzz only the rejection.
    #[test]
    fn seeds_are_accepted_by_their_parser() {
        for line in seeds("spill_line") {
            if let Err(e) = UsageEvent::from_json(line.trim_end()) {
                panic!("spill seed does not parse ({e}): {line}");
            }
        }
        for file in seeds("price_file") {
            assert!(PriceDb::from_json(&file).is_ok(), "price seed does not load: {file}");
        }
        let lite = seeds("litellm_prices");
        assert!(lite.iter().filter(|f| PriceDb::from_litellm_json(f).is_ok()).count() >= lite.len() - 1);
        for text in seeds("chat_count") {
            assert!(serde_json::from_str::<Value>(&text).is_ok(), "not JSON: {text}");
        }
    }

    #[test]
    fn every_target_runs_its_seeds() {
        for (name, target) in TARGETS {
            let all = seeds(name);
            assert!(!all.is_empty(), "no seeds for {name}");
            all.iter().for_each(|s| target(s.as_bytes()));
        }
    }
}
