//! The organisation-cost commands: `import claude-code`, `agents` (agent usage imported from local
//! logs), `subscription add|list|import` (fixed costs), `pull openai|anthropic` (billed costs),
//! `reconcile` (tracked against billed) and `report --org` (all spend in one table). Arguments and formatting only; the rules live in `llmledger_core::org`.

use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};
use clap::Subcommand;
use llmledger_core::ledger::{Ledger, LedgerConfig};
use llmledger_core::org::billing::{BillingProvider, PullOptions};
use llmledger_core::org::claude_code::{default_roots, CostMode, ImportOptions};
use llmledger_core::org::reconcile::ReconcileBy;
use llmledger_core::org::subscription::{parse_csv, CsvRows, ManualEntry, Subscription};
use llmledger_core::org::usage::BucketWidth;
use llmledger_core::org::{AgentGroup, AgentQuery, Org, OrgGroup};
use llmledger_core::{Error, PriceDb};
use rust_decimal::Decimal;
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
    /// Import Google Cloud's billing export (CSV or JSON; BigQuery's columns) as Google's billed
    /// cost: its AI services' rows replace the days the file covers. Google has no billing API for
    /// API keys.
    GcpBilling {
        /// The exported file.
        file: PathBuf,
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
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

#[derive(Debug, Subcommand)]
pub(crate) enum SubscriptionCommand {
    /// Record a subscription (or with `--period once` a one-off cost). The same fields twice are stored once.
    Add {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// The service, e.g. "Claude Max", "Cursor Pro".
        #[arg(long)]
        service: String,
        /// Who it is paid to (anthropic, openai, cursor, github, …).
        #[arg(long)]
        provider: Option<String>,
        /// The member holding the seat (omit for a team-wide plan).
        #[arg(long)]
        member: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// monthly, yearly, or once (a one-off cost on --start).
        #[arg(long, default_value = "monthly")]
        period: String,
        /// Per period, in --currency.
        #[arg(long)]
        amount: Decimal,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Units of --currency per USD (required unless USD).
        #[arg(long)]
        rate: Option<Decimal>,
        #[arg(long)]
        start: NaiveDate,
        /// The last day billed (inclusive).
        #[arg(long)]
        end: Option<NaiveDate>,
        #[arg(long)]
        note: Option<String>,
    },
    /// List subscriptions and one-off costs, with what each costs (USD) over --since..--until when given.
    List {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Inclusive.
        #[arg(long)]
        until: Option<NaiveDate>,
    },
    /// Import subscriptions and one-off costs from a CSV file (header: service, amount, start, and any of
    /// period, currency, rate, end, provider, member, team, note).
    Import {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        file: PathBuf,
    },
}

pub(crate) fn run_subscription(command: SubscriptionCommand, json: bool) -> Result<(), Error> {
    match command {
        SubscriptionCommand::Add {
            store,
            service,
            provider,
            member,
            team,
            period,
            amount,
            currency,
            rate,
            start,
            end,
            note,
        } => {
            let currency = currency.to_ascii_uppercase();
            let rate = match rate {
                Some(r) => r,
                None if currency == "USD" => Decimal::ONE,
                None => return Err(Error::missing_field("rate")),
            };
            let mut rows = CsvRows::default();
            if period == "once" {
                rows.entries.push(
                    ManualEntry {
                        id: String::new(),
                        date: start,
                        service,
                        provider,
                        member,
                        team,
                        amount,
                        currency,
                        rate,
                        note,
                    }
                    .new()?,
                );
            } else {
                rows.subscriptions.push(
                    Subscription {
                        id: String::new(),
                        service,
                        provider,
                        member,
                        team,
                        period: period.parse()?,
                        amount,
                        currency,
                        rate,
                        start,
                        end,
                        note,
                    }
                    .new()?,
                );
            }
            let (subs, entries) = Org::open(&store)?.add_fixed(&rows)?;
            let id =
                rows.subscriptions.first().map(|s| s.id.clone()).or_else(|| rows.entries.first().map(|e| e.id.clone()));
            if json {
                println!("{}", json!({"id": id, "added": subs + entries}));
            } else {
                println!(
                    "{} {}",
                    id.unwrap_or_default(),
                    if subs + entries > 0 { "added" } else { "already recorded" }
                );
            }
        }
        SubscriptionCommand::Import { store, file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| Error::config("file", file.display(), &e.to_string()))?;
            let rows = parse_csv(&text)?;
            let (subs, entries) = Org::open(&store)?.add_fixed(&rows)?;
            if json {
                println!(
                    "{}",
                    json!({"subscriptions": subs, "entries": entries, "rows": rows.subscriptions.len() + rows.entries.len()})
                );
            } else {
                println!(
                    "{subs} new subscriptions, {entries} new one-off entries ({} rows read)",
                    rows.subscriptions.len() + rows.entries.len()
                );
            }
        }
        SubscriptionCommand::List { store, since, until } => {
            let org = Org::open(&store)?;
            let range = match (since, until) {
                (None, None) => None,
                (s, u) => Some((s.unwrap_or(NaiveDate::MIN), u.unwrap_or_else(|| chrono::Utc::now().date_naive()))),
            };
            let mut out = Vec::new();
            for s in org.subscriptions()? {
                let usd = range.map(|(a, b)| s.daily(a, b).iter().map(|(_, x)| *x).sum::<Decimal>().normalize());
                out.push(json!({
                    "id": s.id, "service": s.service, "provider": s.provider, "member": s.member, "team": s.team,
                    "period": s.period.as_str(), "amount": s.amount, "currency": s.currency, "rate": s.rate,
                    "start": s.start, "end": s.end, "note": s.note, "usd_in_range": usd,
                }));
            }
            for m in org.manual_entries()? {
                let usd = range.map(|(a, b)| if m.date >= a && m.date <= b { m.usd() } else { Decimal::ZERO });
                out.push(json!({
                    "id": m.id, "service": m.service, "provider": m.provider, "member": m.member, "team": m.team,
                    "period": "once", "amount": m.amount, "currency": m.currency, "rate": m.rate,
                    "start": m.date, "end": m.date, "note": m.note, "usd_in_range": usd,
                }));
            }
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                let cell = |v: &serde_json::Value| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                let cols =
                    ["id", "service", "provider", "member", "team", "period", "amount", "currency", "start", "end"];
                let mut header = cols.to_vec();
                if range.is_some() {
                    header.push("usd_in_range");
                }
                let rows = out.iter().map(|r| header.iter().map(|c| cell(&r[*c])).collect()).collect();
                print_table(&header, rows);
            }
        }
    }
    Ok(())
}

/// `llmledger pull openai|anthropic`: billed costs from the provider's admin cost API.
#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// openai (OPENAI_ADMIN_KEY) or anthropic (ANTHROPIC_ADMIN_KEY).
    provider: String,
    #[arg(long, default_value = Ledger::DEFAULT_URL)]
    store: String,
    /// First day (UTC); default the first of this month.
    #[arg(long)]
    since: Option<NaiveDate>,
    /// Last day, inclusive (UTC); default today.
    #[arg(long)]
    until: Option<NaiveDate>,
    /// The API's base URL (a proxy or a test server).
    #[arg(long)]
    base_url: Option<String>,
    /// Also pull billed usage per bucket (every usage endpoint: tokens, cache writes by TTL, images,
    /// audio, vector store bytes, sessions, server tool use) into the usage table.
    #[arg(long)]
    usage: bool,
    /// The usage buckets' width: 1m, 1h or 1d (with --usage).
    #[arg(long, default_value = "1d", requires = "usage")]
    bucket: String,
}

pub(crate) fn run_pull(args: PullArgs, json: bool) -> Result<(), Error> {
    let provider: BillingProvider = args.provider.parse()?;
    // The key is read here and handed to core only; it is never printed.
    let key = std::env::var(provider.key_env()).unwrap_or_default();
    let today = chrono::Utc::now().date_naive();
    let since = args.since.unwrap_or_else(|| today.with_day0(0).unwrap_or(today));
    let until = args.until.unwrap_or(today);
    let mut opts = PullOptions::new(provider, key, since, until.succ_opt().unwrap_or(until));
    if let Some(url) = args.base_url {
        opts.base_url = url;
    }
    let width: BucketWidth = args.bucket.parse()?;
    let org = Org::open(&args.store)?;
    let s = org.pull(&opts)?;
    let usage = if args.usage { Some(org.pull_usage(&opts, width)?) } else { None };
    if json {
        match &usage {
            None => println!("{}", serde_json::to_string(&s)?),
            Some(u) => println!("{}", serde_json::json!({"costs": s, "usage": u})),
        }
    } else {
        println!(
            "{}: {} to {} pulled{} ({} pages): {} rows, {} USD billed",
            s.provider.as_str(),
            s.since,
            until,
            if s.resumed { " (resumed from the saved cursor)" } else { "" },
            s.pages,
            s.rows,
            s.total_usd
        );
        if let Some(u) = &usage {
            println!(
                "{}: usage in {} buckets pulled{} ({} pages): {} rows",
                u.provider.as_str(),
                u.width.as_str(),
                if u.resumed { " (resumed from the saved cursor)" } else { "" },
                u.pages,
                u.rows
            );
            for (endpoint, metric, total) in &u.totals {
                println!("  {endpoint:<26} {metric:<42} {total}");
            }
        }
    }
    Ok(())
}

/// `llmledger reconcile`: tracked (the ledger) against billed (pulled cost reports).
#[derive(Debug, clap::Args)]
pub(crate) struct ReconcileArgs {
    #[arg(long, default_value = Ledger::DEFAULT_URL)]
    store: String,
    #[arg(long)]
    since: NaiveDate,
    /// Last day, inclusive (UTC); default today.
    #[arg(long)]
    until: Option<NaiveDate>,
    /// Any of day, provider, model, workspace.
    #[arg(long, value_delimiter = ',', default_value = "provider,model")]
    by: Vec<String>,
    /// Flag rows whose difference exceeds this percentage of the billed amount.
    #[arg(long, default_value = "5")]
    threshold: Decimal,
}

pub(crate) fn run_reconcile(args: ReconcileArgs, prices: &PriceDb, json: bool) -> Result<(), Error> {
    let by = args.by.iter().map(|b| b.parse::<ReconcileBy>()).collect::<Result<Vec<_>, _>>()?;
    let until = args.until.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let ledger = Ledger::open(&args.store, LedgerConfig::default())?;
    let rows = Org::open(&args.store)?.reconcile(
        &ledger,
        args.since,
        until.succ_opt().unwrap_or(until),
        &by,
        args.threshold,
        prices,
    );
    ledger.close()?;
    let rows = rows?;
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
    let mut header: Vec<&str> = by.iter().map(|b| b.as_str()).collect();
    header.extend(["tracked USD", "billed USD", "diff USD", "diff %", "flag", "likely cause"]);
    let body = rows
        .into_iter()
        .map(|r| {
            let mut cells: Vec<String> = r.key.into_iter().map(|(_, v)| v).collect();
            cells.extend([
                r.tracked_usd.to_string(),
                r.billed_usd.to_string(),
                r.diff_usd.to_string(),
                r.diff_pct.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                if r.flagged { "!".into() } else { String::new() },
                r.cause.unwrap_or_default(),
            ]);
            cells
        })
        .collect();
    print_table(&header, body);
    Ok(())
}

/// `llmledger report --org`: billed API cost + subscriptions + one-off costs.
pub(crate) fn run_org_report(
    store: &str,
    by: &[String],
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
    json: bool,
) -> Result<(), Error> {
    // The ledger report's default grouping means nothing here: the org report's default is provider, month.
    let by: Vec<OrgGroup> = if by == ["user", "model"] {
        vec![OrgGroup::Provider, OrgGroup::Month]
    } else {
        by.iter().map(|b| b.parse()).collect::<Result<_, _>>()?
    };
    let today = chrono::Utc::now().date_naive();
    let since = since.unwrap_or_else(|| today.with_day0(0).unwrap_or(today));
    let until = until.unwrap_or(today);
    let rows = Org::open(store)?.org_report(since, until.succ_opt().unwrap_or(until), &by)?;
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
    let mut header: Vec<&str> = by.iter().map(|b| b.as_str()).collect();
    header.extend(["API billed USD", "subscriptions USD", "one-off USD", "total USD"]);
    let body = rows
        .into_iter()
        .map(|r| {
            let mut cells: Vec<String> = r.key.into_iter().map(|(_, v)| v).collect();
            cells.extend([r.api_billed_usd, r.subscriptions_usd, r.one_off_usd, r.total_usd].map(|d| d.to_string()));
            cells
        })
        .collect();
    print_table(&header, body);
    Ok(())
}

pub(crate) fn run_import(command: ImportCommand, prices: &PriceDb, json: bool) -> Result<(), Error> {
    match command {
        ImportCommand::GcpBilling { file, store } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Error::invalid_value("file", file.display(), &format!("cannot read the billing export: {e}"))
            })?;
            let s = Org::open(&store)?.import_gcp_billing(&text)?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                match (s.since, s.until.and_then(|u| u.pred_opt())) {
                    (Some(since), Some(last)) => println!(
                        "google: {since} to {last} replaced: {} AI rows read, {} other services' rows left out; \
                         {} rows stored, {} USD billed",
                        s.read, s.skipped, s.rows, s.total_usd
                    ),
                    _ => println!("google: no AI service rows in the file ({} other rows left out)", s.skipped),
                }
            }
        }
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
