//! The built `llmledger` binary, run as a user would: every command in table and `--json` form, and bad
//! input with its exit code and message. Expected figures are hand-computed from the list prices
//! (USD per 1M tokens) written next to each case.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use llmledger_core::event::Attribution;
use llmledger_core::tracker::{CallInfo, Tracker, TrackerConfig};
use llmledger_core::{Api, Provider};
use rust_decimal::Decimal;
use serde_json::Value;

fn llmledger(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmledger"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// stdout of a command that must succeed.
fn ok(args: &[&str]) -> String {
    let out = llmledger(args);
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}, stderr {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// stderr of a command that must fail with `code`.
fn fails(args: &[&str], code: i32) -> String {
    let out = llmledger(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: stdout {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty() || code == 1, "{args:?}: printed a result on failure");
    String::from_utf8(out.stderr).unwrap()
}

fn json(args: &[&str]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")).parse().unwrap()
}

/// A fresh directory under the system temp dir, removed by the caller's `Drop` guard.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("llmledger-cli-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn price_json_and_table() {
    // gpt-4o: 2.50 input, 1.25 cached, 10.00 output per 1M:
    // 1000 × 2.50 + 2000 × 1.25 + 500 × 10.00 = 2500 + 2500 + 5000 = 10000 µ$ = 0.01 USD.
    let cost =
        json(&["price", "--model", "gpt-4o", "--input", "1000", "--cached", "2000", "--output", "500", "--json"]);
    assert_eq!(dec(&cost["total_usd"]), "0.01".parse().unwrap());
    assert_eq!(dec(&cost["breakdown"]["input"]), "0.0025".parse().unwrap());
    assert_eq!(dec(&cost["breakdown"]["cache_read"]), "0.0025".parse().unwrap());
    assert_eq!(dec(&cost["breakdown"]["output"]), "0.005".parse().unwrap());
    assert_eq!(cost["model"], "gpt-4o");
    let table = ok(&["price", "--model", "gpt-4o", "--input", "1000", "--cached", "2000", "--output", "500"]);
    assert!(table.contains("gpt-4o (openai)"), "{table}");
    assert!(table.lines().any(|l| l.contains("total (USD)") && l.contains("0.01")), "{table}");
}

#[test]
fn price_in_another_currency_at_a_date_batch_and_tier() {
    // 0.01 USD × 1391.50 KRW/USD = 13.915 KRW.
    let krw = json(&[
        "price",
        "--model",
        "gpt-4o",
        "--input",
        "1000",
        "--cached",
        "2000",
        "--output",
        "500",
        "--currency",
        "KRW",
        "--rate",
        "1391.50",
        "--json",
    ]);
    assert_eq!(dec(&krw["total"]), "13.915".parse().unwrap());
    assert_eq!(krw["currency"], "KRW");
    // gpt-4o on 2024-06-01 (launch prices 5.00 in / 15.00 out): 1000 × 5 + 500 × 15 = 12500 µ$.
    let old =
        json(&["price", "--model", "gpt-4o", "--input", "1000", "--output", "500", "--at", "2024-06-01", "--json"]);
    assert_eq!(dec(&old["total_usd"]), "0.0125".parse().unwrap());
    assert_eq!(old["price_version"], "2024-05-13");
    // Batch halves token rates: (1000 × 2.50 + 500 × 10.00) × 0.5 = 3750 µ$.
    let batch = json(&["price", "--model", "gpt-4o", "--input", "1000", "--output", "500", "--batch", "--json"]);
    assert_eq!(dec(&batch["total_usd"]), "0.00375".parse().unwrap());
    // o3 flex: 1.00 in / 4.00 out per 1M: 1000 × 1 + 500 × 4 = 3000 µ$.
    let flex =
        json(&["price", "--model", "o3", "--input", "1000", "--output", "500", "--service-tier", "flex", "--json"]);
    assert_eq!(dec(&flex["total_usd"]), "0.003".parse().unwrap());
}

#[test]
fn price_rejects_bad_input_with_exit_codes_and_messages() {
    let unknown = fails(&["price", "--model", "gpt-4oo", "--input", "1"], 1);
    assert!(
        unknown.contains("unknown_model") && unknown.contains("gpt-4oo") && unknown.contains("gpt-4o,"),
        "{unknown}"
    );
    let no_rate = fails(&["price", "--model", "gpt-4o", "--input", "1", "--currency", "KRW"], 1);
    assert!(no_rate.contains("KRW"), "{no_rate}");
    let bad_rate = fails(&["price", "--model", "gpt-4o", "--input", "1", "--currency", "KRW", "--rate", "abc"], 1);
    assert!(bad_rate.contains("abc"), "{bad_rate}");
    // Argument errors are clap's: exit 2, naming the argument.
    let not_a_number = fails(&["price", "--model", "gpt-4o", "--input", "many"], 2);
    assert!(not_a_number.contains("--input") && not_a_number.contains("many"), "{not_a_number}");
    let missing = fails(&["price", "--input", "1"], 2);
    assert!(missing.contains("--model"), "{missing}");
    let bad_date = fails(&["price", "--model", "gpt-4o", "--at", "2024-13-01"], 2);
    assert!(bad_date.contains("2024-13-01"), "{bad_date}");
    let no_command = fails(&[], 2);
    assert!(no_command.contains("Usage"), "{no_command}");
}

#[test]
fn count_reads_a_file_and_stdin() {
    let dir = TempDir::new("count");
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, "hello world").unwrap();
    // o200k_base: "hello" and " world" are one token each.
    let counted = json(&["count", "--model", "gpt-4o", file.to_str().unwrap(), "--json"]);
    assert_eq!(counted, serde_json::json!({"model": "gpt-4o", "tokens": 2, "exact": true}));
    let out = run_with_stdin(&["count", "--model", "gpt-4o", "--json"], Some("hello world"));
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["tokens"], 2);
    let claude = json(&["count", "--model", "claude-sonnet-4-5", file.to_str().unwrap(), "--json"]);
    assert_eq!(claude["exact"], false, "Claude has no public tokenizer: the count is an approximation");
    let table = ok(&["count", "--model", "gpt-4o", file.to_str().unwrap()]);
    assert!(table.lines().any(|l| l.contains("gpt-4o") && l.contains(" 2 ") && l.contains("exact")), "{table}");
    let missing = fails(&["count", "--model", "gpt-4o", dir.path().join("nope.txt").to_str().unwrap()], 1);
    assert!(missing.contains("nope.txt"), "{missing}");
}

#[test]
fn estimate_a_chat_request() {
    let dir = TempDir::new("estimate");
    let file = dir.path().join("chat.json");
    std::fs::write(&file, r#"[{"role": "user", "content": "hello world"}]"#).unwrap();
    // gpt-4o chat format: 3 tokens per message + "user" (1) + "hello world" (2) + 3 to prime the reply = 9.
    // min = 9 × 2.50 / 1M = 0.0000225; max = min + 100 × 10.00 / 1M = 0.0010225.
    let est =
        json(&["estimate", "--model", "gpt-4o", "--messages", file.to_str().unwrap(), "--max-output", "100", "--json"]);
    assert_eq!(est["input_tokens"], 9);
    assert_eq!(est["exact"], true);
    assert_eq!(dec(&est["min_cost"]), "0.0000225".parse().unwrap());
    assert_eq!(dec(&est["max_cost"]), "0.0010225".parse().unwrap());
    let table = ok(&["estimate", "--model", "gpt-4o", "--messages", file.to_str().unwrap(), "--max-output", "100"]);
    assert!(table.contains("0.0010225"), "{table}");
    std::fs::write(&file, "{not json").unwrap();
    let bad = fails(&["estimate", "--model", "gpt-4o", "--messages", file.to_str().unwrap()], 1);
    assert!(bad.contains("invalid_json"), "{bad}");
}

#[test]
fn models_lists_and_filters() {
    let all = json(&["models", "--json"]);
    let anthropic = json(&["models", "--provider", "anthropic", "--json"]);
    let ids = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    };
    assert!(ids(&anthropic).contains(&"claude-sonnet-4-5".to_owned()));
    assert!(anthropic.as_array().unwrap().iter().all(|m| m["provider"] == "anthropic"));
    assert!(ids(&all).contains(&"gpt-4o".to_owned()) && ids(&all).len() > ids(&anthropic).len());
    let table = ok(&["models", "--provider", "xai"]);
    assert!(table.contains("grok-4") && !table.contains("gpt-4o"), "{table}");
    let bad = fails(&["models", "--provider", "nosuch"], 1);
    assert!(bad.contains("nosuch"), "{bad}");
}

#[test]
fn prices_files_extend_the_embedded_data() {
    let dir = TempDir::new("prices");
    let ours = dir.path().join("ours.json");
    std::fs::write(
        &ours,
        r#"{"provider": "openai", "models": [{"id": "house-model", "mode": "chat", "aliases": [],
            "prices": [{"effective_from": "2020-01-01", "source": "test", "checked": "2026-01-01",
                        "input": "1.00", "output": "2.00"}]}]}"#,
    )
    .unwrap();
    // 1000 × 1.00 + 500 × 2.00 = 2000 µ$.
    let cost = json(&[
        "--prices",
        ours.to_str().unwrap(),
        "price",
        "--model",
        "house-model",
        "--input",
        "1000",
        "--output",
        "500",
        "--json",
    ]);
    assert_eq!(dec(&cost["total_usd"]), "0.002".parse().unwrap());
    let litellm = dir.path().join("litellm.json");
    std::fs::write(
        &litellm,
        r#"{"lite-model": {"litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 3e-06, "output_cost_per_token": 0.000015}}"#,
    )
    .unwrap();
    // 3e-06 and 1.5e-05 USD per token = 3.00 and 15.00 per 1M: 1000 × 3 + 500 × 15 = 10500 µ$.
    let cost = json(&[
        "--litellm-prices",
        litellm.to_str().unwrap(),
        "price",
        "--model",
        "lite-model",
        "--input",
        "1000",
        "--output",
        "500",
        "--json",
    ]);
    assert_eq!(dec(&cost["total_usd"]), "0.0105".parse().unwrap());
    std::fs::write(&ours, r#"{"provider": "openai", "models": [{"id": "x"}]}"#).unwrap();
    let bad = fails(&["--prices", ours.to_str().unwrap(), "models"], 1);
    assert!(bad.contains('['), "a typed error: {bad}");
}

/// A SQLite ledger with three calls recorded through the core tracker, as the bindings record them.
fn ledger_with_calls(dir: &TempDir) -> String {
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let tracker = Tracker::new(TrackerConfig { store: Some(url.clone()), ..TrackerConfig::default() }).unwrap();
    // gpt-4o: prompt 1200 (200 cached), completion 300 → 1000 × 2.50 + 200 × 1.25 + 300 × 10 = 5750 µ$.
    let body = |id: &str| {
        format!(
            r#"{{"id": "{id}", "object": "chat.completion", "model": "gpt-4o", "choices": [],
                "usage": {{"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                          "prompt_tokens_details": {{"cached_tokens": 200}}}}}}"#
        )
    };
    for (id, user) in [("c1", "alice"), ("c2", "alice"), ("c3", "bob")] {
        let call = CallInfo {
            provider: Provider::OpenAi,
            api: Api::ChatCompletions,
            model: "gpt-4o".into(),
            attribution: Attribution { user_id: Some(user.into()), ..Attribution::default() },
            batch: false,
            service_tier: None,
        };
        tracker.record_response(&call, None, &body(id), 10).unwrap();
    }
    tracker.close().unwrap();
    url
}

#[test]
fn report_verify_and_replay_on_a_real_ledger() {
    let dir = TempDir::new("report");
    let url = ledger_with_calls(&dir);
    let rows = json(&["report", "--store", &url, "--by", "user", "--json"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = |user: &str| rows.iter().find(|r| r["user"] == user).unwrap_or_else(|| panic!("no row for {user}"));
    // alice: 2 × 5750 µ$; bob: 5750 µ$.
    assert_eq!((&row("alice")["requests"], &row("alice")["currency"]), (&2.into(), &"USD".into()));
    assert_eq!(dec(&row("alice")["cost_usd"]), "0.0115".parse().unwrap());
    assert_eq!(row("alice")["input_tokens"], 2000);
    assert_eq!(dec(&row("bob")["cost_usd"]), "0.00575".parse().unwrap());
    let csv = ok(&["report", "--store", &url, "--by", "user", "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("user,requests,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("alice,2,") && l.contains("0.0115")), "{csv}");
    let table = ok(&["report", "--store", &url, "--by", "model", "--user", "bob"]);
    assert!(table.lines().any(|l| l.contains("gpt-4o") && l.contains("0.00575")), "{table}");
    assert_eq!(ok(&["ledger", "verify", "--store", &url]).trim(), format!("ledger {url}: rollups match raw events"));
    assert_eq!(ok(&["ledger", "replay", "--store", &url]).trim(), format!("replayed 0 spilled events into {url}"));
    let bad_group = fails(&["report", "--store", &url, "--by", "colour"], 1);
    assert!(bad_group.contains("colour"), "{bad_group}");
    let bad_store = fails(&["report", "--store", "ftp://nowhere"], 1);
    assert!(bad_store.contains("ftp://nowhere"), "{bad_store}");
    let bad_tz = fails(&["report", "--store", &url, "--tz", "Mars/Olympus"], 1);
    assert!(bad_tz.contains("Mars/Olympus"), "{bad_tz}");
}

#[test]
fn budgets_and_balances_are_set_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let s = store.as_str();
    let limit = json(&["budget", "set", "--store", s, "--user", "u1", "--per", "day", "--amount", "5.00", "--json"]);
    assert_eq!(
        (limit["amount"].as_str(), limit["per"].as_str(), limit["action"].as_str()),
        (Some("5"), Some("day"), Some("block"))
    );
    // Set again: the same limit, updated.
    let again = json(&[
        "budget", "set", "--store", s, "--user", "u1", "--per", "day", "--amount", "7", "--action", "warn", "--json",
    ]);
    assert_eq!((&again["id"], again["amount"].as_str()), (&limit["id"], Some("7")));
    let shown = json(&["budget", "show", "--store", s, "--json"]);
    assert_eq!(shown.as_array().map(Vec::len), Some(1));
    assert_eq!((shown[0]["used"].as_str(), shown[0]["remaining"].as_str()), (Some("0"), Some("7")));
    assert!(ok(&["budget", "show", "--store", s]).contains("user_id=u1"));
    let stderr = fails(&["budget", "set", "--store", s, "--user", "u1", "--per", "week", "--amount", "1"], 1);
    assert!(stderr.contains("per"), "{stderr}");

    let entry =
        json(&["balance", "top-up", "u1", "20.00", "--idempotency-key", "stripe_evt_123", "--store", s, "--json"]);
    let replay =
        json(&["balance", "top-up", "u1", "20.00", "--idempotency-key", "stripe_evt_123", "--store", s, "--json"]);
    assert_eq!(entry["id"], replay["id"], "a replayed key returns the first entry");
    json(&["balance", "top-up", "user_id=u1", "0.10", "--grant", "--store", s, "--json"]);
    let b = json(&["balance", "show", "u1", "--store", s, "--json"]);
    // 20.00 + 0.10, once each.
    assert_eq!(
        (b["total"].as_str(), b["available"].as_str(), b["currency"].as_str()),
        (Some("20.1"), Some("20.1"), Some("USD"))
    );
    let history = json(&["balance", "history", "u1", "--store", s, "--json"]);
    let kinds: Vec<&str> = history.as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["grant", "top_up"]);
    let stderr = fails(&["balance", "top-up", "u1", "-5", "--store", s], 2);
    assert!(!stderr.is_empty());
    let stderr = fails(&["balance", "top-up", "u1", "0", "--store", s], 1);
    assert!(stderr.contains("amount"), "{stderr}");
    assert!(ok(&["balance", "show", "u1", "--store", s]).contains("20.1"));
}
