//! What a database backend provides: single SQL statements (`Tx`) and a way to run a unit of
//! work over them (`Backend`), in a transaction or not. Everything else — the rules of each
//! operation, their audit events, what a refusal rolls back — is written once, in `ops/`,
//! against this interface. A backend is its SQL, its connection and its transaction idiom.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{
    Audit, AuditEvent, AuditKind, BanRecord, NewToken, RowCounts, StoreError, TokenCounts,
    TokenQuery, TokenRecord, UsageDelta,
};
use crate::domain::access::{Grant, RoleDescription, RoleName, RoleRecord, TokenAccess};
use crate::domain::{Digest, IpRestriction, Metadata, Privilege, UserId};

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

/// Statements on `api_tokens` (and the owner lock).
#[async_trait]
pub trait TokenSql {
    async fn token_by_digest(
        &mut self,
        digest: &Digest,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError>;
    async fn token_by_id(&mut self, id: u64, lock: Lock)
        -> Result<Option<TokenRecord>, StoreError>;
    /// The owner's valid token with this id.
    async fn valid_token_of(
        &mut self,
        user_id: UserId,
        id: u64,
    ) -> Result<Option<TokenRecord>, StoreError>;
    /// Ids of the owner's tokens still marked valid whose expiry has passed at `now`.
    async fn expired_valid_ids(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError>;
    async fn count_valid(&mut self, user_id: UserId) -> Result<u64, StoreError>;
    /// Valid (and unexpired at `now`) and invalid rows of the owner.
    async fn counts(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<TokenCounts, StoreError>;
    /// The owner's valid, unexpired tokens, newest first.
    async fn list_valid(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    async fn list_tokens(&mut self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError>;
    /// Serialises every creation and rotation of one owner (MySQL: the `api_token_owners`
    /// row; SQLite: nothing, its write transactions are serial).
    async fn lock_owner(&mut self, user_id: UserId) -> Result<(), StoreError>;
    /// The new row's id; `None` when its digest or public identifier is taken.
    async fn insert_token(&mut self, new: &NewToken) -> Result<Option<u64>, StoreError>;
    /// `valid = 0` where it was 1; whether a row changed.
    async fn invalidate(&mut self, id: u64) -> Result<bool, StoreError>;
    async fn delete_token(&mut self, id: u64) -> Result<(), StoreError>;
    async fn set_ip_restriction(&mut self, id: u64, ips: &IpRestriction) -> Result<(), StoreError>;
    async fn set_privilege(&mut self, id: u64, privilege: Privilege) -> Result<(), StoreError>;
    async fn set_metadata(&mut self, id: u64, metadata: &Metadata) -> Result<(), StoreError>;
}

/// Statements counting uses and recording usage batches.
#[async_trait]
pub trait UsageSql {
    /// Adds each delta's uses and moves `last_used` forward.
    async fn add_usage(&mut self, deltas: &[UsageDelta]) -> Result<(), StoreError>;
    async fn usage_of(
        &mut self,
        id: u64,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>, StoreError>;
    /// Records a usage batch id; false when it is already recorded (applied before).
    async fn record_batch(&mut self, batch_id: &str, at: DateTime<Utc>)
        -> Result<bool, StoreError>;
    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Statements on the audit log and the bans.
#[async_trait]
pub trait AuditSql {
    async fn write_event(
        &mut self,
        token_id: Option<u64>,
        kind: AuditKind,
        audit: &Audit,
        detail: Value,
    ) -> Result<(), StoreError>;
    /// One token's events (`None`: the events of no token), oldest first.
    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError>;
    /// False when the ban is already there.
    async fn insert_ban(&mut self, ban: &BanRecord) -> Result<bool, StoreError>;
    async fn list_bans(&mut self) -> Result<Vec<BanRecord>, StoreError>;
    /// Byte for byte; false when there was none.
    async fn delete_ban(&mut self, limiter: &str, key: &str) -> Result<bool, StoreError>;
}

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

/// Statements on roles, their grants and what tokens hold.
#[async_trait]
pub trait AccessSql {
    /// Serialises role creations (MySQL: the `access_lock` row; SQLite: nothing, its write
    /// transactions are serial).
    async fn lock_roles(&mut self) -> Result<(), StoreError>;
    async fn count_roles(&mut self) -> Result<u64, StoreError>;
    /// Roles (one, or every one by name) with how many valid tokens hold each.
    async fn role_rows(
        &mut self,
        name: Option<&RoleName>,
        lock: Lock,
    ) -> Result<Vec<RoleRow>, StoreError>;
    /// `(role, grant)` pairs of one role or of every role.
    async fn role_grants(
        &mut self,
        name: Option<&RoleName>,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// The role row (name, description, times); false when the name is taken.
    async fn insert_role(&mut self, role: &RoleRecord) -> Result<bool, StoreError>;
    async fn set_role(
        &mut self,
        name: &RoleName,
        description: Option<&RoleDescription>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Adds grants to a role (those it has are skipped).
    async fn add_role_grants(
        &mut self,
        name: &RoleName,
        grants: &[Grant],
    ) -> Result<(), StoreError>;
    async fn remove_role_grants(
        &mut self,
        name: &RoleName,
        grants: &[Grant],
    ) -> Result<(), StoreError>;
    /// The role, its grants, and every token's hold of it.
    async fn delete_role(&mut self, name: &RoleName) -> Result<(), StoreError>;
    /// Which of `names` are roles, locking them until the transaction ends.
    async fn existing_roles(&mut self, names: &[RoleName]) -> Result<Vec<String>, StoreError>;
    /// What these tokens hold (their roles' grants included): `(token, what, name)` rows.
    async fn access_rows(&mut self, ids: &[u64]) -> Result<Vec<(u64, Held, String)>, StoreError>;
    /// Roles and direct grants of every token, for `copy`.
    async fn all_access_rows(&mut self) -> Result<Vec<(u64, Held, String)>, StoreError>;
    /// Writes a token's roles and direct grants (it held none before).
    async fn insert_access(&mut self, id: u64, access: &TokenAccess) -> Result<(), StoreError>;
    /// Removes everything a token holds.
    async fn clear_access(&mut self, id: u64) -> Result<(), StoreError>;
}

/// Whole-table statements of `iam-tokens copy`.
#[async_trait]
pub trait CopySql {
    /// Every token, oldest first.
    async fn all_tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Every audit event, oldest first.
    async fn all_events(&mut self) -> Result<Vec<AuditEvent>, StoreError>;
    /// Deletes every row of every table.
    async fn clear(&mut self) -> Result<(), StoreError>;
    /// Inserts a token as it is, id included.
    async fn insert_token_row(&mut self, token: &TokenRecord) -> Result<(), StoreError>;
    /// Inserts an event as it is, id included.
    async fn insert_event_row(&mut self, event: &AuditEvent) -> Result<(), StoreError>;
    async fn row_counts(&mut self) -> Result<RowCounts, StoreError>;
}

/// A connection, inside a transaction when the work is a write. Every method is one statement
/// (or one batch of the same statement), grouped by what it touches.
#[async_trait]
pub trait Tx: TokenSql + UsageSql + AuditSql + AccessSql + QuotaSql + CopySql + Send {
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
}

/// Statements on customer limits and credits (SPEC B5).
#[async_trait]
pub trait QuotaSql {
    /// The limits of token `token` and of owner `owner` (0 matches nothing).
    async fn limit_rows(&mut self, token: u64, owner: u64) -> Result<Vec<LimitRow>, StoreError>;
    /// The credits of token `token` and of owner `owner`, locked when asked.
    async fn credit_rows(
        &mut self,
        token: u64,
        owner: u64,
        lock: Lock,
    ) -> Result<Vec<CreditRow>, StoreError>;
    /// Deletes the subject's limits, then inserts `rows` (all of that subject).
    async fn replace_limits(
        &mut self,
        scope: &str,
        subject: u64,
        rows: &[LimitRow],
    ) -> Result<(), StoreError>;
    /// Deletes the subject's credits, then inserts `row` when given.
    async fn replace_credits(
        &mut self,
        scope: &str,
        subject: u64,
        row: Option<&CreditRow>,
    ) -> Result<(), StoreError>;
    /// Gives token `from`'s limits and credits to token `to`.
    async fn move_quota(&mut self, from: u64, to: u64) -> Result<(), StoreError>;
    /// Every row, for `copy`.
    async fn all_quota_rows(&mut self) -> Result<(Vec<LimitRow>, Vec<CreditRow>), StoreError>;
}
