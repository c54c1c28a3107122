//! Validates `data/*.json` against `src/schema.rs` and `src/validate.rs`, and embeds it as one JSON
//! array. Any problem fails the build, with every message listed.
#[path = "src/fingerprint.rs"]
mod fingerprint;
#[path = "src/schema.rs"]
#[allow(dead_code)]
mod schema;
#[path = "src/validate.rs"]
#[allow(dead_code)]
mod validate;

use std::{env, fs, path::Path};

fn main() {
    let data_dir = Path::new("data");
    println!("cargo:rerun-if-changed=data");
    println!("cargo:rerun-if-changed=src/schema.rs");
    println!("cargo:rerun-if-changed=src/validate.rs");
    println!("cargo:rerun-if-changed=src/fingerprint.rs");
    let mut paths: Vec<_> = fs::read_dir(data_dir)
        .expect("pricing/data exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file: schema::PriceFile =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid price data: {e}", path.display()));
        files.push(file);
    }
    if let Err(errors) = validate::validate(&files) {
        // Each message names provider, model and field; prefix the file that provider lives in.
        let file_of = |message: &str| {
            let provider = message.split(": ").nth(1).unwrap_or("");
            files
                .iter()
                .position(|f| f.provider == provider)
                .map_or_else(String::new, |i| paths[i].display().to_string())
        };
        let listed: Vec<String> = errors.iter().map(|e| format!("{}: {e}", file_of(e))).collect();
        panic!("pricing/data failed validation ({} problems):\n{}", errors.len(), listed.join("\n"));
    }
    let out_dir = env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
    let json = serde_json::to_string(&files).expect("serializable");
    // The price-data version every priced event records: the newest `checked` date (readable) and a
    // hash of the embedded JSON (changes with any edit, even one that keeps the dates).
    let newest = files.iter().flat_map(|f| &f.models).flat_map(|m| &m.prices).map(|v| v.checked).max();
    let newest = newest.map_or_else(|| "none".to_string(), |d| d.to_string());
    let version = format!("{newest}.{}", fingerprint::fingerprint(&json));
    fs::write(Path::new(&out_dir).join("data_version.txt"), version).expect("OUT_DIR is writable");
    fs::write(Path::new(&out_dir).join("prices.json"), json).expect("OUT_DIR is writable");
}
