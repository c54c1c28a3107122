//! Fuzzes the stream accumulator: the input is split into SSE-like events (`event\0data` per line)
//! and pushed to an accumulator of every provider × API, then finished.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmledger_core::stream::StreamAccumulator;
use llmledger_core::usage::{Api, Provider};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((&selector, _)) = data.split_first() else { return };
    for provider in Provider::ALL {
        for api in Api::ALL {
            let mut acc = StreamAccumulator::new(provider, api, "gpt-4o").with_prompt_estimate(10);
            for line in text.lines() {
                let (event, payload) = match line.split_once('\0') {
                    Some((e, d)) => (Some(e), d),
                    None => (None, line),
                };
                let _ = acc.push(event, payload);
            }
            let usage = if selector % 2 == 0 { acc.finish() } else { acc.finish_aborted() };
            assert!(usage.total_tokens() >= usage.output_tokens);
        }
    }
});
