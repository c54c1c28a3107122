//! Runs every cross-language test vector in `tests/vectors/` (format: `tests/vectors/README.md`).
//!
//! Each case is parsed through both entry points (`&str` and `serde_json::Value`), which must agree;
//! the normalized [`Usage`] is compared field by field with `expected.usage`, error cases by code.
//! Where a case gives `expected.cost_usd`, the usage is priced with the embedded price database
//! (extended by the case's own `prices`, when it has some) at the case's `at` (default: now) and must
//! equal it exactly.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use llmledger_core::call::{Client, ClientSpec, RequestFacts, Sdk};
use llmledger_core::event::Attribution;
use llmledger_core::report::{GroupBy, UsageQuery};
use llmledger_core::sse::SseSplitter;
use llmledger_core::stream::StreamAccumulator;
use llmledger_core::tracker::{Tracked, Tracker, TrackerConfig};
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
    /// The binding contract part of a case (`bindings.json`): what core can check of it alone runs in
    /// [`binding_cases_through_the_call_engine`].
    binding: Option<Binding>,
}

#[derive(Debug, Deserialize)]
struct Binding {
    tracker: TrackerSpec,
    #[serde(default)]
    attribution: Attribution,
    call: CallSpec,
    expected: BindingExpected,
}

#[derive(Debug, Deserialize)]
struct TrackerSpec {
    store: String,
    currency: String,
    #[serde(default)]
    rates: BTreeMap<String, String>,
    timezone: String,
}

#[derive(Debug, Deserialize)]
struct CallSpec {
    sdk: Sdk,
    params: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BindingExpected {
    injected: Option<bool>,
    hidden: Option<usize>,
    chunks_seen: Option<usize>,
    record: Option<Value>,
    keys: BTreeMap<String, Vec<String>>,
    after_end: Option<AfterEnd>,
    report: Option<ReportSpec>,
}

#[derive(Debug, Deserialize)]
struct AfterEnd {
    finish: Value,
    push_hidden: bool,
}

#[derive(Debug, Deserialize)]
struct ReportSpec {
    query: QuerySpec,
    rows: Vec<Value>,
    keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct QuerySpec {
    group_by: Vec<String>,
    timezone: Option<String>,
    #[serde(default)]
    p95: bool,
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

/// Compares `got` with `want` where `want` says something: objects key by key (only the keys `want`
/// has), arrays element by element, everything else exactly. `{"$date_at_offset": "+09:00"}` stands for
/// the date of the record's `timestamp` at that UTC offset.
fn compare(path: &str, want: &Value, got: &Value, timestamp: DateTime<FixedOffset>, out: &mut Vec<String>) {
    match want {
        Value::Object(w) if w.len() == 1 && w.contains_key("$date_at_offset") => {
            let offset: FixedOffset = w["$date_at_offset"].as_str().and_then(|o| o.parse().ok()).expect("an offset");
            let date = timestamp.with_timezone(&offset).date_naive().to_string();
            if got.as_str() != Some(date.as_str()) {
                out.push(format!("{path}: got {got}, want {date} (the record's date at {offset})"));
            }
        }
        Value::Object(w) => match got.as_object() {
            Some(g) => {
                for (k, v) in w {
                    match g.get(k) {
                        Some(gv) => compare(&format!("{path}.{k}"), v, gv, timestamp, out),
                        None => out.push(format!("{path}.{k}: missing")),
                    }
                }
            }
            None => out.push(format!("{path}: got {got}, want an object")),
        },
        Value::Array(w) => match got.as_array() {
            Some(g) if g.len() == w.len() => {
                for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                    compare(&format!("{path}[{i}]"), wv, gv, timestamp, out);
                }
            }
            _ => out.push(format!("{path}: got {got}, want {} elements", w.len())),
        },
        _ if want != got => out.push(format!("{path}: got {got}, want {want}")),
        _ => {}
    }
}

/// The exact key set of the object at `path` (dot-separated; `""` is the record itself).
fn compare_keys(what: &str, object: &Value, want: &[String], out: &mut Vec<String>) {
    let mut got: Vec<&str> = object.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        out.push(format!("{what} keys: got {got:?}, want {want:?}"));
    }
}

/// Makes a binding case's call through core's call engine (as a binding does, minus the SDK and the
/// HTTP): `begin`, the include-usage decision, the response or the stream's events, `finish`; then the
/// record's JSON, finishing again, and the report. Returns the problems found.
fn run_binding_case(case: &Case, b: &Binding) -> Vec<String> {
    let mut out = Vec::new();
    let config = TrackerConfig {
        store: Some(b.tracker.store.clone()),
        currency: b.tracker.currency.clone(),
        rates: b.tracker.rates.clone(),
        timezone: b.tracker.timezone.clone(),
        ..TrackerConfig::default()
    };
    let tracker = Tracker::new(config).unwrap_or_else(|e| panic!("{}: tracker: {e}", case.name));
    let spec = ClientSpec { sdk: b.call.sdk, provider: Some(case.provider.clone()), ..ClientSpec::default() };
    let client = Client::new(&spec).unwrap_or_else(|e| panic!("{}: client: {e}", case.name));
    let (_, api) = provider_api(case);
    let params = &b.call.params;
    let facts = RequestFacts {
        model: params["model"].as_str(),
        stream: params["stream"] == Value::Bool(true),
        service_tier: params["service_tier"].as_str(),
        include_usage: params.pointer("/stream_options/include_usage").and_then(Value::as_bool),
        has_tools: params.get("tools").is_some() || params.get("web_search_options").is_some(),
        ..RequestFacts::default()
    };
    let mut pending = tracker.begin(&client, api, &facts, b.attribution.clone());
    if let Some(want) = b.expected.injected {
        if pending.inject_include_usage() != want {
            out.push(format!("injected: got {}, want {want}", pending.inject_include_usage()));
        }
    }
    if pending.wants_request_body() {
        pending.set_request_body(&params.to_string());
    }
    let tracked: Tracked = if facts.stream {
        let mut stream = pending.into_stream();
        let (mut hidden, mut seen) = (0, 0);
        let events = stream_events(case);
        for (event, text, _) in &events {
            match stream.push_event(event.as_deref(), text) {
                Ok(true) => hidden += 1,
                Ok(false) if text != "[DONE]" => seen += 1,
                Ok(false) => {}
                Err(e) => out.push(format!("push: {e}")),
            }
        }
        if b.expected.hidden.is_some_and(|want| want != hidden) {
            out.push(format!("hidden: got {hidden}, want {:?}", b.expected.hidden));
        }
        if b.expected.chunks_seen.is_some_and(|want| want != seen) {
            out.push(format!("chunks_seen: got {seen}, want {:?}", b.expected.chunks_seen));
        }
        let tracked = match stream.finish(case.aborted) {
            Ok(Some(t)) => t,
            other => panic!("{}: the first finish gave {other:?}", case.name),
        };
        if let Some(after) = &b.expected.after_end {
            // The last JSON event again: while the stream was live, it would have been hidden.
            let (event, text, _) = events.iter().rev().find(|(_, t, _)| t != "[DONE]").expect("an event");
            let again = stream.finish(false).map(|t| t.map(|t| t.event_id));
            if again != Ok(None) || !after.finish.is_null() {
                out.push(format!("second finish: got {again:?}, want {}", after.finish));
            }
            let pushed = stream.push_event(event.as_deref(), text);
            if pushed != Ok(after.push_hidden) {
                out.push(format!("push after the end: got {pushed:?}, want Ok({})", after.push_hidden));
            }
        }
        tracked
    } else {
        let body =
            case.response.as_ref().map(Value::to_string).or_else(|| case.response_raw.clone()).unwrap_or_default();
        pending.finish(body.as_bytes()).unwrap_or_else(|e| panic!("{}: finish: {e}", case.name))
    };
    let record = serde_json::to_value(&tracked).unwrap_or(Value::Null);
    let timestamp = record["timestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("{}: timestamp {}", case.name, record["timestamp"]));
    if let Some(want) = &b.expected.record {
        compare("record", want, &record, timestamp, &mut out);
    }
    for (path, keys) in &b.expected.keys {
        let object = path.split('.').filter(|p| !p.is_empty()).fold(&record, |v, k| &v[k]);
        compare_keys(&format!("record.{path}"), object, keys, &mut out);
    }
    if let Some(report) = &b.expected.report {
        tracker.flush().unwrap_or_else(|e| panic!("{}: flush: {e}", case.name));
        let group_by = report.query.group_by.iter().map(|g| g.parse::<GroupBy>()).collect::<Result<Vec<_>, _>>();
        let query = UsageQuery {
            group_by: group_by.unwrap_or_else(|e| panic!("{}: {e}", case.name)),
            timezone: report.query.timezone.clone(),
            p95: report.query.p95,
            ..UsageQuery::default()
        };
        let rows = tracker.usage_rows(&query).unwrap_or_else(|e| panic!("{}: report: {e}", case.name));
        let rows = serde_json::to_value(&rows).unwrap_or(Value::Null);
        compare("report", &Value::Array(report.rows.clone()), &rows, timestamp, &mut out);
        for (i, row) in rows.as_array().into_iter().flatten().enumerate() {
            compare_keys(&format!("report[{i}]"), row, &report.keys, &mut out);
        }
    }
    tracker.close().unwrap_or_else(|e| panic!("{}: close: {e}", case.name));
    out
}

#[test]
fn binding_cases_through_the_call_engine() {
    let cases: Vec<(String, Case)> = load_cases().into_iter().filter(|(_, c)| c.binding.is_some()).collect();
    assert!(cases.len() >= 7, "only {} binding cases", cases.len());
    let mut failures = Vec::new();
    for (file, case) in &cases {
        let Some(binding) = &case.binding else { continue };
        failures.extend(run_binding_case(case, binding).into_iter().map(|p| format!("{file}/{}: {p}", case.name)));
    }
    assert!(failures.is_empty(), "{} binding vector failures:\n{}", failures.len(), failures.join("\n"));
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
