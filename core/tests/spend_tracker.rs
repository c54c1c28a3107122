//! Spend control through the tracker, as the bindings drive it: `begin` → `set_request_body` →
//! `admit` (reserve or refuse, before anything is sent) → `finish` / `fail` / stream end or drop
//! (settle or release), on a SQLite file.
#![allow(clippy::unwrap_used)]

mod webhook_common;

use std::sync::mpsc;
use std::time::Duration;

use llmledger_core::alert::{AlertEvent, AlertKind};
use llmledger_core::call::{Client, ClientSpec, RequestFacts};
use llmledger_core::event::Attribution;
use llmledger_core::spend::{Account, LimitAction, LimitSpec, Per, Scope};
use llmledger_core::tracker::{Tracker, TrackerConfig, TrackerOptions};
use llmledger_core::webhook::{verify_signature, WebhookSpec, SIGNATURE_HEADER};
use llmledger_core::{Api, ErrorCode};
use rust_decimal_macros::dec;
use webhook_common::{wait_until, Receiver, Reply};

const CHAT: &[u8] = br#"{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","usage":{"prompt_tokens":1200,
    "completion_tokens":350,"total_tokens":1550,"prompt_tokens_details":{"cached_tokens":1024}}}"#;

fn body(max_tokens: u32, content: &str) -> String {
    serde_json::json!({"model": "gpt-4o", "max_tokens": max_tokens, "messages": [{"role": "user", "content": content}]})
        .to_string()
}

#[test]
fn calls_reserve_before_sending_and_settle_or_release_after() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let t = Tracker::new(TrackerConfig { store: Some(url), keep_dropped_records: true, ..TrackerConfig::default() })
        .unwrap();
    let client = Client::new(&ClientSpec::default()).unwrap();
    let u1 = Attribution { user_id: Some("u1".into()), ..Attribution::default() };
    let chat = RequestFacts { model: Some("gpt-4o"), ..RequestFacts::default() };

    // No limit or balance anywhere: nothing is checked and the body is not even asked for.
    let mut free = t.begin(&client, Api::ChatCompletions, &chat, u1.clone());
    assert!(!free.wants_request_body());
    free.admit().unwrap();
    free.finish(CHAT).unwrap();

    let spend = t.spend().unwrap();
    let acct = Account::user("u1").unwrap();
    spend.top_up(&acct, dec!(0.02), Some("stripe_evt_1")).unwrap();

    let mut call = t.begin(&client, Api::ChatCompletions, &chat, u1.clone());
    assert!(call.wants_request_body(), "spend control needs the body to price the worst case");
    call.set_request_body(&body(1000, "Hello"));
    call.admit().unwrap();
    // 8 prompt tokens × $2.50/M + 1,000 output × $10/M = 0.00002 + 0.01.
    assert_eq!(spend.balance(&acct, None).unwrap().reserved, dec!(0.01002));
    let tracked = call.finish(CHAT).unwrap();
    // Settled at the recorded cost: 176 × $2.50/M + 1,024 × $1.25/M + 350 × $10/M = 0.00522.
    assert_eq!(tracked.cost.as_ref().map(|c| c.total), Some(dec!(0.00522)));
    let b = spend.balance(&acct, None).unwrap();
    assert_eq!((b.total, b.reserved), (dec!(0.01478), dec!(0)));

    // 0.00002 + 2,000 × $10/M = 0.02002 > 0.01478 available: refused before anything is sent.
    let mut big = t.begin(&client, Api::ChatCompletions, &chat, u1.clone());
    big.set_request_body(&body(2000, "Hello"));
    let refused = big.admit().unwrap_err();
    assert_eq!(refused.code(), ErrorCode::BudgetExceeded);
    let d = refused.budget().unwrap();
    assert_eq!((d.limit, d.reserved, d.requested), (dec!(0.01478), dec!(0), dec!(0.02002)));
    drop(big);

    // A call the provider failed releases its reservation.
    let mut failing = t.begin(&client, Api::ChatCompletions, &chat, u1.clone());
    failing.set_request_body(&body(100, "Hello"));
    failing.admit().unwrap();
    assert_eq!(spend.balance(&acct, None).unwrap().reserved, dec!(0.00102));
    failing.fail("APIConnectionError").unwrap();
    assert_eq!(spend.balance(&acct, None).unwrap().reserved, dec!(0));

    // A call admitted and then dropped (the binding never sent it) releases too.
    let mut never_sent = t.begin(&client, Api::ChatCompletions, &chat, u1.clone());
    never_sent.set_request_body(&body(100, "Hello"));
    never_sent.admit().unwrap();
    drop(never_sent);
    assert_eq!(spend.balance(&acct, None).unwrap().reserved, dec!(0));

    // An abandoned stream settles what it counted.
    let stream_facts = RequestFacts { model: Some("gpt-4o"), stream: true, ..RequestFacts::default() };
    let mut streamed = t.begin(&client, Api::ChatCompletions, &stream_facts, u1.clone());
    streamed.set_request_body(&body(100, "Say hello"));
    streamed.admit().unwrap();
    let mut stream = streamed.into_stream();
    stream.push_event(None, r#"{"id":"c3","choices":[{"index":0,"delta":{"content":"Hello there"}}]}"#).unwrap();
    drop(stream);
    let dropped = t.take_dropped();
    let cost = dropped[0].cost.as_ref().map(|c| c.total).unwrap();
    // 9 prompt tokens (3 + 1 + 2 + 3) × $2.50/M + 2 output × $10/M = 0.0000225 + 0.00002.
    assert_eq!(cost, dec!(0.0000425));
    let b = spend.balance(&acct, None).unwrap();
    assert_eq!((b.total, b.reserved), (dec!(0.0147375), dec!(0)));
    assert!(spend.verify().unwrap().is_empty());
    assert!(t.take_notices(None).is_empty(), "no spend-store failure was reported");
}

#[test]
fn a_workspace_limit_blocks_every_user_in_it() {
    let t = Tracker::new(TrackerConfig { store: Some("memory://".into()), ..TrackerConfig::default() }).unwrap();
    let client = Client::new(&ClientSpec::default()).unwrap();
    let spend = t.spend().unwrap();
    let scope = Scope::new([("workspace_id".to_string(), "w1".to_string())].into()).unwrap();
    let spec = LimitSpec {
        scope,
        per: Per::Day,
        amount: None,
        currency: None,
        requests: Some(1),
        tokens: None,
        action: LimitAction::Block,
        thresholds: None,
        timezone: None,
    };
    spend.set_limit(&spec).unwrap();
    let chat = RequestFacts { model: Some("gpt-4o"), ..RequestFacts::default() };
    let who =
        |u: &str| Attribution { user_id: Some(u.into()), workspace_id: Some("w1".into()), ..Attribution::default() };
    let mut first = t.begin(&client, Api::ChatCompletions, &chat, who("a"));
    first.set_request_body(&body(10, "Hi"));
    first.admit().unwrap();
    first.finish(CHAT).unwrap();
    let mut second = t.begin(&client, Api::ChatCompletions, &chat, who("b"));
    second.set_request_body(&body(10, "Hi"));
    let e = second.admit().unwrap_err();
    assert_eq!(e.budget().map(|d| (d.metric.as_str(), d.spent, d.limit)), Some(("requests", dec!(1), dec!(1))));
    // Another workspace is not limited.
    let mut other = t.begin(
        &client,
        Api::ChatCompletions,
        &chat,
        Attribution { workspace_id: Some("w2".into()), ..Attribution::default() },
    );
    other.set_request_body(&body(10, "Hi"));
    other.admit().unwrap();
}

#[test]
fn a_spend_store_failure_is_noticed_at_most_once_a_minute() {
    use llmledger_core::ledger::{Notice, NoticeKind, NoticeLevel};
    let t = Tracker::new(TrackerConfig { store: Some("memory://".into()), ..TrackerConfig::default() }).unwrap();
    let spend = t.spend().unwrap();
    let start = chrono::Utc::now();
    let failure = |secs: i64| Notice {
        level: NoticeLevel::Warning,
        kind: NoticeKind::SpendStoreFailed,
        message: format!("failed at +{secs} s"),
        at: start + chrono::Duration::seconds(secs),
        error: None,
        spilled_events: 0,
        queued_events: 0,
        replayed_events: 0,
        down_secs: None,
    };
    // A store that stays down fails every call: one notice, then one reminder a minute later.
    for secs in [0, 1, 30, 59, 60, 61, 119, 120] {
        spend.notice(failure(secs));
    }
    let kept: Vec<String> = spend.take_notices().into_iter().map(|n| n.message).collect();
    assert_eq!(kept, ["failed at +0 s", "failed at +60 s", "failed at +120 s"]);
}

/// A sink that sends every alert it is handed down a channel.
fn channel_sink() -> (llmledger_core::alert_pump::AlertSink, mpsc::Receiver<AlertEvent>) {
    let (tx, rx) = mpsc::channel();
    (Box::new(move |a: &AlertEvent| tx.send(a.clone()).unwrap_or(())), rx)
}

/// One gpt-4o call for `user` that finishes at 0.00522 (see the first test), admitted first.
fn one_call(t: &Tracker, user: &str) {
    let client = Client::new(&ClientSpec::default()).unwrap();
    let facts = RequestFacts { model: Some("gpt-4o"), ..RequestFacts::default() };
    let who = Attribution { user_id: Some(user.into()), ..Attribution::default() };
    let mut call = t.begin(&client, Api::ChatCompletions, &facts, who);
    call.set_request_body(&body(100, "Hello"));
    call.admit().unwrap();
    call.finish(CHAT).unwrap();
}

#[test]
fn the_pump_hands_an_alert_to_the_webhook_and_the_sink_once_woken_by_the_settlement() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let receiver = Receiver::start(Vec::new(), Reply::Status(200));
    let options = TrackerOptions {
        webhooks: vec![WebhookSpec { url: receiver.url("/hooks"), secret: "whsec_pump".into() }],
        // Far longer than the test: only the settlement's wake-up can deliver in time.
        alert_poll_ms: 600_000,
        ..TrackerOptions::default()
    };
    let t = Tracker::with_options(TrackerConfig { store: Some(url), ..TrackerConfig::default() }, options).unwrap();
    let (sink, alerts) = channel_sink();
    t.set_alert_sink(Some(sink)).unwrap();
    let spend = t.spend().unwrap();
    let acct = Account::user("u1").unwrap();
    let credit = spend.top_up(&acct, dec!(0.02), Some("evt_pump")).unwrap();
    spend.set_balance_alert(&acct, Some(dec!(0.015))).unwrap();
    one_call(&t, "u1");
    // 0.02 − 0.00522 = 0.01478 < 0.015.
    let alert = alerts.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(alert.alert_id, format!("bal:user_id=u1:{}:0.015", credit.id));
    assert_eq!((alert.kind, alert.amount, alert.threshold), (AlertKind::BalanceLow, dec!(0.01478), dec!(0.015)));
    wait_until("the webhook", || receiver.received().len() == 1);
    let request = &receiver.received()[0];
    let now = chrono::Utc::now().timestamp();
    verify_signature("whsec_pump", request.header(SIGNATURE_HEADER), &request.body, now, Duration::from_secs(300))
        .unwrap();
    assert_eq!(serde_json::from_slice::<AlertEvent>(&request.body).unwrap(), alert);
    assert!(spend.pending_alerts(100).unwrap().is_empty(), "marked once handed on");
    assert_eq!(t.deliver_alerts().unwrap(), 0);
    t.close().unwrap();
    assert_eq!(receiver.received().len(), 1);
    assert!(alerts.try_recv().is_err(), "handed to the sink once");
}

#[test]
fn an_alert_left_pending_reaches_the_next_tracker_with_a_sink() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let config = || TrackerConfig { store: Some(url.clone()), ..TrackerConfig::default() };
    let first = Tracker::new(config()).unwrap();
    let spend = first.spend().unwrap();
    let spec: LimitSpec =
        serde_json::from_str(r#"{"scope": {"user_id": "u2"}, "per": "day", "amount": "0.01"}"#).unwrap();
    let limit = spend.set_limit(&spec).unwrap();
    // 0.00522 crosses 50 % of 0.01 (0.005). Nowhere to deliver: the alert stays pending, unmarked.
    one_call(&first, "u2");
    assert_eq!(first.deliver_alerts().unwrap(), 0);
    let pending = spend.pending_alerts(100).unwrap();
    assert_eq!(pending.iter().map(|a| a.threshold).collect::<Vec<_>>(), vec![dec!(0.5)]);
    drop(first);
    // The next process on the store, with a callback, gets it: at least once across a crash.
    let second = Tracker::new(config()).unwrap();
    let (sink, alerts) = channel_sink();
    second.set_alert_sink(Some(sink)).unwrap();
    let got = alerts.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(got.alert_id.starts_with(&limit.id) && got.alert_id.ends_with(":0.5"), "{}", got.alert_id);
    assert_eq!(second.deliver_alerts().unwrap(), 0);
    assert!(alerts.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn webhook_options_are_checked_at_construction() {
    let options = |json: &str| TrackerOptions::from_json(json);
    let bad_url = options(r#"{"webhooks": [{"url": "ftp://hooks.example.com/x", "secret": "s"}]}"#).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = || TrackerConfig {
        store: Some(format!("sqlite://{}", dir.path().join("l.db").display())),
        ..TrackerConfig::default()
    };
    let e = Tracker::with_options(file(), bad_url).unwrap_err();
    assert_eq!((e.code(), e.field(), e.value()), (ErrorCode::InvalidValue, Some("webhooks[0].url"), Some("ftp:")));
    let good = r#"{"webhooks": [{"url": "http://127.0.0.1:9/x", "secret": "s"}]}"#;
    let in_memory = TrackerConfig { store: Some("memory://".into()), ..TrackerConfig::default() };
    assert_eq!(Tracker::with_options(in_memory, options(good).unwrap()).unwrap_err().code(), ErrorCode::Config);
    assert_eq!(options(r#"{"webhook": []}"#).unwrap_err().code(), ErrorCode::Config);
    let misplaced = options(r#"{"webhooks": "https://hooks.example.com/T0K3N"}"#).unwrap_err();
    assert!(!misplaced.to_string().contains("T0K3N"), "{misplaced}");
    assert_eq!(options(r#"{"spend": {"spike_factor": "-1"}}"#).map(|o| o.spend.spike_factor), Ok(dec!(-1)));
    let negative = options(r#"{"spend": {"spike_factor": "-1"}}"#).unwrap();
    assert_eq!(Tracker::with_options(file(), negative).unwrap_err().field(), Some("spend.spike_factor"));
    let parsed = options(r#"{"spend": {"reservation_ttl_secs": 5}, "alert_poll_ms": 50}"#).unwrap();
    assert_eq!((parsed.spend.reservation_ttl_secs, parsed.alert_poll_ms), (5, 50));
}
