//! What the store's operations are asked and what they answer: each a typed outcome, where
//! anything but success changed nothing. The traits that answer them are in `store/mod.rs`.

use chrono::{DateTime, Utc};

use super::{Audit, TokenRecord};
use crate::domain::access::{AccessLimit, RoleName, RoleRecord};
use crate::domain::credential::CredentialRecord;
use crate::domain::record::TokenDraft;
use crate::domain::{Digest, Metadata, MetadataError, MetadataPatch, Privilege};

/// Result of an insert guarded by the per-user limit.
#[derive(Debug)]
pub enum CreateOutcome {
    Created(Box<TokenRecord>),
    LimitReached,
    /// One of the roles it was to hold does not exist (nothing was written).
    UnknownRole(RoleName),
}

/// Result of a rotation transaction. Anything but `Rotated` left the store unchanged.
#[derive(Debug)]
pub enum RotateOutcome {
    Rotated {
        old: Box<TokenRecord>,
        new: Box<TokenRecord>,
    },
    /// No valid token with that digest and privilege.
    OldNotFound,
    /// The old token had expired; it cannot be rotated.
    OldExpired,
    LimitReached,
    /// The new row could not be inserted (e.g. an identifier collision).
    CreateFailed,
}

/// What a rotation replaces the old token with.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub old_digest: Digest,
    pub privilege: Privilege,
    pub delete_old: bool,
    /// The replacement; it takes the old token's owner and metadata.
    pub new: TokenDraft,
    pub limit: u32,
    pub audit: Audit,
}

/// A change of metadata: merge-patch or replace-all.
#[derive(Debug, Clone)]
pub enum MetadataChange {
    Patch(MetadataPatch),
    Replace(Metadata),
}

impl MetadataChange {
    /// Applies the change to `metadata`; answers the audit detail (`mode` and the keys that
    /// changed), or the rule a patch breaks (then `metadata` is unchanged).
    pub fn apply_to(&self, metadata: &mut Metadata) -> Result<serde_json::Value, MetadataError> {
        let (mode, changed) = match self {
            Self::Patch(patch) => ("patch", metadata.apply(patch)?),
            Self::Replace(with) => ("replace", metadata.replace(with.clone())),
        };
        Ok(serde_json::json!({ "mode": mode, "keys": changed }))
    }
}

/// Result of a metadata change. Anything but `Updated` changed nothing.
#[derive(Debug)]
pub enum MetadataOutcome {
    Updated(Metadata),
    NotFound,
    Invalid(MetadataError),
}

/// Result of creating a role. Anything but `Created` changed nothing.
#[derive(Debug)]
pub enum RoleCreation {
    Created(RoleRecord),
    Exists,
    /// There are already 1,000 roles.
    LimitReached,
}

/// Result of changing a role. Anything but `Updated` changed nothing.
#[derive(Debug)]
pub enum RoleUpdate {
    Updated(RoleRecord),
    NotFound,
    /// It would hold more than 1,000 permissions.
    TooManyPermissions,
}

/// Result of deleting a role. Anything but `Deleted` changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleDeletion {
    /// Gone, taken from the `tokens` valid tokens that held it.
    Deleted {
        tokens: u64,
    },
    NotFound,
    /// Valid tokens hold it and the deletion was not forced.
    InUse {
        tokens: u64,
    },
}

/// Result of changing what a token holds. Anything but `Updated` changed nothing.
#[derive(Debug)]
pub enum AccessOutcome {
    /// The token as it is now.
    Updated(Box<TokenRecord>),
    NotFound,
    UnknownRole(RoleName),
    Limit(AccessLimit),
}

/// Result of changing the limits or credits of a token or an owner. `NotFound` (no such
/// token) changed nothing.
#[derive(Debug)]
pub enum QuotaChange<T> {
    Changed {
        value: T,
        /// The digests of the valid tokens whose verification it changes (to drop from caches).
        tokens: Vec<Digest>,
    },
    NotFound,
}

/// Credits taken out of the store by [`QuotaStore::lease`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub granted: u64,
    /// The regime they belong to: spendable only while the holder's credits are of it.
    pub generation: u64,
    pub refilled_at: DateTime<Utc>,
    /// What the store holds after the lease.
    pub remaining: u64,
}

/// A rotation with a grace period (SPEC B10): the new key's material and how long the old
/// one keeps verifying.
#[derive(Debug, Clone)]
pub struct GraceRotation {
    pub old_id: u64,
    pub digest: Digest,
    pub public_identifier: crate::domain::PublicIdentifier,
    pub grace: chrono::Duration,
    /// End the grace of an older key of the lineage now instead of refusing.
    pub force: bool,
    pub reason: Option<crate::domain::state::StateReason>,
    pub limit: u32,
    pub audit: Audit,
}

/// Result of a grace rotation. Anything but `Rotated` changed nothing.
#[derive(Debug)]
pub enum GraceOutcome {
    Rotated {
        old: Box<TokenRecord>,
        new: Box<TokenRecord>,
        grace_ends_at: DateTime<Utc>,
        /// Older keys whose grace `force` ended now.
        ended: Vec<u64>,
    },
    NotFound,
    Revoked,
    Expired,
    /// A lineage is in grace: this key replaced `older`, or is replaced by `replaced_by`.
    InProgress {
        older: Option<u64>,
        replaced_by: Option<u64>,
    },
    LimitReached,
    CreateFailed,
}

/// A change of state (SPEC B10): enabled or not, and why.
#[derive(Debug, Clone)]
pub struct StateChange {
    pub enabled: bool,
    pub reason: Option<crate::domain::state::StateReason>,
}

/// What a bulk action does to each token (SPEC B10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOp {
    Revoke,
    Disable,
    Enable,
}

/// What a change of state did: whether anything changed, and the digests of the valid tokens
/// whose verification it changes (to drop from caches).
#[derive(Debug, Clone, Default)]
pub struct StateChanged {
    pub changed: bool,
    pub tokens: Vec<Digest>,
}

/// Result of changing or revoking a stored admin credential. Anything but `Done` changed
/// nothing.
#[derive(Debug)]
pub enum CredentialOutcome {
    /// The credential as it is now (revoking a revoked one answers it as it was).
    Done(Box<CredentialRecord>),
    NotFound,
    /// It holds this scope and the caller does not (no escalation).
    Forbidden(&'static str),
    /// A change of a revoked credential.
    Revoked,
}

/// What a manual retry of a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Pending again, due now.
    Scheduled(crate::domain::webhook::DeliveryRecord),
    /// Still pending: its next attempt is coming.
    AlreadyPending,
    NotFound,
}
