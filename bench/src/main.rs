//! Token-counting engine comparison for the peer benchmark driver (`bench/peers/run_all.py`, run by
//! `bench/peers/run.sh`): each invocation runs one case in its own process and prints one JSON line
//! in the driver's schema, so init time and peak RSS are per engine.
//!
//! ```text
//! tokens-engines ENGINE CORPUS ENCODING whole|msgs [REPS]   # section A: throughput
//! tokens-engines llmledger-chat20 CHAT_JSON [REPS]         # section B: count_chat("gpt-4o", 20 messages)
//! tokens-engines ENGINE first-count ENCODING               # section C: new process, first count of "hi"
//! tokens-engines verify CORPUS                             # every engine == tiktoken-rs, whole and msgs
//! ```
//! ENGINE: `tiktoken-rs` (baseline), `tiktoken3` (crates.io `tiktoken` 3.x), `bpe-openai`, `llmledger`
//! (the engine behind `llmledger_core::tokens::count_text`).

// Timing arithmetic only; no money here.
#![allow(clippy::float_arithmetic)]

use std::process::ExitCode;
use std::time::Instant;

use llmledger_core::tokens::{self, Encoding};

type Counter = Box<dyn Fn(&str) -> usize>;

const ENGINES: [&str; 4] = ["tiktoken-rs", "tiktoken3", "bpe-openai", "llmledger"];

fn lib_name(engine: &str) -> &'static str {
    match engine {
        "tiktoken-rs" => "tiktoken-rs 0.12",
        "tiktoken3" => "tiktoken (crate) 3.8.3",
        "bpe-openai" => "bpe-openai 0.3",
        _ => "llmledger 0.1",
    }
}

/// Builds the engine (rank loading happens here, so the caller can time it). For `llmledger` that means
/// its fast engine; `warm` false leaves it unbuilt, as in a new process (first counts use the cold-start
/// engine while the fast one builds in the background).
fn counter(engine: &str, encoding: &str) -> Result<Counter, String> {
    counter_warm(engine, encoding, true)
}

fn counter_warm(engine: &str, encoding: &str, warm: bool) -> Result<Counter, String> {
    let bad = || format!("unknown encoding {encoding}");
    Ok(match (engine, encoding) {
        ("tiktoken-rs", "o200k_base") => {
            let b = tiktoken_rs::o200k_base().map_err(|e| e.to_string())?;
            Box::new(move |t| b.encode_ordinary(t).len())
        }
        ("tiktoken-rs", "cl100k_base") => {
            let b = tiktoken_rs::cl100k_base().map_err(|e| e.to_string())?;
            Box::new(move |t| b.encode_ordinary(t).len())
        }
        ("tiktoken3", "o200k_base" | "cl100k_base") => {
            let b = tiktoken::get_encoding(encoding).ok_or_else(bad)?;
            Box::new(move |t| b.count(t))
        }
        ("bpe-openai", "o200k_base") => {
            let b = bpe_openai::o200k_base();
            Box::new(move |t| b.count(t))
        }
        ("bpe-openai", "cl100k_base") => {
            let b = bpe_openai::cl100k_base();
            Box::new(move |t| b.count(t))
        }
        ("llmledger", _) => {
            let enc = match encoding {
                "o200k_base" => Encoding::O200kBase,
                "cl100k_base" => Encoding::Cl100kBase,
                _ => return Err(bad()),
            };
            if warm {
                tokens::warm_up(enc);
            }
            Box::new(move |t| tokens::count_text_with(enc, t) as usize)
        }
        _ => return Err(format!("unknown engine {engine} / encoding {encoding}")),
    })
}

fn reps(arg: Option<&String>) -> Result<usize, String> {
    match arg {
        Some(s) => s.parse().map_err(|_| format!("bad REPS {s}")),
        None => Ok(std::env::var("REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(7)),
    }
}

fn throughput(engine: &str, corpus: &str, encoding: &str, mode: &str, reps: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(corpus).map_err(|e| format!("{corpus}: {e}"))?;
    let t0 = Instant::now();
    let count = counter(engine, encoding)?;
    let init_ms = t0.elapsed().as_secs_f64() * 1e3;
    let msgs: Vec<&str> = text.split("\n\n").collect();
    let run = || -> usize {
        if mode == "whole" {
            count(&text)
        } else {
            msgs.iter().map(|m| count(m)).sum()
        }
    };
    if mode != "whole" && mode != "msgs" {
        return Err(format!("unknown mode {mode}"));
    }
    // The warm-up pass is reported too (`first_pass_s`): tiktoken 3.x memoizes pieces per thread, so the
    // timed passes re-count text it has seen; the first pass is the honest cold figure.
    let t = Instant::now();
    let tokens = run();
    let first_pass_s = t.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let n = std::hint::black_box(run());
        times.push(t.elapsed().as_secs_f64());
        if n != tokens {
            return Err(format!("count changed between passes: {n} != {tokens}"));
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "lang": "rust", "lib": lib_name(engine), "case": format!("count {mode}"), "encoding": encoding,
            "kind": "throughput", "tokens": tokens, "bytes": text.len(),
            "calls": if mode == "whole" { 1 } else { msgs.len() },
            "init_ms": init_ms,
            "times_s": times, "first_pass_s": first_pass_s,
        })
    );
    Ok(())
}

fn chat20(path: &str, reps: usize) -> Result<(), String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let chat: serde_json::Value = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
    let f = || tokens::count_chat("gpt-4o", &chat, None).map(|c| c.tokens).map_err(|e| e.to_string());
    let value = f()?; // warm-up (engine init)
                      // As the driver: double the loop until a batch takes >= 0.2 s, then `reps` batches.
    let mut loops = 1usize;
    loop {
        let t = Instant::now();
        for _ in 0..loops {
            std::hint::black_box(f()?);
        }
        if t.elapsed().as_secs_f64() >= 0.2 {
            break;
        }
        loops *= 2;
    }
    let mut ns = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..loops {
            std::hint::black_box(f()?);
        }
        ns.push(t.elapsed().as_secs_f64() * 1e9 / loops as f64);
    }
    println!(
        "{}",
        serde_json::json!({
            "lang": "rust", "lib": "llmledger 0.1", "case": "count_chat(gpt-4o) chat20", "kind": "per_call",
            "value": value, "loops": loops, "ns_per_call": ns,
        })
    );
    Ok(())
}

fn first_count(engine: &str, encoding: &str) -> Result<(), String> {
    let t0 = Instant::now();
    let n = counter_warm(engine, encoding, false)?("hi");
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    println!("{{\"engine\":\"{engine}\",\"encoding\":\"{encoding}\",\"tokens\":{n},\"first_count_ms\":{ms:.1}}}");
    Ok(())
}

fn verify(corpus: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(corpus).map_err(|e| format!("{corpus}: {e}"))?;
    let msgs: Vec<&str> = text.split("\n\n").collect();
    let mut ok = true;
    for enc in ["o200k_base", "cl100k_base"] {
        let base = counter("tiktoken-rs", enc)?;
        let (bw, bm): (usize, usize) = (base(&text), msgs.iter().map(|m| base(m)).sum());
        for engine in ENGINES {
            let c = counter(engine, enc)?;
            let w = c(&text);
            let per_msg: Vec<usize> = msgs.iter().map(|m| c(m)).collect();
            let differing = msgs.iter().zip(&per_msg).filter(|(m, n)| base(m) != **n).count();
            let m: usize = per_msg.iter().sum();
            let same = w == bw && m == bm && differing == 0;
            ok &= same;
            println!(
                "{enc:12} {engine:12} whole {w:>7} msgs {m:>7} pieces differing {differing:>4}  {}",
                if same { "IDENTICAL" } else { "DIFFERENT" }
            );
        }
    }
    if ok {
        Ok(())
    } else {
        Err("some engine differs from tiktoken-rs".into())
    }
}

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize| a.get(i).map(String::as_str).unwrap_or("");
    let r = match (arg(1), arg(2)) {
        ("verify", corpus) => verify(corpus),
        ("llmledger-chat20", path) => reps(a.get(3)).and_then(|r| chat20(path, r)),
        (engine, "first-count") => first_count(engine, arg(3)),
        (engine, corpus) if !corpus.is_empty() => {
            reps(a.get(5)).and_then(|r| throughput(engine, corpus, arg(3), arg(4), r))
        }
        _ => Err("usage: see the module docs of bench/src/main.rs".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokens-engines: {e}");
            ExitCode::FAILURE
        }
    }
}
