//! Runs every cross-language test vector in `tests/vectors/` (format: `tests/vectors/README.md`).
//!
//! Each case is parsed through both entry points (`&str` and `serde_json::Value`), which must agree;
//! the normalized [`Usage`] is compared field by field with `expected.usage`, error cases by code.
//! Where a case gives `expected.cost_usd`, the usage is priced with the embedded price database
//! (extended by the case's own `prices`, when it has some) at the case's `at` (default: now) and must
//! equal it exactly.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use llmledger_core::sse::SseSplitter;
use llmledger_core::stream::StreamAccumulator;
use llmledger_core::usage::{parse_response, parse_response_value, Api, Provider, Usage};
use llmledger_core::{Error, ErrorCode, PriceDb, PriceOptions};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct StreamEvent {
    event: Option<String>,
    data: Value,
}

#[derive(Debug, Default, Deserialize)]
struct Expected {
    usage: Option<serde_json::Map<String, Value>>,
    flags_include: Option<Vec<String>>,
    error_code: Option<String>,
    cost_usd: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    provider: String,
    api: String,
    model: String,
    request: Option<Value>,
    response: Option<Value>,
    response_raw: Option<String>,
    stream: Option<Vec<StreamEvent>>,
    stream_file: Option<String>,
    #[serde(default)]
    aborted: bool,
    prompt_estimate: Option<u64>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    price_options: PriceOptionsSpec,
    /// A price file in our format (one provider object) that extends the embedded data for this case.
    prices: Option<Value>,
    expected: Expected,
}

#[derive(Debug, Default, Deserialize)]
struct PriceOptionsSpec {
    #[serde(default)]
    batch: bool,
    service_tier: Option<String>,
    #[serde(default)]
    regional: bool,
    region: Option<String>,
}

/// Prices `usage` as the case says and compares with `expected.cost_usd`.
fn check_cost(case: &Case, usage: &Usage) -> Option<String> {
    let want: Decimal = case.expected.cost_usd.as_ref()?.parse().ok()?;
    let opts = PriceOptions {
        batch: case.price_options.batch,
        service_tier: case.price_options.service_tier.clone(),
        regional: case.price_options.regional,
        region: case.price_options.region.clone(),
    };
    let at = case.at.unwrap_or_else(chrono::Utc::now);
    let mut db = PriceDb::embedded();
    if let Some(prices) = &case.prices {
        match PriceDb::from_json(&prices.to_string()) {
            Ok(extra) => db.extend(extra),
            Err(e) => return Some(format!("the case's prices do not validate: {e}")),
        }
    }
    match db.price(usage, &case.model, at, &opts) {
        Ok(cost) if cost.total_usd == want => None,
        Ok(cost) => Some(format!("cost {} USD, want {want} ({:?})", cost.total_usd.normalize(), cost.breakdown)),
        Err(e) => Some(format!("pricing failed: {e}, want {want}")),
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn load_cases() -> Vec<(String, Case)> {
    let dir = vectors_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        let list: Vec<Case> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", f.display()));
        let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        cases.extend(list.into_iter().map(|c| (file.clone(), c)));
    }
    cases
}

/// A raw SSE transcript split by core's one splitter (the bindings' runners feed the same bytes to it).
fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut sse = SseSplitter::default();
    let mut emit = |event: Option<&str>, data: &str| out.push((event.map(str::to_owned), data.to_owned()));
    sse.feed(text.as_bytes(), &mut emit);
    sse.end(emit);
    out
}

fn provider_api(case: &Case) -> (Provider, Api) {
    let provider = case.provider.parse().unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let api = case.api.parse().unwrap_or_else(|e| panic!("{}: {e}", case.name));
    (provider, api)
}

/// The events of a stream case as (event, raw data text, parsed data if it is JSON).
fn stream_events(case: &Case) -> Vec<(Option<String>, String, Option<Value>)> {
    if let Some(file) = &case.stream_file {
        let path = vectors_dir().join(file);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: read {}: {e}", case.name, path.display()));
        return parse_sse(&text)
            .into_iter()
            .map(|(e, d)| {
                let v = serde_json::from_str(&d).ok().or_else(|| (d == "[DONE]").then(|| Value::String(d.clone())));
                (e, d, v)
            })
            .collect();
    }
    let events = case.stream.as_deref().unwrap_or_default();
    events
        .iter()
        .map(|ev| match &ev.data {
            Value::String(s) => {
                let v = serde_json::from_str(s).ok().or_else(|| (s == "[DONE]").then(|| Value::String(s.clone())));
                (ev.event.clone(), s.clone(), v)
            }
            other => (ev.event.clone(), other.to_string(), Some(other.clone())),
        })
        .collect()
}

fn run_stream(case: &Case, by_value: bool) -> Result<Usage, Error> {
    let (provider, api) = provider_api(case);
    let mut acc = StreamAccumulator::new(provider, api, &case.model);
    if let Some(n) = case.prompt_estimate {
        acc = acc.with_prompt_estimate(n);
    }
    for (event, text, value) in stream_events(case) {
        match (&value, by_value) {
            (Some(v), true) => acc.push_value(event.as_deref(), v)?,
            _ => acc.push(event.as_deref(), &text)?,
        }
    }
    Ok(if case.aborted { acc.finish_aborted() } else { acc.finish() })
}

/// The normalized usage of a case through the `&str` entry points (the reference result), after
/// checking that the `serde_json::Value` entry points agree.
fn case_usage(case: &Case) -> Result<Usage, Error> {
    let (provider, api) = provider_api(case);
    let request = case.request.as_ref();
    if case.stream.is_some() || case.stream_file.is_some() {
        let by_str = run_stream(case, false);
        let by_value = run_stream(case, true);
        assert_same(case, &by_str, &by_value);
        return by_str;
    }
    let (text, value) = match (&case.response, &case.response_raw) {
        (Some(v), None) => (v.to_string(), Some(v.clone())),
        (None, Some(raw)) => (raw.clone(), serde_json::from_str(raw).ok()),
        (None, None) => (String::new(), None),
        (Some(_), Some(_)) => panic!("{}: both response and response_raw", case.name),
    };
    let by_str = parse_response(provider, api, &text, request);
    if let Some(v) = value {
        assert_same(case, &by_str, &parse_response_value(provider, api, &v, request));
    }
    by_str
}

fn assert_same(case: &Case, a: &Result<Usage, Error>, b: &Result<Usage, Error>) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "{}: &str and Value entry points disagree", case.name),
        (Err(x), Err(y)) => assert_eq!(x.code(), y.code(), "{}: &str and Value error codes disagree", case.name),
        _ => panic!("{}: &str gave {a:?}, Value gave {b:?}", case.name),
    }
}

fn check_usage(case: &Case, usage: &Usage) -> Vec<String> {
    let mut problems = Vec::new();
    let actual = serde_json::to_value(usage).unwrap_or(Value::Null);
    for (key, want) in case.expected.usage.iter().flatten() {
        let got = actual.get(key).cloned().unwrap_or(match key.as_str() {
            "flags" => Value::Array(Vec::new()),
            _ => Value::Null,
        });
        let same = match (key.as_str(), &got, want) {
            ("audio_seconds", Value::String(g), Value::String(w)) => {
                g.parse::<Decimal>().ok().is_some() && g.parse::<Decimal>().ok() == w.parse::<Decimal>().ok()
            }
            _ => &got == want,
        };
        if !same {
            problems.push(format!("{key}: got {got}, want {want}"));
        }
    }
    for flag in case.expected.flags_include.iter().flatten() {
        if !actual["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == flag)) {
            problems.push(format!("flags: {} lacks {flag}", actual["flags"]));
        }
    }
    problems
}

/// Writes the per-case outcomes (`case<TAB>status<TAB>detail`) where `scripts/test.sh` collects the three
/// runners' tables (`LLMLEDGER_VECTOR_TABLE_DIR`, default `target/vector-table`).
fn write_table(rows: &[String]) {
    let dir = std::env::var_os("LLMLEDGER_VECTOR_TABLE_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/vector-table"), PathBuf::from);
    let mut rows = rows.to_vec();
    rows.sort();
    let written = fs::create_dir_all(&dir).and_then(|()| fs::write(dir.join("rust.tsv"), rows.join("\n") + "\n"));
    written.unwrap_or_else(|e| panic!("write the vector table in {}: {e}", dir.display()));
}

#[test]
fn every_vector_matches() {
    let cases = load_cases();
    assert!(cases.len() >= 60, "only {} vector cases", cases.len());
    let mut names = HashSet::new();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for (file, case) in &cases {
        assert!(names.insert(case.name.clone()), "duplicate case name {}", case.name);
        let has_input =
            [case.response.is_some(), case.response_raw.is_some(), case.stream.is_some(), case.stream_file.is_some()]
                .iter()
                .any(|x| *x)
                || case.api == "audio_speech";
        assert!(has_input, "{}: no response, response_raw or stream", case.name);
        let before = failures.len();
        let result = case_usage(case);
        match (&case.expected.error_code, result) {
            (Some(code), Err(e)) => {
                if e.code().as_str() != code {
                    failures.push(format!("{file}/{}: error {} ({e}), want {code}", case.name, e.code()));
                }
            }
            (Some(code), Ok(u)) => failures.push(format!("{file}/{}: parsed {u:?}, want error {code}", case.name)),
            (None, Err(e)) => failures.push(format!("{file}/{}: unexpected error {e}", case.name)),
            (None, Ok(u)) => {
                assert!(case.expected.usage.is_some(), "{}: no expected.usage", case.name);
                failures.extend(check_usage(case, &u).into_iter().map(|p| format!("{file}/{}: {p}", case.name)));
                failures.extend(check_cost(case, &u).map(|p| format!("{file}/{}: {p}", case.name)));
            }
        }
        let row = match failures.get(before) {
            None => format!("{}\tpass\tcore", case.name),
            Some(first) => format!("{}\tfail\t{}", case.name, first.replace(['\t', '\n'], " ")),
        };
        table.push(row);
    }
    write_table(&table);
    assert!(failures.is_empty(), "{} vector failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn vectors_cover_every_provider_api_and_trap() {
    let cases = load_cases();
    let pairs: HashSet<(String, String)> = cases.iter().map(|(_, c)| (c.provider.clone(), c.api.clone())).collect();
    for (p, a) in [
        ("openai", "chat_completions"),
        ("openai", "responses"),
        ("openai", "embeddings"),
        ("openai", "images"),
        ("openai", "audio_transcription"),
        ("openai", "audio_speech"),
        ("azure", "chat_completions"),
        ("xai", "chat_completions"),
        ("anthropic", "messages"),
        ("gemini", "generate_content"),
        ("bedrock", "converse"),
        ("bedrock", "messages"),
    ] {
        assert!(pairs.contains(&(p.to_owned(), a.to_owned())), "no vector for {p}/{a}");
    }
    let streams: HashSet<&str> = cases
        .iter()
        .filter(|(_, c)| c.stream.is_some() || c.stream_file.is_some())
        .map(|(_, c)| c.api.as_str())
        .collect();
    for a in ["chat_completions", "responses", "messages", "generate_content", "converse"] {
        assert!(streams.contains(a), "no stream vector for {a}");
    }
    let aborted = cases.iter().filter(|(_, c)| c.aborted).count();
    assert!(aborted >= 3, "only {aborted} aborted streams");
    let codes: HashSet<&str> = cases.iter().filter_map(|(_, c)| c.expected.error_code.as_deref()).collect();
    for code in [ErrorCode::InvalidJson, ErrorCode::MissingField, ErrorCode::InvalidValue, ErrorCode::UnknownEventType]
    {
        assert!(codes.contains(code.as_str()), "no error vector for {code}");
    }
    for (_, c) in &cases {
        if let Some(cost) = &c.expected.cost_usd {
            assert!(cost.parse::<Decimal>().is_ok_and(|d| d >= Decimal::ZERO), "{}: bad cost_usd {cost}", c.name);
        }
    }
}

#[test]
fn sse_transcripts_split_like_the_spec() {
    let events = parse_sse("event: a\ndata: {\"x\":1}\n\n: comment\ndata: [DONE]\n\n");
    assert_eq!(events, vec![(Some("a".to_owned()), "{\"x\":1}".to_owned()), (None, "[DONE]".to_owned())]);
}

/// Every embedded model × price version, from the data files themselves (`pricing/data/*.json`): at
/// 00:00 UTC on each `effective_from` that version is used, and one second earlier the version before
/// it (the day before). The versions' dates come from the data, not from the price engine.
#[test]
fn every_price_version_boundary_picks_the_right_version() {
    use chrono::{Duration, NaiveDate, TimeZone, Utc};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pricing/data");
    let db = PriceDb::embedded();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    let (mut checked, mut boundaries, mut problems) = (0, 0, Vec::new());
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let data: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", file.display()));
        for model in data["models"].as_array().into_iter().flatten() {
            let id = model["id"].as_str().unwrap_or_default();
            let versions = model["prices"].as_array().cloned().unwrap_or_default();
            let dates: Vec<NaiveDate> = versions
                .iter()
                .map(|v| {
                    v["effective_from"].as_str().and_then(|d| d.parse().ok()).unwrap_or_else(|| panic!("{id}: date"))
                })
                .collect();
            for (i, version) in versions.iter().enumerate() {
                let start = Utc.from_utc_datetime(&dates[i].and_hms_opt(0, 0, 0).unwrap_or_default());
                let mut instants = vec![(start, dates[i])];
                if i > 0 {
                    instants.push((start - Duration::seconds(1), dates[i - 1]));
                    boundaries += 1;
                }
                let usage = usage_priced_by(version);
                for (at, want) in instants {
                    checked += 1;
                    match db.price(&usage, id, at, &PriceOptions::default()) {
                        Ok(cost) if cost.price_version == want => {}
                        Ok(cost) => problems.push(format!("{id} at {at}: version {}, want {want}", cost.price_version)),
                        Err(e) => problems.push(format!("{id} at {at}: {e}")),
                    }
                }
            }
        }
    }
    assert!(boundaries >= 12, "only {boundaries} version boundaries in the embedded data");
    assert!(problems.is_empty(), "{} of {checked} instants:\n{}", problems.len(), problems.join("\n"));
}

/// A usage that `version` has a price for: tokens when it prices input tokens, else its per-image,
/// per-minute, per-video-second or per-character unit.
fn usage_priced_by(version: &Value) -> Usage {
    let mut usage = Usage::default();
    if version.get("input").is_some() {
        usage.input_tokens = 1_000;
    } else if let Some(image) = version["per_image"].get(0) {
        usage.images = Some(llmledger_core::usage::ImageGeneration {
            count: 1,
            size: image["size"].as_str().unwrap_or_default().to_owned(),
            quality: image["quality"].as_str().unwrap_or_default().to_owned(),
        });
    } else if version.get("per_audio_minute").is_some() {
        usage.audio_seconds = Some(Decimal::from(60));
    } else if version.get("per_video_second").is_some() {
        usage.video_seconds = Some(Decimal::from(4));
    } else {
        usage.input_characters = 1_000;
    }
    usage
}
