//! Storage behind small traits. Nothing above this module knows SQL; nothing in it knows HTTP.
//! Every mutation writes its audit event in the same transaction as the change.

pub mod backend;
mod copy;
mod migrate;
mod mysql;
mod open;
mod ops;
mod outcomes;
pub mod sql;
mod sqlite;

pub use crate::domain::record::{
    ActorFilter, Audit, AuditEvent, AuditKind, AuditQuery, BanRecord, NewToken, TokenCounts,
    TokenDraft, TokenQuery, TokenRecord, TokenStatus, UsageBatch, UsageDelta,
};
pub use copy::{copy, CopyOutcome};
pub use migrate::MIGRATIONS;
pub use mysql::MySqlStore;
pub use open::{migrate, open, Location, OpenOptions, Store};
pub use ops::StoreOps;
pub use outcomes::*;
pub use sqlite::{SqliteStore, SQLITE_MIGRATIONS};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::access::{AccessChange, NewRole, RoleChange, RoleName, RoleRecord, Scopes};
use crate::domain::analytics::Granularity;
use crate::domain::credential::{CredentialChange, CredentialRecord, NewCredential};
use crate::domain::quota::{Changed, CreditChange, Credits, Quota, RateLimits, Subject};
use crate::domain::rollup::{Dimension, RollupFilter, RollupSum};
use crate::domain::session::ConsoleSession;
use crate::domain::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DisabledReason, EndpointChange,
    EndpointRecord, EndpointSecret, NewEndpoint, OutboxEvent,
};
use crate::domain::{Digest, IpRestriction, Privilege, UserId};

/// The store could not answer. Never shown to clients; its text goes to the log once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] mysql_async::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored row is not valid: {0}")]
    CorruptRow(String),
    #[error("invalid database url: {0}")]
    Url(String),
    #[error("store task failed: {0}")]
    Runtime(String),
    /// No answer within `database.timeout` (a silent database, a black-holed network).
    #[error("the store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Customer limits and credits live in Redis, which did not answer (they fail closed).
    #[error("the shared quota state (Redis) did not answer")]
    SharedState,
    #[error("migration {version} failed: {source}")]
    Migration {
        version: u32,
        source: mysql_async::Error,
    },
}

/// Roles and what tokens hold (SPEC B4). Every change writes its audit event in the same
/// transaction.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Creates a role unless one has that name or there are 1,000.
    async fn create_role(&self, role: &NewRole, audit: &Audit) -> Result<RoleCreation, StoreError>;

    /// Every role, by name.
    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError>;

    async fn role(&self, name: &RoleName) -> Result<Option<RoleRecord>, StoreError>;

    /// Changes a role under its row lock; every token holding it sees the change when it is
    /// next read.
    async fn update_role(
        &self,
        name: &RoleName,
        change: &RoleChange,
        audit: &Audit,
    ) -> Result<RoleUpdate, StoreError>;

    /// Deletes a role; while valid tokens hold it, only when `force` (it is then taken from
    /// them).
    async fn delete_role(
        &self,
        name: &RoleName,
        force: bool,
        audit: &Audit,
    ) -> Result<RoleDeletion, StoreError>;

    /// Changes the roles and direct grants of the token with this id, under its row lock.
    async fn change_access(
        &self,
        token_id: u64,
        change: &AccessChange,
        audit: &Audit,
    ) -> Result<AccessOutcome, StoreError>;
}

/// The verification analytics rollups (SPEC B11), read and pruned; they are written with the
/// usage batch ([`TokenStore::apply_usage`]).
#[async_trait]
pub trait AnalyticsStore: Send + Sync + 'static {
    /// Sums of the rows `filter` names, grouped by `dimension` and code, per bucket or over the
    /// whole range (each sum's bucket is then the range's start).
    async fn rollup_sums(
        &self,
        filter: &RollupFilter,
        dimension: Dimension,
        per_bucket: bool,
    ) -> Result<Vec<RollupSum>, StoreError>;

    /// Deletes at most `limit` rows of one rollup whose buckets start before `before` (unix
    /// seconds); how many it deleted.
    async fn prune_rollup(
        &self,
        granularity: Granularity,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// Webhook endpoints, the outbox and the deliveries (SPEC B12). Every change of an endpoint
/// writes its audit event in the same transaction.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_endpoint(
        &self,
        endpoint: &NewEndpoint,
        audit: &Audit,
    ) -> Result<EndpointRecord, StoreError>;

    /// Every endpoint, by id.
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError>;

    async fn endpoint(&self, endpoint: u64) -> Result<Option<EndpointRecord>, StoreError>;

    /// Changes an endpoint under its row lock; disabling it sends `webhook.endpoint.disabled`
    /// to the others. `None` when there is none.
    async fn update_endpoint(
        &self,
        endpoint: u64,
        change: &EndpointChange,
        audit: &Audit,
    ) -> Result<Option<EndpointRecord>, StoreError>;

    /// Deletes an endpoint and its deliveries; false when there was none.
    async fn delete_endpoint(&self, endpoint: u64, audit: &Audit) -> Result<bool, StoreError>;

    /// Replaces the secret; the old one keeps signing until `overlap_until`.
    async fn rotate_endpoint_secret(
        &self,
        endpoint: u64,
        secret: &EndpointSecret,
        overlap_until: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<Option<EndpointRecord>, StoreError>;

    /// A `webhook.test` event and its delivery to this endpoint only; `None` when there is no
    /// such endpoint.
    async fn test_delivery(
        &self,
        endpoint: u64,
        audit: &Audit,
    ) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Writes a threshold event; false when its dedupe key was written before (by any
    /// instance).
    async fn write_threshold_event(&self, event: &OutboxEvent) -> Result<bool, StoreError>;

    /// Whether there is anything to fan out or attempt at `now` (a cheap read, no lock).
    async fn webhook_work_waiting(&self, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Turns up to `limit` new events into one delivery per endpoint admitting them (enabled
    /// and created by then), due at `at`; how many events.
    async fn fan_out(&self, limit: u32, at: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Claims up to `limit` deliveries due at `now` to enabled endpoints: none is claimed by
    /// two dispatchers, and each falls due again at `lease_until` unless finished by then.
    /// Answers them with their endpoints.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ClaimedDelivery, EndpointRecord)>, StoreError>;

    /// Writes an attempt's result and what it means for its endpoint: a success ends its run
    /// of failures; a failure starts one, and `disable` (410) or a run older than
    /// `failing_limit` disables it (sending `webhook.endpoint.disabled`).
    async fn finish_attempt(
        &self,
        delivery: u64,
        endpoint: u64,
        attempt: &AttemptRecord,
        disable: Option<DisabledReason>,
        failing_limit: chrono::Duration,
    ) -> Result<(), StoreError>;

    /// A page of the delivery log, newest first.
    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Makes a delivered or failed delivery pending and due at `at`.
    async fn retry_delivery(
        &self,
        delivery: u64,
        at: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError>;

    /// Pending deliveries per event type.
    async fn pending_deliveries(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Deletes up to `limit` events written before `before` that have nothing left to
    /// deliver, with their deliveries; how many events.
    async fn prune_events(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// Valid tokens whose `(expires_at, id)` is after `after` and whose expiry is at most
    /// `until`: `(id, created_at, expires_at)`, by expiry then id (keyset pages).
    async fn tokens_expiring(
        &self,
        after: (DateTime<Utc>, u64),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(u64, DateTime<Utc>, DateTime<Utc>)>, StoreError>;
}

/// Customer limits and credits (SPEC B5). Every change writes its audit event in the same
/// transaction.
#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// Replaces the limits of a token (which must exist) or of an owner.
    async fn set_limits(
        &self,
        subject: Subject,
        limits: &RateLimits,
        audit: &Audit,
    ) -> Result<QuotaChange<()>, StoreError>;

    /// Changes (or starts) the credits of a token (which must exist) or of an owner, under the
    /// row lock; a refill due is applied first.
    async fn change_credits(
        &self,
        subject: Subject,
        change: &CreditChange,
        audit: &Audit,
    ) -> Result<QuotaChange<Changed>, StoreError>;

    /// The limits and credits of a subject as stored; `None` for a token that does not exist.
    async fn quota(&self, subject: Subject) -> Result<Option<Quota>, StoreError>;

    /// The stored credits of each of the tokens `ids` that has credits of its own.
    async fn token_credits(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, Credits>, StoreError>;

    /// Takes credits out of the store to be spent by the caller (see `Credits::lease`),
    /// applying a refill due at `now` first; `None` when the subject has no credits.
    async fn lease(
        &self,
        subject: Subject,
        at_least: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError>;

    /// Gives back credits leased and not spent, when their generation is still the store's;
    /// whether they were taken back.
    async fn deposit(
        &self,
        subject: Subject,
        generation: u64,
        amount: u64,
    ) -> Result<bool, StoreError>;
}

/// The capabilities the token operations need. Every method is one atomic unit of work.
#[async_trait]
pub trait TokenStore:
    AccessStore + QuotaStore + AnalyticsStore + WebhookStore + Send + Sync + 'static
{
    /// Inserts the token unless its owner already holds `limit` valid tokens. The count and
    /// the insert are atomic with respect to every other creation for that owner.
    async fn create_token(
        &self,
        new: &NewToken,
        limit: u32,
        audit: &Audit,
    ) -> Result<CreateOutcome, StoreError>;

    /// The token with this digest, valid or not.
    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError>;

    /// The token with this id, valid or not.
    async fn find_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError>;

    /// The owner's valid token with this id, if any. (Its name and public identifier are
    /// compared by the caller, byte for byte: SQL collations pad, fold or normalise.)
    async fn find_for_owner(
        &self,
        user_id: UserId,
        token_id: u64,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Marks a token found expired invalid (actor `system`). Returns whether a valid row changed.
    async fn expire(&self, token_id: u64, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Adds `uses` to the token's usage count and sets `last_used`; returns the new count and
    /// time, read under the same row lock so concurrent calls each see their own value.
    async fn record_usage(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError>;

    /// Adds a batch of uses and verification rollups in one transaction that also records the
    /// batch's id. A batch whose id is already recorded was applied before: it is skipped, and
    /// that is a success.
    async fn apply_usage(&self, batch: &UsageBatch) -> Result<(), StoreError>;

    /// Invalidates the valid token with this digest (and privilege, when given).
    async fn revoke(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
        audit: &Audit,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Invalidates the token with this id. `None` when there is no such token; the record
    /// (as it was before) and whether this call revoked it otherwise.
    async fn revoke_by_id(
        &self,
        token_id: u64,
        audit: &Audit,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError>;

    /// Replaces one valid token by a new one in a single transaction.
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError>;

    /// Sets the IP restriction of the owner's valid token with this digest; false if none.
    async fn update_ip_restriction(
        &self,
        user_id: UserId,
        digest: &Digest,
        ips: &IpRestriction,
        audit: &Audit,
    ) -> Result<bool, StoreError>;

    /// Sets the privilege of the owner's valid token with this digest; false if none.
    async fn update_privilege(
        &self,
        user_id: UserId,
        digest: &Digest,
        privilege: Privilege,
        audit: &Audit,
    ) -> Result<bool, StoreError>;

    /// Changes a token's metadata under its row lock (concurrent changes of different keys
    /// all survive).
    async fn update_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError>;

    /// Valid and invalid token counts over every row of the owner; a token whose expiry has
    /// passed at `now` counts as invalid.
    async fn counts(&self, user_id: UserId, now: DateTime<Utc>) -> Result<TokenCounts, StoreError>;

    /// The owner's valid, unexpired tokens, newest first.
    async fn list_valid(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError>;

    /// A page of an admin listing.
    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError>;

    /// The audit log of one token, oldest first.
    async fn events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError>;

    /// A page of the whole audit log, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;

    /// Disables or enables the token with this id (SPEC B10); `None` when there is none.
    async fn set_token_state(
        &self,
        token_id: u64,
        change: &StateChange,
        audit: &Audit,
    ) -> Result<Option<StateChanged>, StoreError>;

    /// Rotates a token with a grace period (SPEC B10), in one transaction.
    async fn rotate_with_grace(&self, rotation: &GraceRotation)
        -> Result<GraceOutcome, StoreError>;

    /// A bulk action on these tokens in one transaction (SPEC B10), each with its own event:
    /// per id, what it changed (`None`: no such token).
    async fn bulk(
        &self,
        op: BulkOp,
        ids: &[u64],
        reason: Option<crate::domain::state::StateReason>,
        audit: &Audit,
    ) -> Result<Vec<Option<StateChanged>>, StoreError>;

    /// Disables or enables every token of the owner, present and future (SPEC B10).
    async fn set_owner_state(
        &self,
        user: UserId,
        change: &StateChange,
        audit: &Audit,
    ) -> Result<StateChanged, StoreError>;

    /// Cheap liveness probe of the store.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Stored admin credentials (SPEC B9). Every change writes its audit event in the same
/// transaction.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// `None` when its digest is taken (nothing written).
    async fn create_credential(
        &self,
        new: &NewCredential,
        audit: &Audit,
    ) -> Result<Option<CredentialRecord>, StoreError>;

    /// Every credential, revoked ones included, oldest first.
    async fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError>;

    async fn credential(&self, id: u64) -> Result<Option<CredentialRecord>, StoreError>;

    async fn credential_by_digest(
        &self,
        digest: &Digest,
    ) -> Result<Option<CredentialRecord>, StoreError>;

    /// Changes a credential under its row lock, when `holder` holds every scope it holds.
    async fn change_credential(
        &self,
        id: u64,
        change: &CredentialChange,
        holder: &Scopes,
        audit: &Audit,
    ) -> Result<CredentialOutcome, StoreError>;

    /// Revokes a credential under its row lock, when `holder` holds every scope it holds.
    async fn revoke_credential(
        &self,
        id: u64,
        holder: &Scopes,
        audit: &Audit,
    ) -> Result<CredentialOutcome, StoreError>;

    /// Records uses `(id, at, ip)` in one transaction; a later recorded use is kept.
    async fn record_credential_uses(
        &self,
        uses: &[(u64, DateTime<Utc>, Option<String>)],
    ) -> Result<(), StoreError>;
}

/// Admin console sessions (SPEC B14). Not copied by `iam-tokens copy`: a session belongs to
/// the deployment it was opened on.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn create_session(&self, session: &ConsoleSession) -> Result<(), StoreError>;
    /// By the digest of its cookie.
    async fn session(&self, id: &Digest) -> Result<Option<ConsoleSession>, StoreError>;
    /// Records a request at `at` (never moves the time back).
    async fn touch_session(&self, id: &Digest, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Sign-out.
    async fn end_session(&self, id: &Digest) -> Result<(), StoreError>;
    /// Every session opened with the credential whose secret has this digest; how many.
    async fn end_sessions_of(&self, credential: &Digest) -> Result<u64, StoreError>;
    /// Deletes sessions begun before `created_before` or idle since before `seen_before`.
    async fn prune_sessions(
        &self,
        created_before: DateTime<Utc>,
        seen_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Everything a store holds, for moving it to another store (`iam-tokens copy`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// With their access (`inherited` empty).
    pub tokens: Vec<TokenRecord>,
    pub roles: Vec<RoleRecord>,
    pub events: Vec<AuditEvent>,
    pub bans: Vec<BanRecord>,
    /// Customer limits and credits of tokens and owners, as stored.
    pub limits: Vec<backend::LimitRow>,
    pub credits: Vec<backend::CreditRow>,
    pub credentials: Vec<CredentialRecord>,
    /// Disabled owners (SPEC B10).
    pub owner_states: Vec<(UserId, crate::domain::state::Disabled)>,
    /// Webhook endpoints with their secrets, the outbox and the delivery log (SPEC B12), ids
    /// kept: undelivered events go on from the target, with the same `webhook-id`s.
    pub webhooks: Vec<EndpointRecord>,
    pub webhook_events: Vec<crate::domain::webhook::OutboxRow>,
    pub webhook_deliveries: Vec<DeliveryRecord>,
}

/// How many rows of each kind a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowCounts {
    pub tokens: u64,
    pub roles: u64,
    pub events: u64,
    pub bans: u64,
}

impl Snapshot {
    pub fn counts(&self) -> RowCounts {
        RowCounts {
            tokens: self.tokens.len() as u64,
            roles: self.roles.len() as u64,
            events: self.events.len() as u64,
            bans: self.bans.len() as u64,
        }
    }
}

/// Whole-store export and import, ids and times kept as they are.
#[async_trait]
pub trait CopyStore: Send + Sync + 'static {
    async fn export(&self) -> Result<Snapshot, StoreError>;

    /// Writes every row of `snapshot` in one transaction, after deleting what the store held.
    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError>;

    async fn row_counts(&self) -> Result<RowCounts, StoreError>;
}

/// Persistence of the rate limiters' permanent bans.
#[async_trait]
pub trait BanStore: Send + Sync + 'static {
    /// Records a ban (and its audit event); recording an existing one again is not an error.
    async fn insert_ban(&self, ban: &BanRecord) -> Result<(), StoreError>;

    /// Every ban, oldest first.
    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError>;

    /// Lifts a ban (and records who did); false when there was none.
    async fn delete_ban(&self, limiter: &str, key: &str, audit: &Audit)
        -> Result<bool, StoreError>;
}
