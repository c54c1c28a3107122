//! Usage normalization and stream accumulation speed: parse (and parse + price) a realistic OpenAI chat
//! completion, push
//! one OpenAI stream delta chunk, push one Anthropic `content_block_delta` (both include counting the
//! delta's text with the local tokenizer), and push the final usage chunk of an OpenAI stream.

use criterion::{criterion_group, criterion_main, Criterion};
use llmledger_core::stream::StreamAccumulator;
use llmledger_core::usage::{parse_response, Api, Provider};
use llmledger_core::{PriceDb, PriceOptions};
use std::hint::black_box;

/// A real-shaped gpt-4o chat completion, about 1 KB.
const CHAT_BODY: &str = r#"{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The image shows a wooden boardwalk path running through a lush green field or meadow. The sky is bright blue with some scattered clouds, giving the scene a serene and peaceful atmosphere. Trees and shrubs are visible in the background.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {
      "cached_tokens": 1024,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}"#;

const OPENAI_DELTA: &str = r#"{"id":"chatcmpl-BBsmAq8RxLxQnE1Hs3kbw","object":"chat.completion.chunk","created":1742000000,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"content":" scattering"},"logprobs":null,"finish_reason":null}],"usage":null}"#;

const OPENAI_USAGE: &str = r#"{"id":"chatcmpl-BBsmAq8RxLxQnE1Hs3kbw","object":"chat.completion.chunk","created":1742000000,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":9,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#;

const ANTHROPIC_DELTA: &str =
    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" scattering"}}"#;

fn bench(c: &mut Criterion) {
    c.bench_function("parse_response openai chat (1 KB)", |b| {
        b.iter(|| parse_response(Provider::OpenAi, Api::ChatCompletions, black_box(CHAT_BODY), None))
    });
    // The whole non-streaming path of a wrapped call, minus the ledger's enqueue: normalize, then price.
    let db = PriceDb::embedded();
    let at = chrono::Utc::now();
    let opts = PriceOptions::default();
    c.bench_function("parse_response + price openai chat (1 KB)", |b| {
        b.iter(|| {
            let usage = parse_response(Provider::OpenAi, Api::ChatCompletions, black_box(CHAT_BODY), None)?;
            db.price(&usage, black_box("gpt-4o-2024-08-06"), at, &opts)
        })
    });
    let mut acc = StreamAccumulator::new(Provider::OpenAi, Api::ChatCompletions, "gpt-4o");
    c.bench_function("stream push openai delta chunk", |b| b.iter(|| acc.push(None, black_box(OPENAI_DELTA))));
    let mut acc = StreamAccumulator::new(Provider::OpenAi, Api::ChatCompletions, "gpt-4o");
    c.bench_function("stream push openai usage chunk", |b| b.iter(|| acc.push(None, black_box(OPENAI_USAGE))));
    let mut acc = StreamAccumulator::new(Provider::Anthropic, Api::Messages, "claude-sonnet-4-5");
    c.bench_function("stream push anthropic content_block_delta", |b| {
        b.iter(|| acc.push(Some("content_block_delta"), black_box(ANTHROPIC_DELTA)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
