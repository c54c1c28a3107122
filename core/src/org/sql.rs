//! The organisation tables' SQL, written once for SQLite and PostgreSQL.
//!
//! The organisation data (agent usage, billed costs, subscriptions) is read and written in bulk by
//! commands, never per call, so one small value-level interface ([`Db`]) carries it on both stores: the
//! statements are written once with `$n` placeholders and two dialect hooks ([`Dialect::num`] for a
//! decimal parameter, [`Dialect::num_out`] for reading a decimal column back as text). Exact decimals are
//! TEXT in SQLite (its NUMERIC affinity would turn them into floats) and NUMERIC in PostgreSQL; integers
//! are BIGINT (INTEGER in SQLite); timestamps are milliseconds since the epoch, UTC.

use crate::error::{Error, ErrorCode, Result};
use rust_decimal::Decimal;

/// One SQL value crossing the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl Val {
    pub(crate) fn int(&self) -> i64 {
        match self {
            Self::Int(i) => *i,
            Self::Text(t) => t.parse().unwrap_or(0),
            Self::Null => 0,
        }
    }

    pub(crate) fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Int(i) => i.to_string(),
            Self::Null => String::new(),
        }
    }

    pub(crate) fn opt_text(&self) -> Option<String> {
        match self {
            Self::Null => None,
            v => Some(v.text()),
        }
    }

    /// A decimal column read through [`Dialect::num_out`]; `None` for NULL.
    pub(crate) fn opt_dec(&self, column: &str) -> Result<Option<Decimal>> {
        match self {
            Self::Null => Ok(None),
            v => {
                let t = v.text();
                t.parse::<Decimal>()
                    .map(|d| Some(d.normalize()))
                    .map_err(|_| Error::new(ErrorCode::Store, format!("column `{column}` holds `{t}`, not a decimal")))
            }
        }
    }

    pub(crate) fn dec(&self, column: &str) -> Result<Decimal> {
        Ok(self.opt_dec(column)?.unwrap_or_default())
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u64> for Val {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<Decimal> for Val {
    fn from(v: Decimal) -> Self {
        Self::Text(v.normalize().to_string())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// The differences between the two stores' SQL that the statements spell out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

impl Dialect {
    /// The column type of an exact decimal.
    pub(crate) fn num_type(self) -> &'static str {
        match self {
            Self::Sqlite => "TEXT",
            Self::Postgres => "NUMERIC",
        }
    }

    /// Decimal parameter `n` (bound as text).
    pub(crate) fn num(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("${n}"),
            Self::Postgres => format!("${n}::text::numeric"),
        }
    }

    /// A decimal column read back as text.
    pub(crate) fn num_out(self, column: &str) -> String {
        match self {
            Self::Sqlite => column.to_string(),
            Self::Postgres => format!("{column}::text"),
        }
    }
}

/// A store holding the organisation tables, on a connection of its own.
pub(crate) trait Db: Send + Sync + std::fmt::Debug {
    fn dialect(&self) -> Dialect;
    /// Runs `sql` (several statements, no parameters), e.g. the tables' DDL.
    fn batch(&self, sql: &str) -> Result<()>;
    /// Runs every statement with each of its parameter rows, all in one transaction; returns the rows
    /// each execution changed (per statement, per parameter row).
    fn transaction(&self, work: &[(String, Vec<Vec<Val>>)]) -> Result<Vec<Vec<u64>>>;
    /// The rows of a query.
    fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>>;
}

/// Opens the organisation tables in the store a ledger URL names.
pub(crate) fn open(url: &str) -> Result<Box<dyn Db>> {
    let scheme = url.split(':').next().unwrap_or("");
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteDb::open(&crate::ledger::path_of(url, scheme)?)?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Box::new(postgres::PgDb::connect(url)?)),
        _ => Err(Error::config(
            "store",
            crate::ledger::health::redact_credentials(url),
            "organisation costs live in a SQLite or PostgreSQL ledger store (this build or scheme has neither)",
        )),
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::Path;
    use std::sync::Mutex;

    use rusqlite::types::Value;
    use rusqlite::{params_from_iter, Connection};

    use super::{Db, Dialect, Val};
    use crate::error::{Error, ErrorCode, Result};

    fn db_err(e: rusqlite::Error) -> Error {
        Error::new(ErrorCode::Store, format!("SQLite (organisation tables): {e}"))
    }

    /// `$n` → `?n`: the statements are written with PostgreSQL's placeholders.
    fn local(sql: &str) -> String {
        sql.replace('$', "?")
    }

    fn to_value(v: &Val) -> Value {
        match v {
            Val::Null => Value::Null,
            Val::Int(i) => Value::Integer(*i),
            Val::Text(t) => Value::Text(t.clone()),
        }
    }

    #[derive(Debug)]
    pub(crate) struct SqliteDb {
        conn: Mutex<Connection>,
    }

    impl SqliteDb {
        pub(crate) fn open(path: &Path) -> Result<Self> {
            let cfg = |reason: String| Error::config("store", path.display(), &reason);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| cfg(format!("cannot create the directory: {e}")))?;
            }
            let conn = Connection::open(path).map_err(|e| cfg(format!("cannot open the database: {e}")))?;
            conn.execute_batch(
                "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            )
            .map_err(|e| cfg(format!("cannot set up the database: {e}")))?;
            Ok(Self { conn: Mutex::new(conn) })
        }
    }

    impl Db for SqliteDb {
        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }

        fn batch(&self, sql: &str) -> Result<()> {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.execute_batch(sql).map_err(db_err)
        }

        fn transaction(&self, work: &[(String, Vec<Vec<Val>>)]) -> Result<Vec<Vec<u64>>> {
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
            let mut changed = Vec::with_capacity(work.len());
            for (sql, rows) in work {
                let mut stmt = tx.prepare_cached(&local(sql)).map_err(db_err)?;
                let mut counts = Vec::with_capacity(rows.len());
                for row in rows {
                    counts.push(stmt.execute(params_from_iter(row.iter().map(to_value))).map_err(db_err)? as u64);
                }
                changed.push(counts);
            }
            tx.commit().map_err(db_err)?;
            Ok(changed)
        }

        fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            let mut stmt = conn.prepare_cached(&local(sql)).map_err(db_err)?;
            let n = stmt.column_count();
            let rows = stmt
                .query_map(params_from_iter(params.iter().map(to_value)), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get::<_, Value>(i)? {
                                Value::Integer(i) => Val::Int(i),
                                Value::Text(t) => Val::Text(t),
                                Value::Real(f) => Val::Text(f.to_string()),
                                Value::Null | Value::Blob(_) => Val::Null,
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Val>>>()
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::str::FromStr;
    use std::sync::Mutex;

    use tokio_postgres::types::{ToSql, Type};
    use tokio_postgres::{Client, NoTls};

    use super::{Db, Dialect, Val};
    use crate::error::{Error, ErrorCode, Result};
    use crate::ledger::health::redact_credentials;
    use crate::ledger::postgres::block_on;

    fn pg_err(e: tokio_postgres::Error) -> Error {
        match e.as_db_error() {
            Some(db) => Error::new(
                ErrorCode::Store,
                format!("PostgreSQL (organisation tables) {}: {}", db.code().code(), db.message()),
            ),
            None => Error::new(ErrorCode::Store, format!("PostgreSQL (organisation tables): {e}")),
        }
    }

    /// Parameters as tokio-postgres binds them: integers as BIGINT, the rest as text (NULL as a text NULL).
    fn bind(vals: &[Val]) -> Vec<Box<dyn ToSql + Sync + Send>> {
        vals.iter()
            .map(|v| -> Box<dyn ToSql + Sync + Send> {
                match v {
                    Val::Null => Box::new(None::<String>),
                    Val::Int(i) => Box::new(*i),
                    Val::Text(t) => Box::new(t.clone()),
                }
            })
            .collect()
    }

    #[derive(Debug)]
    pub(crate) struct PgDb {
        rt: tokio::runtime::Runtime,
        client: Mutex<Client>,
    }

    impl PgDb {
        /// Connects now: organisation commands are short-lived and need the store at once.
        pub(crate) fn connect(url: &str) -> Result<Self> {
            let config = tokio_postgres::Config::from_str(url)
                .map_err(|e| Error::config("store", redact_credentials(url), &format!("not a PostgreSQL URL: {e}")))?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("llmledger-org-pg")
                .enable_all()
                .build()
                .map_err(|e| Error::new(ErrorCode::Store, format!("cannot start the PostgreSQL runtime: {e}")))?;
            let client = block_on(&rt, async {
                let (client, connection) = config.connect(NoTls).await.map_err(pg_err)?;
                tokio::spawn(async move {
                    // Ends when the client is dropped or the server goes away; errors surface on the client.
                    let _ = connection.await;
                });
                Ok::<_, Error>(client)
            })?;
            Ok(Self { rt, client: Mutex::new(client) })
        }
    }

    impl Db for PgDb {
        fn dialect(&self) -> Dialect {
            Dialect::Postgres
        }

        fn batch(&self, sql: &str) -> Result<()> {
            let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
            let client: &mut Client = &mut guard;
            block_on(&self.rt, async {
                let tx = client.transaction().await.map_err(pg_err)?;
                // One creator at a time across processes (concurrent CREATE IF NOT EXISTS can collide).
                tx.execute("SELECT pg_advisory_xact_lock(7236453)", &[]).await.map_err(pg_err)?;
                tx.batch_execute(sql).await.map_err(pg_err)?;
                tx.commit().await.map_err(pg_err)
            })
        }

        fn transaction(&self, work: &[(String, Vec<Vec<Val>>)]) -> Result<Vec<Vec<u64>>> {
            let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
            let client: &mut Client = &mut guard;
            block_on(&self.rt, async {
                let tx = client.transaction().await.map_err(pg_err)?;
                let mut changed = Vec::with_capacity(work.len());
                for (sql, rows) in work {
                    let stmt = tx.prepare(sql).await.map_err(pg_err)?;
                    let mut counts = Vec::with_capacity(rows.len());
                    for row in rows {
                        let params = bind(row);
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                        counts.push(tx.execute(&stmt, &refs).await.map_err(pg_err)?);
                    }
                    changed.push(counts);
                }
                tx.commit().await.map_err(pg_err)?;
                Ok(changed)
            })
        }

        fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
            let guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
            let client: &Client = &guard;
            block_on(&self.rt, async {
                let params = bind(params);
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                let rows = client.query(sql, &refs).await.map_err(pg_err)?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                let ty = r.columns()[i].type_();
                                Ok(if *ty == Type::INT8 {
                                    r.try_get::<_, Option<i64>>(i).map_err(pg_err)?.map_or(Val::Null, Val::Int)
                                } else if *ty == Type::INT4 {
                                    r.try_get::<_, Option<i32>>(i)
                                        .map_err(pg_err)?
                                        .map_or(Val::Null, |v| Val::Int(i64::from(v)))
                                } else {
                                    r.try_get::<_, Option<String>>(i).map_err(pg_err)?.map_or(Val::Null, Val::Text)
                                })
                            })
                            .collect()
                    })
                    .collect()
            })
        }
    }
}
