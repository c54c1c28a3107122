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
//! | [`event`] | the ledger's unit of record ([`event::UsageEvent`]) and who a call is billed to ([`event::Attribution`]) |
//! | [`ledger`] | recording usage events: the batching writer and its stores |
//! | [`record`] | the one record of a tracked call ([`record::Tracked`]) and its serialized shape |
//! | [`rollup`] | daily and monthly totals of events, as the stores keep them |
//! | [`report`] | usage reports: queries, rows and the one aggregation (depends on `event` and `rollup`, not on the stores) |
//! | [`alert`] | the payload of a spend alert, as callbacks and webhooks receive it |
//! | [`alert_pump`] | the tracker's pump from fired alerts to the webhook outbox and the bindings' callbacks |
//! | [`spend`] | spend control: limits, balances, reserve → settle → expire, alert firing |
//! | [`webhook`] | delivering alerts as signed HTTP webhooks: the durable outbox and its dispatcher |
//! | [`tracker`] | the facade the bindings call: one call in, one priced, attributed, recorded event out |

pub mod alert;
pub mod alert_pump;
pub mod args;
mod backoff;
pub mod call;
pub mod currency;
pub mod error;
pub mod estimate;
pub mod event;
pub mod ledger;
pub mod pricing;
pub mod record;
pub mod report;
pub mod rollup;
pub mod spend;
pub mod sse;
pub mod stream;
pub mod tokens;
pub mod tracker;
pub mod usage;
pub mod webhook;

pub use currency::Rates;
pub use error::{Error, ErrorCode, Result};
pub use pricing::{Breakdown, Cost, ModelInfo, PriceDb, PriceOptions, ResolvedModel};
pub use stream::StreamAccumulator;
pub use usage::{parse_response, parse_response_value, Api, Provider, Usage, UsageFlag, UsageSource};
