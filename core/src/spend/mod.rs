//! Spend control: limits and prepaid balances that refuse a call *before* it is sent, the
//! reserve → settle → expire cycle that makes that atomic, and the firing of spend alerts.
//!
//! Owns the model ([`Scope`], [`LimitSpec`] / [`Limit`], [`Account`], [`Entry`], [`Balance`],
//! [`Reservation`]), the [`Spend`] handle the tracker and the bindings call, and the rules, written
//! once over [`SpendTx`]: each store ([`sqlite`], [`postgres`]) only supplies its SQL.
//!
//! **Reserve, then settle.** [`Spend::reserve`] runs one write transaction: it finds every limit whose
//! scope the call's attribution matches and every existing account of the call's `user_id` /
//! `workspace_id`, checks `used + reserved + requested ≤ limit` for each `block` limit and
//! `requested ≤ balance − reserved` for each account, and on success writes the reservation and one
//! *hold* per limit and account (the amount is added to that row's `reserved`). SQLite runs it under
//! `BEGIN IMMEDIATE` (one writer per file, across processes); PostgreSQL locks the counter and account
//! rows (`SELECT … FOR UPDATE`) in one global order (by target id), so concurrent reservations on one
//! scope serialize and never deadlock. [`Spend::settle`] moves each hold from `reserved` to `used` at
//! the actual amount (debiting accounts) in one transaction, and fires the alerts the new spend
//! crossed; [`Spend::release`] returns the holds unused (the call never reached the provider).
//!
//! **Expiry.** A reservation carries `expires_at` (`reservation_ttl`, default 10 min). Whoever reserves
//! next first releases every open reservation past its expiry (state `expired`), so a killed process's
//! reservations come back; settling an expired reservation still charges the actual cost.
//!
//! **Balances.** An account is a scope with one key, `user_id` or `workspace_id`; it exists once it has
//! an entry, and only existing accounts are checked. Entries are append-only: `grant` and `top_up`
//! (positive; optional `expires_at`; an idempotency key, unique: a replay returns the first entry),
//! `debit` and `expire` (negative). The balance is their exact sum. Debits consume the credit that
//! expires first (credits without expiry last, then oldest first); when a credit's `expires_at` has
//! passed, whichever transaction touches the account first writes one `expire` entry for its unused
//! part (its idempotency key `expire:<credit id>` makes that once). A settlement larger than what is
//! left overdraws the account (a debit without a credit); the next reservation is then refused. The
//! account row keeps the running balance and reserved amount for speed, written in the same
//! transaction as every entry and hold; [`Spend::verify`] recomputes them from the entries and holds.
//!
//! **Amounts** are exact decimals (TEXT in SQLite, NUMERIC in PostgreSQL). A limit or account in another
//! currency than the call's converts through the rate table: `amount ÷ rate(from) × rate(to)`, rounded
//! to 12 decimal places (exact when either side is USD or the rates divide exactly).

pub mod max_cost;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::alert::{AlertEvent, AlertKind};
use crate::currency::Rates;
use crate::error::{BudgetDetail, Error, ErrorCode, Result};
use crate::event::Attribution;
use crate::ledger::{Notice, NoticeKind, NoticeLevel};
use crate::report::parse_tz;

/// How often a process without any limit or account looks again (another process may add one).
const RULES_RECHECK: Duration = Duration::from_secs(1);

/// While no rule exists, the clock is read on every this-many calls (see [`Spend::is_active`]).
const CLOCK_EVERY: u64 = 16;

/// Decimal places of a cross-currency conversion.
const CONVERSION_DP: u32 = 12;

/// Notices kept for a caller that does not drain them.
const MAX_NOTICES: usize = 64;

/// The shortest time between two spend-store failure notices.
const FAILURE_NOTICE_EVERY: Duration = Duration::from_secs(60);

/// The trailing window a spend spike is measured against: the previous this-many days.
const SPIKE_WINDOW_DAYS: i64 = 7;

/// Days with spend a scope needs in the window before a spike can fire (a new user has no baseline).
const SPIKE_MIN_DAYS: usize = 3;

/// Baselines kept per process before the cache is cleared (one per day limit and day).
const MAX_BASELINES: usize = 4_096;

// ---------------------------------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------------------------------

/// Which calls a limit applies to: attribution keys and values (`user_id`, `workspace_id`, `project`,
/// `tag:<name>`). A call matches when its attribution has every key with that value; the empty scope
/// matches every call.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Scope(BTreeMap<String, String>);

impl Scope {
    /// Validates the keys: anything but the four attribution keys is [`ErrorCode::InvalidValue`]
    /// naming the key; values must be non-empty.
    pub fn new(map: BTreeMap<String, String>) -> Result<Self> {
        for (key, value) in &map {
            let known = matches!(key.as_str(), "user_id" | "workspace_id" | "project")
                || key.strip_prefix("tag:").is_some_and(|t| !t.is_empty());
            if !known {
                return Err(Error::invalid_value(
                    format!("scope.{key}"),
                    key,
                    "unknown scope key (expected user_id, workspace_id, project or tag:<name>)",
                ));
            }
            if value.is_empty() {
                return Err(Error::invalid_value(format!("scope.{key}"), "\"\"", "must not be empty"));
            }
        }
        Ok(Self(map))
    }

    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The canonical text of the scope, `k=v&k=v` in key order (`%`, `&`, `=` escaped): the stored key.
    pub fn key(&self) -> String {
        self.0.iter().map(|(k, v)| pair(k, v)).collect::<Vec<_>>().join("&")
    }

    /// Parses [`Scope::key`].
    pub fn from_key(key: &str) -> Result<Self> {
        let mut map = BTreeMap::new();
        for part in key.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| Error::invalid_value("scope", key, "not k=v"))?;
            map.insert(unescape(k), unescape(v));
        }
        Self::new(map)
    }

    /// The first `k=v` pair (or `""` for the empty scope): limits are looked up by it, then matched.
    fn anchor(&self) -> String {
        self.0.iter().next().map(|(k, v)| pair(k, v)).unwrap_or_default()
    }

    /// True when `a` has every key of the scope with the same value.
    pub fn matches(&self, a: &Attribution) -> bool {
        self.0.iter().all(|(k, v)| attribution_value(a, k) == Some(v.as_str()))
    }
}

fn attribution_value<'a>(a: &'a Attribution, key: &str) -> Option<&'a str> {
    let value = match key {
        "user_id" => a.user_id.as_deref(),
        "workspace_id" => a.workspace_id.as_deref(),
        "project" => a.project.as_deref(),
        _ => key.strip_prefix("tag:").and_then(|t| a.tags.get(t)).map(String::as_str),
    };
    value.filter(|v| !v.is_empty())
}

/// Every `k=v` pair of an attribution, plus `""` (the empty scope): the anchors its limits can have.
fn anchors(a: &Attribution) -> Vec<String> {
    let mut out = vec![String::new()];
    for key in ["user_id", "workspace_id", "project"] {
        if let Some(v) = attribution_value(a, key) {
            out.push(pair(key, v));
        }
    }
    for (t, v) in a.tags.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(pair(&format!("tag:{t}"), v));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('%', "%25").replace('&', "%26").replace('=', "%3D")
}

fn unescape(s: &str) -> String {
    s.replace("%3D", "=").replace("%26", "&").replace("%25", "%")
}

fn pair(k: &str, v: &str) -> String {
    format!("{}={}", escape(k), escape(v))
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Scope::new(BTreeMap::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A balance holder: a scope with exactly one key, `user_id` or `workspace_id`. Deserializes from
/// `{"user_id": "u1"}`, from `"user_id=u1"`, or from a bare `"u1"` (a user); serializes as `user_id=u1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Account {
    key: &'static str,
    id: String,
}

impl Account {
    pub fn user(id: impl Into<String>) -> Result<Self> {
        Self::new("user_id", id.into())
    }

    pub fn workspace(id: impl Into<String>) -> Result<Self> {
        Self::new("workspace_id", id.into())
    }

    /// The account of `key` (`user_id` or `workspace_id`, anything else is `invalid_value`) and `id`.
    pub fn new(key: &str, id: String) -> Result<Self> {
        let key = match key {
            "user_id" => "user_id",
            "workspace_id" => "workspace_id",
            other => return Err(Error::invalid_value("account", other, "an account is a user_id or a workspace_id")),
        };
        if id.is_empty() {
            return Err(Error::invalid_value(format!("account.{key}"), "\"\"", "must not be empty"));
        }
        Ok(Self { key, id })
    }

    /// The account's scope, e.g. `{"user_id": "u1"}`.
    pub fn scope(&self) -> Scope {
        Scope([(self.key.to_string(), self.id.clone())].into())
    }

    /// The accounts a call's attribution is billed against (its user's and its workspace's).
    fn of(a: &Attribution) -> Vec<Account> {
        let mut out = Vec::new();
        if let Some(u) = attribution_value(a, "user_id") {
            out.push(Account { key: "user_id", id: u.to_string() });
        }
        if let Some(w) = attribution_value(a, "workspace_id") {
            out.push(Account { key: "workspace_id", id: w.to_string() });
        }
        out
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&pair(self.key, &self.id))
    }
}

impl FromStr for Account {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('=') {
            Some((k, v)) => Self::new(&unescape(k), unescape(v)),
            None => Self::user(s),
        }
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Map(BTreeMap<String, String>),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse(),
            Raw::Map(m) if m.len() == 1 => {
                let (k, v) = m.into_iter().next().unwrap_or_default();
                Account::new(&k, v)
            }
            Raw::Map(_) => Err(Error::invalid_value("account", "map", "an account has exactly one key")),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

// ---------------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------------

/// The period a limit counts in, in the limit's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Minute,
    Day,
    Month,
}

impl Per {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The period `at` falls in: `2026-12-02T10:31`, `2026-12-02` or `2026-12`.
    pub fn period(self, at: DateTime<Utc>, tz: Tz) -> String {
        let local = at.with_timezone(&tz);
        let format = match self {
            Self::Minute => "%Y-%m-%dT%H:%M",
            Self::Day => "%Y-%m-%d",
            Self::Month => "%Y-%m",
        };
        local.format(format).to_string()
    }
}

impl FromStr for Per {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "minute" => Ok(Self::Minute),
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            other => Err(Error::invalid_value("per", other, "expected minute, day or month")),
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cost, in the limit's currency.
    Spend,
    Requests,
    /// Input plus output tokens.
    Tokens,
}

impl Metric {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spend => "spend",
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }
}

impl FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "spend" => Ok(Self::Spend),
            "requests" => Ok(Self::Requests),
            "tokens" => Ok(Self::Tokens),
            other => Err(Error::invalid_value("metric", other, "expected spend, requests or tokens")),
        }
    }
}

/// What a limit does when a call would exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitAction {
    /// Refuse the call with [`ErrorCode::BudgetExceeded`].
    #[default]
    Block,
    /// Let it through; a warning notice when the limit is reached.
    Warn,
    /// Let it through; an info notice when the limit is reached.
    Log,
}

impl LimitAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Warn => "warn",
            Self::Log => "log",
        }
    }
}

impl FromStr for LimitAction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "block" => Ok(Self::Block),
            "warn" => Ok(Self::Warn),
            "log" => Ok(Self::Log),
            other => Err(Error::invalid_value("action", other, "expected block, warn or log")),
        }
    }
}

/// A limit to set ([`Spend::set_limit`]): exactly one of `amount` (spend, in `currency`, default the
/// tracker's), `requests` or `tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    #[serde(default)]
    pub scope: Scope,
    pub per: Per,
    #[serde(default)]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub requests: Option<u64>,
    #[serde(default)]
    pub tokens: Option<u64>,
    #[serde(default)]
    pub action: LimitAction,
    /// Fractions of the limit (each in (0, 1]) at which an alert fires; default 0.5, 0.8, 1.
    #[serde(default)]
    pub thresholds: Option<Vec<Decimal>>,
    /// IANA zone of the limit's days and months; default the tracker's.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A stored limit. Its `id` is derived from (scope, per, metric), so setting the same limit again
/// (re-running setup code) updates it in place, in every process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub id: String,
    pub scope: Scope,
    pub per: Per,
    pub metric: Metric,
    /// The limit: an amount in `currency` (spend) or a count (requests, tokens).
    pub amount: Decimal,
    /// For spend limits.
    pub currency: Option<String>,
    pub action: LimitAction,
    pub thresholds: Vec<Decimal>,
    /// `None`: the tracker's zone.
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A limit's id: `lim_` and 16 hex digits of a stable hash (FNV-1a 64) of scope, period and metric.
fn limit_id(scope: &Scope, per: Per, metric: Metric) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}|{}|{}", scope.key(), per.as_str(), metric.as_str()).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("lim_{h:016x}")
}

/// The default alert thresholds: 50 %, 80 % and 100 % of a limit.
fn default_thresholds() -> Vec<Decimal> {
    vec![Decimal::new(5, 1), Decimal::new(8, 1), Decimal::ONE]
}

/// A limit as it stands this period, for [`Spend::limit_status`] (`llmledger budget show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitStatus {
    pub limit: Limit,
    pub period: String,
    pub used: Decimal,
    pub reserved: Decimal,
    /// `limit − used − reserved` (may be negative after an overrun).
    pub remaining: Decimal,
}

// ---------------------------------------------------------------------------------------------------
// Balances
// ---------------------------------------------------------------------------------------------------

/// What kind of balance entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Free credit given by the operator.
    Grant,
    /// Credit bought by the account holder.
    #[default]
    TopUp,
    /// A settled call (negative).
    Debit,
    /// The unused part of a credit past its `expires_at` (negative).
    Expire,
}

impl EntryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::TopUp => "top_up",
            Self::Debit => "debit",
            Self::Expire => "expire",
        }
    }

    fn is_credit(self) -> bool {
        matches!(self, Self::Grant | Self::TopUp)
    }
}

impl FromStr for EntryKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "grant" => Ok(Self::Grant),
            "top_up" => Ok(Self::TopUp),
            "debit" => Ok(Self::Debit),
            "expire" => Ok(Self::Expire),
            other => Err(Error::invalid_value("kind", other, "expected grant, top_up, debit or expire")),
        }
    }
}

/// A credit to add ([`Spend::credit`]): a top-up (default) or a grant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    pub account: Account,
    /// Positive, in `currency`.
    pub amount: Decimal,
    /// Default: the account's currency, or the tracker's for a new account. Must match an existing
    /// account's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Unique per store: the same key again returns the first entry and writes nothing (a payment
    /// provider's event id is a good key). `None`: a fresh key (no replay protection).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// `top_up` or `grant`.
    #[serde(default)]
    pub kind: EntryKind,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// A short note for the history (never prompt text).
    #[serde(default)]
    pub note: Option<String>,
    /// The time of the entry; default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// One balance entry. Credits are positive, debits and expiries negative; the balance is the sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: i64,
    pub account: String,
    pub kind: EntryKind,
    pub amount: Decimal,
    pub currency: String,
    pub idempotency_key: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// For debits and expiries: the credit entry consumed (`None` for an overdraft).
    pub credit_id: Option<i64>,
    pub reservation_id: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An account's balance now ([`Spend::balance`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub account: String,
    /// False until the account's first entry: then it is not checked and all amounts are 0.
    pub exists: bool,
    pub currency: String,
    /// The exact sum of the entries.
    pub total: Decimal,
    /// Held by open reservations.
    pub reserved: Decimal,
    /// `total − reserved`: what the next call may reserve.
    pub available: Decimal,
    /// A `balance_low` alert fires when a settlement takes `total` below this.
    pub low_alert: Option<Decimal>,
}

/// Which entries [`Spend::history`] returns: newest first, `limit` (default 100) of them, older than
/// entry `before` when given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub account: Account,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub before: Option<i64>,
}

// ---------------------------------------------------------------------------------------------------
// Reservations
// ---------------------------------------------------------------------------------------------------

/// What a call is about to spend at most ([`Spend::reserve`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    #[serde(default)]
    pub attribution: Attribution,
    /// The call's maximum cost (see [`max_cost`]), in `currency`; `None` when it cannot be priced:
    /// then [`SpendConfig::unpriced`] decides (refuse where a spend limit or balance applies, or
    /// reserve the configured cap in the tracker's currency).
    #[serde(default)]
    pub max_cost: Option<Decimal>,
    /// Default: the tracker's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Prompt plus maximum output tokens (for token limits).
    #[serde(default)]
    pub max_tokens: u64,
    #[serde(default)]
    pub model: String,
    /// The time of the reservation; default now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// An accepted reservation. `holds` = 0: no limit or account applies and nothing was written (its
/// settlement and release are no-ops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub id: String,
    pub max_cost: Decimal,
    pub currency: String,
    pub max_tokens: u64,
    pub expires_at: DateTime<Utc>,
    pub holds: usize,
}

/// The actual use of a reserved call ([`Spend::settle`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    pub reservation_id: String,
    pub actual_cost: Decimal,
    /// Default: the tracker's currency.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub actual_tokens: u64,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// The state of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Open,
    Settled,
    Released,
    /// Released by expiry (see the module docs).
    Expired,
}

impl ReservationState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Settled => "settled",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

impl FromStr for ReservationState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(Self::Open),
            "settled" => Ok(Self::Settled),
            "released" => Ok(Self::Released),
            "expired" => Ok(Self::Expired),
            other => Err(Error::invalid_value("state", other, "expected open, settled, released or expired")),
        }
    }
}

/// What a settlement or release did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    pub reservation_id: String,
    /// False when no reservation has this id (or it had no holds).
    pub found: bool,
    /// The state before this call: a second settle of a settled reservation changes nothing.
    pub previous_state: Option<ReservationState>,
    /// The state after it.
    pub state: Option<ReservationState>,
    /// The alerts this settlement fired (also stored for [`Spend::pending_alerts`]).
    pub alerts: Vec<AlertEvent>,
}

// ---------------------------------------------------------------------------------------------------
// Configuration and the handle
// ---------------------------------------------------------------------------------------------------

/// What a call whose cost cannot be computed (no price, or an API priced from its response) reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpricedPolicy {
    /// Refuse it ([`ErrorCode::BudgetExceeded`], rule `unpriced`) whenever a limit or balance applies.
    #[default]
    FailClosed,
    /// Reserve this amount (in the tracker's currency) instead.
    Reserve(Decimal),
}

impl FromStr for UnpricedPolicy {
    type Err = Error;
    /// `fail_closed`, or `reserve:<amount>`.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            None if s == "fail_closed" => Ok(Self::FailClosed),
            Some(("reserve", amount)) => match Decimal::from_str(amount.trim()) {
                Ok(a) if a >= Decimal::ZERO => Ok(Self::Reserve(a)),
                _ => Err(Error::config("spend.unpriced", s, "the cap must be a non-negative decimal")),
            },
            _ => Err(Error::config("spend.unpriced", s, "expected \"fail_closed\" or \"reserve:<amount>\"")),
        }
    }
}

/// Spend-control settings of a tracker (deserializable: a binding passes one object; missing keys
/// take the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpendConfig {
    /// Turn spend control off entirely (no store, no check): `Tracker::spend` then fails.
    pub disabled: bool,
    /// How long a reservation holds before anyone may release it (600 s).
    pub reservation_ttl_secs: u64,
    /// The output tokens a request without `max_tokens` (or equivalent) is reserved for (4,096).
    pub default_max_output_tokens: u64,
    pub unpriced: UnpricedPolicy,
    /// A `spend_spike` alert fires when a scope's spend today (on a per-day spend limit) reaches this
    /// many times its trailing daily average (3); 0 turns spike alerts off.
    pub spike_factor: Decimal,
}

impl Default for SpendConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            reservation_ttl_secs: 600,
            default_max_output_tokens: 4_096,
            unpriced: UnpricedPolicy::FailClosed,
            spike_factor: Decimal::from(3),
        }
    }
}

/// The spend-control handle: limits, balances, reservations and alerts over one store. Clones share
/// the store; every method takes `&self`.
#[derive(Debug, Clone)]
pub struct Spend {
    inner: Arc<SpendInner>,
}

#[derive(Debug)]
struct SpendInner {
    store: Box<dyn SpendStore>,
    rates: Rates,
    /// The tracker's currency: the default of requests and new accounts.
    currency: String,
    /// The tracker's zone: the default of limits.
    tz: Tz,
    config: SpendConfig,
    /// True once any limit or account is known to exist (never goes back: a check is then cheap).
    active: AtomicBool,
    /// When (ms since the epoch) to look for rules again while none exist.
    next_check_ms: AtomicI64,
    /// Calls checked while inactive (the clock is read every [`CLOCK_EVERY`]).
    calls: std::sync::atomic::AtomicU64,
    notices: Mutex<VecDeque<Notice>>,
    /// When (ms since the epoch) the last store-failure notice was queued (0: never).
    last_failure_notice_ms: AtomicI64,
    /// Set when a transaction fired (or may have fired) an alert; wakes the tracker's alert pump.
    alert_fired: Mutex<bool>,
    alert_cv: Condvar,
    /// Trailing daily averages by (limit id, day): past days' counters no longer move, so each is read
    /// once per process (`None`: too little history for a baseline).
    baselines: Mutex<HashMap<(String, String), Option<Decimal>>>,
}

impl Spend {
    /// The spend store of a ledger URL: `sqlite:` (its own connection to the ledger's file),
    /// `postgres:` (feature `postgres`), `memory://` (a private in-memory SQLite database). Other
    /// stores (JSONL, MySQL for now) are [`ErrorCode::Unsupported`].
    pub fn open(url: &str, currency: &str, rates: Rates, timezone: &str, config: SpendConfig) -> Result<Self> {
        let tz = parse_tz("timezone", if timezone.is_empty() { "UTC" } else { timezone })?;
        let currency = if currency.is_empty() { "USD".to_string() } else { currency.to_uppercase() };
        if rates.get(&currency).is_none() {
            return Err(Error::config("currency", &currency, "no rate configured for this currency"));
        }
        if config.spike_factor < Decimal::ZERO {
            return Err(Error::config(
                "spend.spike_factor",
                config.spike_factor,
                "must not be negative (0 turns it off)",
            ));
        }
        let store = open_store(url)?;
        let spend = Self {
            inner: Arc::new(SpendInner {
                store,
                rates,
                currency,
                tz,
                config,
                active: AtomicBool::new(false),
                next_check_ms: AtomicI64::new(0),
                calls: std::sync::atomic::AtomicU64::new(0),
                notices: Mutex::default(),
                last_failure_notice_ms: AtomicI64::new(0),
                alert_fired: Mutex::new(false),
                alert_cv: Condvar::new(),
                baselines: Mutex::default(),
            }),
        };
        Ok(spend)
    }

    pub fn config(&self) -> &SpendConfig {
        &self.inner.config
    }

    pub fn currency(&self) -> &str {
        &self.inner.currency
    }

    /// Whether any limit or account exists (in this store, as of at most [`RULES_RECHECK`] ago, and
    /// [`CLOCK_EVERY`] calls). When not, a call needs no reservation: the tracker's fast path is an
    /// atomic load and increment (a clock read every [`CLOCK_EVERY`] calls, a store query once a
    /// second). A store that cannot be reached counts as active, so calls are checked (and the
    /// failure reported) rather than silently let through.
    pub fn is_active(&self) -> bool {
        let inner = &self.inner;
        if inner.active.load(Ordering::Relaxed) {
            return true;
        }
        // Reading the clock costs ~150 ns on VMs without a usable vDSO clock: not on every call.
        if !inner.calls.fetch_add(1, Ordering::Relaxed).is_multiple_of(CLOCK_EVERY) {
            return false;
        }
        let now = Utc::now().timestamp_millis();
        let next = inner.next_check_ms.load(Ordering::Relaxed);
        if now < next
            || inner
                .next_check_ms
                .compare_exchange(next, now + RULES_RECHECK.as_millis() as i64, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        let has = inner.store.has_rules().unwrap_or(true);
        if has {
            inner.active.store(true, Ordering::Relaxed);
        }
        has
    }

    fn activate(&self) {
        self.inner.active.store(true, Ordering::Relaxed);
    }

    // --- limits ------------------------------------------------------------------------------------

    /// Creates or updates the limit of (scope, per, metric).
    pub fn set_limit(&self, spec: &LimitSpec) -> Result<Limit> {
        let (metric, amount) = match (spec.amount, spec.requests, spec.tokens) {
            (Some(a), None, None) => (Metric::Spend, a),
            (None, Some(n), None) => (Metric::Requests, Decimal::from(n)),
            (None, None, Some(n)) => (Metric::Tokens, Decimal::from(n)),
            _ => {
                return Err(Error::invalid_value(
                    "amount",
                    "-",
                    "give exactly one of amount (spend), requests or tokens",
                ))
            }
        };
        if amount < Decimal::ZERO {
            return Err(Error::invalid_value("amount", amount, "must not be negative"));
        }
        let currency = match metric {
            Metric::Spend => Some(self.known_currency(spec.currency.as_deref())?),
            _ if spec.currency.is_some() => {
                return Err(Error::invalid_value(
                    "currency",
                    spec.currency.as_deref().unwrap_or(""),
                    "only spend limits have a currency",
                ))
            }
            _ => None,
        };
        let thresholds = spec.thresholds.clone().unwrap_or_else(default_thresholds);
        if let Some(t) = thresholds.iter().find(|t| **t <= Decimal::ZERO || **t > Decimal::ONE) {
            return Err(Error::invalid_value("thresholds", t, "each threshold is a fraction in (0, 1]"));
        }
        let mut thresholds: Vec<Decimal> = thresholds.into_iter().map(|t| t.normalize()).collect();
        thresholds.sort();
        thresholds.dedup();
        if let Some(tz) = &spec.timezone {
            parse_tz("timezone", tz)?;
        }
        let now = Utc::now();
        let limit = Limit {
            id: limit_id(&spec.scope, spec.per, metric),
            scope: spec.scope.clone(),
            per: spec.per,
            metric,
            amount: amount.normalize(),
            currency,
            action: spec.action,
            thresholds,
            timezone: spec.timezone.clone(),
            created_at: now,
            updated_at: now,
        };
        let stored = self.inner.store.upsert_limit(&limit, &limit.scope.anchor())?;
        self.activate();
        Ok(stored)
    }

    /// Every limit, or those of one scope.
    pub fn limits(&self, scope: Option<&Scope>) -> Result<Vec<Limit>> {
        let all = self.inner.store.list_limits()?;
        Ok(all.into_iter().filter(|l| scope.is_none_or(|s| &l.scope == s)).collect())
    }

    /// Removes a limit by id; false when there was none. Its counters stay for the record.
    pub fn remove_limit(&self, id: &str) -> Result<bool> {
        self.inner.store.delete_limit(id)
    }

    /// The limits of `scope` (all when `None`) with their use in the period `at` falls in.
    pub fn limit_status(&self, scope: Option<&Scope>, at: Option<DateTime<Utc>>) -> Result<Vec<LimitStatus>> {
        let at = at.unwrap_or_else(Utc::now);
        let limits = self.limits(scope)?;
        let mut out = Vec::with_capacity(limits.len());
        self.inner.store.transact(false, &mut |tx| {
            out.clear();
            for l in &limits {
                let period = l.per.period(at, self.limit_tz(l)?);
                let c = tx.counter(&l.id, &period, false)?;
                out.push(LimitStatus {
                    remaining: l.amount - c.used - c.reserved,
                    limit: l.clone(),
                    period,
                    used: c.used,
                    reserved: c.reserved,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    // --- balances ----------------------------------------------------------------------------------

    /// Adds a top-up or grant to an account (creating it), once per idempotency key.
    pub fn credit(&self, req: &CreditRequest) -> Result<Entry> {
        if !req.kind.is_credit() {
            return Err(Error::invalid_value("kind", req.kind.as_str(), "a credit is a top_up or a grant"));
        }
        if req.amount <= Decimal::ZERO {
            return Err(Error::invalid_value("amount", req.amount, "must be positive"));
        }
        if let Some(c) = &req.currency {
            self.known_currency(Some(c))?;
        }
        if let Some(key) = &req.idempotency_key {
            if key.is_empty() || key.len() > 256 {
                return Err(Error::invalid_value("idempotency_key", key, "must be 1 to 256 bytes"));
            }
        }
        let at = req.at.unwrap_or_else(Utc::now);
        let account = req.account.to_string();
        let key = req.idempotency_key.clone().unwrap_or_else(|| format!("credit:{}", uuid::Uuid::now_v7()));
        let mut out = None;
        self.inner.store.transact(true, &mut |tx| {
            if let Some(first) = tx.entry_by_key(&key)? {
                out = Some(Ok(first));
                return Ok(());
            }
            if tx.lock_account(&account)?.is_none() {
                // Created (and locked) first, so two first credits of one account cannot both write it.
                let currency = req.currency.clone().unwrap_or_else(|| self.inner.currency.clone());
                tx.create_account(&AccountRow::new(&account, &currency))?;
            }
            let Some(mut a) = tx.lock_account(&account)? else {
                return Err(Error::new(ErrorCode::Store, "the account was not created"));
            };
            if let Some(c) = req.currency.as_ref().filter(|c| **c != a.currency) {
                out = Some(Err(Error::invalid_value(
                    "currency",
                    c,
                    &format!("account {account} is kept in {}", a.currency),
                )));
                return Ok(());
            }
            let currency = a.currency.clone();
            expire_credits(tx, &mut a, at)?;
            let mut entry = Entry {
                id: 0,
                account: account.clone(),
                kind: req.kind,
                amount: req.amount.normalize(),
                currency,
                idempotency_key: Some(key.clone()),
                expires_at: req.expires_at,
                credit_id: None,
                reservation_id: None,
                note: req.note.clone(),
                created_at: at,
            };
            let Some(id) = tx.insert_entry(&entry)? else {
                // Another transaction wrote this key since the check (PostgreSQL): return its entry.
                out = tx.entry_by_key(&key)?.map(Ok);
                return Ok(());
            };
            entry.id = id;
            tx.put_credit(id, &account, entry.amount, req.expires_at.map(ns))?;
            a.balance += entry.amount;
            a.last_credit_id = id;
            tx.put_account(&a)?;
            out = Some(Ok(entry));
            Ok(())
        })?;
        self.activate();
        out.unwrap_or_else(|| Err(Error::new(ErrorCode::Store, "the credit was not written")))
    }

    /// Shorthand for a top-up of `amount` in the account's (or the tracker's) currency.
    pub fn top_up(&self, account: &Account, amount: Decimal, idempotency_key: Option<&str>) -> Result<Entry> {
        self.credit(&CreditRequest {
            account: account.clone(),
            amount,
            currency: None,
            idempotency_key: idempotency_key.map(str::to_string),
            kind: EntryKind::TopUp,
            expires_at: None,
            note: None,
            at: None,
        })
    }

    /// The balance of `account` at `at` (default now); expired credits are written off first.
    pub fn balance(&self, account: &Account, at: Option<DateTime<Utc>>) -> Result<Balance> {
        let at = at.unwrap_or_else(Utc::now);
        let key = account.to_string();
        let mut out = None;
        self.inner.store.transact(true, &mut |tx| {
            out = Some(match tx.lock_account(&key)? {
                None => Balance {
                    account: key.clone(),
                    exists: false,
                    currency: self.inner.currency.clone(),
                    total: Decimal::ZERO,
                    reserved: Decimal::ZERO,
                    available: Decimal::ZERO,
                    low_alert: None,
                },
                Some(mut a) => {
                    if expire_credits(tx, &mut a, at)? {
                        tx.put_account(&a)?;
                    }
                    a.view()
                }
            });
            Ok(())
        })?;
        out.ok_or_else(|| Error::new(ErrorCode::Store, "the balance was not read"))
    }

    /// Entries of an account, newest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<Entry>> {
        let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
        self.inner.store.entries(&q.account.to_string(), limit, q.before)
    }

    /// Fire a `balance_low` alert when a settlement takes the account's balance below `below` (`None`
    /// turns it off); once per credit entry (a top-up re-arms it). The account must exist.
    pub fn set_balance_alert(&self, account: &Account, below: Option<Decimal>) -> Result<()> {
        if let Some(b) = below.filter(|b| *b < Decimal::ZERO) {
            return Err(Error::invalid_value("below", b, "must not be negative"));
        }
        let key = account.to_string();
        let mut found = false;
        self.inner.store.transact(true, &mut |tx| {
            if let Some(mut a) = tx.lock_account(&key)? {
                a.low_alert = below.map(|b| b.normalize());
                tx.put_account(&a)?;
                found = true;
            }
            Ok(())
        })?;
        if found {
            Ok(())
        } else {
            Err(Error::invalid_value("account", &key, "no such account (top it up first)"))
        }
    }

    // --- reservations ------------------------------------------------------------------------------

    /// Reserves a call's maximum cost against every limit and balance that applies, or refuses it with
    /// [`ErrorCode::BudgetExceeded`] (see the module docs).
    pub fn reserve(&self, req: &ReserveRequest) -> Result<Reservation> {
        if let Some(c) = req.max_cost.filter(|c| *c < Decimal::ZERO) {
            return Err(Error::invalid_value("max_cost", c, "must not be negative"));
        }
        let (max_cost, currency, unpriced) = match (req.max_cost, self.inner.config.unpriced) {
            (Some(c), _) => (c, self.known_currency(req.currency.as_deref())?, false),
            (None, UnpricedPolicy::Reserve(cap)) => (cap, self.inner.currency.clone(), false),
            (None, UnpricedPolicy::FailClosed) => (Decimal::ZERO, self.inner.currency.clone(), true),
        };
        let at = req.at.unwrap_or_else(Utc::now);
        let ttl = i64::try_from(self.inner.config.reservation_ttl_secs).unwrap_or(i64::MAX);
        let expires_at = chrono::Duration::try_seconds(ttl)
            .and_then(|d| at.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let reservation = Reservation {
            id: uuid::Uuid::now_v7().to_string(),
            max_cost,
            currency: currency.clone(),
            max_tokens: req.max_tokens,
            expires_at,
            holds: 0,
        };
        self.expire_stale_before_reserve(at)?;
        let anchors = anchors(&req.attribution);
        let accounts = Account::of(&req.attribution);
        let mut out = None;
        self.inner.store.transact(true, &mut |tx| {
            if self.inner.store.expires_inline() {
                expire_stale_in(tx, at)?;
            }
            out = Some(self.reserve_in(tx, req, &reservation, unpriced, &anchors, &accounts, at)?);
            Ok(())
        })?;
        if matches!(&out, Some(Err(_))) {
            // A refusal by a limit fires its 100 % alert (once per period; waking for nothing is cheap).
            self.signal_alerts();
        }
        out.unwrap_or_else(|| Err(Error::new(ErrorCode::Store, "the reservation was not written")))
    }

    /// The reservation transaction: `Ok(Err(refusal))` commits (credit expiries and the refusal's
    /// alert are kept) and refuses. `unpriced`: the call's cost is unknown and must not pass a spend
    /// limit or a balance.
    #[allow(clippy::too_many_arguments)]
    fn reserve_in(
        &self,
        tx: &mut dyn SpendTx,
        req: &ReserveRequest,
        reservation: &Reservation,
        unpriced: bool,
        anchors: &[String],
        accounts: &[Account],
        at: DateTime<Utc>,
    ) -> Result<Result<Reservation>> {
        let mut limits: Vec<Limit> =
            tx.limits_for(anchors)?.into_iter().filter(|l| l.scope.matches(&req.attribution)).collect();
        // One global lock order (by target id: `lim_…` before `user_id=…` before `workspace_id=…`).
        limits.sort_by(|a, b| a.id.cmp(&b.id));
        let mut holds: Vec<(HoldRow, Target)> = Vec::new();
        let mut refusal: Option<(BudgetDetail, Option<AlertEvent>)> = None;
        for l in limits {
            let period = l.per.period(at, self.limit_tz(&l)?);
            let amount = match l.metric {
                Metric::Spend => self.convert(reservation.max_cost, &reservation.currency, l.currency.as_deref())?,
                Metric::Requests => Decimal::ONE,
                Metric::Tokens => Decimal::from(req.max_tokens),
            };
            let c = tx.counter(&l.id, &period, true)?;
            if unpriced && l.metric == Metric::Spend && refusal.is_none() {
                refusal = Some((unpriced_detail(&l.id, &l.scope, l.currency.as_deref()), None));
            }
            if l.action == LimitAction::Block && refusal.is_none() && c.used + c.reserved + amount > l.amount {
                let detail = BudgetDetail {
                    rule: "limit".into(),
                    rule_id: l.id.clone(),
                    scope: l.scope.map().clone(),
                    per: Some(l.per.as_str().into()),
                    metric: l.metric.as_str().into(),
                    period: Some(period.clone()),
                    limit: l.amount,
                    spent: c.used,
                    reserved: c.reserved,
                    requested: amount,
                    currency: l.currency.clone(),
                };
                let alert = limit_alert(&l, &period, Decimal::ONE, c.used + c.reserved + amount, at);
                refusal = Some((detail, Some(alert)));
            }
            holds.push((HoldRow::new(&reservation.id, &l.id, &period, amount), Target::Limit(l, c)));
        }
        for account in accounts {
            let key = account.to_string();
            let Some(mut a) = tx.lock_account(&key)? else { continue };
            if expire_credits(tx, &mut a, at)? {
                tx.put_account(&a)?;
            }
            let amount = self.convert(reservation.max_cost, &reservation.currency, Some(&a.currency))?;
            if unpriced && refusal.is_none() {
                refusal = Some((unpriced_detail(&key, &account.scope(), Some(&a.currency)), None));
            }
            if refusal.is_none() && amount > a.balance - a.reserved {
                let detail = BudgetDetail {
                    rule: "balance".into(),
                    rule_id: key.clone(),
                    scope: account.scope().map().clone(),
                    per: None,
                    metric: Metric::Spend.as_str().into(),
                    period: None,
                    limit: a.balance,
                    spent: Decimal::ZERO,
                    reserved: a.reserved,
                    requested: amount,
                    currency: Some(a.currency.clone()),
                };
                refusal = Some((detail, None));
            }
            holds.push((HoldRow::new(&reservation.id, &key, "", amount), Target::Account(a)));
        }
        if let Some((detail, alert)) = refusal {
            if let Some(alert) = alert {
                tx.insert_alert(&alert, ns(at))?;
            }
            let message = match detail.rule.as_str() {
                "unpriced" => format!(
                    "budget exceeded: the call's cost cannot be computed before it is sent (model `{}`) and {} \
                     applies (unpriced policy fail_closed)",
                    req.model, detail.rule_id
                ),
                "balance" => format!(
                    "budget exceeded: {} has {} {} available, the call needs up to {}",
                    detail.rule_id,
                    detail.limit - detail.reserved,
                    detail.currency.as_deref().unwrap_or(""),
                    detail.requested
                ),
                _ => format!(
                    "budget exceeded: limit {} ({} per {} for {}) has {} used and {} reserved of {}; the call needs up to {}",
                    detail.rule_id,
                    detail.metric,
                    detail.per.as_deref().unwrap_or(""),
                    Scope(detail.scope.clone()).key(),
                    detail.spent,
                    detail.reserved,
                    detail.limit,
                    detail.requested
                ),
            };
            return Ok(Err(Error::budget_exceeded(message, detail)));
        }
        if holds.is_empty() {
            return Ok(Ok(reservation.clone()));
        }
        tx.insert_reservation(&ReservationRow {
            id: reservation.id.clone(),
            attribution: serde_json::to_string(&req.attribution)?,
            model: req.model.clone(),
            max_cost: reservation.max_cost,
            currency: reservation.currency.clone(),
            max_tokens: i64::try_from(req.max_tokens).unwrap_or(i64::MAX),
            created_ns: ns(at),
            expires_ns: ns(reservation.expires_at),
            state: ReservationState::Open,
        })?;
        let n = holds.len();
        for (hold, target) in holds {
            tx.insert_hold(&hold)?;
            match target {
                Target::Limit(l, mut c) => {
                    c.reserved += hold.amount;
                    tx.put_counter(&l.id, &hold.period, &c)?;
                }
                Target::Account(mut a) => {
                    a.reserved += hold.amount;
                    tx.put_account(&a)?;
                }
            }
        }
        Ok(Ok(Reservation { holds: n, ..reservation.clone() }))
    }

    /// PostgreSQL releases stale reservations one per transaction before the reservation's own
    /// (each locks one reservation, then its targets in order: no lock cycles). SQLite does it inside.
    fn expire_stale_before_reserve(&self, at: DateTime<Utc>) -> Result<()> {
        if !self.inner.store.expires_inline() {
            self.expire_stale(Some(at))?;
        }
        Ok(())
    }

    /// Releases every open reservation past its `expires_at`; returns how many.
    pub fn expire_stale(&self, at: Option<DateTime<Utc>>) -> Result<u64> {
        let at = at.unwrap_or_else(Utc::now);
        let mut total = 0;
        loop {
            let mut n = 0;
            self.inner.store.transact(true, &mut |tx| {
                n = if self.inner.store.expires_inline() { expire_stale_in(tx, at)? } else { expire_one(tx, at)? };
                Ok(())
            })?;
            total += n;
            if n == 0 || self.inner.store.expires_inline() {
                return Ok(total);
            }
        }
    }

    /// Settles a reservation to the call's actual cost and tokens: its holds become use, accounts are
    /// debited, alerts fire. Settling twice changes nothing the second time.
    pub fn settle(&self, req: &SettleRequest) -> Result<Settlement> {
        if req.actual_cost < Decimal::ZERO {
            return Err(Error::invalid_value("actual_cost", req.actual_cost, "must not be negative"));
        }
        let currency = self.known_currency(req.currency.as_deref())?;
        let at = req.at.unwrap_or_else(Utc::now);
        let mut out = None;
        let mut notices = Vec::new();
        self.inner.store.transact(true, &mut |tx| {
            notices.clear();
            out = Some(self.settle_in(tx, req, &currency, at, &mut notices)?);
            Ok(())
        })?;
        for n in notices {
            self.notice(n);
        }
        if out.as_ref().is_some_and(|s| !s.alerts.is_empty()) {
            self.signal_alerts();
        }
        out.ok_or_else(|| Error::new(ErrorCode::Store, "the settlement was not written"))
    }

    fn settle_in(
        &self,
        tx: &mut dyn SpendTx,
        req: &SettleRequest,
        currency: &str,
        at: DateTime<Utc>,
        notices: &mut Vec<Notice>,
    ) -> Result<Settlement> {
        let id = &req.reservation_id;
        let mut settlement = Settlement {
            reservation_id: id.clone(),
            found: false,
            previous_state: None,
            state: None,
            alerts: Vec::new(),
        };
        let Some(r) = tx.lock_reservation(id)? else { return Ok(settlement) };
        settlement.found = true;
        settlement.previous_state = Some(r.state);
        if matches!(r.state, ReservationState::Settled | ReservationState::Released) {
            settlement.state = Some(r.state);
            return Ok(settlement);
        }
        let open = r.state == ReservationState::Open;
        for hold in tx.holds(id)? {
            if hold.target.starts_with("lim_") {
                let limit = tx.limit(&hold.target)?;
                let used = match limit.as_ref().map(|l| (l.metric, l.currency.as_deref())) {
                    Some((Metric::Requests, _)) => Decimal::ONE,
                    Some((Metric::Tokens, _)) => Decimal::from(req.actual_tokens),
                    Some((Metric::Spend, c)) => self.convert(req.actual_cost, currency, c)?,
                    // A removed limit: nothing counts any more.
                    None => Decimal::ZERO,
                };
                let mut c = tx.counter(&hold.target, &hold.period, true)?;
                let before = c.used;
                c.used += used;
                if open {
                    c.reserved -= hold.amount;
                }
                tx.put_counter(&hold.target, &hold.period, &c)?;
                tx.settle_hold(id, &hold.target, used)?;
                if let Some(l) = limit {
                    for t in &l.thresholds {
                        let mark = l.amount * t;
                        if before < mark && c.used >= mark {
                            let alert = limit_alert(&l, &hold.period, *t, c.used, at);
                            if tx.insert_alert(&alert, ns(at))? {
                                settlement.alerts.push(alert);
                            }
                        }
                    }
                    if l.action != LimitAction::Block && before < l.amount && c.used >= l.amount {
                        notices.push(limit_notice(&l, &hold.period, c.used, at));
                    }
                    if let Some(alert) = self.spend_spike(tx, &l, &hold.period, before, c.used, at)? {
                        if tx.insert_alert(&alert, ns(at))? {
                            settlement.alerts.push(alert);
                        }
                    }
                }
            } else {
                let Some(mut a) = tx.lock_account(&hold.target)? else { continue };
                expire_credits(tx, &mut a, at)?;
                let amount = self.convert(req.actual_cost, currency, Some(&a.currency))?;
                let before = a.balance;
                debit(tx, &mut a, amount, id, at)?;
                if open {
                    a.reserved -= hold.amount;
                }
                tx.put_account(&a)?;
                tx.settle_hold(id, &hold.target, amount)?;
                let after = a.balance;
                if let Some(low) = a.low_alert.filter(|low| before >= *low && after < *low) {
                    let alert = balance_alert(&a, low, after, at);
                    if tx.insert_alert(&alert, ns(at))? {
                        settlement.alerts.push(alert);
                    }
                }
            }
        }
        let tokens = i64::try_from(req.actual_tokens).unwrap_or(i64::MAX);
        tx.close_reservation(id, ReservationState::Settled, Some(req.actual_cost), Some(tokens), ns(at))?;
        settlement.state = Some(ReservationState::Settled);
        Ok(settlement)
    }

    /// Returns a reservation's holds unused (the call never reached the provider, or failed unbilled).
    pub fn release(&self, reservation_id: &str) -> Result<Settlement> {
        let mut out = None;
        let at = Utc::now();
        self.inner.store.transact(true, &mut |tx| {
            let mut s = Settlement {
                reservation_id: reservation_id.to_string(),
                found: false,
                previous_state: None,
                state: None,
                alerts: Vec::new(),
            };
            if let Some(r) = tx.lock_reservation(reservation_id)? {
                s.found = true;
                s.previous_state = Some(r.state);
                s.state = Some(r.state);
                if r.state == ReservationState::Open {
                    release_holds(tx, reservation_id, ReservationState::Released, at)?;
                    s.state = Some(ReservationState::Released);
                }
            }
            out = Some(s);
            Ok(())
        })?;
        out.ok_or_else(|| Error::new(ErrorCode::Store, "the release was not written"))
    }

    // --- alerts ------------------------------------------------------------------------------------

    /// Fired alerts not yet marked enqueued, oldest first (at most `limit`): the durable source for
    /// webhook delivery and the bindings' callbacks.
    pub fn pending_alerts(&self, limit: u32) -> Result<Vec<AlertEvent>> {
        self.inner.store.pending_alerts(limit.clamp(1, 10_000))
    }

    /// Marks alerts as handed on (enqueued for delivery); returns how many were pending.
    pub fn mark_alerts_enqueued(&self, alert_ids: &[String]) -> Result<u64> {
        self.inner.store.mark_alerts(alert_ids, ns(Utc::now()))
    }

    /// Wakes whoever waits in [`Spend::wait_for_alerts`] (the tracker's alert pump).
    pub(crate) fn signal_alerts(&self) {
        *self.inner.alert_fired.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.inner.alert_cv.notify_all();
    }

    /// Waits until a transaction of this handle fires an alert (or [`Spend::signal_alerts`] is called),
    /// at most `timeout`.
    pub(crate) fn wait_for_alerts(&self, timeout: Duration) {
        let guard = self.inner.alert_fired.lock().unwrap_or_else(|p| p.into_inner());
        let (mut fired, _) =
            self.inner.alert_cv.wait_timeout_while(guard, timeout, |fired| !*fired).unwrap_or_else(|p| p.into_inner());
        *fired = false;
    }

    /// The `spend_spike` alert a settlement fires when it takes a per-day spend limit's use from below
    /// `spike_factor` × the scope's trailing daily average to at or above it (see [`Spend::baseline`]).
    fn spend_spike(
        &self,
        tx: &mut dyn SpendTx,
        l: &Limit,
        period: &str,
        before: Decimal,
        used: Decimal,
        at: DateTime<Utc>,
    ) -> Result<Option<AlertEvent>> {
        let factor = self.inner.config.spike_factor;
        if factor.is_zero() || l.per != Per::Day || l.metric != Metric::Spend || used <= before {
            return Ok(None);
        }
        let Some(baseline) = self.baseline(tx, &l.id, period)? else { return Ok(None) };
        let mark = baseline * factor;
        Ok((before < mark && used >= mark).then(|| spike_alert(l, period, factor, used, baseline, at)))
    }

    /// A day limit's trailing average: the mean use over the days with any use among the
    /// [`SPIKE_WINDOW_DAYS`] before `period`, or `None` with fewer than [`SPIKE_MIN_DAYS`] such days.
    fn baseline(&self, tx: &mut dyn SpendTx, limit_id: &str, period: &str) -> Result<Option<Decimal>> {
        let key = (limit_id.to_string(), period.to_string());
        if let Some(b) = self.inner.baselines.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(*b);
        }
        let Ok(day) = chrono::NaiveDate::parse_from_str(period, "%Y-%m-%d") else { return Ok(None) };
        let mut days = Vec::new();
        for back in 1..=SPIKE_WINDOW_DAYS {
            let Some(d) = day.checked_sub_signed(chrono::Duration::days(back)) else { break };
            let used = tx.counter(limit_id, &d.format("%Y-%m-%d").to_string(), false)?.used;
            if used > Decimal::ZERO {
                days.push(used);
            }
        }
        let baseline = (days.len() >= SPIKE_MIN_DAYS)
            .then(|| days.iter().sum::<Decimal>() / Decimal::from(days.len()))
            .map(|b| b.round_dp(CONVERSION_DP).normalize());
        let mut cache = self.inner.baselines.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_BASELINES {
            cache.clear();
        }
        cache.insert(key, baseline);
        Ok(baseline)
    }

    /// Spend notices (warn/log limits reached, spend store failures) since the last call.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.inner.notices.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect()
    }

    /// Queues a notice for the operator (the tracker reports spend-store failures through this). A
    /// store failure is reported once, then at most once per [`FAILURE_NOTICE_EVERY`] while it goes
    /// on (every call would otherwise warn while the store is down, as the ledger's notices do not).
    pub fn notice(&self, notice: Notice) {
        if notice.kind == NoticeKind::SpendStoreFailed {
            let now = notice.at.timestamp_millis();
            let last = self.inner.last_failure_notice_ms.load(Ordering::Relaxed);
            let due = last == 0 || now - last >= FAILURE_NOTICE_EVERY.as_millis() as i64;
            if !due
                || self
                    .inner
                    .last_failure_notice_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return;
            }
        }
        let mut q = self.inner.notices.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_NOTICES {
            q.pop_front();
        }
        q.push_back(notice);
    }

    // --- verification ------------------------------------------------------------------------------

    /// Recomputes every running total from the entries and holds and returns the rows that differ
    /// (empty = consistent): account balances (sum of entries) and reserved amounts (open holds),
    /// credits' remaining amounts, and limit counters (settled and open holds).
    pub fn verify(&self) -> Result<Vec<SpendDiff>> {
        let mut dump = None;
        self.inner.store.transact(false, &mut |tx| {
            dump = Some(tx.dump()?);
            Ok(())
        })?;
        Ok(dump.map(|d| d.diffs()).unwrap_or_default())
    }

    // --- helpers -----------------------------------------------------------------------------------

    fn known_currency(&self, code: Option<&str>) -> Result<String> {
        let code = code.map(str::to_uppercase).unwrap_or_else(|| self.inner.currency.clone());
        if self.inner.rates.get(&code).is_none() {
            return Err(Error::new(ErrorCode::UnknownCurrency, format!("no rate for currency `{code}`"))
                .with_field("currency")
                .with_value(code));
        }
        Ok(code)
    }

    fn limit_tz(&self, l: &Limit) -> Result<Tz> {
        match &l.timezone {
            Some(tz) => parse_tz("timezone", tz),
            None => Ok(self.inner.tz),
        }
    }

    /// `amount` in `from` as an amount in `to` (`None`: no conversion).
    fn convert(&self, amount: Decimal, from: &str, to: Option<&str>) -> Result<Decimal> {
        let Some(to) = to.filter(|to| *to != from) else { return Ok(amount) };
        let rate = |code: &str| {
            self.inner.rates.get(code).ok_or_else(|| {
                Error::new(ErrorCode::UnknownCurrency, format!("no rate for currency `{code}`"))
                    .with_field("currency")
                    .with_value(code)
            })
        };
        let (rate_from, rate_to) = (rate(from)?, rate(to)?);
        amount
            .checked_div(rate_from)
            .and_then(|usd| usd.checked_mul(rate_to))
            .map(|v| v.round_dp(CONVERSION_DP))
            .ok_or_else(|| Error::invalid_value("amount", amount, "overflows when converted"))
    }
}

/// A limit or account a reservation holds, with its row as read (and locked).
enum Target {
    Limit(Limit, Counter),
    Account(AccountRow),
}

fn limit_alert(l: &Limit, period: &str, threshold: Decimal, amount: Decimal, at: DateTime<Utc>) -> AlertEvent {
    let threshold = threshold.normalize();
    AlertEvent {
        alert_id: format!("{}:{}:{}:{}", l.id, l.scope.key(), period, threshold),
        kind: AlertKind::LimitThreshold,
        scope: l.scope.map().clone(),
        period: period.to_string(),
        threshold,
        amount,
        limit: Some(l.amount),
        // Request and token limits count in their own unit.
        currency: l.currency.clone().unwrap_or_else(|| l.metric.as_str().to_string()),
        fired_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// Once per limit, scope and day: `amount` (spent today) reached `factor` × `baseline` (the trailing
/// daily average, in `limit`).
fn spike_alert(
    l: &Limit,
    period: &str,
    factor: Decimal,
    amount: Decimal,
    baseline: Decimal,
    at: DateTime<Utc>,
) -> AlertEvent {
    AlertEvent {
        alert_id: format!("spike:{}:{}:{}", l.id, l.scope.key(), period),
        kind: AlertKind::SpendSpike,
        scope: l.scope.map().clone(),
        period: period.to_string(),
        threshold: factor.normalize(),
        amount,
        limit: Some(baseline),
        currency: l.currency.clone().unwrap_or_default(),
        fired_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// The refusal of a call without a price by a spend limit or balance (`fail_closed`).
fn unpriced_detail(rule_id: &str, scope: &Scope, currency: Option<&str>) -> BudgetDetail {
    BudgetDetail {
        rule: "unpriced".into(),
        rule_id: rule_id.to_string(),
        scope: scope.map().clone(),
        per: None,
        metric: Metric::Spend.as_str().into(),
        period: None,
        limit: Decimal::ZERO,
        spent: Decimal::ZERO,
        reserved: Decimal::ZERO,
        requested: Decimal::ZERO,
        currency: currency.map(str::to_string),
    }
}

/// Once per account, threshold and credit: a new top-up re-arms it.
fn balance_alert(a: &AccountRow, low: Decimal, balance: Decimal, at: DateTime<Utc>) -> AlertEvent {
    AlertEvent {
        alert_id: format!("bal:{}:{}:{}", a.account, a.last_credit_id, low),
        kind: AlertKind::BalanceLow,
        scope: Scope::from_key(&a.account).map(|s| s.0).unwrap_or_default(),
        period: "balance".into(),
        threshold: low,
        amount: balance,
        limit: None,
        currency: a.currency.clone(),
        fired_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

fn limit_notice(l: &Limit, period: &str, used: Decimal, at: DateTime<Utc>) -> Notice {
    let level = if l.action == LimitAction::Warn { NoticeLevel::Warning } else { NoticeLevel::Info };
    Notice {
        level,
        kind: NoticeKind::SpendLimitReached,
        message: format!(
            "llmledger: {} limit {} ({} per {} for `{}`) reached in {period}: {used} of {}{}",
            l.action.as_str(),
            l.id,
            l.metric.as_str(),
            l.per.as_str(),
            l.scope.key(),
            l.amount,
            l.currency.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        ),
        at,
        error: None,
        spilled_events: 0,
        queued_events: 0,
        replayed_events: 0,
        down_secs: None,
    }
}

/// A spend-store failure during a call, reported instead of failing the call.
pub(crate) fn store_failed_notice(what: &str, err: &Error) -> Notice {
    let error = crate::ledger::health::redact_credentials(&err.to_string());
    Notice {
        level: NoticeLevel::Warning,
        kind: NoticeKind::SpendStoreFailed,
        message: format!("llmledger: the spend store failed to {what} ({error}); the call went ahead"),
        at: Utc::now(),
        error: Some(error),
        spilled_events: 0,
        queued_events: 0,
        replayed_events: 0,
        down_secs: None,
    }
}

// ---------------------------------------------------------------------------------------------------
// The rules over a transaction
// ---------------------------------------------------------------------------------------------------

/// Writes off the unused part of every credit of `a` past its expiry (once: the `expire:<id>` key);
/// true when something changed (the caller writes the account row).
fn expire_credits(tx: &mut dyn SpendTx, a: &mut AccountRow, at: DateTime<Utc>) -> Result<bool> {
    let now = ns(at);
    let mut changed = false;
    for c in tx.credits(&a.account)? {
        if c.expires_ns.is_none_or(|e| e > now) || c.remaining <= Decimal::ZERO {
            continue;
        }
        let entry = Entry {
            id: 0,
            account: a.account.clone(),
            kind: EntryKind::Expire,
            amount: -c.remaining,
            currency: a.currency.clone(),
            idempotency_key: Some(format!("expire:{}", c.entry_id)),
            expires_at: None,
            credit_id: Some(c.entry_id),
            reservation_id: None,
            note: None,
            created_at: at,
        };
        if tx.insert_entry(&entry)?.is_some() {
            tx.put_credit(c.entry_id, &a.account, Decimal::ZERO, c.expires_ns)?;
            a.balance -= c.remaining;
            changed = true;
        }
    }
    Ok(changed)
}

/// Debits `amount` from `a`, consuming credits earliest expiry first; the rest (if the credits run
/// out) is one overdraft debit.
fn debit(
    tx: &mut dyn SpendTx,
    a: &mut AccountRow,
    amount: Decimal,
    reservation: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut left = amount;
    let mut n = 0;
    let mut write = |tx: &mut dyn SpendTx, take: Decimal, credit: Option<i64>| -> Result<()> {
        n += 1;
        tx.insert_entry(&Entry {
            id: 0,
            account: a.account.clone(),
            kind: EntryKind::Debit,
            amount: -take,
            currency: a.currency.clone(),
            idempotency_key: Some(format!("debit:{reservation}:{n}")),
            expires_at: None,
            credit_id: credit,
            reservation_id: Some(reservation.to_string()),
            note: None,
            created_at: at,
        })?;
        Ok(())
    };
    if left <= Decimal::ZERO {
        return Ok(());
    }
    let mut credits = tx.credits(&a.account)?;
    credits.retain(|c| c.remaining > Decimal::ZERO);
    // Earliest expiry first, credits without one last, then oldest first.
    credits.sort_by_key(|c| (c.expires_ns.is_none(), c.expires_ns, c.entry_id));
    for c in credits {
        if left <= Decimal::ZERO {
            break;
        }
        let take = left.min(c.remaining);
        write(tx, take, Some(c.entry_id))?;
        tx.put_credit(c.entry_id, &a.account, c.remaining - take, c.expires_ns)?;
        left -= take;
    }
    if left > Decimal::ZERO {
        write(tx, left, None)?;
    }
    a.balance -= amount;
    Ok(())
}

/// Returns the holds of an open reservation and closes it as `state`.
fn release_holds(tx: &mut dyn SpendTx, id: &str, state: ReservationState, at: DateTime<Utc>) -> Result<()> {
    for hold in tx.holds(id)? {
        if hold.target.starts_with("lim_") {
            let mut c = tx.counter(&hold.target, &hold.period, true)?;
            c.reserved -= hold.amount;
            tx.put_counter(&hold.target, &hold.period, &c)?;
        } else if let Some(mut a) = tx.lock_account(&hold.target)? {
            a.reserved -= hold.amount;
            tx.put_account(&a)?;
        }
    }
    tx.close_reservation(id, state, None, None, ns(at))
}

/// Expires every stale reservation in this transaction (SQLite: the transaction holds the file).
fn expire_stale_in(tx: &mut dyn SpendTx, at: DateTime<Utc>) -> Result<u64> {
    let stale = tx.stale_reservations(ns(at), None)?;
    for id in &stale {
        release_holds(tx, id, ReservationState::Expired, at)?;
    }
    Ok(stale.len() as u64)
}

/// Expires one stale reservation (PostgreSQL: locked with `SKIP LOCKED`, so concurrent callers take
/// different ones).
fn expire_one(tx: &mut dyn SpendTx, at: DateTime<Utc>) -> Result<u64> {
    let stale = tx.stale_reservations(ns(at), Some(1))?;
    for id in &stale {
        release_holds(tx, id, ReservationState::Expired, at)?;
    }
    Ok(stale.len() as u64)
}

/// Nanoseconds since the epoch: the stores' time columns.
pub(crate) fn ns(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub(crate) fn from_ns(v: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(v)
}

// ---------------------------------------------------------------------------------------------------
// The store interface
// ---------------------------------------------------------------------------------------------------

/// A limit's use in one period, as its counter row keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counter {
    pub used: Decimal,
    pub reserved: Decimal,
}

/// An account's row: the running totals of its entries and holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountRow {
    pub account: String,
    pub currency: String,
    pub balance: Decimal,
    pub reserved: Decimal,
    pub low_alert: Option<Decimal>,
    /// The newest credit entry (re-arms the balance-low alert).
    pub last_credit_id: i64,
}

impl AccountRow {
    fn new(account: &str, currency: &str) -> Self {
        Self {
            account: account.to_string(),
            currency: currency.to_string(),
            balance: Decimal::ZERO,
            reserved: Decimal::ZERO,
            low_alert: None,
            last_credit_id: 0,
        }
    }

    fn view(&self) -> Balance {
        Balance {
            account: self.account.clone(),
            exists: true,
            currency: self.currency.clone(),
            total: self.balance,
            reserved: self.reserved,
            available: self.balance - self.reserved,
            low_alert: self.low_alert,
        }
    }
}

/// A credit's unused part (the credits table: a running total over its debits and expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreditRow {
    pub entry_id: i64,
    pub remaining: Decimal,
    pub expires_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReservationRow {
    pub id: String,
    pub attribution: String,
    pub model: String,
    pub max_cost: Decimal,
    pub currency: String,
    pub max_tokens: i64,
    pub created_ns: i64,
    pub expires_ns: i64,
    pub state: ReservationState,
}

/// What one reservation holds of one limit counter (`target` = limit id, `period`) or account
/// (`target` = account, `period` = ""); `used` once settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HoldRow {
    pub reservation_id: String,
    pub target: String,
    pub period: String,
    pub amount: Decimal,
    pub used: Option<Decimal>,
}

impl HoldRow {
    fn new(reservation_id: &str, target: &str, period: &str, amount: Decimal) -> Self {
        Self {
            reservation_id: reservation_id.to_string(),
            target: target.to_string(),
            period: period.to_string(),
            amount,
            used: None,
        }
    }
}

/// Everything [`Spend::verify`] recomputes from.
#[derive(Debug, Default)]
pub(crate) struct Dump {
    pub accounts: Vec<AccountRow>,
    pub entries: Vec<Entry>,
    pub credits: Vec<(i64, Decimal)>,
    /// Holds with the state of their reservation.
    pub holds: Vec<(HoldRow, ReservationState)>,
    pub counters: Vec<(String, String, Counter)>,
}

/// A running total that does not match its recomputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendDiff {
    /// `account.balance`, `account.reserved`, `credit.remaining`, `counter.used`, `counter.reserved`.
    pub what: String,
    /// The account, credit entry id or `limit_id/period`.
    pub key: String,
    pub stored: Decimal,
    pub recomputed: Decimal,
}

impl Dump {
    fn diffs(&self) -> Vec<SpendDiff> {
        let mut out = Vec::new();
        let mut check = |what: &str, key: &str, stored: Decimal, recomputed: Decimal| {
            if stored != recomputed {
                out.push(SpendDiff { what: what.into(), key: key.into(), stored, recomputed });
            }
        };
        let mut balance: BTreeMap<&str, Decimal> = BTreeMap::new();
        let mut credit_left: BTreeMap<i64, Decimal> = BTreeMap::new();
        for e in &self.entries {
            *balance.entry(&e.account).or_default() += e.amount;
            if e.kind.is_credit() {
                *credit_left.entry(e.id).or_default() += e.amount;
            } else if let Some(c) = e.credit_id {
                *credit_left.entry(c).or_default() += e.amount;
            }
        }
        let mut reserved: BTreeMap<&str, Decimal> = BTreeMap::new();
        let mut counters: BTreeMap<(&str, &str), Counter> = BTreeMap::new();
        for (h, state) in &self.holds {
            let c = counters.entry((&h.target, &h.period)).or_default();
            if *state == ReservationState::Open {
                *reserved.entry(&h.target).or_default() += h.amount;
                c.reserved += h.amount;
            }
            c.used += h.used.unwrap_or_default();
        }
        for a in &self.accounts {
            check(
                "account.balance",
                &a.account,
                a.balance,
                balance.get(a.account.as_str()).copied().unwrap_or_default(),
            );
            check(
                "account.reserved",
                &a.account,
                a.reserved,
                reserved.get(a.account.as_str()).copied().unwrap_or_default(),
            );
        }
        for (id, remaining) in &self.credits {
            check("credit.remaining", &id.to_string(), *remaining, credit_left.get(id).copied().unwrap_or_default());
        }
        for (limit, period, c) in &self.counters {
            let key = format!("{limit}/{period}");
            let want = counters.get(&(limit.as_str(), period.as_str())).copied().unwrap_or_default();
            check("counter.used", &key, c.used, want.used);
            check("counter.reserved", &key, c.reserved, want.reserved);
        }
        out
    }
}

/// One open transaction of a spend store: the reads and writes the rules need, each in the store's own
/// SQL. Reads marked "lock" take the row's write lock until the transaction ends (PostgreSQL `FOR
/// UPDATE`; SQLite's `BEGIN IMMEDIATE` already holds the file).
pub(crate) trait SpendTx {
    /// Ids of open reservations whose `expires_at` ≤ `now_ns` (locked; PostgreSQL skips locked ones).
    fn stale_reservations(&mut self, now_ns: i64, limit: Option<u32>) -> Result<Vec<String>>;
    /// The reservation (locked).
    fn lock_reservation(&mut self, id: &str) -> Result<Option<ReservationRow>>;
    fn insert_reservation(&mut self, r: &ReservationRow) -> Result<()>;
    fn close_reservation(
        &mut self,
        id: &str,
        state: ReservationState,
        actual_cost: Option<Decimal>,
        actual_tokens: Option<i64>,
        now_ns: i64,
    ) -> Result<()>;
    /// The holds of a reservation, by target (the global lock order).
    fn holds(&mut self, reservation_id: &str) -> Result<Vec<HoldRow>>;
    fn insert_hold(&mut self, h: &HoldRow) -> Result<()>;
    fn settle_hold(&mut self, reservation_id: &str, target: &str, used: Decimal) -> Result<()>;
    /// Limits whose anchor is one of `anchors`.
    fn limits_for(&mut self, anchors: &[String]) -> Result<Vec<Limit>>;
    fn limit(&mut self, id: &str) -> Result<Option<Limit>>;
    /// A limit's counter in a period (zero when missing; with `lock`, created and locked).
    fn counter(&mut self, limit_id: &str, period: &str, lock: bool) -> Result<Counter>;
    fn put_counter(&mut self, limit_id: &str, period: &str, c: &Counter) -> Result<()>;
    /// The account's row (locked).
    fn lock_account(&mut self, account: &str) -> Result<Option<AccountRow>>;
    /// Inserts the account's row unless it exists.
    fn create_account(&mut self, a: &AccountRow) -> Result<()>;
    /// Updates the account's row.
    fn put_account(&mut self, a: &AccountRow) -> Result<()>;
    /// The account's credits with their unused part and expiry.
    fn credits(&mut self, account: &str) -> Result<Vec<CreditRow>>;
    /// Sets a credit's unused part (a credit used up is deleted: the entries keep the history).
    fn put_credit(&mut self, entry_id: i64, account: &str, remaining: Decimal, expires_ns: Option<i64>) -> Result<()>;
    /// Appends an entry; `None` when its idempotency key is already stored (nothing written).
    fn insert_entry(&mut self, e: &Entry) -> Result<Option<i64>>;
    fn entry_by_key(&mut self, key: &str) -> Result<Option<Entry>>;
    /// Stores a fired alert; false when its id was already stored.
    fn insert_alert(&mut self, a: &AlertEvent, now_ns: i64) -> Result<bool>;
    /// Every row [`Spend::verify`] needs.
    fn dump(&mut self) -> Result<Dump>;
}

/// A spend store: transactions plus the few statements that need none.
pub(crate) trait SpendStore: Send + Sync + fmt::Debug {
    /// Runs `f` in one transaction (`write`: SQLite `BEGIN IMMEDIATE`), committing when it returns
    /// `Ok`, rolling back on `Err`. Store errors are [`ErrorCode::Store`].
    fn transact(&self, write: bool, f: &mut dyn FnMut(&mut dyn SpendTx) -> Result<()>) -> Result<()>;
    /// True when stale reservations are expired inside the reservation's own transaction (one
    /// writer at a time: SQLite), false when each is expired in its own first (PostgreSQL).
    fn expires_inline(&self) -> bool;
    /// Whether any limit or account exists.
    fn has_rules(&self) -> Result<bool>;
    /// Inserts or updates a limit by id (keeping its `created_at`); returns it as stored.
    fn upsert_limit(&self, l: &Limit, anchor: &str) -> Result<Limit>;
    fn list_limits(&self) -> Result<Vec<Limit>>;
    fn delete_limit(&self, id: &str) -> Result<bool>;
    fn entries(&self, account: &str, limit: u32, before: Option<i64>) -> Result<Vec<Entry>>;
    fn pending_alerts(&self, limit: u32) -> Result<Vec<AlertEvent>>;
    fn mark_alerts(&self, ids: &[String], now_ns: i64) -> Result<u64>;
}

fn open_store(url: &str) -> Result<Box<dyn SpendStore>> {
    let scheme = url.split(':').next().unwrap_or("");
    match scheme {
        #[cfg(feature = "sqlite")]
        "memory" => Ok(Box::new(sqlite::SqliteSpend::open_in_memory()?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteSpend::open(&crate::ledger::path_of(url, scheme)?)?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Box::new(postgres::PgSpend::connect(url)?)),
        _ => Err(Error::new(
            ErrorCode::Unsupported,
            format!(
                "spend control needs a SQLite or PostgreSQL store (or memory://), not `{scheme}:` (MySQL comes later)"
            ),
        )),
    }
}

/// Reads a stored decimal.
pub(crate) fn dec(field: &str, s: &str) -> Result<Decimal> {
    Decimal::from_str(s).map_err(|_| Error::new(ErrorCode::Store, format!("stored {field} `{s}` is not a decimal")))
}
