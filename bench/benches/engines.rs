//! Criterion engine comparison on in-repo text (the 20-message chat's contents, ~34 KB, and a 4 KB mixed
//! text with code, JSON, CJK and emoji): tiktoken-rs (baseline), tiktoken 3.x, bpe-openai, and llmledger's
//! adopted engine. The 2 MiB peers corpus comparison is `tokens-engines` run by the peers driver.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llmledger_core::tokens::{count_text_with, warm_up, Encoding};

fn texts() -> Vec<(&'static str, String)> {
    let chat: serde_json::Value =
        serde_json::from_str(include_str!("../../core/tests/data/chat20.json")).unwrap_or_default();
    let prose: Vec<&str> =
        chat.as_array().map(|m| m.iter().filter_map(|x| x["content"].as_str()).collect()).unwrap_or_default();
    const SAMPLE: &str = concat!(
        "The quarterly billing report shows usage growing 14% while latency stayed flat; we've cached more.\n\n",
        "fn price(u: &Usage) -> Decimal {\n    u.input_tokens * RATE_IN + u.output_tokens * RATE_OUT\n}\n\n",
        "{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":350}}\n",
        "한국어 문장입니다. 日本語の文章です。这是中文句子。 👍🏽🚀\n",
        "    indented   text\twith\t\ttabs  \n\n",
    );
    vec![("chat20_prose", prose.join("\n\n")), ("mixed_4k", SAMPLE.repeat(4096 / SAMPLE.len() + 1))]
}

fn engines(c: &mut Criterion) {
    for (enc_name, enc) in [("o200k", Encoding::O200kBase), ("cl100k", Encoding::Cl100kBase)] {
        warm_up(enc);
        let (rs, t3, bpe) = match enc {
            Encoding::O200kBase => (tiktoken_rs::o200k_base_singleton(), "o200k_base", bpe_openai::o200k_base()),
            Encoding::Cl100kBase => (tiktoken_rs::cl100k_base_singleton(), "cl100k_base", bpe_openai::cl100k_base()),
        };
        let Some(t3) = tiktoken::get_encoding(t3) else { continue };
        for (name, text) in texts() {
            let mut g = c.benchmark_group(format!("engines/{enc_name}/{name}"));
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_function("tiktoken-rs", |b| b.iter(|| rs.encode_ordinary(black_box(&text)).len()));
            g.bench_function("tiktoken3", |b| b.iter(|| t3.count(black_box(&text))));
            g.bench_function("bpe-openai", |b| b.iter(|| bpe.count(black_box(text.as_str()))));
            g.bench_function("llmledger", |b| b.iter(|| count_text_with(enc, black_box(&text))));
            g.finish();
        }
    }
}

criterion_group!(benches, engines);
criterion_main!(benches);
