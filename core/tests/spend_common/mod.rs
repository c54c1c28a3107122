//! Spend-control cases shared by the SQLite and PostgreSQL tests: each takes a function opening a
//! [`Spend`] handle on the store under test (a new connection per call) and a tag that keeps its
//! users and scopes apart from every other case on a shared database. Expected values are computed by
//! hand in the comments.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use llmledger_core::alert::AlertKind;
use llmledger_core::event::Attribution;
use llmledger_core::spend::{
    Account, CreditRequest, EntryKind, HistoryQuery, LimitAction, LimitSpec, Per, ReservationState, ReserveRequest,
    Scope, SettleRequest, Spend, SpendConfig, UnpricedPolicy,
};
use llmledger_core::{ErrorCode, Rates};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub type Open<'a> = dyn Fn(SpendConfig) -> Spend + Sync + 'a;

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn krw_rates() -> Rates {
    Rates::new().with("KRW", "1391.50").unwrap()
}

pub fn open_with(url: &str, config: SpendConfig) -> Spend {
    Spend::open(url, "USD", krw_rates(), "Asia/Seoul", config).unwrap()
}

fn scope(pairs: &[(&str, &str)]) -> Scope {
    Scope::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap()
}

fn user(id: &str) -> Attribution {
    Attribution { user_id: Some(id.into()), ..Attribution::default() }
}

fn reserve(s: &Spend, who: &Attribution, cost: Decimal, at: &str) -> llmledger_core::Result<String> {
    let req = ReserveRequest {
        attribution: who.clone(),
        max_cost: Some(cost),
        currency: None,
        max_tokens: 1000,
        model: "gpt-4o".into(),
        at: Some(utc(at)),
    };
    s.reserve(&req).map(|r| r.id)
}

fn settle(s: &Spend, id: &str, cost: Decimal, at: &str) -> llmledger_core::spend::Settlement {
    let req = SettleRequest {
        reservation_id: id.into(),
        actual_cost: cost,
        currency: None,
        actual_tokens: 500,
        at: Some(utc(at)),
    };
    s.settle(&req).unwrap()
}

fn credit(account: &Account, amount: Decimal, key: &str) -> CreditRequest {
    CreditRequest {
        account: account.clone(),
        amount,
        currency: None,
        idempotency_key: Some(key.into()),
        kind: EntryKind::TopUp,
        expires_at: None,
        note: None,
        at: Some(utc("2026-12-02T01:00:00Z")),
    }
}

fn limit(scope: Scope, per: Per, amount: Decimal) -> LimitSpec {
    LimitSpec {
        scope,
        per,
        amount: Some(amount),
        currency: None,
        requests: None,
        tokens: None,
        action: LimitAction::Block,
        thresholds: None,
        timezone: None,
    }
}

/// Limits: upsert by (scope, per, metric), list, remove; bad input names the field.
pub fn limits_are_upserted_listed_and_removed(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig::default());
    let sc = scope(&[("user_id", &format!("{tag}-u1")), ("project", "p")]);
    let first = s.set_limit(&limit(sc.clone(), Per::Day, dec!(5.00))).unwrap();
    let again =
        s.set_limit(&LimitSpec { action: LimitAction::Warn, ..limit(sc.clone(), Per::Day, dec!(7.5)) }).unwrap();
    assert_eq!(first.id, again.id, "same scope, period and metric: the same limit");
    assert_eq!((again.amount, again.action, again.created_at), (dec!(7.5), LimitAction::Warn, first.created_at));
    assert_eq!(again.thresholds, vec![dec!(0.5), dec!(0.8), dec!(1)]);
    let requests = LimitSpec { amount: None, requests: Some(60), ..limit(sc.clone(), Per::Minute, dec!(0)) };
    let rpm = s.set_limit(&requests).unwrap();
    assert_ne!(rpm.id, first.id);
    let listed = s.limits(Some(&sc)).unwrap();
    assert_eq!(
        listed.iter().map(|l| (l.per, l.amount)).collect::<Vec<_>>(),
        vec![(Per::Day, dec!(7.5)), (Per::Minute, dec!(60))]
    );
    assert!(s.remove_limit(&rpm.id).unwrap());
    assert!(!s.remove_limit(&rpm.id).unwrap());
    assert_eq!(s.limits(Some(&sc)).unwrap().len(), 1);

    let field = |r: llmledger_core::Result<llmledger_core::spend::Limit>| {
        r.err().map(|e| (e.code(), e.field().map(String::from)))
    };
    let inv = |f: &str| Some((ErrorCode::InvalidValue, Some(f.to_string())));
    assert_eq!(field(s.set_limit(&limit(sc.clone(), Per::Day, dec!(-1)))), inv("amount"));
    assert_eq!(
        field(s.set_limit(&LimitSpec { tokens: Some(5), ..limit(sc.clone(), Per::Day, dec!(1)) })),
        inv("amount")
    );
    assert_eq!(
        field(s.set_limit(&LimitSpec { currency: Some("XYZ".into()), ..limit(sc.clone(), Per::Day, dec!(1)) })),
        Some((ErrorCode::UnknownCurrency, Some("currency".into())))
    );
    assert_eq!(
        field(s.set_limit(&LimitSpec { thresholds: Some(vec![dec!(1.5)]), ..limit(sc.clone(), Per::Day, dec!(1)) })),
        inv("thresholds")
    );
    let bad_key = Scope::new([("team".to_string(), "a".to_string())].into()).err().unwrap();
    assert_eq!((bad_key.code(), bad_key.field()), (ErrorCode::InvalidValue, Some("scope.team")));
    // The JSON a binding sends: a bad key and a non-numeric amount are typed errors, nothing written.
    let json = serde_json::json!({"scope": {"team": "a"}, "per": "day", "amount": "5"});
    assert!(serde_json::from_value::<LimitSpec>(json).unwrap_err().to_string().contains("unknown scope key"));
    let json = serde_json::json!({"scope": {"user_id": "u"}, "per": "day", "amount": "five"});
    assert!(serde_json::from_value::<LimitSpec>(json).is_err());
}

/// Top-ups are exact, a replayed idempotency key writes nothing, history is newest first.
pub fn top_ups_are_exact_and_idempotent(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig::default());
    let acct = Account::user(format!("{tag}-u1")).unwrap();
    for i in 1..=3 {
        s.credit(&credit(&acct, dec!(0.1), &format!("{tag}-evt-{i}"))).unwrap();
    }
    let first = s.history(&HistoryQuery { account: acct.clone(), limit: None, before: None }).unwrap();
    let replay = s.credit(&credit(&acct, dec!(0.1), &format!("{tag}-evt-1"))).unwrap();
    assert_eq!(replay.id, first[2].id, "the replay returns the first entry");
    let b = s.balance(&acct, None).unwrap();
    // 0.1 + 0.1 + 0.1 = 0.3 exactly (in f64 it is 0.30000000000000004); the replay added nothing.
    assert_eq!(
        (b.exists, b.total, b.reserved, b.available, b.currency.as_str()),
        (true, dec!(0.3), dec!(0), dec!(0.3), "USD")
    );
    assert_eq!(b.total.to_string(), "0.3");
    let history = s.history(&HistoryQuery { account: acct.clone(), limit: Some(10), before: None }).unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[0].id > history[1].id && history[1].id > history[2].id);
    let older =
        s.history(&HistoryQuery { account: acct.clone(), limit: Some(10), before: Some(history[0].id) }).unwrap();
    assert_eq!(older.len(), 2);

    let code = |r: llmledger_core::Result<llmledger_core::spend::Entry>| {
        r.err().map(|e| (e.code(), e.field().map(String::from)))
    };
    assert_eq!(
        code(s.credit(&credit(&acct, dec!(-5), &format!("{tag}-neg")))),
        Some((ErrorCode::InvalidValue, Some("amount".into())))
    );
    assert_eq!(
        code(s.credit(&credit(&acct, dec!(0), &format!("{tag}-zero")))),
        Some((ErrorCode::InvalidValue, Some("amount".into())))
    );
    let krw = CreditRequest { currency: Some("KRW".into()), ..credit(&acct, dec!(1000), &format!("{tag}-krw")) };
    assert_eq!(code(s.credit(&krw)), Some((ErrorCode::InvalidValue, Some("currency".into()))), "the account is in USD");
    let eur = CreditRequest { currency: Some("EUR".into()), ..credit(&acct, dec!(1), &format!("{tag}-eur")) };
    assert_eq!(code(s.credit(&eur)), Some((ErrorCode::UnknownCurrency, Some("currency".into()))));
    assert_eq!(s.balance(&acct, None).unwrap().total, dec!(0.3), "nothing half-written");
    let none = s.balance(&Account::workspace(format!("{tag}-nobody")).unwrap(), None).unwrap();
    assert_eq!((none.exists, none.total), (false, dec!(0)));
    // A KRW account converts USD calls at 1,391.50 per USD.
    let wacct = Account::workspace(format!("{tag}-w")).unwrap();
    s.credit(&CreditRequest { currency: Some("KRW".into()), ..credit(&wacct, dec!(10000), &format!("{tag}-w1")) })
        .unwrap();
    let who = Attribution { workspace_id: Some(format!("{tag}-w")), ..Attribution::default() };
    let id = reserve(&s, &who, dec!(2), "2026-12-02T02:00:00Z").unwrap();
    assert_eq!(s.balance(&wacct, None).unwrap().reserved, dec!(2783.00), "2 USD × 1,391.50");
    settle(&s, &id, dec!(0.001), "2026-12-02T02:00:01Z");
    // 10,000 − 0.001 × 1,391.5 = 10,000 − 1.3915 = 9,998.6085.
    assert_eq!(s.balance(&wacct, None).unwrap().total, dec!(9998.6085));
    assert!(s.verify().unwrap().is_empty());
}

/// Reserve → settle → release against a balance; a refusal carries its detail.
pub fn balances_reserve_settle_release(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig::default());
    let acct = Account::user(format!("{tag}-u1")).unwrap();
    let who = user(&format!("{tag}-u1"));
    let top_up = s.credit(&credit(&acct, dec!(1.00), &format!("{tag}-k"))).unwrap();
    s.set_balance_alert(&acct, Some(dec!(0.80))).unwrap();
    let r1 = reserve(&s, &who, dec!(0.40), "2026-12-02T02:00:00Z").unwrap();
    let b = s.balance(&acct, None).unwrap();
    assert_eq!((b.total, b.reserved, b.available), (dec!(1.00), dec!(0.40), dec!(0.60)));
    let done = settle(&s, &r1, dec!(0.25), "2026-12-02T02:00:01Z");
    assert_eq!(
        (done.found, done.previous_state, done.state),
        (true, Some(ReservationState::Open), Some(ReservationState::Settled))
    );
    let b = s.balance(&acct, None).unwrap();
    assert_eq!((b.total, b.reserved, b.available, b.low_alert), (dec!(0.75), dec!(0), dec!(0.75), Some(dec!(0.80))));
    // 1.00 → 0.75 went below 0.80: one balance_low alert, keyed to the top-up that armed it.
    assert_eq!(done.alerts.len(), 1);
    let low = &done.alerts[0];
    assert_eq!(
        (low.kind, low.threshold, low.amount, low.period.as_str()),
        (AlertKind::BalanceLow, dec!(0.80), dec!(0.75), "balance")
    );
    assert_eq!(low.alert_id, format!("bal:user_id={tag}-u1:{}:0.8", top_up.id));
    let again = settle(&s, &r1, dec!(0.25), "2026-12-02T02:00:02Z");
    assert_eq!(again.previous_state, Some(ReservationState::Settled));
    assert_eq!(s.balance(&acct, None).unwrap().total, dec!(0.75), "a second settle charges nothing");

    let refused = reserve(&s, &who, dec!(0.80), "2026-12-02T02:00:03Z").unwrap_err();
    assert_eq!(refused.code(), ErrorCode::BudgetExceeded);
    let d = refused.budget().unwrap();
    assert_eq!((d.rule.as_str(), d.rule_id.as_str()), ("balance", format!("user_id={tag}-u1").as_str()));
    assert_eq!((d.limit, d.spent, d.reserved, d.requested), (dec!(0.75), dec!(0), dec!(0), dec!(0.80)));
    let json = serde_json::to_value(&refused).unwrap();
    assert_eq!(json["code"], "budget_exceeded");
    assert_eq!(
        (json["budget"]["requested"].as_str(), json["budget"]["scope"]["user_id"].as_str()),
        (Some("0.80"), Some(format!("{tag}-u1").as_str()))
    );

    let r2 = reserve(&s, &who, dec!(0.75), "2026-12-02T02:00:04Z").unwrap();
    assert_eq!(s.balance(&acct, None).unwrap().available, dec!(0));
    let released = s.release(&r2).unwrap();
    assert_eq!(released.state, Some(ReservationState::Released));
    assert_eq!(s.balance(&acct, None).unwrap().available, dec!(0.75));
    // Calls of other users hold nothing and write nothing.
    let other = s.reserve(&ReserveRequest {
        attribution: user(&format!("{tag}-stranger")),
        max_cost: Some(dec!(100)),
        currency: None,
        max_tokens: 1,
        model: String::new(),
        at: None,
    });
    assert_eq!(other.map(|r| r.holds).ok(), Some(0));
    assert!(s.verify().unwrap().is_empty());
}

/// A daily limit counts settled and reserved spend in the limit's day; alerts fire once per
/// threshold and day.
pub fn daily_limit_and_alerts(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig::default());
    let uid = format!("{tag}-u1");
    let who = user(&uid);
    let lim = s.set_limit(&limit(scope(&[("user_id", &uid)]), Per::Day, dec!(5.00))).unwrap();
    // 2026-12-02T10:00Z is 19:00 on 2 Dec in Seoul (the zone the handle was opened with).
    let a = reserve(&s, &who, dec!(3), "2026-12-02T10:00:00Z").unwrap();
    let refused = reserve(&s, &who, dec!(2.5), "2026-12-02T10:00:01Z").unwrap_err();
    let d = refused.budget().unwrap();
    assert_eq!(
        (d.rule.as_str(), d.rule_id.as_str(), d.per.as_deref(), d.period.as_deref()),
        ("limit", lim.id.as_str(), Some("day"), Some("2026-12-02"))
    );
    // 0 settled + 3 reserved + 2.5 requested = 5.5 > 5.00.
    assert_eq!((d.limit, d.spent, d.reserved, d.requested), (dec!(5.00), dec!(0), dec!(3), dec!(2.5)));
    let first = settle(&s, &a, dec!(2.00), "2026-12-02T10:00:02Z");
    assert!(first.alerts.is_empty(), "2.00 is below 50 % (2.50)");
    let b = reserve(&s, &who, dec!(2.5), "2026-12-02T10:00:03Z").unwrap();
    let second = settle(&s, &b, dec!(2.5), "2026-12-02T10:00:04Z");
    // 2.00 + 2.5 = 4.5 crosses 2.5 (50 %) and 4.0 (80 %), not 5.0.
    assert_eq!(second.alerts.iter().map(|a| a.threshold).collect::<Vec<_>>(), vec![dec!(0.5), dec!(0.8)]);
    assert_eq!(second.alerts[0].alert_id, format!("{}:user_id={uid}:2026-12-02:0.5", lim.id));
    assert_eq!(
        (second.alerts[1].amount, second.alerts[1].limit, second.alerts[1].kind),
        (dec!(4.5), Some(dec!(5.00)), AlertKind::LimitThreshold)
    );
    // 15:00Z on 2 Dec is 00:00 on 3 Dec in Seoul: a new day, the whole limit again.
    let c = reserve(&s, &who, dec!(5), "2026-12-02T15:00:00Z").unwrap();
    settle(&s, &c, dec!(0.1), "2026-12-02T15:00:01Z");
    let status = s.limit_status(Some(&lim.scope), Some(utc("2026-12-02T10:30:00Z"))).unwrap();
    assert_eq!(
        (status[0].period.as_str(), status[0].used, status[0].reserved, status[0].remaining),
        ("2026-12-02", dec!(4.5), dec!(0), dec!(0.5))
    );
    // Pending: the refusal's 100 % alert (5.5 would-be), then 50 % and 80 %.
    let mine: Vec<_> =
        s.pending_alerts(1000).unwrap().into_iter().filter(|a| a.alert_id.starts_with(&lim.id)).collect();
    assert_eq!(
        mine.iter().map(|a| (a.threshold, a.amount)).collect::<Vec<_>>(),
        vec![(dec!(1), dec!(5.5)), (dec!(0.5), dec!(4.5)), (dec!(0.8), dec!(4.5))]
    );
    let ids: Vec<String> = mine.iter().map(|a| a.alert_id.clone()).collect();
    assert_eq!(s.mark_alerts_enqueued(&ids).unwrap(), 3);
    assert_eq!(s.mark_alerts_enqueued(&ids).unwrap(), 0);
    assert!(s.pending_alerts(1000).unwrap().iter().all(|a| !a.alert_id.starts_with(&lim.id)));
    assert!(s.verify().unwrap().is_empty());
}

/// A spend spike: today's use on a per-day spend limit reaching `spike_factor` (3) × the mean of the
/// previous 7 days that had spend (at least 3 of them) fires one `spend_spike` alert per day.
pub fn spend_spikes_fire_once_per_day(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig::default());
    let uid = format!("{tag}-u1");
    let who = user(&uid);
    let lim = s.set_limit(&limit(scope(&[("user_id", &uid)]), Per::Day, dec!(100))).unwrap();
    // 03:00Z is noon in Seoul: 25, 26 and 27 Nov spend 1, 2 and 3 (mean 2; the other 4 days had none).
    for (day, cost) in [("2026-11-25", dec!(1)), ("2026-11-26", dec!(2)), ("2026-11-27", dec!(3))] {
        let id = reserve(&s, &who, dec!(5), &format!("{day}T03:00:00Z")).unwrap();
        assert!(settle(&s, &id, cost, &format!("{day}T03:00:01Z")).alerts.is_empty(), "{day}: no baseline yet");
    }
    // 2 Dec: 5 stays below 3 × 2 = 6; 5 + 1.5 = 6.5 crosses it, once.
    let a = reserve(&s, &who, dec!(5), "2026-12-02T03:00:00Z").unwrap();
    assert!(settle(&s, &a, dec!(5), "2026-12-02T03:00:01Z").alerts.is_empty());
    let b = reserve(&s, &who, dec!(5), "2026-12-02T03:00:02Z").unwrap();
    let spike = settle(&s, &b, dec!(1.5), "2026-12-02T03:00:03Z").alerts;
    assert_eq!(spike.len(), 1);
    assert_eq!(spike[0].alert_id, format!("spike:{}:user_id={uid}:2026-12-02", lim.id));
    assert_eq!(
        (spike[0].kind, spike[0].threshold, spike[0].amount, spike[0].limit, spike[0].period.as_str()),
        (AlertKind::SpendSpike, dec!(3), dec!(6.5), Some(dec!(2)), "2026-12-02")
    );
    let c = reserve(&s, &who, dec!(5), "2026-12-02T03:00:04Z").unwrap();
    assert!(settle(&s, &c, dec!(1), "2026-12-02T03:00:05Z").alerts.is_empty(), "once per day");
    // Two days of history are not a baseline: 10 after 1 and 1 fires nothing.
    let newcomer = format!("{tag}-u2");
    s.set_limit(&limit(scope(&[("user_id", &newcomer)]), Per::Day, dec!(100))).unwrap();
    for (day, cost) in [("2026-11-30", dec!(1)), ("2026-12-01", dec!(1)), ("2026-12-02", dec!(10))] {
        let id = reserve(&s, &user(&newcomer), dec!(10), &format!("{day}T03:00:00Z")).unwrap();
        assert!(settle(&s, &id, cost, &format!("{day}T03:00:01Z")).alerts.is_empty(), "{day}");
    }
    // With spike_factor 0 the same history and jump fire nothing.
    let off = open(SpendConfig { spike_factor: dec!(0), ..SpendConfig::default() });
    let quiet = format!("{tag}-u3");
    off.set_limit(&limit(scope(&[("user_id", &quiet)]), Per::Day, dec!(100))).unwrap();
    for day in ["2026-11-28", "2026-11-29", "2026-11-30", "2026-12-02"] {
        let id = reserve(&off, &user(&quiet), dec!(10), &format!("{day}T03:00:00Z")).unwrap();
        let cost = if day == "2026-12-02" { dec!(10) } else { dec!(1) };
        assert!(settle(&off, &id, cost, &format!("{day}T03:00:01Z")).alerts.is_empty(), "{day}");
    }
    assert!(s.verify().unwrap().is_empty());
}

/// Requests and tokens per minute; warn limits never refuse and report a notice.
pub fn rate_limits_and_warn_limits(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig::default());
    let uid = format!("{tag}-u1");
    let who = user(&uid);
    let sc = scope(&[("user_id", &uid)]);
    s.set_limit(&LimitSpec { amount: None, requests: Some(2), ..limit(sc.clone(), Per::Minute, dec!(0)) }).unwrap();
    s.set_limit(&LimitSpec { amount: None, tokens: Some(3500), ..limit(sc.clone(), Per::Day, dec!(0)) }).unwrap();
    s.set_limit(&LimitSpec { action: LimitAction::Warn, ..limit(sc.clone(), Per::Month, dec!(0.01)) }).unwrap();
    let a = reserve(&s, &who, dec!(0.02), "2026-12-02T10:00:00Z").unwrap();
    let _b = reserve(&s, &who, dec!(0.02), "2026-12-02T10:00:10Z").unwrap();
    // A third request in the same minute; its 1,000 tokens would still fit (3,000 ≤ 3,500).
    let third = reserve(&s, &who, dec!(0.02), "2026-12-02T10:00:20Z").unwrap_err();
    assert_eq!(
        third.budget().map(|d| (d.metric.as_str(), d.spent, d.reserved, d.requested)),
        Some(("requests", dec!(0), dec!(2), dec!(1)))
    );
    // The next minute: one more request fits; then 3 × 1,000 tokens reserved + 1,000 > 3,500 a day.
    let _c = reserve(&s, &who, dec!(0.02), "2026-12-02T10:01:00Z").unwrap();
    let tokens = reserve(&s, &who, dec!(0.02), "2026-12-02T10:01:01Z").unwrap_err();
    assert_eq!(
        tokens.budget().map(|d| (d.metric.as_str(), d.reserved, d.requested)),
        Some(("tokens", dec!(3000), dec!(1000)))
    );
    // `a` settled at 500 tokens: 500 + 2,000 reserved + 1,000 = 3,500 fits.
    settle(&s, &a, dec!(0.02), "2026-12-02T10:01:02Z");
    reserve(&s, &who, dec!(0.02), "2026-12-02T10:01:03Z").unwrap();
    let notices = s.take_notices();
    assert_eq!(notices.len(), 1, "the warn limit (0.01 a month) was passed by the 0.02 settlement");
    assert_eq!(notices[0].kind, llmledger_core::ledger::NoticeKind::SpendLimitReached);
    assert!(s.verify().unwrap().is_empty());
}

/// A reservation left open expires and is released by the next caller; settling it later still
/// charges; expired credits are written off; debits take the credit that expires first.
pub fn expiry_of_reservations_and_credits(open: &Open<'_>, tag: &str) {
    let s = open(SpendConfig { reservation_ttl_secs: 600, ..SpendConfig::default() });
    let acct = Account::user(format!("{tag}-u1")).unwrap();
    let who = user(&format!("{tag}-u1"));
    let grant = CreditRequest {
        kind: EntryKind::Grant,
        expires_at: Some(utc("2026-12-03T00:00:00Z")),
        ..credit(&acct, dec!(5.00), &format!("{tag}-grant"))
    };
    s.credit(&grant).unwrap();
    s.credit(&credit(&acct, dec!(3.00), &format!("{tag}-paid"))).unwrap();
    // The process that reserved 7.50 dies: the reservation stays open.
    let dead = reserve(&s, &who, dec!(7.50), "2026-12-02T10:00:00Z").unwrap();
    assert!(reserve(&s, &who, dec!(1), "2026-12-02T10:05:00Z").is_err(), "8.00 − 7.50 held = 0.50 < 1");
    // 10:10:00 is its expires_at: the next caller releases it first.
    let next = reserve(&s, &who, dec!(1), "2026-12-02T10:10:00Z").unwrap();
    assert_eq!(s.balance(&acct, None).unwrap().reserved, dec!(1));
    let late = settle(&s, &dead, dec!(2.00), "2026-12-02T10:11:00Z");
    assert_eq!((late.previous_state, late.state), (Some(ReservationState::Expired), Some(ReservationState::Settled)));
    settle(&s, &next, dec!(0.50), "2026-12-02T10:12:00Z");
    // 8.00 − 2.00 − 0.50 = 5.50; both debits came from the grant (it expires first): 2.50 left of it.
    assert_eq!(s.balance(&acct, Some(utc("2026-12-02T23:59:59Z"))).unwrap().total, dec!(5.50));
    let after = s.balance(&acct, Some(utc("2026-12-03T00:00:00Z"))).unwrap();
    // At its expiry the grant's unused 2.50 is written off: 3.00 (the paid top-up) stays.
    assert_eq!((after.total, after.available), (dec!(3.00), dec!(3.00)));
    let history = s.history(&HistoryQuery { account: acct.clone(), limit: None, before: None }).unwrap();
    let kinds: Vec<(EntryKind, Decimal)> = history.iter().map(|e| (e.kind, e.amount)).collect();
    assert_eq!(
        kinds,
        vec![
            (EntryKind::Expire, dec!(-2.50)),
            (EntryKind::Debit, dec!(-0.50)),
            (EntryKind::Debit, dec!(-2.00)),
            (EntryKind::TopUp, dec!(3.00)),
            (EntryKind::Grant, dec!(5.00)),
        ]
    );
    assert!(history[0].credit_id == Some(history[4].id) && history[2].credit_id == Some(history[4].id));
    assert_eq!(s.balance(&acct, Some(utc("2026-12-04T00:00:00Z"))).unwrap().total, dec!(3.00), "written off once");
    assert!(s.verify().unwrap().is_empty());
}

/// A call whose cost is unknown: refused where a balance applies (fail closed), or the cap reserved.
pub fn unpriced_calls_follow_the_policy(open: &Open<'_>, tag: &str) {
    let uid = format!("{tag}-u1");
    let who = user(&uid);
    let unknown = |s: &Spend| {
        s.reserve(&ReserveRequest {
            attribution: who.clone(),
            max_cost: None,
            currency: None,
            max_tokens: 10,
            model: "gpt-9-imaginary".into(),
            at: None,
        })
    };
    let closed = open(SpendConfig::default());
    assert_eq!(unknown(&closed).map(|r| r.holds).ok(), Some(0), "no rule applies: nothing to refuse");
    closed.credit(&credit(&Account::user(&uid).unwrap(), dec!(1), &format!("{tag}-k"))).unwrap();
    let refused = unknown(&closed).unwrap_err();
    assert_eq!(
        (refused.code(), refused.budget().map(|d| d.rule.as_str())),
        (ErrorCode::BudgetExceeded, Some("unpriced"))
    );
    let capped = open(SpendConfig { unpriced: UnpricedPolicy::Reserve(dec!(0.25)), ..SpendConfig::default() });
    let r = unknown(&capped).unwrap();
    assert_eq!((r.holds, r.max_cost), (1, dec!(0.25)));
    assert_eq!(capped.balance(&Account::user(&uid).unwrap(), None).unwrap().reserved, dec!(0.25));
    assert_eq!("reserve:0.25".parse::<UnpricedPolicy>().ok(), Some(UnpricedPolicy::Reserve(dec!(0.25))));
    // The object a binding passes.
    let config: SpendConfig =
        serde_json::from_str(r#"{"unpriced": {"reserve": "0.25"}, "reservation_ttl_secs": 60}"#).unwrap();
    assert_eq!(
        (config.unpriced, config.reservation_ttl_secs, config.default_max_output_tokens),
        (UnpricedPolicy::Reserve(dec!(0.25)), 60, 4096)
    );
    assert!(serde_json::from_str::<SpendConfig>(r#"{"ttl": 1}"#).is_err(), "unknown keys are refused");
}

/// `threads` threads, each on its own handle (its own connection), reserve and settle against one
/// small balance and one daily limit until refused: settled spend never exceeds either, and every
/// running total matches its entries.
pub fn concurrent_callers_never_overspend(open: &Open<'_>, tag: &str, threads: usize, per_thread: usize) {
    let uid = format!("{tag}-u1");
    let setup = open(SpendConfig::default());
    let acct = Account::user(&uid).unwrap();
    setup.credit(&credit(&acct, dec!(1.00), &format!("{tag}-k"))).unwrap();
    let lim = setup.set_limit(&limit(scope(&[("user_id", &uid)]), Per::Month, dec!(0.90))).unwrap();
    let settled = Arc::new(Mutex::new(Decimal::ZERO));
    let refused = Arc::new(AtomicU64::new(0));
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (settled, refused) = (Arc::clone(&settled), Arc::clone(&refused));
            let uid = uid.clone();
            sc.spawn(move || {
                let s = open(SpendConfig::default());
                for i in 0..per_thread {
                    // Reserve 0.03, spend 0.01 to 0.03: some calls use less than they held.
                    let actual = Decimal::new(1 + ((t + i) % 3) as i64, 2);
                    let req = ReserveRequest {
                        attribution: user(&uid),
                        max_cost: Some(dec!(0.03)),
                        currency: None,
                        max_tokens: 100,
                        model: "gpt-4o".into(),
                        at: Some(utc("2026-12-02T10:00:00Z")),
                    };
                    match s.reserve(&req) {
                        Ok(r) => {
                            let done = s
                                .settle(&SettleRequest {
                                    reservation_id: r.id,
                                    actual_cost: actual,
                                    currency: None,
                                    actual_tokens: 50,
                                    at: Some(utc("2026-12-02T10:00:01Z")),
                                })
                                .unwrap();
                            assert_eq!(done.state, Some(ReservationState::Settled));
                            *settled.lock().unwrap() += actual;
                        }
                        Err(e) => {
                            assert_eq!(e.code(), ErrorCode::BudgetExceeded, "{e}");
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let settled = *settled.lock().unwrap();
    let b = setup.balance(&acct, None).unwrap();
    assert!(settled <= dec!(0.90), "settled {settled} exceeds the limit");
    assert_eq!(b.total, dec!(1.00) - settled, "the balance is exactly the top-up minus what was settled");
    assert_eq!(b.reserved, dec!(0));
    let status = setup.limit_status(Some(&lim.scope), Some(utc("2026-12-02T10:00:00Z"))).unwrap();
    assert_eq!((status[0].used, status[0].reserved), (settled, dec!(0)));
    // The limit is nearly used: what is left is less than one more reservation.
    assert!(dec!(0.90) - settled < dec!(0.03), "left {} unused", dec!(0.90) - settled);
    assert!(refused.load(Ordering::Relaxed) > 0);
    assert!(setup.verify().unwrap().is_empty());
}

/// Every case, for a store reached by `open`.
pub fn all_cases(open: &Open<'_>, tag: &str) {
    limits_are_upserted_listed_and_removed(open, &format!("{tag}-lim"));
    top_ups_are_exact_and_idempotent(open, &format!("{tag}-top"));
    balances_reserve_settle_release(open, &format!("{tag}-bal"));
    daily_limit_and_alerts(open, &format!("{tag}-day"));
    rate_limits_and_warn_limits(open, &format!("{tag}-rate"));
    expiry_of_reservations_and_credits(open, &format!("{tag}-exp"));
    unpriced_calls_follow_the_policy(open, &format!("{tag}-unp"));
    spend_spikes_fire_once_per_day(open, &format!("{tag}-spike"));
}

pub fn scope_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
