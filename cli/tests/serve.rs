//! `llmledger serve` run as a user would: the built binary over a seeded SQLite ledger, its JSON API
//! read over real HTTP (a plain TCP client), the bind/token rule and the page's escaping defences.
//! Expected figures are hand-computed from the costs written next to each event.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

#[path = "support/dashboard_seed.rs"]
mod dashboard_seed;
use dashboard_seed::{seed, HOSTILE};

/// Status, headers (lower-cased) and body of a GET to `addr`.
fn get(addr: &str, path: &str, auth: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_string())
}

/// A running `llmledger serve`, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llmledger"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Self { child, addr }
    }

    fn get(&self, path: &str, auth: Option<&str>) -> (u16, String, String) {
        get(&self.addr, path, auth)
    }

    fn api(&self, query: &str) -> Value {
        let (status, _, body) = self.get(&format!("/api/usage?{query}"), None);
        assert_eq!(status, 200, "{query}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pick<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array().unwrap().iter().find(|r| r[key] == value).unwrap_or_else(|| panic!("no {key}={value} in {rows}"))
}

#[test]
fn the_api_answers_with_the_ledgers_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let url = seed(&dir.path().join("ledger.db"));
    let server = Server::start(&["--store", &url, "--addr", "127.0.0.1:0"]);

    let all = server.api("");
    assert_eq!(
        all,
        json!([{"requests": 4, "successful": 4, "failed": 0, "unpriced": 1, "input_tokens": 4000,
                "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 400, "reasoning_tokens": 0,
                "cost": "0.01725", "cost_usd": "0.01725", "currency": "USD", "avg_latency_ms": "100",
                "p95_latency_ms": null}])
    );
    // alice: 0.004 + 0.0125; the hostile id comes back as the same string, as data.
    let users = server.api("group_by=user");
    assert_eq!(pick(&users, "user", "alice")["cost"], "0.0165");
    assert_eq!(pick(&users, "user", HOSTILE)["cost"], "0.00075");
    assert_eq!(
        (&pick(&users, "user", "bob")["cost"], &pick(&users, "user", "bob")["unpriced"]),
        (&json!("0"), &json!(1))
    );
    // UTC days: 1 Nov $0.004; 2 Nov anthropic $0.0125, openai $0.00075 (+ bob's unpriced call).
    let days = server.api("group_by=day,provider");
    let cells: Vec<(String, String, String)> = days
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().into(),
                r["provider"].as_str().unwrap().into(),
                r["cost"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("2026-11-01".into(), "openai".into(), "0.004".into()),
            ("2026-11-02".into(), "anthropic".into(), "0.0125".into()),
            ("2026-11-02".into(), "openai".into(), "0.00075".into()),
        ]
    );
    // Seoul days move e3 (16:00Z) to 3 Nov.
    let seoul = server.api("group_by=day&tz=Asia/Seoul");
    assert_eq!(pick(&seoul, "day", "2026-11-03")["cost"], "0.00075");
    assert_eq!(pick(&seoul, "day", "2026-11-02")["cost"], "0.0125");
    // since inclusive, until exclusive, as dates in the zone or RFC 3339 instants.
    assert_eq!(server.api("since=2026-11-02")[0]["cost"], "0.01325");
    assert_eq!(server.api("until=2026-11-02")[0]["cost"], "0.004");
    assert_eq!(server.api("since=2026-11-02T12:00:00Z")[0]["requests"], 2);
    // Drill-down: alice's models, with p95.
    let alice = server.api("user_id=alice&group_by=model&p95=true");
    assert_eq!(pick(&alice, "model", "claude-sonnet-4")["cost"], "0.0125");
    assert_eq!(pick(&alice, "model", "gpt-4o")["p95_latency_ms"], 100);
    // Currency: $0.01725 × 1391.5 = ₩24.003375.
    let krw = server.api("currency=krw&rate=1391.5");
    assert_eq!(
        (&krw[0]["cost"], &krw[0]["currency"], &krw[0]["cost_usd"]),
        (&json!("24.003375"), &json!("KRW"), &json!("0.01725"))
    );
    // Bad input: a typed error naming the field, status 400.
    for (query, field) in [
        ("group_by=colour", "group_by"),
        ("tz=Mars/Olympus", "timezone"),
        ("currency=KRW", "currency"),
        ("since=yesterday", "since"),
    ] {
        let (status, _, body) = server.get(&format!("/api/usage?{query}"), None);
        let err: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((status, err["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
}

#[test]
fn the_page_is_embedded_and_never_renders_data_as_markup() {
    let dir = tempfile::tempdir().unwrap();
    let url = seed(&dir.path().join("ledger.db"));
    let server = Server::start(&["--store", &url, "--addr", "127.0.0.1:0"]);
    let (status, head, html) = server.get("/", None);
    assert_eq!(status, 200);
    assert!(html.contains(r#"<script src="app.js" defer></script>"#), "{html}");
    // Only our own scripts may run: an injected `onerror` attribute is refused by the browser.
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self';"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let (_, _, app) = server.get("/app.js", None);
    assert!(app.contains("textContent") && !app.contains("innerHTML") && !app.contains("insertAdjacentHTML"));
    let (status, _, chart) = server.get("/vendor/chart.umd.min.js", None);
    assert_eq!(status, 200);
    assert!(chart.starts_with("/*!\n * Chart.js v4.6.1"), "{}", &chart[..60]);
    // The API serves the hostile id as a JSON string, never as HTML.
    let (_, head, body) = server.get("/api/usage?group_by=user", None);
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(body.contains(r#""user":"<img src=x onerror=alert(1)>""#), "{body}");
}

#[test]
fn a_public_address_needs_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = seed(&dir.path().join("ledger.db"));
    let out = Command::new(env!("CARGO_BIN_EXE_llmledger"))
        .args(["serve", "--store", &url, "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("needs --token"), "{stderr}");

    let server = Server::start(&["--store", &url, "--addr", "0.0.0.0:0", "--token", "s3cret"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let local = format!("127.0.0.1:{port}");
    let (status, head, _) = get(&local, "/api/usage", None);
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert_eq!(get(&local, "/api/usage", Some("wrong")).0, 401);
    let (status, _, body) = get(&local, "/api/usage", Some("s3cret"));
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()[0]["cost"], "0.01725");
    // The page itself holds no data and loads without the token (it reads it from the URL fragment).
    assert_eq!(get(&local, "/", None).0, 200);
    drop(server);
}
