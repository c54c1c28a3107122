//! The PostgreSQL spend store (feature `postgres`): the spend tables beside the ledger's, on a
//! connection of its own, so that app servers sharing one database never overspend together.
//!
//! Atomicity comes from row locks inside one `READ COMMITTED` transaction: a limit's counter row is
//! upserted with `ON CONFLICT … DO UPDATE … RETURNING` (which creates and locks it in one round trip),
//! an account is read `FOR UPDATE`, a reservation too; a check then sees the latest committed totals and
//! nobody else can change them until the transaction ends. Every transaction takes its locks in one
//! order — the reservation first (settle, release, expiry), then targets by id — so two transactions
//! cannot wait on each other in a cycle. Stale reservations are expired one per transaction, picked
//! with `FOR UPDATE SKIP LOCKED`, before a reservation's own transaction. Decimals are NUMERIC (sent
//! and read as text), times BIGINT nanoseconds. Each statement is prepared once per connection.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{
    dec, from_ns, AccountRow, Counter, CreditRow, Dump, Entry, HoldRow, Limit, ReservationRow, ReservationState, Scope,
    SpendStore, SpendTx,
};
use crate::alert::AlertEvent;
use crate::error::{Error, ErrorCode, Result};
use crate::ledger::health::redact_credentials;
use crate::ledger::postgres::{block_on, pg_err};

const DDL: &str = "
CREATE TABLE IF NOT EXISTS llmledger_spend_limits (
  id TEXT PRIMARY KEY, scope_key TEXT NOT NULL, anchor TEXT NOT NULL, per TEXT NOT NULL, metric TEXT NOT NULL,
  amount NUMERIC NOT NULL, currency TEXT, action TEXT NOT NULL, thresholds TEXT NOT NULL, timezone TEXT,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (scope_key, per, metric));
CREATE INDEX IF NOT EXISTS llmledger_spend_limits_anchor ON llmledger_spend_limits (anchor);
CREATE TABLE IF NOT EXISTS llmledger_spend_counters (
  limit_id TEXT NOT NULL, period TEXT NOT NULL, used NUMERIC NOT NULL, reserved NUMERIC NOT NULL,
  PRIMARY KEY (limit_id, period));
CREATE TABLE IF NOT EXISTS llmledger_spend_accounts (
  account TEXT PRIMARY KEY, currency TEXT NOT NULL, balance NUMERIC NOT NULL, reserved NUMERIC NOT NULL,
  low_alert NUMERIC, last_credit_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS llmledger_spend_entries (
  id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL, amount NUMERIC NOT NULL,
  currency TEXT NOT NULL, idempotency_key TEXT UNIQUE, expires_at BIGINT, credit_id BIGINT,
  reservation_id TEXT, note TEXT, created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS llmledger_spend_entries_account ON llmledger_spend_entries (account, id);
CREATE TABLE IF NOT EXISTS llmledger_spend_credits (
  entry_id BIGINT PRIMARY KEY, account TEXT NOT NULL, remaining NUMERIC NOT NULL, expires_at BIGINT);
CREATE INDEX IF NOT EXISTS llmledger_spend_credits_account ON llmledger_spend_credits (account);
CREATE TABLE IF NOT EXISTS llmledger_spend_reservations (
  id TEXT PRIMARY KEY, attribution TEXT NOT NULL, model TEXT NOT NULL, max_cost NUMERIC NOT NULL,
  currency TEXT NOT NULL, max_tokens BIGINT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  state TEXT NOT NULL, actual_cost NUMERIC, actual_tokens BIGINT, closed_at BIGINT);
CREATE INDEX IF NOT EXISTS llmledger_spend_reservations_open
  ON llmledger_spend_reservations (expires_at) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS llmledger_spend_holds (
  reservation_id TEXT NOT NULL, target TEXT NOT NULL, period TEXT NOT NULL, amount NUMERIC NOT NULL,
  used NUMERIC, PRIMARY KEY (reservation_id, target));
CREATE TABLE IF NOT EXISTS llmledger_spend_alerts (
  alert_id TEXT PRIMARY KEY, payload TEXT NOT NULL, fired_at BIGINT NOT NULL, enqueued_at BIGINT);
CREATE INDEX IF NOT EXISTS llmledger_spend_alerts_pending
  ON llmledger_spend_alerts (fired_at) WHERE enqueued_at IS NULL;
";

const ENTRY_SELECT: &str = "SELECT id, account, kind, amount::text, currency, idempotency_key, expires_at, credit_id,
  reservation_id, note, created_at FROM llmledger_spend_entries";
const ACCOUNT_SELECT: &str = "SELECT account, currency, balance::text, reserved::text, low_alert::text,
  last_credit_id FROM llmledger_spend_accounts";
const HOLD_COLS: &str = "h.reservation_id, h.target, h.period, h.amount::text, h.used::text";

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(pg_err)
}

fn parse<T: FromStr<Err = Error>>(s: &str) -> Result<T> {
    s.parse().map_err(|e: Error| Error::new(ErrorCode::Store, format!("stored value: {}", e.message())))
}

fn limit_from_row(r: &Row) -> Result<Limit> {
    let thresholds: Vec<String> = serde_json::from_str(&get::<String>(r, 7)?)?;
    Ok(Limit {
        id: get(r, 0)?,
        scope: Scope::from_key(&get::<String>(r, 1)?)?,
        per: parse(&get::<String>(r, 2)?)?,
        metric: parse(&get::<String>(r, 3)?)?,
        amount: dec("amount", &get::<String>(r, 4)?)?,
        currency: get(r, 5)?,
        action: parse(&get::<String>(r, 6)?)?,
        thresholds: thresholds.iter().map(|t| dec("threshold", t)).collect::<Result<_>>()?,
        timezone: get(r, 8)?,
        created_at: from_ns(get(r, 9)?),
        updated_at: from_ns(get(r, 10)?),
    })
}

fn entry_from_row(r: &Row) -> Result<Entry> {
    Ok(Entry {
        id: get(r, 0)?,
        account: get(r, 1)?,
        kind: parse(&get::<String>(r, 2)?)?,
        amount: dec("amount", &get::<String>(r, 3)?)?,
        currency: get(r, 4)?,
        idempotency_key: get(r, 5)?,
        expires_at: get::<Option<i64>>(r, 6)?.map(from_ns),
        credit_id: get(r, 7)?,
        reservation_id: get(r, 8)?,
        note: get(r, 9)?,
        created_at: from_ns(get(r, 10)?),
    })
}

fn account_from_row(r: &Row) -> Result<AccountRow> {
    Ok(AccountRow {
        account: get(r, 0)?,
        currency: get(r, 1)?,
        balance: dec("balance", &get::<String>(r, 2)?)?,
        reserved: dec("reserved", &get::<String>(r, 3)?)?,
        low_alert: get::<Option<String>>(r, 4)?.map(|l| dec("low_alert", &l)).transpose()?,
        last_credit_id: get(r, 5)?,
    })
}

fn hold_from_row(r: &Row) -> Result<HoldRow> {
    Ok(HoldRow {
        reservation_id: get(r, 0)?,
        target: get(r, 1)?,
        period: get(r, 2)?,
        amount: dec("amount", &get::<String>(r, 3)?)?,
        used: get::<Option<String>>(r, 4)?.map(|u| dec("used", &u)).transpose()?,
    })
}

/// A live connection and its prepared statements.
#[derive(Debug)]
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// The PostgreSQL spend store.
#[derive(Debug)]
pub struct PgSpend {
    rt: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    conn: Mutex<Option<Conn>>,
}

impl PgSpend {
    /// Parses `url` (a bad one is an [`ErrorCode::Config`] error); connects on first use, and again
    /// after the connection drops.
    pub fn connect(url: &str) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::config("store", redact_credentials(url), &format!("not a PostgreSQL URL: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the PostgreSQL runtime: {e}")))?;
        Ok(Self { rt, config, conn: Mutex::new(None) })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Conn>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a live connection with the schema in place.
    fn with_conn<T>(&self, f: impl FnOnce(&mut PgTx<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.lock();
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = Some(self.open_conn()?);
        }
        let Some(conn) = guard.as_mut() else { return Err(Error::new(ErrorCode::Store, "no PostgreSQL connection")) };
        let result = f(&mut PgTx { rt: &self.rt, conn });
        if conn.client.is_closed() {
            *guard = None;
        }
        result
    }

    fn open_conn(&self) -> Result<Conn> {
        block_on(&self.rt, async {
            let (client, connection) = self.config.connect(NoTls).await.map_err(pg_err)?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the server goes away; errors surface on the client.
                let _ = connection.await;
            });
            // One creator at a time across every instance (a different key than the ledger's).
            client
                .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock(7236452); {DDL} COMMIT;"))
                .await
                .map_err(pg_err)?;
            Ok(Conn { client, statements: HashMap::new() })
        })
    }
}

/// An open PostgreSQL transaction (or, outside `transact`, the bare connection).
struct PgTx<'c> {
    rt: &'c tokio::runtime::Runtime,
    conn: &'c mut Conn,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.conn.statements.get(sql) {
            return Ok(s.clone());
        }
        let client = &self.conn.client;
        let s = block_on(self.rt, async { client.prepare(sql).await }).map_err(pg_err)?;
        self.conn.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let client = &self.conn.client;
        block_on(self.rt, async { client.query(&stmt, params).await }).map_err(pg_err)
    }

    fn exec(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let stmt = self.statement(sql)?;
        let client = &self.conn.client;
        block_on(self.rt, async { client.execute(&stmt, params).await }).map_err(pg_err)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        let client = &self.conn.client;
        block_on(self.rt, async { client.batch_execute(sql).await }).map_err(pg_err)
    }
}

impl SpendStore for PgSpend {
    fn transact(&self, write: bool, f: &mut dyn FnMut(&mut dyn SpendTx) -> Result<()>) -> Result<()> {
        self.with_conn(|tx| {
            tx.batch(if write { "BEGIN" } else { "BEGIN READ ONLY" })?;
            match f(tx) {
                Ok(()) => tx.batch("COMMIT").inspect_err(|_| {
                    let _ = tx.batch("ROLLBACK");
                }),
                Err(e) => {
                    let _ = tx.batch("ROLLBACK");
                    Err(e)
                }
            }
        })
    }

    fn expires_inline(&self) -> bool {
        false
    }

    fn has_rules(&self) -> Result<bool> {
        self.with_conn(|tx| {
            let rows = tx.query(
                "SELECT EXISTS (SELECT 1 FROM llmledger_spend_limits) OR EXISTS (SELECT 1 FROM llmledger_spend_accounts)",
                &[],
            )?;
            rows.first().map(|r| get(r, 0)).unwrap_or(Ok(false))
        })
    }

    fn upsert_limit(&self, l: &Limit, anchor: &str) -> Result<Limit> {
        let thresholds: Vec<String> = l.thresholds.iter().map(Decimal::to_string).collect();
        let thresholds = serde_json::to_string(&thresholds)?;
        self.with_conn(|tx| {
            let rows = tx.query(
                "INSERT INTO llmledger_spend_limits (id, scope_key, anchor, per, metric, amount, currency, action,
                   thresholds, timezone, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6::text::numeric, $7, $8, $9, $10, $11, $11)
                 ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, currency = EXCLUDED.currency,
                   action = EXCLUDED.action, thresholds = EXCLUDED.thresholds, timezone = EXCLUDED.timezone,
                   updated_at = EXCLUDED.updated_at
                 RETURNING id, scope_key, per, metric, amount::text, currency, action, thresholds, timezone,
                   created_at, updated_at",
                &[
                    &l.id,
                    &l.scope.key(),
                    &anchor,
                    &l.per.as_str(),
                    &l.metric.as_str(),
                    &l.amount.to_string(),
                    &l.currency,
                    &l.action.as_str(),
                    &thresholds,
                    &l.timezone,
                    &super::ns(l.updated_at),
                ],
            )?;
            rows.first()
                .map(limit_from_row)
                .unwrap_or_else(|| Err(Error::new(ErrorCode::Store, "the limit was not stored")))
        })
    }

    fn list_limits(&self) -> Result<Vec<Limit>> {
        self.with_conn(|tx| {
            const SQL: &str = "SELECT id, scope_key, per, metric, amount::text, currency, action, thresholds,
              timezone, created_at, updated_at FROM llmledger_spend_limits ORDER BY scope_key, per, metric";
            tx.query(SQL, &[])?.iter().map(limit_from_row).collect()
        })
    }

    fn delete_limit(&self, id: &str) -> Result<bool> {
        self.with_conn(|tx| Ok(tx.exec("DELETE FROM llmledger_spend_limits WHERE id = $1", &[&id])? > 0))
    }

    fn entries(&self, account: &str, limit: u32, before: Option<i64>) -> Result<Vec<Entry>> {
        self.with_conn(|tx| {
            const SQL: &str = "SELECT id, account, kind, amount::text, currency, idempotency_key, expires_at,
              credit_id, reservation_id, note, created_at FROM llmledger_spend_entries
              WHERE account = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
            let rows = tx.query(SQL, &[&account, &before.unwrap_or(i64::MAX), &i64::from(limit)])?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    fn pending_alerts(&self, limit: u32) -> Result<Vec<AlertEvent>> {
        self.with_conn(|tx| {
            let rows = tx.query(
                "SELECT payload FROM llmledger_spend_alerts WHERE enqueued_at IS NULL ORDER BY fired_at, alert_id
                 LIMIT $1",
                &[&i64::from(limit)],
            )?;
            rows.iter().map(|r| Ok(serde_json::from_str(&get::<String>(r, 0)?)?)).collect()
        })
    }

    fn mark_alerts(&self, ids: &[String], now_ns: i64) -> Result<u64> {
        self.with_conn(|tx| {
            tx.exec(
                "UPDATE llmledger_spend_alerts SET enqueued_at = $2 WHERE alert_id = ANY($1) AND enqueued_at IS NULL",
                &[&ids, &now_ns],
            )
        })
    }
}

impl SpendTx for PgTx<'_> {
    fn stale_reservations(&mut self, now_ns: i64, limit: Option<u32>) -> Result<Vec<String>> {
        let rows = self.query(
            "SELECT id FROM llmledger_spend_reservations WHERE state = 'open' AND expires_at <= $1
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&now_ns, &limit.map(i64::from)],
        )?;
        rows.iter().map(|r| get(r, 0)).collect()
    }

    fn lock_reservation(&mut self, id: &str) -> Result<Option<ReservationRow>> {
        let rows = self.query(
            "SELECT id, attribution, model, max_cost::text, currency, max_tokens, created_at, expires_at, state
             FROM llmledger_spend_reservations WHERE id = $1 FOR UPDATE",
            &[&id],
        )?;
        rows.first()
            .map(|r| {
                Ok(ReservationRow {
                    id: get(r, 0)?,
                    attribution: get(r, 1)?,
                    model: get(r, 2)?,
                    max_cost: dec("max_cost", &get::<String>(r, 3)?)?,
                    currency: get(r, 4)?,
                    max_tokens: get(r, 5)?,
                    created_ns: get(r, 6)?,
                    expires_ns: get(r, 7)?,
                    state: parse(&get::<String>(r, 8)?)?,
                })
            })
            .transpose()
    }

    fn insert_reservation(&mut self, r: &ReservationRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_reservations (id, attribution, model, max_cost, currency, max_tokens,
               created_at, expires_at, state) VALUES ($1, $2, $3, $4::text::numeric, $5, $6, $7, $8, $9)",
            &[
                &r.id,
                &r.attribution,
                &r.model,
                &r.max_cost.to_string(),
                &r.currency,
                &r.max_tokens,
                &r.created_ns,
                &r.expires_ns,
                &r.state.as_str(),
            ],
        )?;
        Ok(())
    }

    fn close_reservation(
        &mut self,
        id: &str,
        state: ReservationState,
        actual_cost: Option<Decimal>,
        actual_tokens: Option<i64>,
        now_ns: i64,
    ) -> Result<()> {
        self.exec(
            "UPDATE llmledger_spend_reservations SET state = $2, actual_cost = $3::text::numeric,
               actual_tokens = $4, closed_at = $5 WHERE id = $1",
            &[&id, &state.as_str(), &actual_cost.map(|c| c.to_string()), &actual_tokens, &now_ns],
        )?;
        Ok(())
    }

    fn holds(&mut self, reservation_id: &str) -> Result<Vec<HoldRow>> {
        const SQL: &str = "SELECT h.reservation_id, h.target, h.period, h.amount::text, h.used::text
          FROM llmledger_spend_holds h WHERE h.reservation_id = $1 ORDER BY h.target";
        self.query(SQL, &[&reservation_id])?.iter().map(hold_from_row).collect()
    }

    fn insert_hold(&mut self, h: &HoldRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_holds (reservation_id, target, period, amount)
             VALUES ($1, $2, $3, $4::text::numeric)",
            &[&h.reservation_id, &h.target, &h.period, &h.amount.to_string()],
        )?;
        Ok(())
    }

    fn settle_hold(&mut self, reservation_id: &str, target: &str, used: Decimal) -> Result<()> {
        self.exec(
            "UPDATE llmledger_spend_holds SET used = $3::text::numeric WHERE reservation_id = $1 AND target = $2",
            &[&reservation_id, &target, &used.to_string()],
        )?;
        Ok(())
    }

    fn limits_for(&mut self, anchors: &[String]) -> Result<Vec<Limit>> {
        const SQL: &str = "SELECT id, scope_key, per, metric, amount::text, currency, action, thresholds, timezone,
          created_at, updated_at FROM llmledger_spend_limits WHERE anchor = ANY($1)";
        self.query(SQL, &[&anchors])?.iter().map(limit_from_row).collect()
    }

    fn limit(&mut self, id: &str) -> Result<Option<Limit>> {
        const SQL: &str = "SELECT id, scope_key, per, metric, amount::text, currency, action, thresholds, timezone,
          created_at, updated_at FROM llmledger_spend_limits WHERE id = $1";
        self.query(SQL, &[&id])?.first().map(limit_from_row).transpose()
    }

    fn counter(&mut self, limit_id: &str, period: &str, lock: bool) -> Result<Counter> {
        let rows = if lock {
            // Creates the row if needed and locks it, in one round trip.
            self.query(
                "INSERT INTO llmledger_spend_counters AS c (limit_id, period, used, reserved) VALUES ($1, $2, 0, 0)
                 ON CONFLICT (limit_id, period) DO UPDATE SET used = c.used
                 RETURNING used::text, reserved::text",
                &[&limit_id, &period],
            )?
        } else {
            self.query(
                "SELECT used::text, reserved::text FROM llmledger_spend_counters WHERE limit_id = $1 AND period = $2",
                &[&limit_id, &period],
            )?
        };
        match rows.first() {
            None => Ok(Counter::default()),
            Some(r) => Ok(Counter {
                used: dec("used", &get::<String>(r, 0)?)?,
                reserved: dec("reserved", &get::<String>(r, 1)?)?,
            }),
        }
    }

    fn put_counter(&mut self, limit_id: &str, period: &str, c: &Counter) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_counters (limit_id, period, used, reserved)
             VALUES ($1, $2, $3::text::numeric, $4::text::numeric)
             ON CONFLICT (limit_id, period) DO UPDATE SET used = EXCLUDED.used, reserved = EXCLUDED.reserved",
            &[&limit_id, &period, &c.used.to_string(), &c.reserved.to_string()],
        )?;
        Ok(())
    }

    fn lock_account(&mut self, account: &str) -> Result<Option<AccountRow>> {
        const SQL: &str = "SELECT account, currency, balance::text, reserved::text, low_alert::text, last_credit_id
          FROM llmledger_spend_accounts WHERE account = $1 FOR UPDATE";
        self.query(SQL, &[&account])?.first().map(account_from_row).transpose()
    }

    fn create_account(&mut self, a: &AccountRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_accounts (account, currency, balance, reserved, low_alert, last_credit_id)
             VALUES ($1, $2, 0, 0, NULL, 0) ON CONFLICT (account) DO NOTHING",
            &[&a.account, &a.currency],
        )?;
        Ok(())
    }

    fn put_account(&mut self, a: &AccountRow) -> Result<()> {
        self.exec(
            "UPDATE llmledger_spend_accounts SET balance = $2::text::numeric, reserved = $3::text::numeric,
               low_alert = $4::text::numeric, last_credit_id = $5 WHERE account = $1",
            &[
                &a.account,
                &a.balance.to_string(),
                &a.reserved.to_string(),
                &a.low_alert.map(|l| l.to_string()),
                &a.last_credit_id,
            ],
        )?;
        Ok(())
    }

    fn credits(&mut self, account: &str) -> Result<Vec<CreditRow>> {
        let rows = self.query(
            "SELECT entry_id, remaining::text, expires_at FROM llmledger_spend_credits WHERE account = $1",
            &[&account],
        )?;
        rows.iter()
            .map(|r| {
                Ok(CreditRow {
                    entry_id: get(r, 0)?,
                    remaining: dec("remaining", &get::<String>(r, 1)?)?,
                    expires_ns: get(r, 2)?,
                })
            })
            .collect()
    }

    fn put_credit(&mut self, entry_id: i64, account: &str, remaining: Decimal, expires_ns: Option<i64>) -> Result<()> {
        if remaining <= Decimal::ZERO {
            self.exec("DELETE FROM llmledger_spend_credits WHERE entry_id = $1", &[&entry_id])?;
        } else {
            self.exec(
                "INSERT INTO llmledger_spend_credits (entry_id, account, remaining, expires_at)
                 VALUES ($1, $2, $3::text::numeric, $4)
                 ON CONFLICT (entry_id) DO UPDATE SET remaining = EXCLUDED.remaining",
                &[&entry_id, &account, &remaining.to_string(), &expires_ns],
            )?;
        }
        Ok(())
    }

    fn insert_entry(&mut self, e: &Entry) -> Result<Option<i64>> {
        let rows = self.query(
            "INSERT INTO llmledger_spend_entries (account, kind, amount, currency, idempotency_key, expires_at,
               credit_id, reservation_id, note, created_at)
             VALUES ($1, $2, $3::text::numeric, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            &[
                &e.account,
                &e.kind.as_str(),
                &e.amount.to_string(),
                &e.currency,
                &e.idempotency_key,
                &e.expires_at.map(super::ns),
                &e.credit_id,
                &e.reservation_id,
                &e.note,
                &super::ns(e.created_at),
            ],
        )?;
        rows.first().map(|r| get(r, 0)).transpose()
    }

    fn entry_by_key(&mut self, key: &str) -> Result<Option<Entry>> {
        const SQL: &str = "SELECT id, account, kind, amount::text, currency, idempotency_key, expires_at, credit_id,
          reservation_id, note, created_at FROM llmledger_spend_entries WHERE idempotency_key = $1";
        self.query(SQL, &[&key])?.first().map(entry_from_row).transpose()
    }

    fn insert_alert(&mut self, a: &AlertEvent, now_ns: i64) -> Result<bool> {
        let n = self.exec(
            "INSERT INTO llmledger_spend_alerts (alert_id, payload, fired_at) VALUES ($1, $2, $3)
             ON CONFLICT (alert_id) DO NOTHING",
            &[&a.alert_id, &serde_json::to_string(a)?, &now_ns],
        )?;
        Ok(n > 0)
    }

    fn dump(&mut self) -> Result<Dump> {
        let accounts = self.query_all(ACCOUNT_SELECT)?.iter().map(account_from_row).collect::<Result<_>>()?;
        let entries = self.query_all(ENTRY_SELECT)?.iter().map(entry_from_row).collect::<Result<_>>()?;
        let credits = self
            .query_all("SELECT entry_id, remaining::text FROM llmledger_spend_credits")?
            .iter()
            .map(|r| Ok((get(r, 0)?, dec("remaining", &get::<String>(r, 1)?)?)))
            .collect::<Result<_>>()?;
        let holds = self
            .query_all(&format!(
                "SELECT {HOLD_COLS}, r.state FROM llmledger_spend_holds h
                 JOIN llmledger_spend_reservations r ON r.id = h.reservation_id"
            ))?
            .iter()
            .map(|r| Ok((hold_from_row(r)?, parse(&get::<String>(r, 5)?)?)))
            .collect::<Result<_>>()?;
        let counters = self
            .query_all("SELECT limit_id, period, used::text, reserved::text FROM llmledger_spend_counters")?
            .iter()
            .map(|r| {
                let c = Counter {
                    used: dec("used", &get::<String>(r, 2)?)?,
                    reserved: dec("reserved", &get::<String>(r, 3)?)?,
                };
                Ok((get(r, 0)?, get(r, 1)?, c))
            })
            .collect::<Result<_>>()?;
        Ok(Dump { accounts, entries, credits, holds, counters })
    }
}

impl PgTx<'_> {
    /// An unprepared query (verification only).
    fn query_all(&mut self, sql: &str) -> Result<Vec<Row>> {
        let client = &self.conn.client;
        block_on(self.rt, async { client.query(sql, &[]).await }).map_err(pg_err)
    }
}
