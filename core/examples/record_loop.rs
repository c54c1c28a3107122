//! Records events in a loop with `sync` durability and prints each event id after `record` returned.
//! The SIGKILL fault test (`tests/ledger_faults.rs`) runs it as a child process and kills it at random
//! moments: every printed id must be in the store after the next open.
//!
//! Usage: `record_loop <store-url> <spill-dir or -> <id-prefix>`

use std::io::Write;

use llmledger_core::event::{Attribution, UsageEvent};
use llmledger_core::ledger::{Durability, Ledger, LedgerConfig};
use llmledger_core::{Api, Provider, Usage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, spill, prefix) = match args.as_slice() {
        [_, url, spill, prefix] => (url, spill, prefix),
        _ => return Err("usage: record_loop <store-url> <spill-dir> <id-prefix>".into()),
    };
    let config = LedgerConfig {
        durability: Durability::Sync,
        // "-": the default spill directory (for PostgreSQL: the per-user state directory).
        spill_dir: (spill != "-").then(|| spill.into()),
        flush_interval: std::time::Duration::from_millis(10),
        ..LedgerConfig::default()
    };
    let ledger = Ledger::open(url, config)?;
    let stdout = std::io::stdout();
    for i in 0u64.. {
        let usage = Usage { input_tokens: 10 + i % 5, output_tokens: 3, ..Usage::default() };
        let event = UsageEvent::new(Provider::Anthropic, Api::Messages, "claude-sonnet-4", usage)
            .with_id(format!("{prefix}-{i}"))
            .with_attribution(Attribution { user_id: Some("child".into()), ..Attribution::default() });
        ledger.record(event)?;
        let mut out = stdout.lock();
        writeln!(out, "{prefix}-{i}")?;
        out.flush()?;
    }
    Ok(())
}
