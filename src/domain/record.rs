//! The records the service keeps: tokens, audit events, bans, usage deltas, listing queries.
//! Plain values; the store reads and writes them.

use chrono::{DateTime, Utc};

use super::access::TokenAccess;
use super::quota::Quota;
use super::state::TokenState;
use super::{Actor, Digest, IpRestriction, Metadata, Privilege, PublicIdentifier, UserId};

/// One row of `api_tokens`.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: u64,
    pub user_id: UserId,
    pub digest: Digest,
    pub public_identifier: PublicIdentifier,
    pub prefix: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ip_restriction: IpRestriction,
    pub last_used: Option<DateTime<Utc>>,
    pub privilege: Privilege,
    pub usage_count: u64,
    pub valid: bool,
    pub metadata: Metadata,
    /// Whether it and its owner are enabled (SPEC B10), as read with it.
    pub state: TokenState,
    /// Its replacement, while it verifies during a grace rotation (SPEC B10).
    pub replaced: Option<Replaced>,
    /// Its roles and direct grants, and its roles' grants as read with it.
    pub access: TokenAccess,
    /// Its own limits and credits (SPEC B5), as read with it.
    pub quota: Quota,
    /// Its owner's limits and credits, as read with it (verification reads them; listings
    /// leave them empty).
    pub owner_quota: Quota,
}

impl TokenRecord {
    /// Whose limits and credits its verifications charge: its own, or during a grace rotation
    /// its replacement's (one budget per lineage).
    pub fn quota_subject(&self) -> u64 {
        self.replaced.map_or(self.id, |replaced| replaced.by)
    }

    /// The record a successful insert of `new` under `id` produced.
    pub fn from_new(id: u64, new: &NewToken) -> Self {
        Self {
            id,
            user_id: new.user_id,
            digest: new.token.digest.clone(),
            public_identifier: new.token.public_identifier.clone(),
            prefix: new.token.prefix.clone(),
            name: new.token.name.clone(),
            created_at: new.token.created_at,
            expires_at: new.token.expires_at,
            ip_restriction: new.token.ip_restriction.clone(),
            last_used: None,
            privilege: new.token.privilege,
            usage_count: 0,
            valid: true,
            metadata: new.metadata.clone(),
            state: Default::default(),
            replaced: None,
            access: new.access.clone(),
            quota: new.quota.clone(),
            owner_quota: Quota::default(),
        }
    }

    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A token about to be inserted: a draft with its owner, metadata and access.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: UserId,
    pub metadata: Metadata,
    /// Roles (which must exist) and direct grants; `inherited` is not written.
    pub access: TokenAccess,
    /// Its limits and credits (SPEC B5).
    pub quota: Quota,
    pub token: TokenDraft,
}

/// A token not yet given an owner, metadata and access: what a rotation puts in place of the old
/// token, whose owner, metadata and access it takes inside the rotation's transaction.
#[derive(Debug, Clone)]
pub struct TokenDraft {
    pub digest: Digest,
    pub public_identifier: PublicIdentifier,
    pub prefix: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ip_restriction: IpRestriction,
    pub privilege: Privilege,
}

impl TokenDraft {
    /// The draft as a token of `user_id`, holding `access` (its quota is set apart: a
    /// rotation moves the old token's to it).
    pub fn owned_by(self, user_id: UserId, metadata: Metadata, access: TokenAccess) -> NewToken {
        NewToken {
            user_id,
            metadata,
            access,
            quota: Quota::default(),
            token: self,
        }
    }
}

impl NewToken {
    /// The detail of its `created` audit event: what it was made with (never the digest).
    pub fn created_detail(&self) -> serde_json::Value {
        let mut detail = serde_json::json!({
            "userId": self.user_id,
            "name": self.token.name,
            "privilege": self.token.privilege,
            "prefix": self.token.prefix,
            "metadataKeys": self.metadata.keys(),
        });
        if !self.access.is_empty() {
            detail["roles"] = serde_json::json!(self.access.role_texts());
            detail["permissions"] = serde_json::json!(self.access.permission_texts());
        }
        if !self.quota.is_empty() {
            detail["ratelimits"] = serde_json::json!(self.quota.limit_names());
            detail["credits"] = serde_json::json!(self.quota.credits.map(|c| c.remaining));
        }
        detail
    }
}

/// Counts over every row of one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenCounts {
    pub valid: u64,
    pub invalid: u64,
}

impl TokenCounts {
    pub fn total(&self) -> u64 {
        self.valid + self.invalid
    }
}

/// A permanent ban of one key by one limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    pub limiter: String,
    pub key: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Uses of one token to add to its stored count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageDelta {
    pub token_id: u64,
    pub uses: u64,
    pub last_used: DateTime<Utc>,
}

/// What one flush writes, applied exactly once: its id is recorded in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBatch {
    pub id: String,
    /// When the batch was taken (batch ids are forgotten a day after).
    pub at: DateTime<Utc>,
    pub deltas: Vec<UsageDelta>,
    /// Verifications counted since the last flush, as rows of every rollup (SPEC B11).
    pub rollups: Vec<crate::domain::rollup::RollupRow>,
}

impl UsageBatch {
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.rollups.is_empty()
    }
}

/// A token rotated with a grace period: it verifies until its `expires_at`, charging its
/// replacement's limits and credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    pub by: u64,
    pub at: DateTime<Utc>,
}

/// Who changes something, and when: every mutation writes an audit event with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

/// What an audit event records; stored as its `as_str` name in `audit_events.event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    Created,
    Revoked,
    Rotated,
    Expired,
    IpRestrictionUpdated,
    PrivilegeUpdated,
    MetadataUpdated,
    Banned,
    BanLifted,
    AccessUpdated,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    RateLimitsUpdated,
    CreditsUpdated,
    CredentialCreated,
    CredentialUpdated,
    CredentialRevoked,
    Disabled,
    Enabled,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    WebhookSecretRotated,
    WebhookDisabled,
}

impl AuditKind {
    pub const ALL: [Self; 25] = [
        Self::Created,
        Self::Revoked,
        Self::Rotated,
        Self::Expired,
        Self::IpRestrictionUpdated,
        Self::PrivilegeUpdated,
        Self::MetadataUpdated,
        Self::Banned,
        Self::BanLifted,
        Self::AccessUpdated,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::RateLimitsUpdated,
        Self::CreditsUpdated,
        Self::CredentialCreated,
        Self::CredentialUpdated,
        Self::CredentialRevoked,
        Self::Disabled,
        Self::Enabled,
        Self::WebhookCreated,
        Self::WebhookUpdated,
        Self::WebhookDeleted,
        Self::WebhookSecretRotated,
        Self::WebhookDisabled,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Revoked => "revoked",
            Self::Rotated => "rotated",
            Self::Expired => "expired",
            Self::IpRestrictionUpdated => "ip_restriction_updated",
            Self::PrivilegeUpdated => "privilege_updated",
            Self::MetadataUpdated => "metadata_updated",
            Self::Banned => "banned",
            Self::BanLifted => "ban_lifted",
            Self::AccessUpdated => "access_updated",
            Self::RoleCreated => "role_created",
            Self::RoleUpdated => "role_updated",
            Self::RoleDeleted => "role_deleted",
            Self::RateLimitsUpdated => "ratelimits_updated",
            Self::CreditsUpdated => "credits_updated",
            Self::CredentialCreated => "credential_created",
            Self::CredentialUpdated => "credential_updated",
            Self::CredentialRevoked => "credential_revoked",
            Self::Disabled => "disabled",
            Self::Enabled => "enabled",
            Self::WebhookCreated => "webhook_created",
            Self::WebhookUpdated => "webhook_updated",
            Self::WebhookDeleted => "webhook_deleted",
            Self::WebhookSecretRotated => "webhook_secret_rotated",
            Self::WebhookDisabled => "webhook_disabled",
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: u64,
    pub token_id: Option<u64>,
    /// The owner of the token it is about, or the owner whose limits or credits changed.
    pub user_id: Option<UserId>,
    pub event: String,
    pub actor: Actor,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Which actors an audit listing wants: every one of a kind, or one (`credential:7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorFilter {
    pub kind: crate::domain::ActorKind,
    pub id: Option<String>,
}

/// A page of the whole audit log, newest first (SPEC B9); every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<ActorFilter>,
    /// An event kind (`created`, `credential_revoked`, …).
    pub kind: Option<String>,
    pub token_id: Option<u64>,
    pub user_id: Option<UserId>,
    /// `created_at >= since`.
    pub since: Option<DateTime<Utc>>,
    /// `created_at < until`.
    pub until: Option<DateTime<Utc>>,
    /// Keyset: only events with a smaller id (the last id of the previous page).
    pub before: Option<u64>,
    pub limit: u32,
}

/// Which tokens an admin listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Valid,
    Invalid,
    All,
}

/// An admin listing: tokens (one owner's, or everyone's for the console), newest first, a page
/// at a time.
#[derive(Debug, Clone)]
pub struct TokenQuery {
    /// `None`: every owner's.
    pub user_id: Option<UserId>,
    /// Only tokens with exactly this name (byte for byte).
    pub name: Option<String>,
    /// Only the token with exactly this public identifier (byte for byte).
    pub public_identifier: Option<String>,
    pub status: TokenStatus,
    /// Only tokens whose metadata has this key with this value, compared as text: `42`
    /// matches the string "42" and the number 42, `true` the boolean and the string.
    pub metadata: Option<(String, String)>,
    pub limit: u32,
    /// Only tokens with an id below this one (the cursor of the previous page).
    pub before_id: Option<u64>,
    pub now: DateTime<Utc>,
}
