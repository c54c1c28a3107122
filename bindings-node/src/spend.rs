//! Spend control from Node: `NativeSpend` (the handle behind `tracker.budgets` and `tracker.balances`),
//! its JS-facing inputs and their conversion to core's requests. Glue over `llmledger_core::spend`: every
//! rule (scopes, accounts, limits, credits, expiry) and every check is core's. Each operation is one
//! store transaction, so each runs on libuv's thread pool and resolves to its result as core's JSON
//! (snake_case keys, decimals as exact strings), which the JS layer parses.

use std::collections::{BTreeMap, HashMap};

use napi::bindgen_prelude::{AsyncTask, Either};
use napi::{Env, Task};
use napi_derive::napi;

use crate::core::args::{amount_from_text as decimal, count_from_f64};
use crate::core::spend::{Account, CreditRequest, EntryKind, HistoryQuery, LimitAction, LimitSpec, Per, Scope, Spend};
use crate::core::{Error, Result};
use crate::error::OrThrow;
use crate::types::parse_instant;

/// `budgets.setLimit(spec)`: the scope with core's keys (`user_id`, `workspace_id`, `project`,
/// `tag:<name>`; the JS layer renames its camelCase ones), exactly one of `amount`, `requests`, `tokens`.
#[napi(object)]
#[derive(Debug)]
pub struct LimitInput {
    pub scope: Option<HashMap<String, String>>,
    /// `minute`, `day` or `month`.
    pub per: String,
    /// Decimal string.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub requests: Option<f64>,
    pub tokens: Option<f64>,
    /// `block` (default), `warn` or `log`.
    pub action: Option<String>,
    /// Decimal strings, each in (0, 1].
    pub thresholds: Option<Vec<String>>,
    pub timezone: Option<String>,
}

impl LimitInput {
    fn into_spec(self) -> Result<LimitSpec> {
        Ok(LimitSpec {
            scope: scope(self.scope)?,
            per: self.per.parse::<Per>()?,
            amount: self.amount.map(|a| decimal("amount", &a)).transpose()?,
            currency: self.currency,
            requests: self.requests.map(|n| count_from_f64("requests", n)).transpose()?,
            tokens: self.tokens.map(|n| count_from_f64("tokens", n)).transpose()?,
            action: self.action.as_deref().map(str::parse::<LimitAction>).transpose()?.unwrap_or_default(),
            thresholds: self
                .thresholds
                .map(|t| t.iter().map(|t| decimal("thresholds", t)).collect::<Result<Vec<_>>>())
                .transpose()?,
            timezone: self.timezone,
        })
    }
}

/// `balances.topUp(account, amount, options)` / `grant(…)`: one credit.
#[napi(object)]
#[derive(Debug)]
pub struct CreditInput {
    /// `"u1"` (a user), `"user_id=u1"`, `"workspace_id=w1"`, or `{ user_id }` / `{ workspace_id }`.
    pub account: Either<String, HashMap<String, String>>,
    /// Decimal string, positive.
    pub amount: String,
    pub currency: Option<String>,
    pub idempotency_key: Option<String>,
    /// `top_up` (default) or `grant`.
    pub kind: Option<String>,
    /// RFC 3339 instant.
    pub expires_at: Option<String>,
    pub note: Option<String>,
}

/// `balances.history(account, { limit, before })`.
#[napi(object)]
#[derive(Debug)]
pub struct HistoryInput {
    pub account: Either<String, HashMap<String, String>>,
    pub limit: Option<f64>,
    /// An entry id: only older entries.
    pub before: Option<f64>,
}

fn scope(map: Option<HashMap<String, String>>) -> Result<Scope> {
    Scope::new(map.unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>())
}

/// An account from its text form (core's `Account` parsing) or a one-key object.
fn account(input: Either<String, HashMap<String, String>>) -> Result<Account> {
    match input {
        Either::A(text) => text.parse::<Account>(),
        Either::B(map) => {
            let mut pairs = map.into_iter();
            match (pairs.next(), pairs.next()) {
                (Some((k, v)), None) if k == "user_id" => Account::user(v),
                (Some((k, v)), None) if k == "workspace_id" => Account::workspace(v),
                (Some((k, _)), None) => {
                    Err(Error::invalid_value("account", k, "an account is a user_id or a workspace_id"))
                }
                _ => Err(Error::invalid_value("account", "object", "an account has exactly one key")),
            }
        }
    }
}

fn credit_request(input: CreditInput) -> Result<CreditRequest> {
    Ok(CreditRequest {
        account: account(input.account)?,
        amount: decimal("amount", &input.amount)?,
        currency: input.currency,
        idempotency_key: input.idempotency_key,
        kind: input.kind.as_deref().map(str::parse::<EntryKind>).transpose()?.unwrap_or_default(),
        expires_at: input.expires_at.as_deref().map(|s| parse_instant("expiresAt", s)).transpose()?,
        note: input.note,
        at: None,
    })
}

fn history_query(input: HistoryInput) -> Result<HistoryQuery> {
    let limit = input.limit.map(|n| count_from_f64("limit", n)).transpose()?;
    let before = input.before.map(|n| count_from_f64("before", n)).transpose()?;
    Ok(HistoryQuery {
        account: account(input.account)?,
        limit: limit.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        before: before.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
    })
}

/// Spend control over a tracker's store: limits, balances, their history and status.
#[napi]
#[derive(Debug)]
pub struct NativeSpend {
    inner: Spend,
}

impl NativeSpend {
    pub(crate) fn new(inner: Spend) -> Self {
        NativeSpend { inner }
    }

    /// `run` on the thread pool, with a handle of its own.
    fn task(&self, run: impl FnOnce(&Spend) -> Result<String> + Send + 'static) -> AsyncTask<SpendTask> {
        let spend = self.inner.clone();
        AsyncTask::new(SpendTask { run: Some(Box::new(move || run(&spend))) })
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

#[napi]
impl NativeSpend {
    /// Creates or updates the limit of (scope, per, metric); resolves to the stored `Limit`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn set_limit(&self, env: Env, input: LimitInput) -> napi::Result<AsyncTask<SpendTask>> {
        let spec = input.into_spec().or_throw(&env)?;
        Ok(self.task(move |s| json(&s.set_limit(&spec)?)))
    }

    /// Every limit, or those of one scope.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn limits(&self, env: Env, scope_input: Option<HashMap<String, String>>) -> napi::Result<AsyncTask<SpendTask>> {
        let filter = scope_input.map(|m| scope(Some(m))).transpose().or_throw(&env)?;
        Ok(self.task(move |s| json(&s.limits(filter.as_ref())?)))
    }

    /// Removes a limit by id; resolves to `true`, or `false` when there was none.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn remove_limit(&self, id: String) -> AsyncTask<SpendTask> {
        self.task(move |s| json(&s.remove_limit(&id)?))
    }

    /// The limits (of one scope) with their use in the current period.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn status(&self, env: Env, scope_input: Option<HashMap<String, String>>) -> napi::Result<AsyncTask<SpendTask>> {
        let filter = scope_input.map(|m| scope(Some(m))).transpose().or_throw(&env)?;
        Ok(self.task(move |s| json(&s.limit_status(filter.as_ref(), None)?)))
    }

    /// A top-up or grant, once per idempotency key; resolves to its entry (a replay: the first one).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn credit(&self, env: Env, input: CreditInput) -> napi::Result<AsyncTask<SpendTask>> {
        let req = credit_request(input).or_throw(&env)?;
        Ok(self.task(move |s| json(&s.credit(&req)?)))
    }

    /// An account's balance now: `total`, `reserved`, `available` (exact decimal strings).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn balance(
        &self,
        env: Env,
        account_input: Either<String, HashMap<String, String>>,
    ) -> napi::Result<AsyncTask<SpendTask>> {
        let account = account(account_input).or_throw(&env)?;
        Ok(self.task(move |s| json(&s.balance(&account, None)?)))
    }

    /// An account's entries, newest first.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn history(&self, env: Env, input: HistoryInput) -> napi::Result<AsyncTask<SpendTask>> {
        let q = history_query(input).or_throw(&env)?;
        Ok(self.task(move |s| json(&s.history(&q)?)))
    }

    /// A `balance_low` alert when a settlement takes the balance below `below` (null: off).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn set_balance_alert(
        &self,
        env: Env,
        account_input: Either<String, HashMap<String, String>>,
        below: Option<String>,
    ) -> napi::Result<AsyncTask<SpendTask>> {
        let account = account(account_input).or_throw(&env)?;
        let below = below.map(|b| decimal("below", &b)).transpose().or_throw(&env)?;
        Ok(self.task(move |s| {
            s.set_balance_alert(&account, below)?;
            Ok("null".to_string())
        }))
    }
}

/// One spend operation on the thread pool; resolves to its JSON.
pub struct SpendTask {
    run: Option<Box<dyn FnOnce() -> Result<String> + Send>>,
}

impl std::fmt::Debug for SpendTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendTask").finish_non_exhaustive()
    }
}

impl Task for SpendTask {
    type Output = Result<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(match self.run.take() {
            Some(run) => run(),
            None => Ok("null".to_string()),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<String> {
        output.or_throw(&env)
    }
}
