//! The webhook cases shared by the SQLite and PostgreSQL test files, and the real HTTP receiver they
//! run against: a `std::net::TcpListener` thread that reads each request, records it, and answers as
//! its script says (a status, or no answer at all until the client gives up).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmledger_core::alert::{AlertEvent, AlertKind};
use llmledger_core::webhook::{
    delivery_id, verify_signature, DeliveryState, WebhookConfig, WebhookEndpoint, Webhooks, ALERT_ID_HEADER,
    DELIVERY_ID_HEADER, SIGNATURE_HEADER,
};
use rust_decimal::Decimal;

/// What the receiver does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Read the request, then say nothing for this long and close (the client times out first).
    Silence(Duration),
}

/// One request as the receiver saw it, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub reply: Reply,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Default)]
struct State {
    /// Replies for the next requests, in arrival order; then `otherwise`.
    script: Vec<Reply>,
    otherwise: Option<Reply>,
    received: Vec<Received>,
}

/// A local HTTP receiver on a free port.
#[derive(Debug, Clone)]
pub struct Receiver {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Answers `script` in order, then `otherwise` for every later request.
    pub fn start(script: Vec<Reply>, otherwise: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State { script, otherwise: Some(otherwise), received: Vec::new() }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                // A connection per thread: a silent reply must not hold up the next request.
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// From now on, answer every request with `reply`.
    pub fn answer_all(&self, reply: Reply) {
        let mut s = self.state.lock().unwrap();
        s.script.clear();
        s.otherwise = Some(reply);
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let reply = {
        let mut s = state.lock().unwrap();
        let reply = if s.script.is_empty() { s.otherwise.unwrap() } else { s.script.remove(0) };
        s.received.push(Received { headers, body, reply });
        reply
    };
    let mut stream = stream;
    match reply {
        Reply::Status(code) => {
            let _ = write!(stream, "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
        Reply::Silence(d) => std::thread::sleep(d),
    }
}

/// Alert number `i`: user `u{i}` crossed 80 % of a 5.00 USD daily limit.
pub fn alert(i: u32) -> AlertEvent {
    AlertEvent {
        alert_id: format!("lim_test:user_id=u{i}:2026-12-02:0.8"),
        kind: AlertKind::LimitThreshold,
        scope: BTreeMap::from([("user_id".to_string(), format!("u{i}"))]),
        period: "2026-12-02".into(),
        threshold: Decimal::new(8, 1),
        amount: Decimal::new(400 + i64::from(i), 2),
        limit: Some(Decimal::new(500, 2)),
        currency: "USD".into(),
        fired_at: "2026-12-02T05:00:00Z".into(),
    }
}

/// Fast settings for tests: 300 ms timeouts, 20–80 ms backoff, 20 ms polling.
pub fn fast(endpoints: Vec<WebhookEndpoint>, max_attempts: u32) -> WebhookConfig {
    WebhookConfig {
        endpoints,
        max_attempts,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(80),
        jitter: true,
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(20),
        batch_size: 8,
    }
}

/// Polls `done` until it holds or 15 s pass.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Checks one received request against `alert` sent to `endpoint` signed with `secret`.
fn check_request(r: &Received, endpoint: &WebhookEndpoint, secret: &str) -> AlertEvent {
    verify_signature(secret, r.header(SIGNATURE_HEADER), &r.body, now(), Duration::from_secs(300)).unwrap();
    let sent: AlertEvent = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.header(ALERT_ID_HEADER), sent.alert_id);
    assert_eq!(r.header(DELIVERY_ID_HEADER), delivery_id(&sent.alert_id, endpoint.key()));
    assert_eq!(r.header("content-type"), "application/json");
    sent
}

/// A receiver that fails (500 × 3), stays silent past the timeout (× 2), then recovers, and a second
/// endpoint that always answers 200: every alert reaches each endpoint exactly once after dedupe by
/// delivery id (here even before: a 2xx is never retried), every request's signature verifies with its
/// endpoint's secret, and the outbox counts exactly the attempts the receivers saw.
pub fn flaky_receiver_gets_each_alert_once(url: &str) {
    let flaky = Receiver::start(
        vec![
            Reply::Status(500),
            Reply::Status(500),
            Reply::Status(500),
            Reply::Silence(Duration::from_secs(1)),
            Reply::Silence(Duration::from_secs(1)),
        ],
        Reply::Status(200),
    );
    let steady = Receiver::start(vec![], Reply::Status(204));
    let a = WebhookEndpoint::new(&flaky.url("/hooks/a"), "whsec_a").unwrap();
    let b = WebhookEndpoint::new(&steady.url("/hooks/b"), "whsec_b").unwrap();
    let hooks = Webhooks::open(url, fast(vec![a.clone(), b.clone()], 10)).unwrap();
    let alerts: Vec<AlertEvent> = (1..=3).map(alert).collect();
    for al in &alerts {
        assert_eq!(hooks.enqueue(al).unwrap(), 2);
    }
    // Enqueueing again (a replay after a crash, another process) adds nothing.
    assert_eq!(hooks.enqueue(&alerts[0]).unwrap(), 0);
    wait_until("six deliveries", || {
        hooks.deliveries().unwrap().iter().filter(|d| d.state == DeliveryState::Delivered).count() == 6
    });
    hooks.close().unwrap();

    let flaky_seen = flaky.received();
    let steady_seen = steady.received();
    // 3 × 500, 2 silent, then one 200 per alert.
    assert_eq!(flaky_seen.len(), 8, "{flaky_seen:?}");
    assert_eq!(steady_seen.len(), 3);
    for (seen, endpoint, secret) in [(&flaky_seen, &a, "whsec_a"), (&steady_seen, &b, "whsec_b")] {
        let mut delivered: BTreeMap<String, AlertEvent> = BTreeMap::new();
        for r in seen.iter() {
            let sent = check_request(r, endpoint, secret);
            if matches!(r.reply, Reply::Status(200 | 204)) {
                let first = delivered.insert(r.header(DELIVERY_ID_HEADER).to_string(), sent);
                assert!(first.is_none(), "delivered twice: {}", r.header(DELIVERY_ID_HEADER));
            }
        }
        let got: Vec<AlertEvent> = delivered.into_values().collect();
        let mut want = alerts.clone();
        want.sort_by_key(|al| delivery_id(&al.alert_id, endpoint.key()));
        assert_eq!(got, want);
    }
    // The other endpoint's secret does not verify these bodies.
    let r = &steady_seen[0];
    assert!(verify_signature("whsec_a", r.header(SIGNATURE_HEADER), &r.body, now(), Duration::from_secs(300)).is_err());

    let rows = Webhooks::open(url, fast(vec![], 10)).unwrap().deliveries().unwrap();
    assert_eq!(rows.len(), 6);
    let attempts = |key: &str| rows.iter().filter(|d| d.endpoint == key).map(|d| d.attempts).sum::<u32>();
    assert_eq!(attempts(a.key()), 8);
    assert_eq!(attempts(b.key()), 3);
    assert!(rows.iter().all(|d| d.last_error.is_none() && matches!(d.last_status, Some(200 | 204))));
}

/// A receiver that always answers 503: after `max_attempts` (3) the delivery is a dead letter, the
/// receiver saw exactly 3 requests, and the row keeps the last status and a reason without the URL.
pub fn dead_letter_after_max_attempts(url: &str) {
    let down = Receiver::start(vec![], Reply::Status(503));
    let endpoint = WebhookEndpoint::new(&down.url("/hooks/T0K3N"), "whsec_dead").unwrap();
    let hooks = Webhooks::open(url, fast(vec![endpoint.clone()], 3)).unwrap();
    hooks.enqueue(&alert(7)).unwrap();
    wait_until("a dead letter", || hooks.deliveries().unwrap().iter().any(|d| d.state == DeliveryState::Dead));
    // Nothing more is sent once it is dead.
    std::thread::sleep(Duration::from_millis(150));
    hooks.close().unwrap();
    assert_eq!(down.received().len(), 3);
    // The wire format: the alert's fields in order, decimals as strings.
    let body = String::from_utf8(down.received()[0].body.clone()).unwrap();
    assert_eq!(
        body,
        r#"{"alert_id":"lim_test:user_id=u7:2026-12-02:0.8","kind":"limit_threshold","scope":{"user_id":"u7"},"period":"2026-12-02","threshold":"0.8","amount":"4.07","limit":"5.00","currency":"USD","fired_at":"2026-12-02T05:00:00Z"}"#
    );
    for r in down.received() {
        check_request(&r, &endpoint, "whsec_dead");
    }
    let rows = Webhooks::open(url, fast(vec![], 3)).unwrap().deliveries().unwrap();
    assert_eq!(rows.len(), 1);
    let d = &rows[0];
    assert_eq!((d.state, d.attempts, d.last_status), (DeliveryState::Dead, 3, Some(503)));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(d.delivery_id, delivery_id(&alert(7).alert_id, endpoint.key()));
    let stats = hooks.stats();
    assert_eq!((stats.delivered, stats.failed_attempts, stats.dead), (0, 3, 1));
}

/// A first dispatcher meets a receiver that is down (503) and is closed with both alerts still
/// pending; a new dispatcher on the same store, once the receiver is back, delivers each exactly once.
pub fn restart_delivers_what_was_pending(url: &str) {
    let receiver = Receiver::start(vec![], Reply::Status(503));
    let endpoint = WebhookEndpoint::new(&receiver.url("/hooks/r"), "whsec_r").unwrap();
    let slow_retry = WebhookConfig {
        initial_backoff: Duration::from_millis(300),
        max_backoff: Duration::from_millis(300),
        ..fast(vec![endpoint.clone()], 5)
    };
    let first = Webhooks::open(url, slow_retry.clone()).unwrap();
    first.enqueue(&alert(1)).unwrap();
    first.enqueue(&alert(2)).unwrap();
    wait_until("two failed attempts", || receiver.received().len() == 2);
    first.close().unwrap();
    let pending = first.deliveries().unwrap();
    assert_eq!(pending.iter().map(|d| (d.state, d.attempts)).collect::<Vec<_>>(), [(DeliveryState::Pending, 1); 2]);
    drop(first);

    receiver.answer_all(Reply::Status(200));
    let second = Webhooks::open(url, slow_retry).unwrap();
    wait_until("both delivered after the restart", || {
        second.deliveries().unwrap().iter().all(|d| d.state == DeliveryState::Delivered)
    });
    second.close().unwrap();
    let seen = receiver.received();
    assert_eq!(seen.len(), 4);
    let mut delivered: Vec<String> = seen
        .iter()
        .filter(|r| r.reply == Reply::Status(200))
        .map(|r| check_request(r, &endpoint, "whsec_r").alert_id)
        .collect();
    delivered.sort();
    assert_eq!(delivered, [alert(1).alert_id, alert(2).alert_id]);
    let rows = second.deliveries().unwrap();
    assert!(rows.iter().all(|d| d.attempts == 2 && d.last_status == Some(200)), "{rows:?}");
}

/// Two dispatchers on one store (two app servers), 24 alerts each enqueued through both handles:
/// the leases give every row to one sender, so the receiver sees each delivery exactly once.
pub fn two_dispatchers_never_send_a_row_twice(url: &str) {
    let receiver = Receiver::start(vec![], Reply::Status(200));
    let endpoint = WebhookEndpoint::new(&receiver.url("/hooks/two"), "whsec_two").unwrap();
    let config = WebhookConfig { batch_size: 4, ..fast(vec![endpoint.clone()], 5) };
    let one = Webhooks::open(url, config.clone()).unwrap();
    let two = Webhooks::open(url, config).unwrap();
    let mut new = 0;
    for i in 0..24 {
        new += one.enqueue(&alert(i)).unwrap();
        new += two.enqueue(&alert(i)).unwrap();
    }
    assert_eq!(new, 24);
    wait_until("24 deliveries", || {
        one.deliveries().unwrap().iter().filter(|d| d.state == DeliveryState::Delivered).count() == 24
    });
    one.close().unwrap();
    two.close().unwrap();
    let seen = receiver.received();
    assert_eq!(seen.len(), 24);
    let mut ids: Vec<String> = seen.iter().map(|r| check_request(r, &endpoint, "whsec_two").alert_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 24);
    assert_eq!(one.stats().delivered + two.stats().delivered, 24);
}

/// A process (the `webhook_enqueue` example at `exe`) enqueues 3 alerts and is SIGKILLed while its 3
/// requests hang in the receiver; a new dispatcher on the same store finds the rows leased by the dead
/// process, sends them again once the lease lapses (4 s: 1.5 s + 1.5 s timeouts + 1 s), and the
/// receiver gets each alert with a 2xx exactly once.
pub fn sigkill_mid_send_loses_nothing(url: &str, exe: &std::path::Path) {
    let receiver = Receiver::start(vec![], Reply::Silence(Duration::from_secs(5)));
    let endpoint_url = receiver.url("/hooks/crash");
    let endpoint = WebhookEndpoint::new(&endpoint_url, "whsec_crash").unwrap();
    let mut child = std::process::Command::new(exe)
        .args([url, &endpoint_url, "whsec_crash", "3", "1500"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "enqueued");
    wait_until("three requests in flight", || receiver.received().len() == 3);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let rows = Webhooks::open(url, fast(vec![], 10)).unwrap().deliveries().unwrap();
    let states: Vec<_> = rows.iter().map(|d| (d.state, d.attempts)).collect();
    assert_eq!(states, [(DeliveryState::Pending, 1); 3], "leased by the dead process");
    receiver.answer_all(Reply::Status(200));
    let hooks = Webhooks::open(url, fast(vec![endpoint.clone()], 10)).unwrap();
    wait_until("all three delivered", || {
        hooks.deliveries().unwrap().iter().all(|d| d.state == DeliveryState::Delivered)
    });
    hooks.close().unwrap();
    let seen = receiver.received();
    assert_eq!(seen.len(), 6);
    let mut delivered: Vec<String> = seen
        .iter()
        .filter(|r| r.reply == Reply::Status(200))
        .map(|r| check_request(r, &endpoint, "whsec_crash").alert_id)
        .collect();
    delivered.sort();
    let want: Vec<String> = (0..3).map(|i| format!("crash:user_id=u{i}:2026-12-02:1")).collect();
    assert_eq!(delivered, want);
    assert!(hooks.deliveries().unwrap().iter().all(|d| d.attempts == 2), "one attempt each before and after the kill");
}
