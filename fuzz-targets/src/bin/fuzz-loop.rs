//! A bounded fuzz run on stable Rust: for each target, mutate the committed corpus
//! (`fuzz/corpus/<target>/`) with a seeded generator for a fixed time and call the target on every
//! input. Prints the seed and the executions per target; a panic saves the input under
//! `target/fuzz-findings/` and fails the run. Replay a run with the same `--seed`.
//!
//!   fuzz-loop [--seconds-per-target N] [--seed S] [--target NAME]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use llmledger_fuzz_targets::TARGETS;

/// xorshift64*: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Tokens that reach parser edge cases faster than random bytes: number limits, JSON structure, SSE names.
const DICTIONARY: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "0",
    "1e309",
    "-0",
    "0.5",
    "9223372036854775807",
    "null",
    "true",
    "\"\"",
    "{}",
    "[]",
    "\"x\"",
    ":",
    ",",
    "\"usage\"",
    "\"prompt_tokens\"",
    "\"input_tokens\"",
    "\"output_tokens\"",
    "\"cached_tokens\"",
    "\"usageMetadata\"",
    "\"type\"",
    "\"message_delta\"",
    "[DONE]",
    "\u{0}",
    "\n",
    "\"effective_from\"",
    "\"prices\"",
    "\"input\"",
    "\"1.00\"",
    "\"role\"",
    "\"content\"",
    "\"image_url\"",
    "\"tools\"",
    "79228162514264337593543950335",
    "0.0000000000000000000000000001",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = (rng.next() & 0xff) as u8;
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                out.drain(start..end);
            }
            3 => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                let at = rng.below(len + 1);
                out.splice(at..at, word.iter().copied());
            }
            4 if len > 0 => {
                // Replace a run of digits with a dictionary number.
                let at = rng.below(len);
                if let Some(start) = (at..len).find(|&i| out[i].is_ascii_digit()) {
                    let end = (start..len).find(|&i| !out[i].is_ascii_digit()).unwrap_or(len);
                    let word = DICTIONARY[rng.below(8)].as_bytes();
                    out.splice(start..end, word.iter().copied());
                }
            }
            5 if !corpus.is_empty() => {
                // Splice in a piece of another input.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let s = rng.below(other.len());
                    let e = (s + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    out.splice(at..at, other[s..e].iter().copied());
                }
            }
            6 if len > 0 => {
                out.truncate(rng.below(len));
            }
            _ if len > 0 => {
                // Duplicate a chunk (repeated keys, repeated events).
                let s = rng.below(len);
                let e = (s + 1 + rng.below(32)).min(len);
                let chunk = out[s..e].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, chunk);
            }
            _ => out.extend_from_slice(DICTIONARY[rng.below(DICTIONARY.len())].as_bytes()),
        }
    }
    out
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: u64 = arg("--seconds-per-target").and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 = arg("--seed").and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(now.as_nanos() & u128::from(u64::MAX)).unwrap_or(1) | 1
    });
    let only = arg("--target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let findings = root.join("target/fuzz-findings");
    println!("fuzz-loop: seed {seed}, {seconds} s per target (replay with --seed {seed})");
    // Panics are the findings: keep the default hook's message quiet, report them ourselves.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for (name, target) in TARGETS {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let corpus = load_corpus(&root.join("fuzz/corpus").join(name));
        if corpus.is_empty() {
            println!("{name:>16}: no corpus in fuzz/corpus/{name}");
            failed = true;
            continue;
        }
        let mut rng =
            Rng(seed
                ^ name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let (mut execs, mut found) = (0u64, None);
        // Every seed as is first, then mutations until the deadline.
        let mut queue = corpus.clone().into_iter();
        while found.is_none() {
            let input = match queue.next() {
                Some(seed_input) => seed_input,
                None if Instant::now() >= deadline => break,
                None => {
                    let pick = rng.below(corpus.len());
                    mutate(&mut rng, &corpus[pick], &corpus)
                }
            };
            execs += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                found = Some((input, message));
            }
        }
        match found {
            None => println!("{name:>16}: {execs} execs, {} seeds, no failure", corpus.len()),
            Some((input, message)) => {
                failed = true;
                let _ = std::fs::create_dir_all(&findings);
                let path = findings.join(format!("{name}-{seed}-{execs}"));
                let _ = std::fs::write(&path, &input);
                println!(
                    "{name:>16}: FAILED after {execs} execs: {message}\n{:>16}  input saved to {}",
                    "",
                    path.display()
                );
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
