//! The embedded backend: SQLite (bundled) in WAL mode, one connection behind a mutex, every call
//! on tokio's blocking pool. Same tables, same column names and the same guarantees as MySQL:
//! writes run in `BEGIN IMMEDIATE` transactions, which SQLite serialises, so the per-user limit
//! and rotation are atomic without a lock table.

mod tx;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use rusqlite::{params, Connection};

use super::backend::{Backend, TxEnd, Work};
use super::StoreError;
use tx::SqliteTx;

/// `(version, name, sql)`, in order. A landed file is never edited; add a new one instead.
pub const SQLITE_MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../../sql/sqlite/0001_schema.sql"),
    ),
    (
        2,
        "access",
        include_str!("../../../sql/sqlite/0002_access.sql"),
    ),
    (
        3,
        "quotas",
        include_str!("../../../sql/sqlite/0003_quotas.sql"),
    ),
    (
        4,
        "credentials_and_actors",
        include_str!("../../../sql/sqlite/0004_credentials_and_actors.sql"),
    ),
    (
        5,
        "token_state",
        include_str!("../../../sql/sqlite/0005_token_state.sql"),
    ),
    (
        6,
        "rotation_grace",
        include_str!("../../../sql/sqlite/0006_rotation_grace.sql"),
    ),
    (
        7,
        "analytics",
        include_str!("../../../sql/sqlite/0007_analytics.sql"),
    ),
    (
        8,
        "webhooks",
        include_str!("../../../sql/sqlite/0008_webhooks.sql"),
    ),
    (
        9,
        "console_sessions",
        include_str!("../../../sql/sqlite/0009_console_sessions.sql"),
    ),
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite backend. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Bound on every call, as on MySQL (a call waiting for the connection counts).
    timeout: Duration,
}

impl SqliteStore {
    /// Opens (creating the file and its directory) and migrates the database at `path`;
    /// every call is given up after `timeout`.
    pub fn open(path: &Path, timeout: Duration) -> Result<Self, StoreError> {
        let (conn, _) = Self::connect(path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            timeout,
        })
    }

    /// Creates the file if missing and applies pending migrations. Returns how many ran.
    pub fn migrate(path: &Path) -> Result<usize, StoreError> {
        Self::connect(path).map(|(_, ran)| ran)
    }

    fn connect(path: &Path) -> Result<(Connection, usize), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| {
                StoreError::Url(format!("cannot create {}: {err}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let ran = migrate(&mut conn)?;
        Ok((conn, ran))
    }

    /// Runs `work` on the blocking pool with the connection.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        let call = tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Runtime("poisoned".into()))?;
            work(&mut conn)
        });
        // A blocking call cannot be cancelled: past the bound its answer is not waited for
        // (the caller reports a failure; the work finishes or rolls back on its own).
        match tokio::time::timeout(self.timeout, call).await {
            Ok(joined) => joined.map_err(|err| StoreError::Runtime(err.to_string()))?,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }
}

/// Runs a unit of work to its end in one poll: every SQLite statement is synchronous, so a
/// unit of work that would wait is a bug, answered as an error rather than a hang.
fn run_to_end<T>(work: &mut Work<T>, tx: &mut SqliteTx<'_>) -> Result<TxEnd<T>, StoreError> {
    work(tx)
        .now_or_never()
        .unwrap_or_else(|| Err(StoreError::Runtime("a SQLite unit of work waited".into())))
}

#[async_trait]
impl Backend for SqliteStore {
    async fn read<T: Send + 'static>(&self, mut work: Work<T>) -> Result<T, StoreError> {
        self.run(
            move |conn| match run_to_end(&mut work, &mut SqliteTx { conn })? {
                TxEnd::Commit(value) | TxEnd::Rollback(value) => Ok(value),
            },
        )
        .await
    }

    /// `BEGIN IMMEDIATE`: SQLite serialises write transactions, so the per-owner limit and
    /// rotation are atomic without a lock table.
    async fn write<T: Send + 'static>(&self, mut work: Work<T>) -> Result<T, StoreError> {
        self.run(move |conn| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let ended = run_to_end(&mut work, &mut SqliteTx { conn: &mut *conn });
            let (finish, value) = match ended {
                Ok(TxEnd::Commit(value)) => ("COMMIT", Ok(value)),
                Ok(TxEnd::Rollback(value)) => ("ROLLBACK", Ok(value)),
                Err(err) => ("ROLLBACK", Err(err)),
            };
            if let Err(err) = conn.execute_batch(finish) {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err.into());
            }
            value
        })
        .await
    }
}

/// Applies pending migrations in one immediate transaction (safe with several processes).
fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL)",
    )?;
    let mut ran = 0;
    for &(version, name, sql) in SQLITE_MIGRATIONS {
        let applied: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if applied {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, chrono::Utc::now().timestamp_millis()],
        )?;
        tracing::info!(version, name, "applied sqlite migration");
        ran += 1;
    }
    tx.commit()?;
    Ok(ran)
}
