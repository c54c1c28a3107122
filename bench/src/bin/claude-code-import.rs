//! Claude Code import speed: generates a Claude Code log tree of a given size (deterministic, ~1.3 KiB
//! lines: 60 % assistant turns with usage, 5 % of them repeated as sidechain copies, the rest user turns
//! and summaries) and times a full import of it into a fresh SQLite file.
//!
//! ```text
//! cargo run --release -p llmledger-bench --bin claude-code-import -- DIR [MIB]   # default 1024 MiB
//! CLAUDE_CONFIG_DIR=DIR ccusage daily --json --offline                           # the same tree
//! ```
//! The tree is written once (`DIR/projects/...`); later runs reuse it. Prints one JSON line.
// Timings and rates are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use llmledger_core::org::claude_code::ImportOptions;
use llmledger_core::org::Org;
use llmledger_core::PriceDb;

const MODELS: [&str; 3] = ["claude-sonnet-4-20250514", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"];
const FILE_BYTES: u64 = 8 << 20;

/// A tiny deterministic generator (xorshift), so every run writes the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn generate(root: &Path, total: u64) -> std::io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let filler = "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(16);
    let (mut written, mut file_no, mut msg_no) = (0u64, 0u64, 0u64);
    while written < total {
        let dir = root.join(format!("projects/-home-dev-project-{:02}", file_no % 24));
        std::fs::create_dir_all(&dir)?;
        let session = format!("{:08x}-0000-4000-8000-{:012x}", file_no, file_no * 7919);
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{session}.jsonl")))?);
        let mut bytes = 0u64;
        while bytes < FILE_BYTES && written + bytes < total {
            let r = rng.next();
            let ts = format!("2026-11-{:02}T{:02}:{:02}:{:02}.000Z", 1 + r % 28, r % 24, (r >> 8) % 60, (r >> 16) % 60);
            let text = &filler[..400 + (r % 400) as usize];
            let line = if r % 100 < 60 {
                msg_no += 1;
                let usage = format!(
                    r#"{{"input_tokens":{},"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"cache_creation":{{"ephemeral_5m_input_tokens":{},"ephemeral_1h_input_tokens":{}}},"output_tokens":{},"service_tier":"standard"}}"#,
                    r % 50,
                    (r >> 4) % 4000 + 2000,
                    (r >> 12) % 90000,
                    (r >> 4) % 4000,
                    2000,
                    (r >> 20) % 2000
                );
                let one = |side: bool| {
                    format!(
                        r#"{{"parentUuid":"p{msg_no}","isSidechain":{side},"userType":"external","cwd":"/home/dev/p","sessionId":"{session}","version":"1.0.80","gitBranch":"main","message":{{"id":"msg_{msg_no:016x}","type":"message","role":"assistant","model":"{}","content":[{{"type":"text","text":"{text}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{usage}}},"requestId":"req_{msg_no:016x}","type":"assistant","uuid":"u{msg_no}","timestamp":"{ts}"}}"#,
                        MODELS[(r % 3) as usize]
                    )
                };
                if r.is_multiple_of(20) {
                    format!("{}\n{}", one(false), one(true))
                } else {
                    one(false)
                }
            } else {
                format!(
                    r#"{{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/dev/p","sessionId":"{session}","version":"1.0.80","type":"user","message":{{"role":"user","content":"{text}"}},"uuid":"q{r}","timestamp":"{ts}"}}"#
                )
            };
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            bytes += line.len() as u64 + 1;
        }
        out.flush()?;
        written += bytes;
        file_no += 1;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = std::path::PathBuf::from(args.next().ok_or("usage: claude-code-import DIR [MIB]")?);
    let mib: u64 = args.next().map(|m| m.parse()).transpose()?.unwrap_or(1024);
    if !root.join("projects").is_dir() {
        let t = Instant::now();
        generate(&root, mib << 20)?;
        eprintln!("generated {mib} MiB in {:.1} s", t.elapsed().as_secs_f64());
    }
    let store = root.with_extension(format!("bench-{}.db", std::process::id()));
    let prices = PriceDb::embedded();
    let org = Org::open(&format!("sqlite://{}", store.display()))?;
    let t = Instant::now();
    let s =
        org.import_claude_code(&ImportOptions { roots: vec![root.clone()], ..ImportOptions::default() }, &prices)?;
    let secs = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let again = org.import_claude_code(&ImportOptions { roots: vec![root], ..ImportOptions::default() }, &prices)?;
    let secs_again = t2.elapsed().as_secs_f64();
    drop(org);
    std::fs::remove_file(&store).ok();
    println!(
        "{}",
        serde_json::json!({
            "bytes": s.bytes_read, "files": s.files, "lines": s.lines, "entries": s.stored,
            "duplicates": s.duplicates, "cost_usd": s.cost_usd, "seconds": secs,
            "gib_per_s": s.bytes_read as f64 / (1u64 << 30) as f64 / secs,
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "reimport_seconds": secs_again, "reimport_files_read": again.files_read,
        })
    );
    Ok(())
}
