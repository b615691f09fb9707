//! The embedded backend: SQLite (bundled) in WAL mode, one connection behind a mutex, every call
//! on tokio's blocking pool. Same tables, same column names and the same guarantees as MySQL:
//! writes run in `BEGIN IMMEDIATE` transactions, which SQLite serialises, so the per-user limit
//! and rotation are atomic without a lock table.

mod admin;
mod bans;
mod copy;
mod rows;
mod tokens;
mod usage;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, Transaction};
use serde_json::Value;

use super::{Audit, StoreError};
use crate::store::AuditKind;

/// `(version, name, sql)`, in order. A landed file is never edited; add a new one instead.
pub const SQLITE_MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "schema",
    include_str!("../../../sql/sqlite/0001_schema.sql"),
)];

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

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction, committed when it returns `Ok(true, _)`.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<(bool, T), StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (commit, value) = work(&tx)?;
            if commit {
                tx.commit()?;
            }
            Ok(value)
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

/// Writes one audit event inside the caller's transaction.
fn write_event(
    tx: &Transaction<'_>,
    token_id: Option<u64>,
    event: AuditKind,
    audit: &Audit,
    detail: Value,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token_id.map(rows::to_sql_id),
            event.as_str(),
            audit.actor.to_string(),
            detail.to_string(),
            audit.at.timestamp_millis()
        ],
    )?;
    Ok(())
}
