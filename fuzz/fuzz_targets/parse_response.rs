//! Fuzzes the usage parsers: any bytes, every provider × API, through both entry points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmledger_core::usage::{parse_response, parse_response_value, Api, Provider};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let value: Option<serde_json::Value> = serde_json::from_str(text).ok();
    for provider in Provider::ALL {
        for api in Api::ALL {
            let by_str = parse_response(provider, api, text, value.as_ref());
            if let Some(v) = &value {
                let by_value = parse_response_value(provider, api, v, value.as_ref());
                assert_eq!(by_str.map_err(|e| e.code()), by_value.map_err(|e| e.code()));
            }
        }
    }
});
