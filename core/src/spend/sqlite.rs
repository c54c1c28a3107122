//! The SQLite spend store: tables beside the ledger's in the same file, on a connection of its own
//! (WAL, `busy_timeout` 5 s). Every write runs under `BEGIN IMMEDIATE`, which takes the file's one
//! write lock at the start: reservations from any thread or process on the file are serialized, so a
//! check and its hold can never interleave with another's. Decimals are TEXT (exact), times INTEGER
//! nanoseconds. `memory://` trackers get a private in-memory database.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;

use super::{
    dec, from_ns, AccountRow, Counter, CreditRow, Dump, Entry, HoldRow, Limit, ReservationRow, ReservationState, Scope,
    SpendStore, SpendTx,
};
use crate::alert::AlertEvent;
use crate::error::{Error, ErrorCode, Result};

const DDL: &str = "
CREATE TABLE IF NOT EXISTS llmledger_spend_limits (
  id TEXT PRIMARY KEY, scope_key TEXT NOT NULL, anchor TEXT NOT NULL, per TEXT NOT NULL, metric TEXT NOT NULL,
  amount TEXT NOT NULL, currency TEXT, action TEXT NOT NULL, thresholds TEXT NOT NULL, timezone TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (scope_key, per, metric));
CREATE INDEX IF NOT EXISTS llmledger_spend_limits_anchor ON llmledger_spend_limits (anchor);
CREATE TABLE IF NOT EXISTS llmledger_spend_counters (
  limit_id TEXT NOT NULL, period TEXT NOT NULL, used TEXT NOT NULL, reserved TEXT NOT NULL,
  PRIMARY KEY (limit_id, period)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS llmledger_spend_accounts (
  account TEXT PRIMARY KEY, currency TEXT NOT NULL, balance TEXT NOT NULL, reserved TEXT NOT NULL,
  low_alert TEXT, last_credit_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS llmledger_spend_entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, kind TEXT NOT NULL, amount TEXT NOT NULL,
  currency TEXT NOT NULL, idempotency_key TEXT UNIQUE, expires_at INTEGER, credit_id INTEGER,
  reservation_id TEXT, note TEXT, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS llmledger_spend_entries_account ON llmledger_spend_entries (account, id);
CREATE TABLE IF NOT EXISTS llmledger_spend_credits (
  entry_id INTEGER PRIMARY KEY, account TEXT NOT NULL, remaining TEXT NOT NULL, expires_at INTEGER);
CREATE INDEX IF NOT EXISTS llmledger_spend_credits_account ON llmledger_spend_credits (account);
CREATE TABLE IF NOT EXISTS llmledger_spend_reservations (
  id TEXT PRIMARY KEY, attribution TEXT NOT NULL, model TEXT NOT NULL, max_cost TEXT NOT NULL,
  currency TEXT NOT NULL, max_tokens INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  state TEXT NOT NULL, actual_cost TEXT, actual_tokens INTEGER, closed_at INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS llmledger_spend_reservations_open
  ON llmledger_spend_reservations (expires_at) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS llmledger_spend_holds (
  reservation_id TEXT NOT NULL, target TEXT NOT NULL, period TEXT NOT NULL, amount TEXT NOT NULL, used TEXT,
  PRIMARY KEY (reservation_id, target)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS llmledger_spend_alerts (
  alert_id TEXT PRIMARY KEY, payload TEXT NOT NULL, fired_at INTEGER NOT NULL, enqueued_at INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS llmledger_spend_alerts_pending
  ON llmledger_spend_alerts (fired_at) WHERE enqueued_at IS NULL;
";

const LIMIT_COLS: &str =
    "id, scope_key, per, metric, amount, currency, action, thresholds, timezone, created_at, updated_at";
const ENTRY_COLS: &str =
    "id, account, kind, amount, currency, idempotency_key, expires_at, credit_id, reservation_id, note, created_at";

fn db_err(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Store, format!("SQLite spend store: {e}"))
}

fn parse<T: std::str::FromStr<Err = Error>>(s: &str) -> Result<T> {
    s.parse().map_err(|e: Error| Error::new(ErrorCode::Store, format!("stored value: {}", e.message())))
}

fn limit_from_row(r: &Row<'_>) -> Result<Limit> {
    let get_s = |i: usize| r.get::<_, String>(i).map_err(db_err);
    let thresholds: Vec<String> = serde_json::from_str(&get_s(7)?)?;
    Ok(Limit {
        id: get_s(0)?,
        scope: Scope::from_key(&get_s(1)?)?,
        per: parse(&get_s(2)?)?,
        metric: parse(&get_s(3)?)?,
        amount: dec("amount", &get_s(4)?)?,
        currency: r.get(5).map_err(db_err)?,
        action: parse(&get_s(6)?)?,
        thresholds: thresholds.iter().map(|t| dec("threshold", t)).collect::<Result<_>>()?,
        timezone: r.get(8).map_err(db_err)?,
        created_at: from_ns(r.get(9).map_err(db_err)?),
        updated_at: from_ns(r.get(10).map_err(db_err)?),
    })
}

fn entry_from_row(r: &Row<'_>) -> Result<Entry> {
    Ok(Entry {
        id: r.get(0).map_err(db_err)?,
        account: r.get(1).map_err(db_err)?,
        kind: parse(&r.get::<_, String>(2).map_err(db_err)?)?,
        amount: dec("amount", &r.get::<_, String>(3).map_err(db_err)?)?,
        currency: r.get(4).map_err(db_err)?,
        idempotency_key: r.get(5).map_err(db_err)?,
        expires_at: r.get::<_, Option<i64>>(6).map_err(db_err)?.map(from_ns),
        credit_id: r.get(7).map_err(db_err)?,
        reservation_id: r.get(8).map_err(db_err)?,
        note: r.get(9).map_err(db_err)?,
        created_at: from_ns(r.get(10).map_err(db_err)?),
    })
}

fn account_from_row(r: &Row<'_>) -> Result<AccountRow> {
    let low: Option<String> = r.get(4).map_err(db_err)?;
    Ok(AccountRow {
        account: r.get(0).map_err(db_err)?,
        currency: r.get(1).map_err(db_err)?,
        balance: dec("balance", &r.get::<_, String>(2).map_err(db_err)?)?,
        reserved: dec("reserved", &r.get::<_, String>(3).map_err(db_err)?)?,
        low_alert: low.map(|l| dec("low_alert", &l)).transpose()?,
        last_credit_id: r.get(5).map_err(db_err)?,
    })
}

/// Collects a query's rows through `f`.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(f(r)?);
    }
    Ok(out)
}

/// The SQLite spend store.
#[derive(Debug)]
pub struct SqliteSpend {
    conn: Mutex<Connection>,
}

impl SqliteSpend {
    /// Opens (creating) the spend tables in the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let cfg = |reason: String| Error::config("store", path.display(), &reason);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| cfg(format!("cannot create the directory: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| cfg(format!("cannot open the database: {e}")))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
            .map_err(|e| cfg(format!("cannot set up the database: {e}")))?;
        Self::init(conn).map_err(|e| cfg(format!("cannot create the spend tables: {}", e.message())))
    }

    /// A private in-memory database (for `memory://` trackers and tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(conn: Connection) -> Result<Self> {
        // Two processes creating the tables at once: the second waits on the first's lock.
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {DDL} COMMIT;")).map_err(db_err)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SpendStore for SqliteSpend {
    fn transact(&self, write: bool, f: &mut dyn FnMut(&mut dyn SpendTx) -> Result<()>) -> Result<()> {
        let conn = self.lock();
        // Cached statements, not `execute_batch`: parsing BEGIN and COMMIT twice per call showed in profiles.
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map_err(db_err);
        run(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
        let result = f(&mut SqliteTx { conn: &conn });
        match result {
            Ok(()) => run("COMMIT").map(drop).inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            }),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn expires_inline(&self) -> bool {
        true
    }

    fn has_rules(&self) -> Result<bool> {
        self.lock()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM llmledger_spend_limits) OR EXISTS (SELECT 1 FROM llmledger_spend_accounts)",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)
    }

    fn upsert_limit(&self, l: &Limit, anchor: &str) -> Result<Limit> {
        let conn = self.lock();
        let thresholds: Vec<String> = l.thresholds.iter().map(Decimal::to_string).collect();
        conn.execute(
            "INSERT INTO llmledger_spend_limits (id, scope_key, anchor, per, metric, amount, currency, action,
               thresholds, timezone, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
             ON CONFLICT (id) DO UPDATE SET amount = excluded.amount, currency = excluded.currency,
               action = excluded.action, thresholds = excluded.thresholds, timezone = excluded.timezone,
               updated_at = excluded.updated_at",
            params![
                l.id,
                l.scope.key(),
                anchor,
                l.per.as_str(),
                l.metric.as_str(),
                l.amount.to_string(),
                l.currency,
                l.action.as_str(),
                serde_json::to_string(&thresholds)?,
                l.timezone,
                super::ns(l.updated_at)
            ],
        )
        .map_err(db_err)?;
        let sql = format!("SELECT {LIMIT_COLS} FROM llmledger_spend_limits WHERE id = ?1");
        rows(&conn, &sql, [&l.id], limit_from_row)?
            .pop()
            .ok_or_else(|| Error::new(ErrorCode::Store, "the limit was not stored"))
    }

    fn list_limits(&self) -> Result<Vec<Limit>> {
        let sql = format!("SELECT {LIMIT_COLS} FROM llmledger_spend_limits ORDER BY scope_key, per, metric");
        rows(&self.lock(), &sql, [], limit_from_row)
    }

    fn delete_limit(&self, id: &str) -> Result<bool> {
        let n = self.lock().execute("DELETE FROM llmledger_spend_limits WHERE id = ?1", [id]).map_err(db_err)?;
        Ok(n > 0)
    }

    fn entries(&self, account: &str, limit: u32, before: Option<i64>) -> Result<Vec<Entry>> {
        let sql = format!(
            "SELECT {ENTRY_COLS} FROM llmledger_spend_entries WHERE account = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
        );
        rows(&self.lock(), &sql, params![account, before.unwrap_or(i64::MAX), limit], entry_from_row)
    }

    fn pending_alerts(&self, limit: u32) -> Result<Vec<AlertEvent>> {
        let sql =
            "SELECT payload FROM llmledger_spend_alerts WHERE enqueued_at IS NULL ORDER BY fired_at, alert_id LIMIT ?1";
        rows(&self.lock(), sql, [limit], |r| Ok(serde_json::from_str(&r.get::<_, String>(0).map_err(db_err)?)?))
    }

    fn mark_alerts(&self, ids: &[String], now_ns: i64) -> Result<u64> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err)?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE llmledger_spend_alerts SET enqueued_at = ?2 WHERE alert_id = ?1 AND enqueued_at IS NULL",
                )
                .map_err(db_err)?;
            for id in ids {
                n += stmt.execute(params![id, now_ns]).map_err(db_err)? as u64;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(n)
    }
}

/// An open SQLite transaction.
struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl SqliteTx<'_> {
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.conn.prepare_cached(sql).map_err(db_err)?.execute(params).map_err(db_err)
    }
}

impl SpendTx for SqliteTx<'_> {
    fn stale_reservations(&mut self, now_ns: i64, limit: Option<u32>) -> Result<Vec<String>> {
        rows(
            self.conn,
            "SELECT id FROM llmledger_spend_reservations WHERE state = 'open' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            params![now_ns, limit.map_or(-1, i64::from)],
            |r| r.get(0).map_err(db_err),
        )
    }

    fn lock_reservation(&mut self, id: &str) -> Result<Option<ReservationRow>> {
        let found = rows(
            self.conn,
            "SELECT id, attribution, model, max_cost, currency, max_tokens, created_at, expires_at, state
             FROM llmledger_spend_reservations WHERE id = ?1",
            [id],
            |r| {
                Ok(ReservationRow {
                    id: r.get(0).map_err(db_err)?,
                    attribution: r.get(1).map_err(db_err)?,
                    model: r.get(2).map_err(db_err)?,
                    max_cost: dec("max_cost", &r.get::<_, String>(3).map_err(db_err)?)?,
                    currency: r.get(4).map_err(db_err)?,
                    max_tokens: r.get(5).map_err(db_err)?,
                    created_ns: r.get(6).map_err(db_err)?,
                    expires_ns: r.get(7).map_err(db_err)?,
                    state: parse(&r.get::<_, String>(8).map_err(db_err)?)?,
                })
            },
        )?;
        Ok(found.into_iter().next())
    }

    fn insert_reservation(&mut self, r: &ReservationRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_reservations (id, attribution, model, max_cost, currency, max_tokens,
               created_at, expires_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                r.id,
                r.attribution,
                r.model,
                r.max_cost.to_string(),
                r.currency,
                r.max_tokens,
                r.created_ns,
                r.expires_ns,
                r.state.as_str()
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
            "UPDATE llmledger_spend_reservations SET state = ?2, actual_cost = ?3, actual_tokens = ?4, closed_at = ?5
             WHERE id = ?1",
            params![id, state.as_str(), actual_cost.map(|c| c.to_string()), actual_tokens, now_ns],
        )?;
        Ok(())
    }

    fn holds(&mut self, reservation_id: &str) -> Result<Vec<HoldRow>> {
        rows(
            self.conn,
            "SELECT reservation_id, target, period, amount, used FROM llmledger_spend_holds
             WHERE reservation_id = ?1 ORDER BY target",
            [reservation_id],
            hold_from_row,
        )
    }

    fn insert_hold(&mut self, h: &HoldRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_holds (reservation_id, target, period, amount) VALUES (?1, ?2, ?3, ?4)",
            params![h.reservation_id, h.target, h.period, h.amount.to_string()],
        )?;
        Ok(())
    }

    fn settle_hold(&mut self, reservation_id: &str, target: &str, used: Decimal) -> Result<()> {
        self.exec(
            "UPDATE llmledger_spend_holds SET used = ?3 WHERE reservation_id = ?1 AND target = ?2",
            params![reservation_id, target, used.to_string()],
        )?;
        Ok(())
    }

    fn limits_for(&mut self, anchors: &[String]) -> Result<Vec<Limit>> {
        let marks = vec!["?"; anchors.len()].join(", ");
        let sql = format!("SELECT {LIMIT_COLS} FROM llmledger_spend_limits WHERE anchor IN ({marks})");
        rows(self.conn, &sql, rusqlite::params_from_iter(anchors.iter()), limit_from_row)
    }

    fn limit(&mut self, id: &str) -> Result<Option<Limit>> {
        let sql = format!("SELECT {LIMIT_COLS} FROM llmledger_spend_limits WHERE id = ?1");
        Ok(rows(self.conn, &sql, [id], limit_from_row)?.pop())
    }

    fn counter(&mut self, limit_id: &str, period: &str, _lock: bool) -> Result<Counter> {
        let found = self
            .conn
            .prepare_cached("SELECT used, reserved FROM llmledger_spend_counters WHERE limit_id = ?1 AND period = ?2")
            .map_err(db_err)?
            .query_row([limit_id, period], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .optional()
            .map_err(db_err)?;
        match found {
            None => Ok(Counter::default()),
            Some((used, reserved)) => Ok(Counter { used: dec("used", &used)?, reserved: dec("reserved", &reserved)? }),
        }
    }

    fn put_counter(&mut self, limit_id: &str, period: &str, c: &Counter) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_counters (limit_id, period, used, reserved) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (limit_id, period) DO UPDATE SET used = excluded.used, reserved = excluded.reserved",
            params![limit_id, period, c.used.to_string(), c.reserved.to_string()],
        )?;
        Ok(())
    }

    fn lock_account(&mut self, account: &str) -> Result<Option<AccountRow>> {
        Ok(rows(
            self.conn,
            "SELECT account, currency, balance, reserved, low_alert, last_credit_id FROM llmledger_spend_accounts
             WHERE account = ?1",
            [account],
            account_from_row,
        )?
        .pop())
    }

    fn create_account(&mut self, a: &AccountRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_accounts (account, currency, balance, reserved, low_alert, last_credit_id)
             VALUES (?1, ?2, '0', '0', NULL, 0) ON CONFLICT (account) DO NOTHING",
            params![a.account, a.currency],
        )?;
        Ok(())
    }

    fn put_account(&mut self, a: &AccountRow) -> Result<()> {
        self.exec(
            "INSERT INTO llmledger_spend_accounts (account, currency, balance, reserved, low_alert, last_credit_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (account) DO UPDATE SET balance = excluded.balance, reserved = excluded.reserved,
               low_alert = excluded.low_alert, last_credit_id = excluded.last_credit_id",
            params![
                a.account,
                a.currency,
                a.balance.to_string(),
                a.reserved.to_string(),
                a.low_alert.map(|l| l.to_string()),
                a.last_credit_id
            ],
        )?;
        Ok(())
    }

    fn credits(&mut self, account: &str) -> Result<Vec<CreditRow>> {
        rows(
            self.conn,
            "SELECT entry_id, remaining, expires_at FROM llmledger_spend_credits WHERE account = ?1",
            [account],
            |r| {
                Ok(CreditRow {
                    entry_id: r.get(0).map_err(db_err)?,
                    remaining: dec("remaining", &r.get::<_, String>(1).map_err(db_err)?)?,
                    expires_ns: r.get(2).map_err(db_err)?,
                })
            },
        )
    }

    fn put_credit(&mut self, entry_id: i64, account: &str, remaining: Decimal, expires_ns: Option<i64>) -> Result<()> {
        if remaining <= Decimal::ZERO {
            self.exec("DELETE FROM llmledger_spend_credits WHERE entry_id = ?1", [entry_id])?;
        } else {
            self.exec(
                "INSERT INTO llmledger_spend_credits (entry_id, account, remaining, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (entry_id) DO UPDATE SET remaining = excluded.remaining",
                params![entry_id, account, remaining.to_string(), expires_ns],
            )?;
        }
        Ok(())
    }

    fn insert_entry(&mut self, e: &Entry) -> Result<Option<i64>> {
        let n = self.exec(
            "INSERT INTO llmledger_spend_entries (account, kind, amount, currency, idempotency_key, expires_at,
               credit_id, reservation_id, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (idempotency_key) DO NOTHING",
            params![
                e.account,
                e.kind.as_str(),
                e.amount.to_string(),
                e.currency,
                e.idempotency_key,
                e.expires_at.map(super::ns),
                e.credit_id,
                e.reservation_id,
                e.note,
                super::ns(e.created_at)
            ],
        )?;
        Ok((n > 0).then(|| self.conn.last_insert_rowid()))
    }

    fn entry_by_key(&mut self, key: &str) -> Result<Option<Entry>> {
        let sql = format!("SELECT {ENTRY_COLS} FROM llmledger_spend_entries WHERE idempotency_key = ?1");
        Ok(rows(self.conn, &sql, [key], entry_from_row)?.pop())
    }

    fn insert_alert(&mut self, a: &AlertEvent, now_ns: i64) -> Result<bool> {
        let n = self.exec(
            "INSERT INTO llmledger_spend_alerts (alert_id, payload, fired_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (alert_id) DO NOTHING",
            params![a.alert_id, serde_json::to_string(a)?, now_ns],
        )?;
        Ok(n > 0)
    }

    fn dump(&mut self) -> Result<Dump> {
        let c = self.conn;
        Ok(Dump {
            accounts: rows(
                c,
                "SELECT account, currency, balance, reserved, low_alert, last_credit_id FROM llmledger_spend_accounts",
                [],
                account_from_row,
            )?,
            entries: rows(c, &format!("SELECT {ENTRY_COLS} FROM llmledger_spend_entries"), [], entry_from_row)?,
            credits: rows(c, "SELECT entry_id, remaining FROM llmledger_spend_credits", [], |r| {
                Ok((r.get(0).map_err(db_err)?, dec("remaining", &r.get::<_, String>(1).map_err(db_err)?)?))
            })?,
            holds: rows(
                c,
                "SELECT h.reservation_id, h.target, h.period, h.amount, h.used, r.state FROM llmledger_spend_holds h
                 JOIN llmledger_spend_reservations r ON r.id = h.reservation_id",
                [],
                |r| Ok((hold_from_row(r)?, parse(&r.get::<_, String>(5).map_err(db_err)?)?)),
            )?,
            counters: rows(c, "SELECT limit_id, period, used, reserved FROM llmledger_spend_counters", [], |r| {
                Ok((
                    r.get(0).map_err(db_err)?,
                    r.get(1).map_err(db_err)?,
                    Counter {
                        used: dec("used", &r.get::<_, String>(2).map_err(db_err)?)?,
                        reserved: dec("reserved", &r.get::<_, String>(3).map_err(db_err)?)?,
                    },
                ))
            })?,
        })
    }
}

fn hold_from_row(r: &Row<'_>) -> Result<HoldRow> {
    let used: Option<String> = r.get(4).map_err(db_err)?;
    Ok(HoldRow {
        reservation_id: r.get(0).map_err(db_err)?,
        target: r.get(1).map_err(db_err)?,
        period: r.get(2).map_err(db_err)?,
        amount: dec("amount", &r.get::<_, String>(3).map_err(db_err)?)?,
        used: used.map(|u| dec("used", &u)).transpose()?,
    })
}
