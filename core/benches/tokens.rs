//! Token-counting benchmarks: `count_text` on a 4 KB mixed text, `count_chat` and `estimate_usage` of the
//! peers' 20-message chat (target ≤ 1 ms). The engine comparison (tiktoken-rs, tiktoken 3.x, bpe-openai)
//! lives in `bench/` so that the non-adopted engines are never dependencies of this crate.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llmledger_core::estimate::{estimate_usage, EstimateRequest};
use llmledger_core::tokens::{count_chat, count_text, warm_up, Encoding};
use serde_json::Value;
use std::hint::black_box;

/// English, code, JSON, CJK, emoji and whitespace runs, repeated to 4096 bytes.
fn mixed_4k() -> String {
    const SAMPLE: &str = concat!(
        "The quarterly billing report shows usage growing 14% while latency stayed flat; we've cached more.\n\n",
        "fn price(u: &Usage) -> Decimal {\n    u.input_tokens * RATE_IN + u.output_tokens * RATE_OUT\n}\n\n",
        "{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":350}}\n",
        "한국어 문장입니다. 日本語の文章です。这是中文句子。 👍🏽🚀\n",
        "    indented   text\twith\t\ttabs  \n\n",
    );
    let mut s = String::new();
    while s.len() < 4096 {
        s.push_str(SAMPLE);
    }
    let mut end = 4096;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

fn chat20() -> Value {
    serde_json::from_str(include_str!("../tests/data/chat20.json")).unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    warm_up(Encoding::O200kBase);
    warm_up(Encoding::Cl100kBase);
    let text = mixed_4k();
    let mut g = c.benchmark_group("count_text_4k");
    g.throughput(Throughput::Bytes(text.len() as u64));
    for model in ["gpt-4o", "gpt-4", "claude-sonnet-4-5"] {
        g.bench_function(model, |b| b.iter(|| count_text(black_box(model), black_box(&text))));
    }
    g.finish();

    let chat = chat20();
    c.bench_function("count_chat_20_messages_gpt-4o", |b| {
        b.iter(|| count_chat(black_box("gpt-4o"), black_box(&chat), None))
    });
    let req = EstimateRequest { max_output_tokens: Some(1000), ..EstimateRequest::new("gpt-4o", &chat) };
    c.bench_function("estimate_usage_20_messages_gpt-4o", |b| b.iter(|| estimate_usage(black_box(&req))));
}

criterion_group!(tokens, benches);
criterion_main!(tokens);
