//! `memory://`: an in-process store for tests and examples. Keeps raw events and rollups exactly like
//! the persistent stores do (same idempotency, same rollup rules), so it doubles as their reference.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use chrono_tz::Tz;

use super::Store;
use crate::error::Result;
use crate::event::UsageEvent;
use crate::report::{Aggregator, ReportRow, UsageQuery};
use crate::rollup::{RollupDiff, RollupTable, Rollups};

#[derive(Debug, Default)]
struct Inner {
    events: Vec<UsageEvent>,
    ids: HashSet<String>,
    rollups: Rollups,
}

/// The in-memory store.
#[derive(Debug)]
pub struct MemoryStore {
    tz: Tz,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// A store whose rollups are keyed by local dates in `tz`.
    pub fn new(tz: Tz) -> Self {
        Self { tz, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of every stored event, in insertion order.
    pub fn events(&self) -> Vec<UsageEvent> {
        self.lock().events.clone()
    }
}

impl Store for MemoryStore {
    fn write_batch(&self, events: &[UsageEvent]) -> Result<usize> {
        let mut inner = self.lock();
        let fresh: Vec<&UsageEvent> = events.iter().filter(|e| inner.ids.insert(e.event_id.clone())).collect();
        let n = fresh.len();
        inner.events.extend(fresh.iter().map(|e| (*e).clone()));
        inner.rollups.add_all(fresh, self.tz);
        Ok(n)
    }

    fn query(&self, query: &UsageQuery) -> Result<Vec<ReportRow>> {
        let inner = self.lock();
        let mut agg = Aggregator::new(query)?;
        match query.rollup_plan(self.tz) {
            Some(plan) => {
                let table = match plan.table {
                    RollupTable::Daily => &inner.rollups.daily,
                    RollupTable::Monthly => &inner.rollups.monthly,
                };
                for (k, t) in table.iter().filter(|(k, _)| plan.matches(k, &query.filter)) {
                    agg.add_rollup(k, t);
                }
            }
            None => inner.events.iter().for_each(|e| agg.add_event(e)),
        }
        Ok(agg.finish())
    }

    fn verify(&self) -> Result<Vec<RollupDiff>> {
        let inner = self.lock();
        let mut recomputed = Rollups::default();
        recomputed.add_all(&inner.events, self.tz);
        Ok(inner.rollups.diff(&recomputed))
    }

    fn event_ids(&self) -> Result<Vec<String>> {
        Ok(self.lock().events.iter().map(|e| e.event_id.clone()).collect())
    }
}
