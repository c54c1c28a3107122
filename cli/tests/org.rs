//! The organisation-cost commands of the built binary: `import claude-code`, `agents`. Figures are
//! hand-computed from list prices (claude-sonnet-4: input 3, output 15 USD per 1M tokens).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

fn run(args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_llmledger")).args(args).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn import_claude_code_from_claude_config_dir_then_report_by_project() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cc");
    let log = root.join("projects/-srv-app/abc.jsonl");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let line = |id: &str, input: u64, output: u64| {
        format!(
            r#"{{"timestamp":"2026-11-05T08:00:00Z","sessionId":"abc","requestId":"r{id}","message":{{"id":"m{id}","model":"claude-sonnet-4-20250514","usage":{{"input_tokens":{input},"output_tokens":{output}}}}}}}"#
        )
    };
    // 1000×3 + 100×15 = 4,500 → 0.0045; 2000×3 = 6,000 → 0.006; a duplicate; a malformed line.
    std::fs::write(
        &log,
        format!("{}\n{}\n{}\n{{oops\n", line("1", 1000, 100), line("2", 2000, 0), line("1", 1000, 100)),
    )
    .unwrap();
    let store = format!("sqlite://{}", dir.path().join("l.db").display());
    let env = [("CLAUDE_CONFIG_DIR", root.to_str().unwrap())];
    let s = run(&["--json", "import", "claude-code", "--store", &store], &env);
    assert_eq!((s["stored"].as_u64(), s["duplicates"].as_u64(), s["malformed"].as_u64()), (Some(2), Some(1), Some(1)));
    assert_eq!(s["cost_usd"], "0.0105");
    let again = run(&["--json", "import", "claude-code", "--store", &store], &env);
    assert_eq!((again["files_read"].as_u64(), again["stored"].as_u64()), (Some(0), Some(0)));
    let rows = run(&["--json", "agents", "--store", &store, "--by", "project,session"], &[]);
    assert_eq!(rows[0]["key"]["project"], "-srv-app");
    assert_eq!(rows[0]["key"]["session"], "abc");
    assert_eq!((rows[0]["requests"].as_u64(), &rows[0]["cost_usd"]), (Some(2), &Value::from("0.0105")));
}

#[test]
fn subscription_add_twice_then_list_a_month() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("l.db").display());
    let add = [
        "--json",
        "subscription",
        "add",
        "--store",
        &store,
        "--service",
        "Cursor Pro",
        "--member",
        "ana",
        "--amount",
        "20",
        "--start",
        "2026-11-16",
    ];
    assert_eq!(run(&add, &[])["added"], 1);
    assert_eq!(run(&add, &[])["added"], 0);
    let once = [
        "--json",
        "subscription",
        "add",
        "--store",
        &store,
        "--service",
        "GPU hours",
        "--period",
        "once",
        "--amount",
        "1000",
        "--currency",
        "KRW",
        "--rate",
        "1250",
        "--start",
        "2026-11-30",
    ];
    assert_eq!(run(&once, &[])["added"], 1);
    let rows = run(
        &["--json", "subscription", "list", "--store", &store, "--since", "2026-11-01", "--until", "2026-11-30"],
        &[],
    );
    // Cursor: Nov 16 – Dec 15 is 30 days, November holds 15: 20 × 15 / 30 = 10. GPU: 1000 / 1250 = 0.8.
    assert_eq!((&rows[0]["service"], &rows[0]["usd_in_range"]), (&Value::from("Cursor Pro"), &Value::from("10")));
    assert_eq!((&rows[1]["period"], &rows[1]["usd_in_range"]), (&Value::from("once"), &Value::from("0.8")));
}

#[test]
fn pull_names_the_key_kind_and_never_prints_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("l.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_llmledger"))
        .args(["pull", "anthropic", "--store", &store, "--since", "2026-11-01", "--until", "2026-11-03"])
        .env("ANTHROPIC_ADMIN_KEY", "sk-ant-api03-TOPSECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("ANTHROPIC_ADMIN_KEY") && err.contains("Admin API key") && !err.contains("TOPSECRET"),
        "{err}"
    );
}

#[test]
fn report_org_totals_subscriptions_by_member() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("l.db").display());
    for (member, amount) in [("ana", "200"), ("bo", "20")] {
        run(
            &[
                "--json",
                "subscription",
                "add",
                "--store",
                &store,
                "--service",
                "Claude",
                "--member",
                member,
                "--amount",
                amount,
                "--start",
                "2026-11-01",
            ],
            &[],
        );
    }
    let rows = run(
        &[
            "--json",
            "report",
            "--org",
            "--store",
            &store,
            "--by",
            "member",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-30",
        ],
        &[],
    );
    // Whole November periods: 200 and 20.
    assert_eq!((&rows[0]["key"]["member"], &rows[0]["total_usd"]), (&Value::from("ana"), &Value::from("200")));
    assert_eq!((&rows[1]["key"]["member"], &rows[1]["subscriptions_usd"]), (&Value::from("bo"), &Value::from("20")));
    // Nothing tracked, nothing billed: reconcile has no rows.
    let rec = run(&["--json", "reconcile", "--store", &store, "--since", "2026-11-01", "--until", "2026-11-30"], &[]);
    assert_eq!(rec, Value::Array(vec![]));
}

#[test]
fn pull_with_usage_stores_costs_and_usage_from_the_mock() {
    use std::io::BufRead;
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/mock_provider/server.py");
    let mut mock =
        Command::new("python3").args([server, "--port", "0"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(mock.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let base = format!("http://127.0.0.1:{}", line.trim().strip_prefix("PORT ").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("l.db").display());
    let args = [
        "--json",
        "pull",
        "anthropic",
        "--store",
        &store,
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-03",
        "--base-url",
        &base,
        "--usage",
        "--bucket",
        "1h",
    ];
    let out = run(&args, &[("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-cli-usage1")]);
    let _ = mock.kill();
    let _ = mock.wait();
    // The mock's figures (tests/mock_provider/server.py): costs 14.84875 USD over 3 rows; usage 3 pages,
    // 18 rows, cache writes 1h 1000 and 5m 20 + 300 = 320 tokens.
    assert_eq!((&out["costs"]["total_usd"], out["costs"]["rows"].as_u64()), (&Value::from("14.84875"), Some(3)));
    assert_eq!((out["usage"]["pages"].as_u64(), out["usage"]["rows"].as_u64()), (Some(3), Some(18)));
    assert_eq!(out["usage"]["width"], "1h");
    let totals = out["usage"]["totals"].as_array().unwrap();
    let total = |metric: &str| totals.iter().find(|t| t[1] == metric).map(|t| t[2].clone()).unwrap();
    assert_eq!(total("cache_creation.ephemeral_1h_input_tokens"), "1000");
    assert_eq!(total("cache_creation.ephemeral_5m_input_tokens"), "320");
}

#[test]
fn import_gcp_billing_json_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("l.db").display());
    let file = dir.path().join("billing.json");
    // A JSON array: 0.5 + 0.25 (one day, project, SKU: one row) and Cloud Run left out.
    std::fs::write(
        &file,
        r#"[{"service":{"description":"Vertex AI"},"sku":{"description":"Gemini 2.5 Flash Input Tokens"},"usage_start_time":"2026-11-04 10:00:00 UTC","project":{"id":"p1"},"cost":0.5,"currency":"USD"},
            {"service":{"description":"Vertex AI"},"sku":{"description":"Gemini 2.5 Flash Input Tokens"},"usage_start_time":"2026-11-04 11:00:00 UTC","project":{"id":"p1"},"cost":0.25,"currency":"USD"},
            {"service":{"description":"Cloud Run"},"sku":{"description":"CPU"},"usage_start_time":"2026-11-04 11:00:00 UTC","project":{"id":"p1"},"cost":7,"currency":"USD"}]"#,
    )
    .unwrap();
    let s = run(&["--json", "import", "gcp-billing", file.to_str().unwrap(), "--store", &store], &[]);
    assert_eq!((s["read"].as_u64(), s["skipped"].as_u64(), s["rows"].as_u64()), (Some(2), Some(1), Some(1)));
    assert_eq!(
        (&s["total_usd"], &s["since"], &s["until"]),
        (&Value::from("0.75"), &Value::from("2026-11-04"), &Value::from("2026-11-05"))
    );
    let rows = run(
        &[
            "--json",
            "report",
            "--org",
            "--store",
            &store,
            "--by",
            "provider",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-30",
        ],
        &[],
    );
    assert_eq!(
        (&rows[0]["key"]["provider"], &rows[0]["api_billed_usd"]),
        (&Value::from("google"), &Value::from("0.75"))
    );
}
