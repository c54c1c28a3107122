//! Validates `data/*.json` against `src/schema.rs` and `src/validate.rs`, and embeds it as one JSON
//! array. Any problem fails the build, with every message listed.
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
        panic!("pricing/data failed validation ({} problems):\n{}", errors.len(), errors.join("\n"));
    }
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("prices.json");
    fs::write(out, serde_json::to_string(&files).expect("serializable")).expect("OUT_DIR is writable");
}
