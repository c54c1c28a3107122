//! The organisation-cost commands: `import claude-code` and `agents` (agent usage imported from
//! local logs). Arguments and formatting only; the rules live in `llmledger_core::org`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Subcommand;
use llmledger_core::ledger::Ledger;
use llmledger_core::org::claude_code::{default_roots, CostMode, ImportOptions};
use llmledger_core::org::{AgentGroup, AgentQuery, Org};
use llmledger_core::{Error, PriceDb};
use serde_json::json;

use crate::print_table;

#[derive(Debug, Subcommand)]
pub(crate) enum ImportCommand {
    /// Import Claude Code's local usage logs (`<root>/projects/**/*.jsonl`); a re-run reads only what
    /// is new. Roots: --root, else the comma-separated CLAUDE_CONFIG_DIR, else ~/.config/claude and
    /// ~/.claude.
    ClaudeCode {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// A Claude Code data directory holding `projects/` (repeatable).
        #[arg(long, value_name = "DIR")]
        root: Vec<PathBuf>,
        /// Use the log's own `costUSD` where a line carries it, instead of our price data.
        #[arg(long)]
        cost_from_log: bool,
        /// Read every file from the start (stored entries are matched, never counted twice).
        #[arg(long)]
        full: bool,
    },
}

/// `llmledger agents`: agent usage imported from local logs.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentsArgs {
    #[arg(long, default_value = Ledger::DEFAULT_URL)]
    store: String,
    /// Group by any of project, session, model, day, month (UTC days).
    #[arg(long, value_delimiter = ',', default_value = "project,model")]
    by: Vec<String>,
    #[arg(long)]
    since: Option<NaiveDate>,
    /// Inclusive.
    #[arg(long)]
    until: Option<NaiveDate>,
}

pub(crate) fn run_import(command: ImportCommand, prices: &PriceDb, json: bool) -> Result<(), Error> {
    match command {
        ImportCommand::ClaudeCode { store, root, cost_from_log, full } => {
            let roots = if root.is_empty() {
                let home = std::env::var_os("HOME").map(PathBuf::from);
                default_roots(std::env::var("CLAUDE_CONFIG_DIR").ok().as_deref(), home.as_deref())
            } else {
                root
            };
            let opts = ImportOptions {
                roots,
                cost_mode: if cost_from_log { CostMode::Log } else { CostMode::Calculate },
                full,
            };
            let summary = Org::open(&store)?.import_claude_code(&opts, prices)?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                let rows = [
                    ("roots with projects/", summary.roots.to_string()),
                    ("log files", summary.files.to_string()),
                    ("files with new lines", summary.files_read.to_string()),
                    ("bytes read", summary.bytes_read.to_string()),
                    ("lines read", summary.lines.to_string()),
                    ("malformed lines skipped", summary.malformed.to_string()),
                    ("usage lines", summary.usage_lines.to_string()),
                    ("duplicates not counted", summary.duplicates.to_string()),
                    ("entries stored", summary.stored.to_string()),
                    ("cost of stored entries (USD)", summary.cost_usd.to_string()),
                    ("unpriced entries", summary.unpriced.to_string()),
                ];
                print_table(&["claude code import", ""], rows.into_iter().map(|(k, v)| vec![k.into(), v]).collect());
                if !summary.unpriced_models.is_empty() {
                    println!("models without a price: {}", summary.unpriced_models.join(", "));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn run_agents(args: AgentsArgs, json: bool) -> Result<(), Error> {
    let group_by = args.by.iter().map(|g| g.parse::<AgentGroup>()).collect::<Result<Vec<_>, _>>()?;
    let query = AgentQuery { since: args.since, until: args.until, group_by: group_by.clone() };
    let rows = Org::open(&args.store)?.agent_report(&query)?;
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["key"] =
                    r.key.iter().map(|(k, val)| (k.clone(), json!(val))).collect::<serde_json::Map<_, _>>().into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    let mut header: Vec<&str> = group_by.iter().map(|g| g.as_str()).collect();
    header.extend([
        "requests",
        "input",
        "output",
        "cache read",
        "cache write 5m",
        "cache write 1h",
        "cost USD",
        "unpriced",
    ]);
    let body = rows
        .into_iter()
        .map(|r| {
            let mut cells: Vec<String> = r.key.into_iter().map(|(_, v)| v).collect();
            cells.extend([
                r.requests.to_string(),
                r.input_tokens.to_string(),
                r.output_tokens.to_string(),
                r.cache_read_tokens.to_string(),
                r.cache_write_5m_tokens.to_string(),
                r.cache_write_1h_tokens.to_string(),
                r.cost_usd.to_string(),
                r.unpriced.to_string(),
            ]);
            cells
        })
        .collect();
    print_table(&header, body);
    Ok(())
}
