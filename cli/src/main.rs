//! `llmledger`: count tokens, estimate and price calls, list priced models, report from the ledger,
//! check the price data against the public price maps (`prices diff`), and manage spend control
//! (`budget set|show`, `balance top-up|show|history`), and organisation costs (`import claude-code`,
//! `agents`, `subscription add|list|import`, `pull`, `reconcile`, `report --org`; see
//! `org.rs`), serve the dashboard (`serve`; see `serve.rs`) and answer AI assistants over MCP (`mcp`; see
//! `mcp.rs`).
//!
//! Every command prints an aligned table by default and JSON with `--json`; all arithmetic happens in
//! `llmledger-core` (this file only parses arguments and formats results).

mod mcp;
mod org;
mod serve;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, TimeZone, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use llmledger_core::currency::Rates;
use llmledger_core::estimate::EstimateRequest;
use llmledger_core::ledger::health::redact_credentials;
use llmledger_core::ledger::{Ledger, LedgerConfig, LedgerStatus, RepriceFilter};
use llmledger_core::pricing::diff;
use llmledger_core::report::{GroupBy, UsageFilter, UsageQuery};
use llmledger_core::spend::{
    Account, CreditRequest, EntryKind, HistoryQuery, LimitAction, LimitSpec, Per, Scope, Spend, SpendConfig,
};
use llmledger_core::{tokens, tracker, Error, PriceDb, PriceOptions, Provider, Usage, UsageSource};
use rust_decimal::Decimal;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "llmledger", version, about = "Exact accounting of LLM API usage and cost")]
struct Cli {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// A price file in llmledger's format that extends the embedded prices.
    #[arg(long, global = true, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// A LiteLLM model_prices_and_context_window.json that extends the embedded prices.
    #[arg(long, global = true, value_name = "FILE")]
    litellm_prices: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Count the tokens of a text file (or stdin) for a model.
    Count {
        #[arg(long)]
        model: String,
        /// File to count; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
    /// Estimate the cost of a chat request before sending it.
    Estimate {
        #[arg(long)]
        model: String,
        /// A JSON file holding the messages array (or a request object with `messages` and `tools`).
        #[arg(long)]
        messages: PathBuf,
        /// Worst-case output tokens.
        #[arg(long)]
        max_output: Option<u64>,
        /// Expected fraction of the prompt read from cache, 0..1.
        #[arg(long)]
        cache_hit: Option<Decimal>,
        #[command(flatten)]
        money: MoneyArgs,
    },
    /// Price a usage exactly.
    Price {
        #[arg(long)]
        model: String,
        /// Uncached input tokens.
        #[arg(long, default_value_t = 0)]
        input: u64,
        /// Cache-read (cached input) tokens.
        #[arg(long, default_value_t = 0)]
        cached: u64,
        /// Cache-write tokens with a 5-minute TTL.
        #[arg(long, default_value_t = 0)]
        cache_write: u64,
        /// Cache-write tokens with a 1-hour TTL.
        #[arg(long, default_value_t = 0)]
        cache_write_1h: u64,
        /// All output tokens (reasoning included).
        #[arg(long, default_value_t = 0)]
        output: u64,
        /// The part of output that is reasoning.
        #[arg(long, default_value_t = 0)]
        reasoning: u64,
        /// Price through the batch API.
        #[arg(long)]
        batch: bool,
        /// Service tier (flex, priority).
        #[arg(long)]
        service_tier: Option<String>,
        /// Date the price is taken at (YYYY-MM-DD); default today.
        #[arg(long)]
        at: Option<NaiveDate>,
        #[command(flatten)]
        money: MoneyArgs,
    },
    /// List priced models.
    Models {
        #[arg(long)]
        provider: Option<String>,
    },
    /// Usage and cost report from a ledger.
    Report {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// Group by any of user, workspace, project, provider, model, session, day, month.
        #[arg(long, value_delimiter = ',', default_value = "user,model")]
        by: Vec<String>,
        #[arg(long)]
        since: Option<NaiveDate>,
        #[arg(long)]
        until: Option<NaiveDate>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
        /// IANA time zone for days and months.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Also compute the 95th-percentile latency (scans raw events instead of rollups).
        #[arg(long)]
        p95: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The organisation's total spend instead: billed API cost + subscriptions + one-off costs, by
        /// any of member, team, provider, month (default provider,month; UTC days).
        #[arg(long)]
        org: bool,
    },
    /// Ledger maintenance.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Price data maintenance.
    Prices {
        #[command(subcommand)]
        command: PricesCommand,
    },
    /// Spend limits: set one, show them with this period's use.
    Budget {
        #[command(subcommand)]
        command: BudgetCommand,
    },
    /// Prepaid balances: top up (or grant), show, list the entries.
    Balance {
        #[command(subcommand)]
        command: BalanceCommand,
    },
    /// Import usage an organisation's agents logged locally (Claude Code).
    Import {
        #[command(subcommand)]
        command: org::ImportCommand,
    },
    /// Agent usage imported from local logs, grouped (cost in USD).
    Agents(org::AgentsArgs),
    /// Tracked (the ledger) against billed (pulled cost reports): difference, %, flags, likely cause.
    Reconcile(org::ReconcileArgs),
    /// Pull what a provider billed (admin cost API; key from OPENAI_ADMIN_KEY / ANTHROPIC_ADMIN_KEY).
    Pull(org::PullArgs),
    /// The read-only dashboard and its JSON API (`/api/usage`) over a ledger, on 127.0.0.1 by default.
    Serve {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// Address to listen on; anything but a loopback address needs --token.
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: std::net::SocketAddr,
        /// Bearer token the API requires (`Authorization: Bearer <token>`); open the page as
        /// `http://host:port/#token=<token>`.
        #[arg(long)]
        token: Option<String>,
    },
    /// A read-only MCP server over stdio: usage_report, price_lookup, list_models.
    Mcp {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
    },
    /// Subscriptions and one-off costs: add, list, import from CSV.
    Subscription {
        #[command(subcommand)]
        command: org::SubscriptionCommand,
    },
}

/// The store and money settings every spend command opens the store with.
#[derive(Debug, Args)]
struct SpendArgs {
    #[arg(long, default_value = Ledger::DEFAULT_URL)]
    store: String,
    /// IANA zone of limits' days and months (the tracker's zone).
    #[arg(long, default_value = "UTC")]
    tz: String,
    #[command(flatten)]
    money: MoneyArgs,
}

impl SpendArgs {
    fn open(&self) -> Result<Spend, Error> {
        Spend::open(&self.store, &self.money.currency, self.money.rates()?, &self.tz, SpendConfig::default())
    }
}

/// A limit's scope from flags; none at all is the scope of every call.
#[derive(Debug, Args)]
struct ScopeArgs {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    workspace: Option<String>,
    #[arg(long)]
    project: Option<String>,
    /// A tag, `name=value` (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    tag: Vec<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Result<Scope, Error> {
        let mut map = std::collections::BTreeMap::new();
        for (key, value) in [("user_id", &self.user), ("workspace_id", &self.workspace), ("project", &self.project)] {
            if let Some(v) = value {
                map.insert(key.to_string(), v.clone());
            }
        }
        for tag in &self.tag {
            let (name, value) =
                tag.split_once('=').ok_or_else(|| Error::invalid_value("tag", tag, "expected name=value"))?;
            map.insert(format!("tag:{name}"), value.to_string());
        }
        Scope::new(map)
    }

    fn is_empty(&self) -> bool {
        self.user.is_none() && self.workspace.is_none() && self.project.is_none() && self.tag.is_empty()
    }
}

#[derive(Debug, Subcommand)]
enum BudgetCommand {
    /// Create or update the limit of a scope, period and metric (running it again updates it).
    Set {
        #[command(flatten)]
        scope: ScopeArgs,
        /// minute, day or month.
        #[arg(long)]
        per: String,
        /// A spend limit, in --limit-currency (default --currency).
        #[arg(long)]
        amount: Option<Decimal>,
        #[arg(long)]
        limit_currency: Option<String>,
        /// A request-count limit.
        #[arg(long)]
        requests: Option<u64>,
        /// A token limit (input + output).
        #[arg(long)]
        tokens: Option<u64>,
        /// block, warn or log.
        #[arg(long, default_value = "block")]
        action: String,
        /// Alert thresholds as fractions of the limit.
        #[arg(long, value_delimiter = ',')]
        thresholds: Option<Vec<Decimal>>,
        /// The limit's own time zone (default --tz).
        #[arg(long)]
        limit_tz: Option<String>,
        #[command(flatten)]
        spend: SpendArgs,
    },
    /// The limits (of a scope, when given) with this period's use.
    Show {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        spend: SpendArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BalanceCommand {
    /// Add credit to an account (`u1`, `user_id=u1` or `workspace_id=w1`), once per idempotency key.
    TopUp {
        account: String,
        amount: Decimal,
        /// A key that makes a replay harmless (a payment event id).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// A grant (free credit) instead of a top-up.
        #[arg(long)]
        grant: bool,
        /// When the credit's unused part expires (RFC 3339).
        #[arg(long)]
        expires: Option<chrono::DateTime<Utc>>,
        /// The account's currency for a new account (default --currency).
        #[arg(long)]
        account_currency: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        spend: SpendArgs,
    },
    /// The balance: total, reserved, available.
    Show {
        account: String,
        #[command(flatten)]
        spend: SpendArgs,
    },
    /// The account's entries, newest first.
    History {
        account: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        spend: SpendArgs,
    },
}

#[derive(Debug, Subcommand)]
enum PricesCommand {
    /// Compare the price data with LiteLLM's and genai-prices' data: unresolved models, disagreeing
    /// figures, figures only we hold. Fails when a disagreement is neither noted nor accepted.
    Diff {
        /// LiteLLM's model_prices_and_context_window.json.
        #[arg(long, value_name = "FILE")]
        litellm: Option<PathBuf>,
        /// genai-prices' provider data as JSON (scripts/prices-sync.sh writes it).
        #[arg(long, value_name = "FILE")]
        genai_prices: Option<PathBuf>,
        /// Accepted disagreements and unresolved entries, each with its reason.
        #[arg(long, value_name = "FILE")]
        accepted: Option<PathBuf>,
        /// Compare the prices in force on this date (YYYY-MM-DD); default today.
        #[arg(long)]
        at: Option<NaiveDate>,
        /// Also list explained disagreements and figures only we hold.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Recompute rollups from raw events and report differences.
    Verify {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
    },
    /// Write spilled events back into the store (those of ledgers that are no longer running).
    Replay {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// The spill directory, when the ledger was given one.
        #[arg(long)]
        spill_dir: Option<std::path::PathBuf>,
    },
    /// Whether the store can be reached and what waits in its spill directory; reads only (exit code 1
    /// when the store cannot be reached).
    Status {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// The spill directory, when the ledger was given one.
        #[arg(long)]
        spill_dir: Option<std::path::PathBuf>,
    },
    /// Recompute stored costs with the current price data (with --prices / --litellm-prices): prices
    /// unpriced events of a model that is now known and corrects figures of a corrected price. Old
    /// figures are kept in the event's audit trail; running it twice changes nothing the second time.
    Reprice {
        #[arg(long, default_value = Ledger::DEFAULT_URL)]
        store: String,
        /// Events on or after this UTC date.
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Events up to and including this UTC date.
        #[arg(long)]
        until: Option<NaiveDate>,
        /// Only events of this model (as requested or as resolved).
        #[arg(long)]
        model: Option<String>,
        /// Report what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
struct MoneyArgs {
    /// Report in this currency (needs --rate unless USD).
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Units of the currency per USD, e.g. 1391.50 for KRW.
    #[arg(long)]
    rate: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    let json = cli.json;
    match cli.command {
        Command::Count { model, file } => {
            let text = read_input(file.as_deref())?;
            let count = tokens::count_text(&model, &text)?;
            let exactness = if count.exact { "exact" } else { "approximate" };
            if json {
                println!("{}", json!({"model": model, "tokens": count.tokens, "exact": count.exact}));
            } else {
                print_table(
                    &["model", "tokens", "count"],
                    vec![vec![model, count.tokens.to_string(), exactness.into()]],
                );
            }
        }
        Command::Estimate { model, messages, max_output, cache_hit, money } => {
            let db = load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?;
            let body: serde_json::Value = serde_json::from_str(&read_input(Some(&messages))?)?;
            let (messages, tools) = match body.get("messages") {
                Some(m) => (m.clone(), body.get("tools").cloned()),
                None => (body, None),
            };
            let request = EstimateRequest {
                model: &model,
                messages: &messages,
                tools: tools.as_ref(),
                max_output_tokens: max_output,
                expected_cache_hit: cache_hit,
            };
            let rates = money.rates()?;
            let est = tracker::estimate(&db, &rates, &money.currency, &request, Utc::now())?;
            if json {
                println!("{}", serde_json::to_string(&est)?);
            } else {
                print_table(
                    &["model", "input tokens", "count", "max output", "min cost", "max cost", "currency"],
                    vec![vec![
                        est.model,
                        est.input_tokens.to_string(),
                        if est.exact { "exact" } else { "approximate" }.into(),
                        est.max_output_tokens.to_string(),
                        est.min_cost.normalize().to_string(),
                        est.max_cost.normalize().to_string(),
                        est.currency,
                    ]],
                );
            }
        }
        Command::Price {
            model,
            input,
            cached,
            cache_write,
            cache_write_1h,
            output,
            reasoning,
            batch,
            service_tier,
            at,
            money,
        } => {
            let db = load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?;
            let usage = Usage {
                input_tokens: input,
                cache_read_tokens: cached,
                cache_write_tokens: cache_write + cache_write_1h,
                cache_write_1h_tokens: cache_write_1h,
                output_tokens: output,
                reasoning_tokens: reasoning,
                usage_source: UsageSource::Reported,
                ..Usage::default()
            };
            let at = match at {
                Some(d) => Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).unwrap_or_default()),
                None => Utc::now(),
            };
            let opts = PriceOptions { batch, service_tier, ..PriceOptions::default() };
            let cost = db.price(&usage, &model, at, &opts)?.convert(&money.rates()?, &money.currency)?;
            if json {
                println!("{}", serde_json::to_string(&cost)?);
            } else {
                let b = &cost.breakdown;
                let mut rows: Vec<Vec<String>> = [
                    ("input", b.input),
                    ("cache read", b.cache_read),
                    ("cache write 5m", b.cache_write_5m),
                    ("cache write 1h", b.cache_write_1h),
                    ("output", b.output),
                    ("reasoning", b.reasoning),
                    ("audio input", b.audio_input),
                    ("audio output", b.audio_output),
                    ("image input", b.image_input),
                    ("image output", b.image_output),
                    ("request", b.request),
                ]
                .into_iter()
                .filter(|(_, amount)| !amount.is_zero())
                .map(|(name, amount)| vec![name.to_string(), amount.normalize().to_string()])
                .collect();
                rows.push(vec!["total (USD)".into(), cost.total_usd.normalize().to_string()]);
                if cost.currency != "USD" {
                    rows.push(vec![
                        format!("total ({} at {})", cost.currency, cost.rate),
                        cost.total.normalize().to_string(),
                    ]);
                }
                println!("{} ({}), prices effective {}", cost.model, cost.provider, cost.price_version);
                print_table(&["component", "USD"], rows);
            }
        }
        Command::Models { provider } => {
            let db = load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?;
            let provider = provider.map(|p| p.parse::<Provider>()).transpose()?;
            let models = db.models(provider);
            if json {
                println!("{}", serde_json::to_string(&models)?);
            } else {
                let rows = models
                    .iter()
                    .map(|m| {
                        let r = &m.current.rates;
                        let fmt = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
                        vec![
                            m.provider.to_string(),
                            m.id.to_string(),
                            format!("{:?}", m.mode).to_lowercase(),
                            fmt(r.input),
                            fmt(r.cache_read),
                            fmt(r.output),
                            m.current.effective_from.to_string(),
                            m.retired.map(|d| d.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                let header =
                    ["provider", "model", "mode", "input $/1M", "cached $/1M", "output $/1M", "since", "retired"];
                print_table(&header, rows);
            }
        }
        Command::Report { store, by, since, until, org: true, .. } => {
            org::run_org_report(&store, &by, since, until, json)?
        }
        Command::Report { store, by, since, until, user, workspace, tz, p95, format, org: false } => {
            let group_by = by.iter().map(|g| g.parse::<GroupBy>()).collect::<Result<Vec<_>, _>>()?;
            let ledger = Ledger::open(&store, LedgerConfig { timezone: tz.clone(), ..LedgerConfig::default() })?;
            let query = UsageQuery {
                filter: UsageFilter { user_id: user, workspace_id: workspace, ..UsageFilter::default() },
                group_by: group_by.clone(),
                timezone: Some(tz),
                p95,
            }
            .between_dates(since, until.and_then(|d| d.succ_opt()))?;
            let rows = ledger.query(&query)?;
            let format = if json { Format::Json } else { format };
            print_report(&group_by, &rows, format, p95)?;
            ledger.close()?;
        }
        Command::Budget { command } => run_budget(command, json)?,
        Command::Balance { command } => run_balance(command, json)?,
        Command::Import { command } => {
            org::run_import(command, &load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?, json)?
        }
        Command::Agents(args) => org::run_agents(args, json)?,
        Command::Mcp { store } => mcp::run(store)?,
        Command::Serve { store, addr, token } => serve::run(serve::ServeConfig { store, addr, token })?,
        Command::Subscription { command } => org::run_subscription(command, json)?,
        Command::Pull(args) => org::run_pull(args, json)?,
        Command::Reconcile(args) => {
            org::run_reconcile(args, &load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?, json)?
        }
        Command::Ledger { command } => match command {
            LedgerCommand::Verify { store } => {
                let ledger = Ledger::open(&store, LedgerConfig::default())?;
                let diffs = ledger.verify()?;
                ledger.close()?;
                if diffs.is_empty() {
                    println!("ledger {}: rollups match raw events", redact_credentials(&store));
                } else {
                    for d in &diffs {
                        println!("{d}");
                    }
                    return Err(Error::new(
                        llmledger_core::ErrorCode::Store,
                        format!("{} rollup differences", diffs.len()),
                    ));
                }
            }
            LedgerCommand::Reprice { store, since, until, model, dry_run } => {
                let db = load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?;
                let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
                let filter = RepriceFilter {
                    since: since.map(midnight),
                    until: until.and_then(|d| d.succ_opt()).map(midnight),
                    model,
                    dry_run,
                    ..RepriceFilter::default()
                };
                let ledger = Ledger::open(&store, LedgerConfig::default())?;
                let report = ledger.store().reprice(&db, &filter);
                ledger.close()?;
                let report = report?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    // The first changes as a table; `--json` lists every one.
                    const SHOWN: usize = 50;
                    let rows = report
                        .changes
                        .iter()
                        .take(SHOWN)
                        .map(|c| {
                            let old =
                                c.old_cost_usd.map_or_else(|| "unpriced".to_string(), |d| d.normalize().to_string());
                            vec![
                                c.event_id.clone(),
                                c.model.clone(),
                                old,
                                c.new_cost_usd.normalize().to_string(),
                                c.old_price_version.map_or_else(String::new, |d| d.to_string()),
                                c.new_price_version.to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["event", "model", "old USD", "new USD", "old version", "new version"], rows);
                    if report.changes.len() > SHOWN {
                        println!("… and {} more changes (--json lists all)", report.changes.len() - SHOWN);
                    }
                    println!(
                        "{}{} of {} events changed (delta {} USD on priced events, {} USD newly priced); {} still unpriced, {} no longer priceable (kept)",
                        if dry_run { "dry run: " } else { "" },
                        report.changed,
                        report.examined,
                        report.delta_usd.normalize(),
                        report.newly_priced_usd.normalize(),
                        report.still_unpriced,
                        report.failed
                    );
                }
            }
            LedgerCommand::Replay { store, spill_dir } => {
                let ledger = Ledger::open(&store, LedgerConfig { spill_dir, ..LedgerConfig::default() })?;
                let replayed = ledger.replay_spill()?;
                ledger.close()?;
                println!("replayed {replayed} spilled events into {}", redact_credentials(&store));
            }
            LedgerCommand::Status { store, spill_dir } => {
                let status = llmledger_core::ledger::status(&store, spill_dir.as_deref())?;
                if json {
                    println!("{}", serde_json::to_string(&status)?);
                } else {
                    print_status(&status);
                }
                if let Some(err) = status.store_error {
                    return Err(Error::new(
                        llmledger_core::ErrorCode::Store,
                        format!("the store cannot be reached: {err}"),
                    ));
                }
            }
        },
        Command::Prices { command: PricesCommand::Diff { litellm, genai_prices, accepted, at, all } } => {
            if litellm.is_none() && genai_prices.is_none() {
                return Err(Error::config("litellm", "", "give --litellm FILE, --genai-prices FILE or both"));
            }
            let db = load_prices(cli.prices.as_deref(), cli.litellm_prices.as_deref())?;
            let read = |p: Option<PathBuf>| p.map(|p| read_input(Some(&p))).transpose();
            let accepted = match read(accepted)? {
                Some(text) => diff::Accepted::from_json(&text)?,
                None => diff::Accepted::default(),
            };
            let at = at.unwrap_or_else(|| Utc::now().date_naive());
            let (litellm, genai) = (read(litellm)?, read(genai_prices)?);
            let report = diff::diff(&db, litellm.as_deref(), genai.as_deref(), at, &accepted)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_diff(&report, all);
            }
            let unexplained = report.unexplained().count();
            let unresolved = report.unresolved_current_chat().count();
            if unexplained + unresolved > 0 {
                return Err(Error::new(
                    llmledger_core::ErrorCode::InvalidPriceData,
                    format!(
                        "{unexplained} unexplained disagreements, {unresolved} current chat models unresolved \
                         (note them in `uncertain`, fix the data, or accept them with a reason)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn print_diff(report: &diff::DiffReport, all: bool) {
    let dec = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_else(|| "-".into());
    println!("prices in force on {}", report.at.map(|d| d.to_string()).unwrap_or_default());
    let rows = report
        .sources
        .iter()
        .map(|(s, x)| {
            vec![
                s.to_string(),
                x.entries.to_string(),
                x.resolved.to_string(),
                x.figures.to_string(),
                x.agreed.to_string(),
                x.out_of_scope.to_string(),
            ]
        })
        .collect();
    print_table(&["source", "entries", "resolved", "figures", "agree", "out of scope"], rows);
    let counts = report.unresolved_counts();
    if !counts.is_empty() {
        println!("\nunresolved entries per provider");
        let rows = counts
            .iter()
            .map(|((s, p), (n, chat))| vec![s.to_string(), p.clone(), n.to_string(), chat.to_string()])
            .collect();
        print_table(&["source", "provider", "unresolved", "of which current chat"], rows);
        let rows: Vec<Vec<String>> = report
            .unresolved
            .iter()
            .filter(|u| all || u.accepted.is_none())
            .map(|u| {
                vec![
                    u.source.to_string(),
                    u.provider.clone(),
                    u.key.clone(),
                    u.mode.clone().unwrap_or_default(),
                    if u.chat && u.current { "current chat".into() } else { String::new() },
                    u.accepted.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            print_table(&["source", "provider", "key", "mode", "", "accepted"], rows);
        }
    }
    let shown: Vec<Vec<String>> = report
        .disagreements
        .iter()
        .filter(|d| all || (d.explained.is_none() && d.kind != diff::Kind::Missing))
        .map(|d| {
            vec![
                d.source.to_string(),
                d.key.clone(),
                d.model.clone(),
                d.date.to_string(),
                d.component.clone(),
                dec(d.theirs),
                dec(d.ours),
                format!("{:?}", d.kind).to_lowercase(),
                d.explained.clone().unwrap_or_default().chars().take(80).collect(),
            ]
        })
        .collect();
    let missing = report.disagreements.iter().filter(|d| d.kind == diff::Kind::Missing).count();
    let explained =
        report.disagreements.iter().filter(|d| d.kind != diff::Kind::Missing && d.explained.is_some()).count();
    println!(
        "\n{} disagreements: {} unexplained, {explained} explained; {missing} figures they have that we hold no rate for",
        report.disagreements.len() - missing,
        report.unexplained().count()
    );
    if !shown.is_empty() {
        print_table(&["source", "key", "model", "date", "component", "theirs", "ours", "kind", "explained"], shown);
    }
    println!(
        "\n{} figures only we hold; {} of our models priced by neither source",
        report.only_ours.len(),
        report.unpriced_by_sources.len()
    );
    if all {
        let rows =
            report.only_ours.iter().map(|o| vec![o.model.clone(), o.component.clone(), dec(Some(o.ours))]).collect();
        print_table(&["model", "component", "ours"], rows);
        println!("neither source: {}", report.unpriced_by_sources.join(", "));
        let rows = report.unmapped_fields.iter().map(|(f, n)| vec![f.clone(), n.to_string()]).collect();
        print_table(&["field with no counterpart here", "entries"], rows);
    }
}

impl MoneyArgs {
    fn rates(&self) -> Result<Rates, Error> {
        let rates = Rates::new();
        if let Some(rate) = &self.rate {
            return rates.with(&self.currency, rate);
        }
        Ok(rates)
    }
}

fn load_prices(prices: Option<&std::path::Path>, litellm: Option<&std::path::Path>) -> Result<PriceDb, Error> {
    let mut db = PriceDb::embedded();
    if let Some(path) = prices {
        db.extend(PriceDb::from_json_file(path)?);
    }
    if let Some(path) = litellm {
        db.extend(PriceDb::from_litellm_file(path)?);
    }
    Ok(db)
}

fn read_input(path: Option<&std::path::Path>) -> Result<String, Error> {
    match path {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::read_to_string(p).map_err(|e| Error::config("file", p.display(), &e.to_string()))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Ok(text)
        }
    }
}

fn run_budget(command: BudgetCommand, json: bool) -> Result<(), Error> {
    match command {
        BudgetCommand::Set {
            scope,
            per,
            amount,
            limit_currency,
            requests,
            tokens,
            action,
            thresholds,
            limit_tz,
            spend,
        } => {
            let spec = LimitSpec {
                scope: scope.scope()?,
                per: per.parse::<Per>()?,
                amount,
                currency: limit_currency,
                requests,
                tokens,
                action: action.parse::<LimitAction>()?,
                thresholds,
                timezone: limit_tz,
            };
            let limit = spend.open()?.set_limit(&spec)?;
            if json {
                println!("{}", serde_json::to_string(&limit)?);
            } else {
                println!(
                    "limit {} set: {} {} per {} for `{}` ({})",
                    limit.id,
                    limit.amount,
                    limit.currency.as_deref().unwrap_or(limit.metric.as_str()),
                    limit.per.as_str(),
                    limit.scope.key(),
                    limit.action.as_str()
                );
            }
        }
        BudgetCommand::Show { scope, spend } => {
            let filter = if scope.is_empty() { None } else { Some(scope.scope()?) };
            let status = spend.open()?.limit_status(filter.as_ref(), None)?;
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                let rows = status
                    .iter()
                    .map(|s| {
                        vec![
                            s.limit.id.clone(),
                            s.limit.scope.key(),
                            s.limit.per.as_str().into(),
                            s.limit.metric.as_str().into(),
                            s.limit.action.as_str().into(),
                            s.period.clone(),
                            s.limit.amount.to_string(),
                            s.used.to_string(),
                            s.reserved.to_string(),
                            s.remaining.to_string(),
                            s.limit.currency.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "id",
                        "scope",
                        "per",
                        "metric",
                        "action",
                        "period",
                        "limit",
                        "used",
                        "reserved",
                        "remaining",
                        "currency",
                    ],
                    rows,
                );
            }
        }
    }
    Ok(())
}

fn run_balance(command: BalanceCommand, json: bool) -> Result<(), Error> {
    let print_balance = |b: &llmledger_core::spend::Balance| {
        if json {
            println!("{}", serde_json::to_string(b).unwrap_or_default());
        } else {
            print_table(
                &["account", "total", "reserved", "available", "currency"],
                vec![vec![
                    b.account.clone(),
                    b.total.to_string(),
                    b.reserved.to_string(),
                    b.available.to_string(),
                    b.currency.clone(),
                ]],
            );
        }
    };
    match command {
        BalanceCommand::TopUp { account, amount, idempotency_key, grant, expires, account_currency, note, spend } => {
            let s = spend.open()?;
            let account: Account = account.parse()?;
            let entry = s.credit(&CreditRequest {
                account: account.clone(),
                amount,
                currency: account_currency,
                idempotency_key,
                kind: if grant { EntryKind::Grant } else { EntryKind::TopUp },
                expires_at: expires,
                note,
                at: None,
            })?;
            if json {
                println!("{}", serde_json::to_string(&entry)?);
            } else {
                println!(
                    "entry {}: {} {} {} to {}",
                    entry.id,
                    entry.kind.as_str(),
                    entry.amount,
                    entry.currency,
                    entry.account
                );
                print_balance(&s.balance(&account, None)?);
            }
        }
        BalanceCommand::Show { account, spend } => {
            print_balance(&spend.open()?.balance(&account.parse()?, None)?);
        }
        BalanceCommand::History { account, limit, spend } => {
            let q = HistoryQuery { account: account.parse()?, limit: Some(limit), before: None };
            let entries = spend.open()?.history(&q)?;
            if json {
                println!("{}", serde_json::to_string(&entries)?);
            } else {
                let rows = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            e.kind.as_str().into(),
                            e.amount.to_string(),
                            e.currency.clone(),
                            e.expires_at
                                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                                .unwrap_or_default(),
                            e.idempotency_key.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["id", "at", "kind", "amount", "currency", "expires", "key"], rows);
            }
        }
    }
    Ok(())
}

fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.iter().copied());
    for row in rows {
        table.add_row(row.into_iter().map(|c| {
            let numeric = c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
            Cell::new(c).set_alignment(if numeric { CellAlignment::Right } else { CellAlignment::Left })
        }));
    }
    println!("{table}");
}

fn print_report(
    group_by: &[GroupBy],
    rows: &[llmledger_core::report::ReportRow],
    format: Format,
    p95: bool,
) -> Result<(), Error> {
    if format == Format::Json {
        let rows: Vec<_> = rows.iter().map(|r| r.clone().in_currency("USD", rust_decimal::Decimal::ONE)).collect();
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    let mut header: Vec<String> = group_by.iter().map(|g| g.to_string()).collect();
    header.extend(
        ["requests", "failed", "input", "cached", "cache write", "output", "reasoning", "cost USD", "avg ms"]
            .map(String::from),
    );
    if p95 {
        header.push("p95 ms".into());
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = r.key.iter().map(|(_, v)| v.clone()).collect();
            cells.extend([
                r.requests.to_string(),
                r.failed.to_string(),
                r.input_tokens.to_string(),
                r.cache_read_tokens.to_string(),
                r.cache_write_tokens.to_string(),
                r.output_tokens.to_string(),
                r.reasoning_tokens.to_string(),
                r.cost_usd.normalize().to_string(),
                r.avg_latency_ms.map(|d| d.round_dp(1).to_string()).unwrap_or_default(),
            ]);
            if p95 {
                cells.push(r.p95_latency_ms.map(|d| d.to_string()).unwrap_or_default());
            }
            cells
        })
        .collect();
    if format == Format::Csv {
        let mut out = csv::Writer::from_writer(std::io::stdout());
        let csv_error = |e: csv::Error| Error::new(llmledger_core::ErrorCode::Io, format!("writing CSV: {e}"));
        out.write_record(&header).map_err(csv_error)?;
        for row in body {
            out.write_record(&row).map_err(csv_error)?;
        }
        out.flush()?;
    } else {
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        print_table(&header, body);
    }
    Ok(())
}

fn print_status(s: &LedgerStatus) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let oldest = s.spill.oldest.map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
    let age = s.oldest_spilled_age_secs.map_or_else(|| "-".to_string(), |a| format!("{a} s"));
    let rows = [
        ("store", s.store.clone()),
        (
            "reachable",
            if s.store_reachable { "yes".into() } else { format!("no: {}", s.store_error.as_deref().unwrap_or("")) },
        ),
        ("spill directory", s.spill.dir.clone()),
        ("spilled events", s.spill.events.to_string()),
        ("oldest spilled", oldest),
        ("oldest spilled age", age),
        ("running ledgers", s.spill.live_owners.to_string()),
        ("journals of stopped ledgers", s.spill.orphaned_owners.to_string()),
    ];
    for (k, v) in rows {
        table.add_row(vec![Cell::new(k), Cell::new(v)]);
    }
    println!("{table}");
}
