//! `llmledger`: count tokens, estimate and price calls, list models, report from the ledger.
fn main() {}
