//! The structured inputs that cross from Python as one dict each (`Tracker` configuration, a report
//! query), read once with `FromPyObject` into the core types. Keys are the core field names; the package
//! always passes every key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use llmledger_core::report::{GroupBy, UsageFilter, UsageQuery};
use llmledger_core::tracker::TrackerConfig;
use pyo3::prelude::*;

use crate::error::held;

/// `llmledger.Tracker(...)`'s arguments, as the package gathers them (`Tracker._config`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Config {
    store: Option<String>,
    currency: String,
    rates: BTreeMap<String, String>,
    timezone: String,
    unknown_model: String,
    durability: String,
    prices_path: Option<PathBuf>,
    litellm_prices_path: Option<PathBuf>,
    azure_deployments: BTreeMap<String, String>,
    spill_dir: Option<PathBuf>,
}

impl Config {
    pub fn into_core(self) -> PyResult<TrackerConfig> {
        Ok(TrackerConfig {
            store: self.store,
            currency: self.currency,
            rates: self.rates,
            timezone: self.timezone,
            unknown_model: held(self.unknown_model.parse())?,
            durability: held(self.durability.parse())?,
            prices_path: self.prices_path,
            litellm_prices_path: self.litellm_prices_path,
            azure_deployments: self.azure_deployments,
            spill_dir: self.spill_dir,
            // Python hooks nothing on records made by a dropped stream (issue 9 plan).
            keep_dropped_records: false,
        })
    }
}

/// `llmledger.Tracker.usage(...)`'s arguments: the filter, the groups, the report's time zone.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Query {
    user_id: Option<String>,
    workspace_id: Option<String>,
    project: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    session_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    group_by: Vec<String>,
    /// `None`: the tracker's time zone (core's default).
    timezone: Option<String>,
    p95: bool,
}

impl Query {
    pub fn into_core(self) -> PyResult<UsageQuery> {
        let Query { user_id, workspace_id, project, provider, model, session_id, since, until, .. } = self;
        Ok(UsageQuery {
            filter: UsageFilter { user_id, workspace_id, project, provider, model, session_id, since, until },
            group_by: self.group_by.iter().map(|g| held(g.parse::<GroupBy>())).collect::<PyResult<_>>()?,
            timezone: self.timezone,
            p95: self.p95,
        })
    }
}
