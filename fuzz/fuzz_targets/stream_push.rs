//! libFuzzer entry for `llmledger_fuzz_targets::stream_push_target` (see fuzz-targets/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| llmledger_fuzz_targets::stream_push_target(data));
