//! Organisation costs: what an organisation pays for AI beyond the calls its own apps tracked.
//!
//! [`Org`] opens the organisation tables in the ledger's own store (SQLite or PostgreSQL, on a
//! connection of its own) and owns what goes in and out of them. The tables:
//!
//! | table | holds | key |
//! |---|---|---|
//! | `org_agent_usage` | agents' requests read from local logs (Claude Code), priced | `dedupe_key` (`message.id:requestId`) |
//! | `org_agent_files` | how far each log file was read (incremental import) | `path` |
//! | `org_subscriptions` | recurring fixed costs (seats, team plans) | `id` (a hash of the fields) |
//! | `org_manual` | one-off costs | `id` (a hash of the fields) |
//! | `org_billed_cost` | what a provider's cost API billed, per day × workspace × line item | `(provider, day, workspace, item)` |
//! | `org_billed_usage` | what a provider's usage API billed, per bucket × group × metric (long rows) | every column but `quantity` |
//! | `org_pull_stage`, `org_pull_state` | the pages of a pull under way (rows as JSON, exact decimals as strings) and its next cursor (a failed pull resumes there) | `pull_key` |
//!
//! | file | owns |
//! |---|---|
//! | [`claude_code`] | reading, deduplicating and pricing Claude Code's JSONL logs |
//! | [`billing`] | the providers' admin cost APIs: keys, requests, pagination, retries, exact amounts |
//! | [`gcp_billing`] | reading Google Cloud's billing export (CSV / JSON) into billed costs |
//! | [`usage`] | the providers' admin usage APIs: endpoints, groupings, bucket widths, long rows per metric |
//! | [`reconcile`] | tracked (the ledger) against billed: matching, difference, flag, likely cause |
//! | [`subscription`] | subscriptions and one-off entries, their CSV format and daily spread |
//! | `sql` | the one value-level SQL interface over SQLite and PostgreSQL |
//!
//! Amounts are exact decimals (TEXT in SQLite, NUMERIC in PostgreSQL), timestamps UTC milliseconds.

pub mod billing;
pub mod claude_code;
pub mod gcp_billing;
pub mod reconcile;
mod sql;
pub mod subscription;
pub mod usage;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pricing::PriceDb;
use billing::{BilledCost, BillingProvider, PullOptions};
use claude_code::{Entry, FileMark, ImportOptions, ImportSummary};
use reconcile::{ReconcileBy, ReconcileRow, TrackedCost};
use sql::{Db, Val};
use subscription::{CsvRows, ManualEntry, Period, Subscription};
use usage::{BilledUsage, BucketWidth};

/// The organisation tables of one ledger store.
#[derive(Debug)]
pub struct Org {
    db: Box<dyn Db>,
}

const AGENT_COLUMNS: &str = "dedupe_key, agent, ts, project, session_id, model, input_tokens, output_tokens, \
                             cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, total_tokens, sidechain, \
                             cost_usd, cost_source";

impl Org {
    /// Opens (creating the tables of) the store a ledger URL names: `sqlite:…` or `postgres://…`.
    pub fn open(url: &str) -> Result<Self> {
        let db = sql::open(url)?;
        let num = db.dialect().num_type();
        db.batch(&format!(
            "CREATE TABLE IF NOT EXISTS org_agent_usage (
                 dedupe_key TEXT PRIMARY KEY,
                 agent TEXT NOT NULL,
                 ts BIGINT NOT NULL,
                 project TEXT NOT NULL,
                 session_id TEXT NOT NULL,
                 model TEXT NOT NULL,
                 input_tokens BIGINT NOT NULL,
                 output_tokens BIGINT NOT NULL,
                 cache_read_tokens BIGINT NOT NULL,
                 cache_write_5m_tokens BIGINT NOT NULL,
                 cache_write_1h_tokens BIGINT NOT NULL,
                 total_tokens BIGINT NOT NULL,
                 sidechain BIGINT NOT NULL,
                 cost_usd {num},
                 cost_source TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS org_agent_usage_ts ON org_agent_usage (ts);
             CREATE TABLE IF NOT EXISTS org_agent_files (
                 path TEXT PRIMARY KEY,
                 read_offset BIGINT NOT NULL,
                 size BIGINT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS org_subscriptions (
                 id TEXT PRIMARY KEY,
                 service TEXT NOT NULL,
                 provider TEXT,
                 member TEXT,
                 team TEXT,
                 period TEXT NOT NULL,
                 amount {num} NOT NULL,
                 currency TEXT NOT NULL,
                 rate {num} NOT NULL,
                 start_date TEXT NOT NULL,
                 end_date TEXT,
                 note TEXT
             );
             CREATE TABLE IF NOT EXISTS org_manual (
                 id TEXT PRIMARY KEY,
                 day TEXT NOT NULL,
                 service TEXT NOT NULL,
                 provider TEXT,
                 member TEXT,
                 team TEXT,
                 amount {num} NOT NULL,
                 currency TEXT NOT NULL,
                 rate {num} NOT NULL,
                 note TEXT
             );
             CREATE TABLE IF NOT EXISTS org_billed_cost (
                 provider TEXT NOT NULL,
                 day TEXT NOT NULL,
                 workspace TEXT NOT NULL,
                 item TEXT NOT NULL,
                 model TEXT,
                 amount {num} NOT NULL,
                 currency TEXT NOT NULL,
                 PRIMARY KEY (provider, day, workspace, item)
             );
             CREATE TABLE IF NOT EXISTS org_billed_usage (
                 provider TEXT NOT NULL,
                 endpoint TEXT NOT NULL,
                 width TEXT NOT NULL,
                 bucket_start BIGINT NOT NULL,
                 workspace TEXT NOT NULL,
                 model TEXT NOT NULL,
                 api_key_id TEXT NOT NULL,
                 batch TEXT NOT NULL,
                 service_tier TEXT NOT NULL,
                 context_window TEXT NOT NULL,
                 detail TEXT NOT NULL,
                 metric TEXT NOT NULL,
                 quantity {num} NOT NULL,
                 PRIMARY KEY (provider, endpoint, width, bucket_start, workspace, model, api_key_id, batch,
                              service_tier, context_window, detail, metric)
             );
             CREATE TABLE IF NOT EXISTS org_pull_stage (
                 pull_key TEXT NOT NULL,
                 page BIGINT NOT NULL,
                 body TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS org_pull_stage_key ON org_pull_stage (pull_key);
             CREATE TABLE IF NOT EXISTS org_pull_state (
                 pull_key TEXT PRIMARY KEY,
                 next_cursor TEXT NOT NULL,
                 pages BIGINT NOT NULL
             );"
        ))?;
        Ok(Self { db })
    }

    /// Imports what is new in Claude Code's logs under `opts.roots`, priced with `prices`. Running it
    /// again reads only what was appended since; a copy of a stored message replaces it only when it
    /// wins ([`Entry::beats`]), in one transaction with the new file offsets.
    pub fn import_claude_code(&self, opts: &ImportOptions, prices: &PriceDb) -> Result<ImportSummary> {
        let marks: HashMap<String, FileMark> = self
            .db
            .query("SELECT path, read_offset, size FROM org_agent_files", &[])?
            .into_iter()
            .map(|r| (r[0].text(), FileMark { offset: r[1].int() as u64, size: r[2].int() as u64 }))
            .collect();
        let claude_code::Collected { entries, marks: new_marks, mut summary } =
            claude_code::collect(opts, &marks, prices)?;
        let d = self.db.dialect();
        // The stored row is replaced only by a copy that beats it (the rule of `Entry::beats`).
        let upsert = format!(
            "INSERT INTO org_agent_usage ({AGENT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {}, $15)
             ON CONFLICT (dedupe_key) DO UPDATE SET
                 ts = excluded.ts, project = excluded.project, session_id = excluded.session_id,
                 model = excluded.model, input_tokens = excluded.input_tokens,
                 output_tokens = excluded.output_tokens, cache_read_tokens = excluded.cache_read_tokens,
                 cache_write_5m_tokens = excluded.cache_write_5m_tokens,
                 cache_write_1h_tokens = excluded.cache_write_1h_tokens, total_tokens = excluded.total_tokens,
                 sidechain = excluded.sidechain, cost_usd = excluded.cost_usd, cost_source = excluded.cost_source
             WHERE (org_agent_usage.sidechain = 1 AND excluded.sidechain = 0)
                OR (org_agent_usage.sidechain = excluded.sidechain
                    AND excluded.total_tokens > org_agent_usage.total_tokens)",
            d.num(14)
        );
        let rows: Vec<Vec<Val>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.key.as_str().into(),
                    "claude-code".into(),
                    e.timestamp.timestamp_millis().into(),
                    e.project.as_str().into(),
                    e.session_id.as_str().into(),
                    e.model.as_str().into(),
                    e.input_tokens.into(),
                    e.output_tokens.into(),
                    e.cache_read_tokens.into(),
                    e.cache_write_5m_tokens.into(),
                    e.cache_write_1h_tokens.into(),
                    e.total_tokens().into(),
                    e.sidechain.into(),
                    e.cost_usd.into(),
                    e.cost_source.as_str().into(),
                ]
            })
            .collect();
        let marks_sql = "INSERT INTO org_agent_files (path, read_offset, size) VALUES ($1, $2, $3)
                         ON CONFLICT (path) DO UPDATE SET read_offset = excluded.read_offset, size = excluded.size";
        let mark_rows =
            new_marks.iter().map(|(p, m)| vec![p.as_str().into(), m.offset.into(), m.size.into()]).collect();
        let changed = self.db.transaction(&[(upsert, rows), (marks_sql.to_string(), mark_rows)])?;
        for (entry, n) in entries.iter().zip(changed.first().into_iter().flatten()) {
            if *n > 0 {
                summary.stored += 1;
                summary.cost_usd += entry.cost_usd.unwrap_or_default();
            } else {
                summary.duplicates += 1;
            }
        }
        summary.cost_usd = summary.cost_usd.normalize();
        Ok(summary)
    }

    /// The stored agent entries with a timestamp in `[since, until)`, oldest first.
    pub fn agent_entries(&self, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Result<Vec<Entry>> {
        let d = self.db.dialect();
        let cols = AGENT_COLUMNS.replace("cost_usd,", &format!("{},", d.num_out("cost_usd")));
        let rows = self.db.query(
            &format!("SELECT {cols} FROM org_agent_usage WHERE ts >= $1 AND ts < $2 ORDER BY ts, dedupe_key"),
            &[
                since.map_or(i64::MIN, |t| t.timestamp_millis()).into(),
                until.map_or(i64::MAX, |t| t.timestamp_millis()).into(),
            ],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Entry {
                    key: r[0].text(),
                    timestamp: Utc.timestamp_millis_opt(r[2].int()).single().unwrap_or_default(),
                    project: r[3].text(),
                    session_id: r[4].text(),
                    model: r[5].text(),
                    input_tokens: r[6].int() as u64,
                    output_tokens: r[7].int() as u64,
                    cache_read_tokens: r[8].int() as u64,
                    cache_write_5m_tokens: r[9].int() as u64,
                    cache_write_1h_tokens: r[10].int() as u64,
                    sidechain: r[12].int() != 0,
                    cost_usd: r[13].opt_dec("cost_usd")?,
                    cost_source: r[14].text(),
                })
            })
            .collect()
    }

    /// Stores subscriptions and one-off entries (validated by their `new`); one already stored (same
    /// id, i.e. the same fields) is left as is. Returns how many of each were new.
    pub fn add_fixed(&self, rows: &CsvRows) -> Result<(u64, u64)> {
        let d = self.db.dialect();
        let subs = format!(
            "INSERT INTO org_subscriptions (id, service, provider, member, team, period, amount, currency, rate,
                 start_date, end_date, note)
             VALUES ($1, $2, $3, $4, $5, $6, {}, $8, {}, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
            d.num(7),
            d.num(9)
        );
        let manual = format!(
            "INSERT INTO org_manual (id, day, service, provider, member, team, amount, currency, rate, note)
             VALUES ($1, $2, $3, $4, $5, $6, {}, $8, {}, $10) ON CONFLICT (id) DO NOTHING",
            d.num(7),
            d.num(9)
        );
        let sub_rows = rows
            .subscriptions
            .iter()
            .map(|s| {
                vec![
                    s.id.as_str().into(),
                    s.service.as_str().into(),
                    s.provider.clone().into(),
                    s.member.clone().into(),
                    s.team.clone().into(),
                    s.period.as_str().into(),
                    s.amount.into(),
                    s.currency.as_str().into(),
                    s.rate.into(),
                    s.start.to_string().into(),
                    s.end.map(|e| e.to_string()).into(),
                    s.note.clone().into(),
                ]
            })
            .collect();
        let manual_rows = rows
            .entries
            .iter()
            .map(|m| {
                vec![
                    m.id.as_str().into(),
                    m.date.to_string().into(),
                    m.service.as_str().into(),
                    m.provider.clone().into(),
                    m.member.clone().into(),
                    m.team.clone().into(),
                    m.amount.into(),
                    m.currency.as_str().into(),
                    m.rate.into(),
                    m.note.clone().into(),
                ]
            })
            .collect();
        let changed = self.db.transaction(&[(subs, sub_rows), (manual, manual_rows)])?;
        let count = |i: usize| changed.get(i).map_or(0, |c| c.iter().sum());
        Ok((count(0), count(1)))
    }

    /// Every stored subscription, by start date then service.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        let d = self.db.dialect();
        let rows = self.db.query(
            &format!(
                "SELECT id, service, provider, member, team, period, {}, currency, {}, start_date, end_date, note
                 FROM org_subscriptions ORDER BY start_date, service, id",
                d.num_out("amount"),
                d.num_out("rate")
            ),
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Subscription {
                    id: r[0].text(),
                    service: r[1].text(),
                    provider: r[2].opt_text(),
                    member: r[3].opt_text(),
                    team: r[4].opt_text(),
                    period: r[5].text().parse::<Period>()?,
                    amount: r[6].dec("amount")?,
                    currency: r[7].text(),
                    rate: r[8].dec("rate")?,
                    start: parse_day(&r[9].text())?,
                    end: r[10].opt_text().map(|t| parse_day(&t)).transpose()?,
                    note: r[11].opt_text(),
                })
            })
            .collect()
    }

    /// Every stored one-off entry, by date then service.
    pub fn manual_entries(&self) -> Result<Vec<ManualEntry>> {
        let d = self.db.dialect();
        let rows = self.db.query(
            &format!(
                "SELECT id, day, service, provider, member, team, {}, currency, {}, note
                 FROM org_manual ORDER BY day, service, id",
                d.num_out("amount"),
                d.num_out("rate")
            ),
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ManualEntry {
                    id: r[0].text(),
                    date: parse_day(&r[1].text())?,
                    service: r[2].text(),
                    provider: r[3].opt_text(),
                    member: r[4].opt_text(),
                    team: r[5].opt_text(),
                    amount: r[6].dec("amount")?,
                    currency: r[7].text(),
                    rate: r[8].dec("rate")?,
                    note: r[9].opt_text(),
                })
            })
            .collect()
    }

    /// Pulls the provider's billed costs for the days `[opts.since, opts.until)` and replaces that
    /// period's stored rows with them in one transaction (re-pulling a period never doubles a day).
    /// Each page is saved with the next cursor as it arrives, so a pull that fails part-way (after its
    /// retries) resumes from that cursor when run again for the same provider and period.
    pub fn pull(&self, opts: &PullOptions) -> Result<PullSummary> {
        let p = opts.provider;
        let key = format!("{}:{}:{}", p.as_str(), opts.since, opts.until);
        let client = pull_client(opts)?;
        let (rt, client) = (&client.0, &client.1);
        let (rows, pages, resumed) =
            self.paged(opts, &key, |cursor| block_in(rt, billing::fetch_page(client, opts, cursor)))?;
        let (stored, total) = self.replace_billed(p, opts.since, opts.until, &rows, Some(&key))?;
        Ok(PullSummary {
            provider: p,
            since: opts.since,
            until: opts.until,
            pages,
            resumed,
            rows: stored,
            total_usd: total,
        })
    }

    /// Pulls the provider's billed usage for the days `[opts.since, opts.until)` in `width` buckets,
    /// every usage endpoint in turn ([`usage::endpoints`]), each replacing its period's stored rows in
    /// one transaction and resuming from its saved cursor like [`Org::pull`].
    pub fn pull_usage(&self, opts: &PullOptions, width: BucketWidth) -> Result<UsagePullSummary> {
        let p = opts.provider;
        let client = pull_client(opts)?;
        let (rt, client) = (&client.0, &client.1);
        let mut summary = UsagePullSummary {
            provider: p,
            width,
            since: opts.since,
            until: opts.until,
            pages: 0,
            resumed: false,
            rows: 0,
            totals: Vec::new(),
        };
        let mut totals: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for endpoint in usage::endpoints(p) {
            let key = format!("usage:{}:{endpoint}:{}:{}:{}", p.as_str(), width.as_str(), opts.since, opts.until);
            let (rows, pages, resumed) = self.paged(opts, &key, |cursor| {
                block_in(rt, usage::fetch_usage_page(client, opts, endpoint, width, cursor))
            })?;
            let stored = self.replace_usage(p, endpoint, width, opts.since, opts.until, &rows, &key)?;
            summary.pages += pages;
            summary.resumed |= resumed;
            summary.rows += stored;
            for r in &rows {
                *totals.entry((endpoint.to_string(), r.metric.clone())).or_default() += r.quantity;
            }
        }
        summary.totals = totals.into_iter().map(|((e, m), q)| (e, m, q.normalize())).collect();
        Ok(summary)
    }

    /// The paging of every pull: fetches pages with `fetch(cursor)` from where a failed run for `key`
    /// stopped (or from the start), saving each page's rows with the next cursor in one transaction,
    /// and returns all the pull's rows, its pages (a resumed run counts those fetched before) and
    /// whether it resumed. The caller
    /// replaces the period with the rows and clears the stage in one transaction.
    fn paged<T: Serialize + DeserializeOwned>(
        &self,
        opts: &PullOptions,
        key: &str,
        mut fetch: impl FnMut(Option<&str>) -> Result<billing::Page<T>>,
    ) -> Result<(Vec<T>, u64, bool)> {
        opts.provider.check_key(&opts.key)?;
        if opts.until <= opts.since {
            return Err(Error::invalid_value("until", opts.until, "must be after --since"));
        }
        let state =
            self.db.query("SELECT next_cursor, pages FROM org_pull_state WHERE pull_key = $1", &[key.into()])?;
        let (mut cursor, mut page_no, resumed) = match state.first() {
            Some(r) => (Some(r[0].text()), r[1].int() as u64, true),
            None => {
                self.db.transaction(&[(
                    "DELETE FROM org_pull_stage WHERE pull_key = $1".into(),
                    vec![vec![key.into()]],
                )])?;
                (None, 0, false)
            }
        };
        loop {
            let page = fetch(cursor.as_deref())?;
            page_no += 1;
            let stage = (
                "INSERT INTO org_pull_stage (pull_key, page, body) VALUES ($1, $2, $3)".to_string(),
                vec![vec![key.into(), page_no.into(), serde_json::to_string(&page.rows)?.into()]],
            );
            let state = match &page.next {
                Some(next) => (
                    "INSERT INTO org_pull_state (pull_key, next_cursor, pages) VALUES ($1, $2, $3)
                     ON CONFLICT (pull_key) DO UPDATE SET next_cursor = excluded.next_cursor, pages = excluded.pages"
                        .to_string(),
                    vec![vec![key.into(), next.as_str().into(), page_no.into()]],
                ),
                None => ("DELETE FROM org_pull_state WHERE pull_key = $1".to_string(), vec![vec![key.into()]]),
            };
            self.db.transaction(&[stage, state])?;
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        let mut rows = Vec::new();
        for r in self.db.query("SELECT body FROM org_pull_stage WHERE pull_key = $1 ORDER BY page", &[key.into()])? {
            rows.extend(serde_json::from_str::<Vec<T>>(&r[0].text())?);
        }
        Ok((rows, page_no, resumed))
    }

    /// Replaces `provider`'s `endpoint` usage in `width` buckets starting in days `[since, until)` with
    /// `rows` (summed per bucket, group and metric, exactly) and clears the pull's stage, in one
    /// transaction. Returns the rows stored.
    #[allow(clippy::too_many_arguments)]
    fn replace_usage(
        &self,
        provider: BillingProvider,
        endpoint: &str,
        width: BucketWidth,
        since: NaiveDate,
        until: NaiveDate,
        rows: &[BilledUsage],
        pull_key: &str,
    ) -> Result<u64> {
        let (from, to) = (billing::midnight(since).timestamp_millis(), billing::midnight(until).timestamp_millis());
        let mut sums: BTreeMap<Vec<String>, (i64, Decimal)> = BTreeMap::new();
        for r in rows.iter().filter(|r| (from..to).contains(&r.bucket_start.timestamp_millis())) {
            let key = vec![
                r.workspace.clone(),
                r.model.clone(),
                r.api_key_id.clone(),
                r.batch.clone(),
                r.service_tier.clone(),
                r.context_window.clone(),
                r.detail.clone(),
                r.metric.clone(),
            ];
            let ts = r.bucket_start.timestamp_millis();
            let mut k = vec![ts.to_string()];
            k.extend(key);
            sums.entry(k).or_insert((ts, Decimal::ZERO)).1 += r.quantity;
        }
        let insert = format!(
            "INSERT INTO org_billed_usage (provider, endpoint, width, bucket_start, workspace, model, api_key_id,
                 batch, service_tier, context_window, detail, metric, quantity)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, {})",
            self.db.dialect().num(13)
        );
        let values = sums
            .iter()
            .map(|(k, (ts, q))| {
                let mut v: Vec<Val> =
                    vec![provider.as_str().into(), endpoint.into(), width.as_str().into(), (*ts).into()];
                v.extend(k[1..].iter().map(|s| Val::from(s.as_str())));
                v.push(q.normalize().into());
                v
            })
            .collect();
        self.db.transaction(&[
            (
                "DELETE FROM org_billed_usage WHERE provider = $1 AND endpoint = $2 AND width = $3
                     AND bucket_start >= $4 AND bucket_start < $5"
                    .to_string(),
                vec![vec![provider.as_str().into(), endpoint.into(), width.as_str().into(), from.into(), to.into()]],
            ),
            (insert, values),
            ("DELETE FROM org_pull_stage WHERE pull_key = $1".into(), vec![vec![pull_key.into()]]),
        ])?;
        Ok(sums.len() as u64)
    }

    /// Stored billed usage with a bucket starting in days `[since, until)`, by bucket start, provider,
    /// endpoint, group and metric.
    pub fn billed_usage(&self, since: NaiveDate, until: NaiveDate) -> Result<Vec<BilledUsage>> {
        let rows = self.db.query(
            &format!(
                "SELECT provider, endpoint, width, bucket_start, workspace, model, api_key_id, batch, service_tier,
                     context_window, detail, metric, {} FROM org_billed_usage
                 WHERE bucket_start >= $1 AND bucket_start < $2
                 ORDER BY bucket_start, provider, endpoint, width, workspace, model, api_key_id, batch,
                     service_tier, context_window, detail, metric",
                self.db.dialect().num_out("quantity")
            ),
            &[billing::midnight(since).timestamp_millis().into(), billing::midnight(until).timestamp_millis().into()],
        )?;
        rows.iter()
            .map(|r| {
                Ok(BilledUsage {
                    provider: BillingProvider::from_stored(&r[0].text())?,
                    endpoint: r[1].text(),
                    width: r[2].text().parse::<BucketWidth>()?,
                    bucket_start: Utc.timestamp_millis_opt(r[3].int()).single().unwrap_or_default(),
                    workspace: r[4].text(),
                    model: r[5].text(),
                    api_key_id: r[6].text(),
                    batch: r[7].text(),
                    service_tier: r[8].text(),
                    context_window: r[9].text(),
                    detail: r[10].text(),
                    metric: r[11].text(),
                    quantity: r[12].dec("quantity")?,
                })
            })
            .collect()
    }

    /// Imports Google Cloud's billing export (CSV or JSON text, see [`gcp_billing`]): its AI services'
    /// rows replace the stored Google costs of the days the file covers (re-importing a file, or a
    /// newer export of the same days, never doubles a day).
    pub fn import_gcp_billing(&self, text: &str) -> Result<gcp_billing::GcpImportSummary> {
        let export = gcp_billing::parse_export(text)?;
        let period = export.period();
        let (rows, total) = match period {
            Some((since, until)) => self.replace_billed(BillingProvider::Google, since, until, &export.rows, None)?,
            None => (0, Decimal::ZERO),
        };
        Ok(gcp_billing::GcpImportSummary {
            since: period.map(|p| p.0),
            until: period.map(|p| p.1),
            read: export.rows.len() as u64,
            skipped: export.skipped,
            rows,
            total_usd: total,
        })
    }

    /// Replaces `provider`'s billed costs of days `[since, until)` with `rows` (summed per day,
    /// workspace and item, exactly) in one transaction — a pull's last step, or a billing export read
    /// from a file. Returns the rows stored and their USD total.
    pub fn replace_billed(
        &self,
        provider: BillingProvider,
        since: NaiveDate,
        until: NaiveDate,
        rows: &[BilledCost],
        pull_key: Option<&str>,
    ) -> Result<(u64, Decimal)> {
        let d = self.db.dialect();
        let mut sums: BTreeMap<(NaiveDate, &str, &str), BilledCost> = BTreeMap::new();
        for b in rows.iter().filter(|b| b.day >= since && b.day < until) {
            sums.entry((b.day, &b.workspace, &b.item))
                .or_insert_with(|| BilledCost { amount: Decimal::ZERO, provider, ..b.clone() })
                .amount += b.amount;
        }
        let total: Decimal = sums.values().map(|b| b.amount).sum();
        let insert = format!(
            "INSERT INTO org_billed_cost (provider, day, workspace, item, model, amount, currency)
             VALUES ($1, $2, $3, $4, $5, {}, $7)",
            d.num(6)
        );
        let values = sums
            .values()
            .map(|b| {
                vec![
                    provider.as_str().into(),
                    b.day.to_string().into(),
                    b.workspace.as_str().into(),
                    b.item.as_str().into(),
                    b.model.clone().into(),
                    b.amount.into(),
                    b.currency.as_str().into(),
                ]
            })
            .collect();
        let mut work = vec![
            (
                "DELETE FROM org_billed_cost WHERE provider = $1 AND day >= $2 AND day < $3".to_string(),
                vec![vec![provider.as_str().into(), since.to_string().into(), until.to_string().into()]],
            ),
            (insert, values),
        ];
        if let Some(key) = pull_key {
            work.push(("DELETE FROM org_pull_stage WHERE pull_key = $1".into(), vec![vec![key.into()]]));
        }
        self.db.transaction(&work)?;
        Ok((sums.len() as u64, total.normalize()))
    }

    /// Tracked (the ledger's events, UTC days) against billed (stored cost reports) over days
    /// `[since, until)`, grouped by `by`; see [`reconcile`].
    pub fn reconcile(
        &self,
        ledger: &crate::ledger::Ledger,
        since: NaiveDate,
        until: NaiveDate,
        by: &[ReconcileBy],
        threshold_pct: Decimal,
        prices: &PriceDb,
    ) -> Result<Vec<ReconcileRow>> {
        use crate::report::{GroupBy, UsageQuery};
        let dims = [GroupBy::Day, GroupBy::Provider, GroupBy::Model, GroupBy::Workspace];
        let query = UsageQuery { group_by: dims.to_vec(), timezone: Some("UTC".into()), ..UsageQuery::default() }
            .between_dates(Some(since), Some(until))?;
        let tracked = ledger
            .query(&query)?
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.key.get(i).map(|(_, v)| v.clone()).unwrap_or_default();
                Ok(TrackedCost {
                    day: parse_day(&v(0))?,
                    provider: v(1),
                    model: v(2),
                    workspace: v(3),
                    cost_usd: r.cost_usd,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Only the providers that report costs can be reconciled.
        let tracked: Vec<TrackedCost> =
            tracked.into_iter().filter(|t| t.provider.parse::<BillingProvider>().is_ok()).collect();
        // A Google billing export names services and SKUs, not the ledger's models: it counts in the
        // org report but is not reconciled.
        let billed: Vec<BilledCost> =
            self.billed_costs(since, until)?.into_iter().filter(|b| b.provider != BillingProvider::Google).collect();
        Ok(reconcile::reconcile(&tracked, &billed, by, threshold_pct, prices))
    }

    /// One table of total spend over days `[since, until)`: billed API cost (pulled cost reports) +
    /// subscriptions (spread per day) + one-off entries, in USD, grouped by `by`. Billed API cost has
    /// no member or team (the providers bill an organisation); it groups under `""` there.
    pub fn org_report(&self, since: NaiveDate, until: NaiveDate, by: &[OrgGroup]) -> Result<Vec<OrgRow>> {
        let mut groups: BTreeMap<Vec<String>, OrgRow> = BTreeMap::new();
        let mut add = |day: NaiveDate, provider: &str, member: &str, team: &str, which: usize, usd: Decimal| {
            let values: Vec<String> = by
                .iter()
                .map(|g| match g {
                    OrgGroup::Member => member.to_string(),
                    OrgGroup::Team => team.to_string(),
                    OrgGroup::Provider => provider.to_string(),
                    OrgGroup::Month => day.format("%Y-%m").to_string(),
                })
                .collect();
            let row = groups.entry(values.clone()).or_insert_with(|| OrgRow {
                key: by.iter().map(|g| g.as_str().to_string()).zip(values).collect(),
                ..OrgRow::default()
            });
            match which {
                0 => row.api_billed_usd += usd,
                1 => row.subscriptions_usd += usd,
                _ => row.one_off_usd += usd,
            }
            row.total_usd += usd;
        };
        for b in self.billed_costs(since, until)? {
            add(b.day, b.provider.as_str(), "", "", 0, b.amount);
        }
        let last = until.pred_opt().unwrap_or(until);
        for s in self.subscriptions()? {
            let (provider, member, team) = (
                s.provider.as_deref().unwrap_or(""),
                s.member.as_deref().unwrap_or(""),
                s.team.as_deref().unwrap_or(""),
            );
            for (day, usd) in s.daily(since, last) {
                add(day, provider, member, team, 1, usd);
            }
        }
        for m in self.manual_entries()?.into_iter().filter(|m| m.date >= since && m.date < until) {
            let (provider, member, team) = (
                m.provider.as_deref().unwrap_or(""),
                m.member.as_deref().unwrap_or(""),
                m.team.as_deref().unwrap_or(""),
            );
            add(m.date, provider, member, team, 2, m.usd());
        }
        Ok(groups
            .into_values()
            .map(|mut r| {
                for x in [&mut r.api_billed_usd, &mut r.subscriptions_usd, &mut r.one_off_usd, &mut r.total_usd] {
                    *x = x.normalize();
                }
                r
            })
            .collect())
    }

    /// Stored billed costs of days `[since, until)`, by day, provider, workspace, item.
    pub fn billed_costs(&self, since: NaiveDate, until: NaiveDate) -> Result<Vec<BilledCost>> {
        let d = self.db.dialect();
        let rows = self.db.query(
            &format!(
                "SELECT provider, day, workspace, item, model, {}, currency FROM org_billed_cost
                 WHERE day >= $1 AND day < $2 ORDER BY day, provider, workspace, item",
                d.num_out("amount")
            ),
            &[since.to_string().into(), until.to_string().into()],
        )?;
        rows.iter()
            .map(|r| {
                Ok(BilledCost {
                    provider: BillingProvider::from_stored(&r[0].text())?,
                    day: parse_day(&r[1].text())?,
                    workspace: r[2].text(),
                    item: r[3].text(),
                    model: r[4].opt_text(),
                    amount: r[5].dec("amount")?,
                    currency: r[6].text(),
                })
            })
            .collect()
    }

    /// Agent usage grouped by `group_by`, over days `[since, until]` (UTC), sorted by key.
    pub fn agent_report(&self, query: &AgentQuery) -> Result<Vec<AgentRow>> {
        let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
        let entries =
            self.agent_entries(query.since.map(midnight), query.until.and_then(|d| d.succ_opt()).map(midnight))?;
        let mut groups: BTreeMap<Vec<String>, AgentRow> = BTreeMap::new();
        for e in &entries {
            let key: Vec<String> = query.group_by.iter().map(|g| g.value(e)).collect();
            let row = groups.entry(key.clone()).or_insert_with(|| AgentRow {
                key: query.group_by.iter().map(|g| g.as_str().to_string()).zip(key).collect(),
                ..AgentRow::default()
            });
            row.requests += 1;
            row.input_tokens += e.input_tokens;
            row.output_tokens += e.output_tokens;
            row.cache_read_tokens += e.cache_read_tokens;
            row.cache_write_5m_tokens += e.cache_write_5m_tokens;
            row.cache_write_1h_tokens += e.cache_write_1h_tokens;
            match e.cost_usd {
                Some(c) => row.cost_usd += c,
                None => row.unpriced += 1,
            }
        }
        Ok(groups
            .into_values()
            .map(|mut r| {
                r.cost_usd = r.cost_usd.normalize();
                r
            })
            .collect())
    }
}

/// What the organisation report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgGroup {
    Member,
    Team,
    Provider,
    Month,
}

impl OrgGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Team => "team",
            Self::Provider => "provider",
            Self::Month => "month",
        }
    }
}

impl std::str::FromStr for OrgGroup {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "member" | "user" => Self::Member,
            "team" => Self::Team,
            "provider" => Self::Provider,
            "month" => Self::Month,
            other => return Err(Error::invalid_value("by", other, "expected member, team, provider or month")),
        })
    }
}

/// One group of the organisation report, USD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    pub key: Vec<(String, String)>,
    pub api_billed_usd: Decimal,
    pub subscriptions_usd: Decimal,
    pub one_off_usd: Decimal,
    pub total_usd: Decimal,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSummary {
    pub provider: BillingProvider,
    pub since: NaiveDate,
    /// Exclusive.
    pub until: NaiveDate,
    /// Pages of the pull (a resumed run counts those fetched before it).
    pub pages: u64,
    /// Whether it carried on from a cursor a failed run saved.
    pub resumed: bool,
    /// Rows now stored for the period.
    pub rows: u64,
    pub total_usd: Decimal,
}

/// What a usage pull did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePullSummary {
    pub provider: BillingProvider,
    pub width: BucketWidth,
    pub since: NaiveDate,
    /// Exclusive.
    pub until: NaiveDate,
    /// Pages of the pull, all endpoints (a resumed run counts those fetched before it).
    pub pages: u64,
    /// Whether any endpoint carried on from a cursor a failed run saved.
    pub resumed: bool,
    /// Rows now stored for the period (bucket × group × metric).
    pub rows: u64,
    /// `(endpoint, metric, total)` over the period, sorted.
    pub totals: Vec<(String, String, Decimal)>,
}

/// A pull's own current-thread runtime and HTTP client.
fn pull_client(opts: &PullOptions) -> Result<(tokio::runtime::Runtime, reqwest::Client)> {
    let client = billing::http_client(opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(crate::ErrorCode::Config, format!("cannot start the HTTP runtime: {e}")))?;
    Ok((rt, client))
}

/// Runs `fut` on the pull's own runtime, from a scoped thread when the caller is already inside one
/// (where `block_on` would panic).
fn block_in<F: std::future::Future + Send>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(|| rt.block_on(fut)).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
    } else {
        rt.block_on(fut)
    }
}

fn parse_day(text: &str) -> Result<NaiveDate> {
    text.parse().map_err(|_| Error::new(crate::ErrorCode::Store, format!("stored date `{text}` is not YYYY-MM-DD")))
}

/// What agent usage is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentGroup {
    Project,
    Session,
    Model,
    Day,
    Month,
}

impl AgentGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Session => "session",
            Self::Model => "model",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    fn value(self, e: &Entry) -> String {
        match self {
            Self::Project => e.project.clone(),
            Self::Session => e.session_id.clone(),
            Self::Model => e.model.clone(),
            Self::Day => e.timestamp.format("%Y-%m-%d").to_string(),
            Self::Month => e.timestamp.format("%Y-%m").to_string(),
        }
    }
}

impl std::str::FromStr for AgentGroup {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "project" => Self::Project,
            "session" => Self::Session,
            "model" => Self::Model,
            "day" => Self::Day,
            "month" => Self::Month,
            other => return Err(Error::invalid_value("by", other, "expected project, session, model, day or month")),
        })
    }
}

/// A grouping of agent usage over UTC days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentQuery {
    pub since: Option<NaiveDate>,
    /// Inclusive.
    pub until: Option<NaiveDate>,
    pub group_by: Vec<AgentGroup>,
}

/// One group of agent usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRow {
    /// `(group, value)` in the order of the query's `group_by`.
    pub key: Vec<(String, String)>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_5m_tokens: u64,
    pub cache_write_1h_tokens: u64,
    /// USD of the priced entries.
    pub cost_usd: Decimal,
    /// Entries without a price.
    pub unpriced: u64,
}
