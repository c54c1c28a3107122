//! Claude Code import over a generated log tree, into a real SQLite file and (feature `postgres`,
//! through scripts/with-postgres.sh) a real PostgreSQL database. The tree has both roots (`~/.claude`,
//! `~/.config/claude`), a nested sub-agent log, duplicates, sidechains, malformed and partial lines.
//!
//! Expected costs are hand-computed from the list prices (USD per 1M tokens):
//! claude-sonnet-4: input 3, output 15, cache read 0.30, cache write 5m 3.75, 1h 6;
//! claude-opus-4-1: input 15, output 75, cache read 1.50, cache write 5m 18.75, 1h 30.
#![allow(clippy::unwrap_used)]

mod ledger_common;

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use llmledger_core::org::claude_code::{CostMode, ImportOptions};
use llmledger_core::org::{AgentGroup, AgentQuery, Org};
use llmledger_core::PriceDb;
use rust_decimal::Decimal;

const SONNET: &str = "claude-sonnet-4-20250514";
const OPUS: &str = "claude-opus-4-1-20250805";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// One assistant line. `split` = Some((5m, 1h)) writes the newer `cache_creation` object; None writes
/// only `cache_creation_input_tokens` (older logs), all of it 5-minute.
#[allow(clippy::too_many_arguments)]
fn line(
    ids: Option<(&str, &str)>,
    session: Option<&str>,
    sidechain: bool,
    model: &str,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: (u64, Option<(u64, u64)>),
    cost_usd: Option<&str>,
) -> String {
    let mut usage = serde_json::json!({
        "input_tokens": input, "output_tokens": output,
        "cache_creation_input_tokens": cache_write.0, "cache_read_input_tokens": cache_read,
        "service_tier": "standard",
    });
    if let Some((m5, h1)) = cache_write.1 {
        usage["cache_creation"] = serde_json::json!({"ephemeral_5m_input_tokens": m5, "ephemeral_1h_input_tokens": h1});
    }
    let mut v = serde_json::json!({
        "parentUuid": null, "isSidechain": sidechain, "userType": "external", "cwd": "/home/u/x",
        "version": "1.0.80", "type": "assistant", "uuid": "u", "timestamp": "2026-11-03T10:15:00.000Z",
        "message": {"type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": "never stored"}], "usage": usage},
    });
    if let Some((msg, req)) = ids {
        v["message"]["id"] = msg.into();
        v["requestId"] = req.into();
    }
    if let Some(s) = session {
        v["sessionId"] = s.into();
    }
    if let Some(c) = cost_usd {
        // Written as the raw JSON number the log has.
        return v.to_string().replacen('{', &format!("{{\"costUSD\":{c},"), 1);
    }
    v.to_string()
}

fn write(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

struct Tree {
    _dir: tempfile::TempDir,
    roots: Vec<std::path::PathBuf>,
    s1: std::path::PathBuf,
}

/// The tree of the module doc; each line's cost (USD) is noted beside it.
fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("home/.claude");
    let new = dir.path().join("home/.config/claude");
    let s1 = old.join("projects/-home-u-alpha/s1.jsonl");
    write(&s1, &[
        r#"{"type":"user","sessionId":"s1","message":{"role":"user","content":"hello"},"timestamp":"2026-11-03T10:00:00Z"}"#.into(),
        // m1: 1000×3 + 500×15 + 2000×0.30 + 400×3.75 (old format: all 5m) = 12,600 → 0.0126
        line(Some(("m1", "r1")), Some("s1"), false, SONNET, 1000, 500, 2000, (400, None), None),
        // a sidechain copy of m1 with more tokens: loses to the non-sidechain entry
        line(Some(("m1", "r1")), Some("s1"), true, SONNET, 5000, 500, 2000, (400, None), None),
        "{not json".into(),
        // m2 sidechain: loses to its non-sidechain copy in the other root
        line(Some(("m2", "r2")), Some("s1"), true, SONNET, 100, 100, 0, (1000, Some((0, 1000))), None),
        // m3 opus: 10×15 + 20×75 = 1,650 → 0.00165 (its costUSD 9.99 only with CostMode::Log)
        line(Some(("m3", "r3")), Some("s1"), false, OPUS, 10, 20, 0, (0, None), Some("9.99")),
        // m8 sidechain: 100×3 = 300 → 0.0003 (replaced in the second import)
        line(Some(("m8", "r8")), Some("s1"), true, SONNET, 100, 0, 0, (0, None), None),
    ]);
    let s2 = new.join("projects/-home-u-beta/s2.jsonl");
    write(
        &s2,
        &[
            // m2 non-sidechain: 100×3 + 50×15 + 1000×6 (1h) = 7,050 → 0.00705
            line(Some(("m2", "r2")), Some("s2"), false, SONNET, 100, 50, 0, (1000, Some((0, 1000))), None),
            // m4 twice, both main chain: the larger total wins, 100×3 + 30×15 = 750 → 0.00075
            line(Some(("m4", "r4")), Some("s2"), false, SONNET, 100, 10, 0, (0, None), None),
            line(Some(("m4", "r4")), Some("s2"), false, SONNET, 100, 30, 0, (0, None), None),
            // no ids, no sessionId: counted (session = file name), 1000×3 = 3,000 → 0.003
            line(None, None, false, SONNET, 1000, 0, 0, (0, None), None),
            line(Some(("syn", "syn")), Some("s2"), false, "<synthetic>", 0, 0, 0, (0, None), None),
            // a model without a price: stored unpriced
            line(Some(("m9", "r9")), Some("s2"), false, "claude-unknown-9", 1, 1, 0, (0, None), None),
        ],
    );
    // A nested (sub-agent) log: m5, 200×3 = 600 → 0.0006, project beta.
    write(
        &new.join("projects/-home-u-beta/s2/subagents/agent-x.jsonl"),
        &[line(Some(("m5", "r5")), Some("s2"), false, SONNET, 200, 0, 0, (0, None), None)],
    );
    Tree { _dir: dir, roots: vec![new, old], s1 }
}

fn by(org: &Org, group_by: Vec<AgentGroup>) -> Vec<(Vec<String>, u64, Decimal, u64)> {
    org.agent_report(&AgentQuery { group_by, ..AgentQuery::default() })
        .unwrap()
        .into_iter()
        .map(|r| (r.key.into_iter().map(|(_, v)| v).collect(), r.requests, r.cost_usd, r.unpriced))
        .collect()
}

fn import_and_reimport(url: &str) {
    let t = tree();
    let prices = PriceDb::embedded();
    let org = Org::open(url).unwrap();
    let opts = ImportOptions { roots: t.roots.clone(), ..ImportOptions::default() };

    let s = org.import_claude_code(&opts, &prices).unwrap();
    assert_eq!((s.roots, s.files, s.files_read), (2, 3, 3));
    assert_eq!((s.lines, s.malformed, s.usage_lines), (14, 1, 11));
    assert_eq!((s.duplicates, s.stored, s.unpriced), (3, 8, 1));
    assert_eq!(s.unpriced_models, vec!["claude-unknown-9".to_string()]);
    // 0.0126 + 0.00705 + 0.00165 + 0.0003 + 0.00075 + 0.003 + 0.0006
    assert_eq!(s.cost_usd, dec("0.02595"));
    assert_eq!(
        by(&org, vec![AgentGroup::Project]),
        vec![(vec!["-home-u-alpha".into()], 3, dec("0.01455"), 0), (vec!["-home-u-beta".into()], 5, dec("0.0114"), 1),]
    );
    assert_eq!(
        by(&org, vec![AgentGroup::Session, AgentGroup::Model]),
        vec![
            (vec!["s1".into(), OPUS.into()], 1, dec("0.00165"), 0),
            (vec!["s1".into(), SONNET.into()], 2, dec("0.0129"), 0),
            (vec!["s2".into(), SONNET.into()], 4, dec("0.0114"), 0),
            (vec!["s2".into(), "claude-unknown-9".into()], 1, dec("0"), 1),
        ]
    );
    let m2 = org.agent_entries(None, None).unwrap().into_iter().find(|e| e.key == "m2:r2").unwrap();
    assert_eq!((m2.sidechain, m2.project.as_str(), m2.cache_write_1h_tokens), (false, "-home-u-beta", 1000));

    // Appended: m6 (new: 10×3 + 10×15 = 180 → 0.00018), a sidechain replay of m1 (not counted again),
    // m8's main-chain copy (replaces the stored sidechain one: 50×3 → 0.00015), and half a line.
    let m7 = line(Some(("m7", "r7")), Some("s1"), false, SONNET, 1, 0, 0, (0, None), None);
    let (m7_head, m7_tail) = m7.split_at(40);
    append(
        &t.s1,
        &format!(
            "{}\n{}\n{}\n{m7_head}",
            line(Some(("m6", "r6")), Some("s1"), false, SONNET, 10, 10, 0, (0, None), None),
            line(Some(("m1", "r1")), Some("s1"), true, SONNET, 9000, 500, 2000, (400, None), None),
            line(Some(("m8", "r8")), Some("s1"), false, SONNET, 50, 0, 0, (0, None), None),
        ),
    );
    let s = org.import_claude_code(&opts, &prices).unwrap();
    assert_eq!((s.files, s.files_read, s.lines, s.usage_lines), (3, 1, 3, 3));
    assert_eq!((s.duplicates, s.stored, s.malformed), (1, 2, 0));
    assert_eq!(s.cost_usd, dec("0.00033"));
    // 0.02595 − 0.0003 + 0.00015 + 0.00018
    assert_eq!(by(&org, vec![]), vec![(vec![], 9, dec("0.02598"), 1)]);

    // The half line, finished: m7 = 1×3 → 0.000003. Then nothing new.
    append(&t.s1, &format!("{m7_tail}\n"));
    let s = org.import_claude_code(&opts, &prices).unwrap();
    assert_eq!((s.files_read, s.lines, s.stored, s.cost_usd), (1, 1, 1, dec("0.000003")));
    let s = org.import_claude_code(&opts, &prices).unwrap();
    assert_eq!((s.files_read, s.lines, s.stored), (0, 0, 0));
    // A full re-read changes nothing: every entry is already stored as its best copy.
    let s = org.import_claude_code(&ImportOptions { full: true, ..opts.clone() }, &prices).unwrap();
    assert_eq!((s.files_read, s.usage_lines, s.stored), (3, 15, 0));
    assert_eq!(by(&org, vec![]), vec![(vec![], 10, dec("0.025983"), 1)]);
}

/// The log's own costUSD, when asked for: m3 counts 9.99 instead of 0.00165.
fn log_cost_mode(url: &str) {
    let t = tree();
    let org = Org::open(url).unwrap();
    let opts = ImportOptions { roots: t.roots.clone(), cost_mode: CostMode::Log, ..ImportOptions::default() };
    let s = org.import_claude_code(&opts, &PriceDb::embedded()).unwrap();
    // 0.02595 − 0.00165 + 9.99
    assert_eq!(s.cost_usd, dec("10.0143"));
    let m3 = org.agent_entries(None, None).unwrap().into_iter().find(|e| e.key == "m3:r3").unwrap();
    assert_eq!((m3.cost_usd, m3.cost_source.as_str()), (Some(dec("9.99")), "log"));
}

#[test]
fn sqlite_import_dedupe_and_incremental() {
    let dir = tempfile::tempdir().unwrap();
    import_and_reimport(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[test]
fn sqlite_log_cost_mode() {
    let dir = tempfile::tempdir().unwrap();
    log_cost_mode(&format!("sqlite://{}", dir.path().join("org.db").display()));
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: run through scripts/with-postgres.sh with -- --include-ignored"]
fn postgres_import_dedupe_and_incremental() {
    let Some(server) = ledger_common::server("postgres_import_dedupe_and_incremental") else { return };
    import_and_reimport(&ledger_common::fresh_db(&server, "org_cc"));
    log_cost_mode(&ledger_common::fresh_db(&server, "org_cc_log"));
}
