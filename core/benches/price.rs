//! Cost-engine benchmarks: price a typical chat `Usage`, resolve a dated alias, convert to KRW.
//! Target (issue 2, §8): price a `Usage` ≤ 200 ns.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use llmledger_core::{PriceDb, PriceOptions, Rates, Usage};

fn bench(c: &mut Criterion) {
    let db = PriceDb::embedded();
    let at = Utc.with_ymd_and_hms(2025, 11, 1, 12, 0, 0).single().expect("valid date");
    let opts = PriceOptions::default();
    let usage = Usage { input_tokens: 1_200, cache_read_tokens: 2_048, output_tokens: 350, ..Usage::default() };

    c.bench_function("price gpt-4o usage", |b| {
        b.iter(|| db.price(black_box(&usage), black_box("gpt-4o"), at, &opts).expect("priced"))
    });
    let resolved = db.resolve("gpt-4o").expect("resolves");
    c.bench_function("price gpt-4o usage, model resolved once", |b| {
        b.iter(|| resolved.price(black_box(&usage), at, &opts).expect("priced"))
    });
    c.bench_function("resolve exact id gpt-4o", |b| {
        b.iter(|| db.resolve(black_box("gpt-4o")).expect("resolves").id().len())
    });
    c.bench_function("resolve dated alias gpt-4o-2024-08-06", |b| {
        b.iter(|| db.resolve(black_box("gpt-4o-2024-08-06")).expect("resolves").id().len())
    });
    c.bench_function("resolve prefixed openai/gpt-4o-2024-08-06", |b| {
        b.iter(|| db.resolve(black_box("openai/gpt-4o-2024-08-06")).expect("resolves").id().len())
    });
    let cost = db.price(&usage, "gpt-4o", at, &opts).expect("priced");
    let rates = Rates::new().with("KRW", "1391.50").expect("valid rate");
    c.bench_function("convert cost to KRW", |b| b.iter(|| black_box(&cost).convert(&rates, "KRW").expect("known")));
}

criterion_group!(benches, bench);
criterion_main!(benches);
