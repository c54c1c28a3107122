//! TEMPORARY stand-in for `llmledger_core`'s tracker facade (TRACKER-API.md) until it lands on main, so
//! the glue and the JS layer can be built and exercised. Numbers are crude; removed at the merge.
#![allow(dead_code, clippy::unwrap_used)]

pub use llmledger_core::{Api, Breakdown, Cost, Error, ErrorCode, PriceOptions, Provider, Result, Usage, UsageFlag, UsageSource};

pub mod currency {
    use super::*;
    use rust_decimal::Decimal;
    #[derive(Debug, Clone, Default)]
    pub struct Rates(Vec<(String, Decimal)>);
    impl Rates {
        pub fn new() -> Self { Self::default() }
        pub fn with(mut self, code: &str, rate: &str) -> Result<Self> {
            let r = rate.parse::<Decimal>().map_err(|_| Error::invalid_value("rates", rate, "bad rate"))?;
            self.0.push((code.to_string(), r));
            Ok(self)
        }
    }
    impl Rates { pub fn get(&self, c: &str) -> Option<Decimal> { self.0.iter().find(|x| x.0 == c).map(|x| x.1) } }
    pub fn convert(c: &Cost, rates: &Rates, cur: &str) -> Result<Cost> {
        let r = rates.get(cur).ok_or_else(|| Error::new(ErrorCode::UnknownCurrency, cur))?;
        let mut c = c.clone(); c.currency = cur.into(); c.rate = r; c.total = c.total_usd * r; Ok(c)
    }
}

pub trait ConvertExt { fn convert(&self, rates: &currency::Rates, cur: &str) -> Result<Cost>; }
impl ConvertExt for Cost { fn convert(&self, rates: &currency::Rates, cur: &str) -> Result<Cost> { currency::convert(self, rates, cur) } }

#[derive(Debug, Clone)]
pub struct PriceDb;
impl PriceDb {
    pub fn embedded() -> Self { PriceDb }
    pub fn price(&self, usage: &Usage, model: &str, _at: chrono::DateTime<chrono::Utc>, _o: &PriceOptions) -> Result<Cost> {
        use rust_decimal::Decimal;
        if !model.starts_with("gpt") && !model.starts_with("claude") { return Err(Error::unknown_model(model, vec![])); }
        let m = Decimal::new(1, 6);
        let mut b = Breakdown::default();
        b.input = Decimal::from(usage.input_tokens) * m * Decimal::from(2);
        b.output = Decimal::from(usage.output_tokens) * m * Decimal::from(8);
        let t = b.input + b.output;
        Ok(Cost { provider: Provider::OpenAi, model: model.into(), price_version: chrono::NaiveDate::from_ymd_opt(2025,1,1).unwrap(), breakdown: b, total_usd: t, currency: "USD".into(), rate: Decimal::ONE, total: t, tier_above: None, uncertain: false })
    }
}

pub mod ledger {
    use std::collections::BTreeMap;
    #[derive(Debug, Clone, Default)]
    pub struct Attribution { pub user_id: Option<String>, pub workspace_id: Option<String>, pub project: Option<String>, pub session_id: Option<String>, pub conversation_id: Option<String>, pub tags: BTreeMap<String, String> }
    #[derive(Debug, Clone, Copy, Default)]
    pub enum Durability { #[default] Batch, Sync }
    impl std::str::FromStr for Durability { type Err = super::Error; fn from_str(s: &str) -> super::Result<Self> { match s { "batch" => Ok(Self::Batch), "sync" => Ok(Self::Sync), o => Err(super::Error::config("durability", o, "bad")) } } }
}

pub mod report {
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum GroupBy { User, Workspace, Project, Provider, Model, Session, Day, Month }
    impl GroupBy { pub fn as_str(self) -> &'static str { match self { Self::User=>"user", Self::Workspace=>"workspace", Self::Project=>"project", Self::Provider=>"provider", Self::Model=>"model", Self::Session=>"session", Self::Day=>"day", Self::Month=>"month" } } }
    impl std::str::FromStr for GroupBy { type Err = super::Error; fn from_str(s: &str) -> super::Result<Self> { Ok(match s { "user"=>Self::User, "model"=>Self::Model, "day"=>Self::Day, "provider"=>Self::Provider, "project"=>Self::Project, o => return Err(super::Error::invalid_value("group_by", o, "bad")) }) } }
    #[derive(Debug, Clone, Default)]
    pub struct UsageFilter { pub user_id: Option<String>, pub workspace_id: Option<String>, pub project: Option<String>, pub provider: Option<String>, pub model: Option<String>, pub session_id: Option<String>, pub since: Option<DateTime<Utc>>, pub until: Option<DateTime<Utc>> }
    #[derive(Debug, Clone, Default)]
    pub struct UsageQuery { pub filter: UsageFilter, pub group_by: Vec<GroupBy>, pub timezone: String, pub p95: bool }
    #[derive(Debug, Clone)]
    pub struct ReportRow { pub key: Vec<(GroupBy, String)>, pub requests: u64, pub successful: u64, pub failed: u64, pub input_tokens: u64, pub cache_read_tokens: u64, pub cache_write_tokens: u64, pub output_tokens: u64, pub reasoning_tokens: u64, pub cost_usd: Decimal, pub cost: Decimal, pub avg_latency_ms: Option<Decimal>, pub p95_latency_ms: Option<u64> }
}

pub mod tracker {
    use super::ledger::*;
    use super::report::*;
    use super::*;
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    #[derive(Debug, Clone, Copy, Default)]
    pub enum UnknownModelPolicy { Error, #[default] Flag }
    impl std::str::FromStr for UnknownModelPolicy { type Err = Error; fn from_str(s: &str) -> Result<Self> { match s { "error" => Ok(Self::Error), "flag" => Ok(Self::Flag), o => Err(Error::config("unknown_model", o, "bad")) } } }

    #[derive(Debug, Default)]
    pub struct TrackerConfig { pub store: Option<String>, pub currency: String, pub rates: BTreeMap<String, String>, pub timezone: String, pub unknown_model: UnknownModelPolicy, pub durability: Durability, pub prices_path: Option<PathBuf>, pub litellm_prices_path: Option<PathBuf>, pub azure_deployments: BTreeMap<String, String> }

    #[derive(Debug, Clone)]
    pub struct CallInfo { pub provider: Provider, pub api: Api, pub model: String, pub attribution: Attribution, pub batch: bool, pub service_tier: Option<String> }

    #[derive(Debug, Clone)]
    pub struct Tracked { pub event_id: String, pub timestamp: DateTime<Utc>, pub provider: Provider, pub api: Api, pub model: String, pub resolved_model: Option<String>, pub usage: Usage, pub cost: Option<Cost>, pub pricing_error: Option<Error>, pub attribution: Attribution, pub latency_ms: u64, pub success: bool, pub error_class: Option<String>, pub request_id: Option<String> }

    #[derive(Debug)]
    pub struct Tracker { currency: String, events: Mutex<Vec<Tracked>>, closed: Mutex<bool> }

    fn n(v: &serde_json::Value, p: &str) -> u64 { v.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0) }
    fn usage_of(v: &serde_json::Value) -> Option<Usage> {
        let u = v.get("usage").filter(|u| u.is_object())?;
        let mut out = Usage::default();
        if u.get("prompt_tokens").is_some() {
            let cached = n(u, "/prompt_tokens_details/cached_tokens");
            out.input_tokens = n(u, "/prompt_tokens") - cached; out.cache_read_tokens = cached; out.output_tokens = n(u, "/completion_tokens");
        } else {
            let cached = n(u, "/input_tokens_details/cached_tokens");
            out.input_tokens = n(u, "/input_tokens") - cached; out.cache_read_tokens = cached + n(u, "/cache_read_input_tokens");
            out.cache_write_tokens = n(u, "/cache_creation_input_tokens"); out.output_tokens = n(u, "/output_tokens");
            out.reasoning_tokens = n(u, "/output_tokens_details/reasoning_tokens");
        }
        out.usage_source = UsageSource::Reported;
        Some(out)
    }

    impl Tracker {
        pub fn new(c: TrackerConfig) -> Result<Tracker> {
            if let Some(s) = &c.store { if !s.starts_with("sqlite") && !s.starts_with("memory") { return Err(Error::config("store", s, "bad scheme")); } }
            Ok(Tracker { currency: if c.currency.is_empty() { "USD".into() } else { c.currency }, events: Mutex::new(vec![]), closed: Mutex::new(false) })
        }
        fn make(&self, call: &CallInfo, usage: Usage, latency_ms: u64, success: bool, error_class: Option<String>, request_id: Option<String>) -> Result<Tracked> {
            if *self.closed.lock().unwrap() { return Err(Error::new(ErrorCode::Closed, "closed")); }
            let (cost, pricing_error) = match PriceDb.price(&usage, &call.model, Utc::now(), &PriceOptions::default()) { Ok(c) => (Some(c), None), Err(e) => (None, Some(e)) };
            let cost = if success { cost } else { None };
            let t = Tracked { event_id: format!("ev{}", self.events.lock().unwrap().len()), timestamp: Utc::now(), provider: call.provider, api: call.api, model: call.model.clone(), resolved_model: cost.as_ref().map(|c| c.model.clone()), usage, cost, pricing_error, attribution: call.attribution.clone(), latency_ms, success, error_class, request_id };
            self.events.lock().unwrap().push(t.clone());
            Ok(t)
        }
        pub fn record_response(&self, call: &CallInfo, _req: Option<&str>, response_json: &str, latency_ms: u64) -> Result<Tracked> {
            let v: serde_json::Value = serde_json::from_str(response_json)?;
            let usage = usage_of(&v).unwrap_or_else(|| Usage { usage_source: UsageSource::Estimated, ..Usage::default() });
            let rid = v.get("id").and_then(|x| x.as_str()).map(String::from);
            self.make(call, usage, latency_ms, true, None, rid)
        }
        pub fn record_failure(&self, call: &CallInfo, error_class: &str, latency_ms: u64) -> Result<Tracked> {
            self.make(call, Usage::default(), latency_ms, false, Some(error_class.into()), None)
        }
        pub fn start_stream(&self, call: CallInfo, _req: Option<&str>) -> TrackedStream {
            TrackedStream { tracker: self as *const Tracker as usize, call, usage: None, hide: false, chunks: 0 }
        }
        pub fn usage(&self, q: &UsageQuery) -> Result<Vec<ReportRow>> {
            let ev = self.events.lock().unwrap();
            let mut rows: Vec<ReportRow> = vec![];
            for e in ev.iter() {
                if let Some(u) = &q.filter.user_id { if e.attribution.user_id.as_ref() != Some(u) { continue; } }
                let key: Vec<(GroupBy, String)> = q.group_by.iter().map(|g| (*g, match g { GroupBy::User => e.attribution.user_id.clone().unwrap_or_default(), GroupBy::Model => e.model.clone(), GroupBy::Provider => e.provider.as_str().into(), _ => String::new() })).collect();
                let i = match rows.iter().position(|r| r.key == key) { Some(i) => i, None => { rows.push(ReportRow { key, requests: 0, successful: 0, failed: 0, input_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0, cost_usd: Decimal::ZERO, cost: Decimal::ZERO, avg_latency_ms: None, p95_latency_ms: None }); rows.len() - 1 } };
                let r = &mut rows[i];
                r.requests += 1; if e.success { r.successful += 1 } else { r.failed += 1 }
                r.input_tokens += e.usage.input_tokens; r.output_tokens += e.usage.output_tokens; r.cache_read_tokens += e.usage.cache_read_tokens;
                if let Some(c) = &e.cost { r.cost_usd += c.total_usd; r.cost += c.total; }
            }
            Ok(rows)
        }
        pub fn flush(&self) -> Result<()> { std::thread::sleep(std::time::Duration::from_millis(5)); Ok(()) }
        pub fn close(&self) -> Result<()> { *self.closed.lock().unwrap() = true; Ok(()) }
        pub fn prices(&self) -> &PriceDb { &PriceDb }
        pub fn currency(&self) -> &str { &self.currency }
        pub fn estimate(&self, model: &str, m: &str, t: Option<&str>, max: Option<u64>, h: Option<Decimal>) -> Result<Estimate> { estimate(&PriceDb, model, m, t, max, h) }
    }

    #[derive(Debug)]
    pub struct TrackedStream { tracker: usize, call: CallInfo, usage: Option<Usage>, hide: bool, chunks: u64 }
    impl TrackedStream {
        pub fn push(&mut self, _event: Option<&str>, data: &str) -> Result<bool> {
            if data == "[DONE]" { return Ok(false); }
            let v: serde_json::Value = serde_json::from_str(data)?;
            self.chunks += 1;
            let target = v.get("response").or_else(|| v.get("message")).unwrap_or(&v);
            if let Some(u) = usage_of(target) { self.usage = Some(u); }
            if v.get("type").and_then(|t| t.as_str()) == Some("message_delta") {
                if let Some(u) = self.usage.as_mut() { u.output_tokens = n(&v, "/usage/output_tokens"); }
            }
            let usage_only = v.get("choices").and_then(|c| c.as_array()).is_some_and(|c| c.is_empty()) && v.get("usage").is_some_and(|u| u.is_object());
            Ok(self.hide && usage_only)
        }
        pub fn hide_usage_chunk(&mut self, hide: bool) { self.hide = hide; }
        pub fn finish(self, latency_ms: u64, aborted: bool) -> Result<Tracked> {
            // SAFETY-free stand-in: the tracker outlives its streams in the stub's tests.
            let tracker = unsafe_tracker(self.tracker);
            let mut usage = self.usage.unwrap_or_else(|| Usage { usage_source: UsageSource::Estimated, ..Usage::default() });
            if aborted { usage.flag(UsageFlag::StreamAborted); if usage.usage_source == UsageSource::Reported { usage.usage_source = UsageSource::Partial } else { usage.usage_source = UsageSource::Estimated } }
            tracker.make(&self.call, usage, latency_ms, true, None, None)
        }
    }
    #[allow(unsafe_code)]
    fn unsafe_tracker(p: usize) -> &'static Tracker { unsafe { &*(p as *const Tracker) } }

    #[derive(Debug, Clone, Copy)]
    pub struct TokenCount { pub tokens: u64, pub exact: bool }
    pub fn count_tokens(model: &str, text: &str) -> Result<TokenCount> { let c = llmledger_core::tokens::count_text(model, text)?; Ok(TokenCount { tokens: c.tokens, exact: c.exact }) }
    pub fn count_chat(model: &str, m: &str, _t: Option<&str>) -> Result<TokenCount> { let _: serde_json::Value = serde_json::from_str(m)?; count_tokens(model, m) }
    #[derive(Debug)]
    pub struct Estimate { pub model: String, pub input_tokens: u64, pub exact: bool, pub input_cost: Decimal, pub max_output_tokens: u64, pub min_cost: Decimal, pub max_cost: Decimal, pub currency: String }
    pub fn estimate(_db: &PriceDb, model: &str, m: &str, t: Option<&str>, max: Option<u64>, _h: Option<Decimal>) -> Result<Estimate> {
        let c = count_chat(model, m, t)?; let ic = Decimal::from(c.tokens) * Decimal::new(2, 6); let mo = max.unwrap_or(0);
        Ok(Estimate { model: model.into(), input_tokens: c.tokens, exact: c.exact, input_cost: ic, max_output_tokens: mo, min_cost: ic, max_cost: ic + Decimal::from(mo) * Decimal::new(8, 6), currency: "USD".into() })
    }
}
