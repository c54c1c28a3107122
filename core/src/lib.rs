//! llmledger core: exact, fast accounting of LLM API usage and cost.
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | the one error type and its stable codes |
//! | [`usage`] | the normalized [`Usage`] and the parsers of every provider's usage JSON |
//! | [`stream`] | accumulating usage from raw stream events |
//! | [`tokens`] | local token counting |
//! | [`estimate`] | pre-flight estimates of a request's cost |
//! | [`pricing`] | the run-time price database, model resolution and the cost engine |
//! | [`currency`] | conversion of USD costs through a caller-supplied rate table |
//! | [`ledger`] | recording usage events: the batching writer and its stores |
//! | [`report`] | usage reports from the ledger |

pub mod error;
pub mod ledger;
pub mod pricing;
pub mod report;
pub mod tokens;
pub mod usage;

pub use error::{Error, ErrorCode, Result};
pub use pricing::{Breakdown, Cost, PriceDb, PriceOptions};
pub use usage::{Api, Provider, Usage, UsageFlag, UsageSource};
