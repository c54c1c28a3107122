//! The price data against the committed snapshot of LiteLLM's and genai-prices' maps
//! (`pricing/snapshots/`): every figure that disagrees must carry an `uncertain` note naming the source
//! or an accepted reason, and every current chat model of the four providers must resolve — so a price
//! can only be wrong on purpose. `scripts/prices-sync.sh` refreshes the snapshot.

use chrono::NaiveDate;
use llmledger_core::pricing::diff::{diff, Accepted, DiffReport, Kind};
use llmledger_core::PriceDb;

const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pricing/snapshots");

/// The date the snapshot was taken (pricing/snapshots/README.md): prices in force that day are compared.
fn snapshot_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 2).expect("valid date")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{SNAPSHOTS}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run(db: &PriceDb) -> DiffReport {
    let accepted = Accepted::from_json(&read("accepted.json")).expect("accepted.json is valid");
    let litellm = read("litellm-model_prices_and_context_window.json");
    let genai = read("genai-prices-data.json");
    diff(db, Some(&litellm), Some(&genai), snapshot_date(), &accepted).expect("both snapshots parse")
}

#[test]
fn every_disagreement_with_the_snapshot_is_explained() {
    let report = run(&PriceDb::embedded());
    let unexplained: Vec<String> = report
        .unexplained()
        .map(|d| {
            format!(
                "{} {} → {} on {}: {} theirs {:?} ours {:?}",
                d.source, d.key, d.model, d.date, d.component, d.theirs, d.ours
            )
        })
        .collect();
    assert!(unexplained.is_empty(), "{} unexplained disagreements:\n{}", unexplained.len(), unexplained.join("\n"));
    let unresolved: Vec<String> =
        report.unresolved_current_chat().map(|u| format!("{} {} {}", u.source, u.provider, u.key)).collect();
    assert!(unresolved.is_empty(), "current chat models that do not resolve:\n{}", unresolved.join("\n"));
    // The comparison is real: thousands of figures compared and agreeing.
    let agreed: usize = report.sources.values().map(|s| s.agreed).sum();
    assert!(agreed > 5000, "only {agreed} figures agree");
}

#[test]
fn a_wrong_price_fails_the_check() {
    // Opus 4.8 input at $6 instead of $5: both sources say 5, and nothing explains 6.
    let mut files = llmledger_pricing::embedded();
    let model =
        files.iter_mut().flat_map(|f| f.models.iter_mut()).find(|m| m.id == "claude-opus-4-8").expect("present");
    let version = model.prices.last_mut().expect("a version");
    version.rates.input = Some("6".parse().expect("decimal"));
    version.uncertain = None;
    let report = run(&PriceDb::from_files(files).expect("still valid"));
    let bad: Vec<_> = report.unexplained().filter(|d| d.model == "claude-opus-4-8").collect();
    assert!(bad.iter().any(|d| d.component == "input" && d.kind == Kind::Differs), "{bad:?}");
    // Both sources report it, at least for the first-party id.
    assert!(bad.iter().any(|d| d.key == "claude-opus-4-8"));
}
