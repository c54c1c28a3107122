//! The native part of one wrapped call, without any SDK or binding: `Client::classify`, `Tracker::begin`
//! and `PendingCall::finish` on a 1 KB chat completion, into a `memory://` ledger — what core adds to
//! every call on the caller's thread, before a binding's glue. The ledger's writer thread is not timed
//! here (its CPU per event per store is `--bench ledger`'s; a SQLite ledger here would measure the
//! spill path, since this loop outruns any store); `finish` includes parsing, pricing, building the
//! event and the record, and queueing the event.
//!
//! Run: `cargo bench -p llmledger-core --bench call`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use llmledger_core::call::{Client, ClientSpec, RequestFacts};
use llmledger_core::event::Attribution;
use llmledger_core::tracker::{Tracker, TrackerConfig};

const CHAT_BODY: &str = r#"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"The image shows a wooden boardwalk path running through a lush green field or meadow. The sky is bright blue with some scattered clouds, giving the scene a serene and peaceful atmosphere. Trees and shrubs are visible in the background.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#;

fn one_call(tracker: &Tracker, client: &Client) {
    let api = client.classify("post", "/chat/completions").expect("tracked");
    let facts = RequestFacts { path: "/chat/completions", model: Some("gpt-4o"), ..Default::default() };
    let attribution = Attribution { user_id: Some("u1".into()), ..Default::default() };
    let call = tracker.begin(client, api, &facts, attribution);
    black_box(call.finish(CHAT_BODY.as_bytes()).expect("recorded"));
}

fn bench(c: &mut Criterion) {
    let client = Client::new(&ClientSpec { base_url: "https://api.openai.com/v1".into(), ..Default::default() })
        .expect("client");
    let tracker =
        Tracker::new(TrackerConfig { store: Some("memory://".into()), ..Default::default() }).expect("tracker");
    c.bench_function("call_classify_begin_finish", |b| b.iter(|| one_call(&tracker, &client)));
    tracker.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
