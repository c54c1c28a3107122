//! `llmledger mcp`: a read-only Model Context Protocol server over stdio (the official Rust SDK, `rmcp`).
//! Owns only the tool surface: each tool parses its arguments and answers with the same engines the
//! CLI uses (`Ledger::query` for reports, `PriceDb` for prices), as JSON text.

use llmledger_core::ledger::{Ledger, LedgerConfig};
use llmledger_core::report::{GroupBy, UsageFilter, UsageQuery};
use llmledger_core::{Error, ErrorCode, PriceDb, PriceOptions, Provider, Usage, UsageSource};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct UsageReportArgs {
    /// Comma-separated groups: user, workspace, project, provider, model, session, day, month.
    group_by: Option<String>,
    /// Local date YYYY-MM-DD (inclusive) in `tz`.
    since: Option<String>,
    /// Local date YYYY-MM-DD (exclusive) in `tz`.
    until: Option<String>,
    user_id: Option<String>,
    workspace_id: Option<String>,
    project: Option<String>,
    model: Option<String>,
    /// IANA time zone of days and months (default UTC).
    tz: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct PriceLookupArgs {
    /// Model id, e.g. gpt-4o or claude-sonnet-4-5.
    model: String,
    /// Uncached input tokens.
    input_tokens: Option<u64>,
    /// Cache-read input tokens.
    cache_read_tokens: Option<u64>,
    /// All output tokens, reasoning included.
    output_tokens: Option<u64>,
    /// The part of output that is reasoning.
    reasoning_tokens: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ListModelsArgs {
    /// openai, anthropic, azure, xai, …; none lists every provider.
    provider: Option<String>,
}

#[derive(Debug, Clone)]
struct LedgerTools {
    store: String,
    tool_router: ToolRouter<Self>,
}

/// A tool's answer: the JSON of `value`, or the typed error's message.
fn answer(result: Result<String, Error>) -> String {
    result.unwrap_or_else(|e| format!("error [{}]: {e}", e.code().as_str()))
}

fn parse_date(field: &str, v: Option<String>) -> Result<Option<chrono::NaiveDate>, Error> {
    v.filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|_| Error::invalid_value(field, &v, "expected a date YYYY-MM-DD")))
        .transpose()
}

#[tool_router]
impl LedgerTools {
    fn new(store: String) -> Self {
        Self { store, tool_router: Self::tool_router() }
    }

    #[tool(description = "Usage and exact cost (USD decimal strings) from the ledger, grouped and filtered")]
    fn usage_report(&self, Parameters(a): Parameters<UsageReportArgs>) -> String {
        answer((|| {
            let group_by = match a.group_by.as_deref() {
                None | Some("") => Vec::new(),
                Some(list) => list.split(',').map(|g| g.trim().parse::<GroupBy>()).collect::<Result<_, _>>()?,
            };
            let query = UsageQuery {
                filter: UsageFilter {
                    user_id: a.user_id,
                    workspace_id: a.workspace_id,
                    project: a.project,
                    model: a.model,
                    ..UsageFilter::default()
                },
                group_by,
                timezone: Some(a.tz.unwrap_or_else(|| "UTC".into())),
                p95: false,
            }
            .between_dates(parse_date("since", a.since)?, parse_date("until", a.until)?)?;
            let ledger = Ledger::open(&self.store, LedgerConfig::default())?;
            let rows = ledger.query(&query);
            ledger.close()?;
            let views: Vec<_> = rows?.into_iter().map(|r| r.in_currency("USD", rust_decimal::Decimal::ONE)).collect();
            Ok(serde_json::to_string(&views)?)
        })())
    }

    #[tool(description = "The exact USD cost of a usage (token counts) for a model at today's list prices")]
    fn price_lookup(&self, Parameters(a): Parameters<PriceLookupArgs>) -> String {
        answer((|| {
            let usage = Usage {
                input_tokens: a.input_tokens.unwrap_or(0),
                cache_read_tokens: a.cache_read_tokens.unwrap_or(0),
                output_tokens: a.output_tokens.unwrap_or(0),
                reasoning_tokens: a.reasoning_tokens.unwrap_or(0),
                usage_source: UsageSource::Reported,
                ..Usage::default()
            };
            let cost = PriceDb::embedded().price(&usage, &a.model, chrono::Utc::now(), &PriceOptions::default())?;
            Ok(serde_json::to_string(&cost)?)
        })())
    }

    #[tool(description = "Priced models with their current rates (USD per 1M tokens)")]
    fn list_models(&self, Parameters(a): Parameters<ListModelsArgs>) -> String {
        answer((|| {
            let provider = a.provider.map(|p| p.parse::<Provider>()).transpose()?;
            Ok(serde_json::to_string(&PriceDb::embedded().models(provider))?)
        })())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for LedgerTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Serves the tools over stdin/stdout until the client disconnects.
pub fn run(store: String) -> Result<(), Error> {
    let io = |e: &dyn std::fmt::Display| Error::new(ErrorCode::Io, format!("mcp server: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(|e| io(&e))?;
    runtime.block_on(async move {
        let service = LedgerTools::new(store).serve(rmcp::transport::stdio()).await.map_err(|e| io(&e))?;
        service.waiting().await.map_err(|e| io(&e))?;
        Ok(())
    })
}
