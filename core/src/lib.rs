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
//! | [`record`] | the one record of a tracked call ([`record::Tracked`]) and its serialized shape |
//! | [`report`] | usage reports from the ledger |
//! | [`tracker`] | the facade the bindings call: one call in, one priced, attributed, recorded event out |

pub mod args;
pub mod call;
pub mod currency;
pub mod error;
pub mod estimate;
pub mod ledger;
pub mod pricing;
pub mod record;
pub mod report;
pub mod sse;
pub mod stream;
pub mod tokens;
pub mod tracker;
pub mod usage;

pub use currency::Rates;
pub use error::{Error, ErrorCode, Result};
pub use pricing::{Breakdown, Cost, ModelInfo, PriceDb, PriceOptions, ResolvedModel};
pub use stream::StreamAccumulator;
pub use usage::{parse_response, parse_response_value, Api, Provider, Usage, UsageFlag, UsageSource};
