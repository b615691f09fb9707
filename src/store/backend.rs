//! What a database backend provides: a connection that executes statements (`Tx`) and a way
//! to run a unit of work over one (`Backend`), in a transaction or not. Everything else — the
//! statements themselves (`sql/`), the rules of each operation, their audit events, what a
//! refusal rolls back (`ops/`) — is written once. A backend is its connection, its
//! transaction idiom and its value conversion.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::sql::{Dialect, Row, Statement};
use super::StoreError;

/// Whether a read locks the row until the transaction ends (MySQL `FOR UPDATE`; SQLite's
/// `BEGIN IMMEDIATE` already serialises every write transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    No,
    ForUpdate,
}

/// How a unit of work ends: its value, and whether its writes are kept.
#[derive(Debug)]
pub enum TxEnd<T> {
    Commit(T),
    Rollback(T),
}

/// A unit of work over one connection. `FnMut`: a transaction a backend must retry (a
/// deadlock) runs it again from the start.
pub type Work<T> = Box<
    dyn for<'t> FnMut(&'t mut dyn Tx) -> BoxFuture<'t, Result<TxEnd<T>, StoreError>>
        + Send
        + 'static,
>;

/// A role's row, as stored (the ops layer checks its names).
#[derive(Debug, Clone)]
pub struct RoleRow {
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Valid tokens holding it.
    pub tokens: u64,
}

/// What a row of `access_rows` says a token holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Role,
    /// A direct grant.
    Permission,
    /// A grant of one of its roles.
    Inherited,
}

impl Held {
    /// Its number in SQL (`access_rows` selects it as a constant).
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Role),
            1 => Some(Self::Permission),
            2 => Some(Self::Inherited),
            _ => None,
        }
    }
}

/// A connection, inside a transaction when the work is a write: it executes statements (the
/// families of `sql/` build them). Every call is one round trip.
#[async_trait]
pub trait Tx: Send {
    fn dialect(&self) -> Dialect;
    /// The rows a statement selects.
    async fn fetch(&mut self, statement: Statement) -> Result<Vec<Row>, StoreError>;
    /// Runs a statement; answers the rows it changed (MySQL: found, `CLIENT_FOUND_ROWS`).
    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError>;
    /// Runs a statement; answers the rows it changed and the connection's last insert id
    /// (on MySQL, what `LAST_INSERT_ID(expr)` set).
    async fn execute_with_id(&mut self, statement: Statement) -> Result<(u64, u64), StoreError>;
    /// Runs an `INSERT`: the new row's id, or `None` when a unique key refused it (any other
    /// refusal is an error).
    async fn insert(&mut self, statement: Statement) -> Result<Option<u64>, StoreError>;
    async fn ping(&mut self) -> Result<(), StoreError>;
}

/// A database: runs units of work, each bounded by `database.timeout`.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Runs `work` on a connection without a transaction (its `TxEnd` is only its value).
    async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T, StoreError>;

    /// Runs `work` in one transaction: committed on `Commit`, rolled back on `Rollback` or an
    /// error. A backend may run it again after a deadlock.
    async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T, StoreError>;
}

/// A row of `quota_limits`, as stored (the ops layer checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRow {
    pub scope: String,
    pub subject: u64,
    pub name: String,
    pub max_uses: u64,
    pub duration_ms: u64,
    pub auto_apply: bool,
}

/// A row of `quota_credits`, as stored (the ops layer checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRow {
    pub scope: String,
    pub subject: u64,
    pub remaining: u64,
    pub refill_interval: Option<String>,
    pub refill_amount: Option<u64>,
    pub refill_day: Option<u64>,
    pub refilled_at_ms: i64,
    pub generation: u64,
    /// The threshold events sent and not re-armed (SPEC B12).
    pub alerted: u8,
}
