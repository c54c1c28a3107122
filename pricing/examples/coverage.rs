//! Prints the coverage table of the embedded price data as Markdown, for the README:
//! `cargo run -p llmledger-pricing --example coverage > table.md` (or `-- 2026-12-02` for another date).
//! Rates are the version in force on that date (today by default), USD per 1M tokens unless the last
//! column says otherwise; an announced later version and a retirement date are in the last column.

use chrono::NaiveDate;
use llmledger_pricing::embedded;
use llmledger_pricing::schema::{ModelEntry, ModelMode, PriceVersion};
use rust_decimal::Decimal;

fn cell(value: Option<Decimal>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.normalize().to_string())
}

/// Whatever is not a per-token input/cached/output rate, briefly.
fn other(mode: ModelMode, v: &PriceVersion) -> String {
    let mut parts = Vec::new();
    let r = &v.rates;
    if let (Some(i), Some(o)) = (r.audio_input, r.audio_output) {
        parts.push(format!("audio {}/{}", i.normalize(), o.normalize()));
    } else if let Some(i) = r.audio_input {
        parts.push(format!("audio in {}", i.normalize()));
    } else if let Some(o) = r.audio_output {
        parts.push(format!("audio out {}", o.normalize()));
    }
    if let Some(o) = r.image_output {
        parts.push(format!("image out {}", o.normalize()));
    }
    if let (Some(w), Some(h)) = (r.cache_write_5m, r.cache_write_1h) {
        parts.push(format!("cache write {}/{} (5m/1h)", w.normalize(), h.normalize()));
    }
    if let Some(w) = r.cache_write_12h {
        parts.push(format!("12h cache write {}", w.normalize()));
    }
    for tier in &v.tiers {
        let op = if tier.at_least_prompt_tokens.is_some() { "≥" } else { ">" };
        parts.push(format!(
            "{op} {}k prompt: {}/{}",
            tier.threshold() / 1000,
            cell(tier.rates.input),
            cell(tier.rates.output)
        ));
    }
    if let Some(m) = v.per_audio_minute {
        parts.push(format!("${}/min", m.normalize()));
    }
    if let Some(s) = v.per_video_second {
        parts.push(format!("${}/s video", s.normalize()));
    }
    if let Some(c) = v.per_million_characters {
        parts.push(format!("${}/1M chars", c.normalize()));
    }
    if !v.per_image.is_empty() {
        let min = v.per_image.iter().map(|p| p.price).min().unwrap_or_default();
        let max = v.per_image.iter().map(|p| p.price).max().unwrap_or_default();
        parts.push(format!("${}–${}/image", min.normalize(), max.normalize()));
    }
    for (region, m) in &v.regional_multipliers {
        parts.push(format!("{region} ×{}", m.normalize()));
    }
    if mode == ModelMode::Embedding {
        parts.push("embedding".to_string());
    }
    if v.uncertain.is_some() {
        parts.push("⚠ uncertain".to_string());
    }
    parts.join("; ")
}

/// The version in force on `on` (the first one when all are later), and the next one after it.
fn versions(model: &ModelEntry, on: NaiveDate) -> Option<(&PriceVersion, Option<&PriceVersion>)> {
    let i = model.prices.iter().rposition(|v| v.effective_from <= on).unwrap_or(0);
    Some((model.prices.get(i)?, model.prices.get(i + 1)))
}

fn main() {
    let on = std::env::args()
        .nth(1)
        .and_then(|d| d.parse::<NaiveDate>().ok())
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    println!("| provider | model | input | cached | output | other |");
    println!("| --- | --- | ---: | ---: | ---: | --- |");
    for file in embedded() {
        for model in &file.models {
            let Some((v, next)) = versions(model, on) else { continue };
            let mut rest = other(model.mode, v);
            if let Some(n) = next {
                rest = format!("{rest}; from {}: {}/{}", n.effective_from, cell(n.rates.input), cell(n.rates.output));
            }
            match model.retired {
                Some(d) if d <= on => rest = format!("{rest}; retired {d}"),
                Some(d) => rest = format!("{rest}; retires {d}"),
                None => {}
            }
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                file.provider,
                model.id,
                cell(v.rates.input),
                cell(v.rates.cache_read),
                cell(v.rates.output),
                rest.trim_start_matches("; ")
            );
        }
    }
}
