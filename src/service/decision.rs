//! Typed decisions and the one adapter from a decision to the riavzon envelope: an operation
//! decides (a typed value, or a `StoreError` when the store could not answer), and `envelope`
//! turns that into `Results<T>` with the operation's reason for a store failure.

use super::{Message, MetadataSnapshot, RevokeData, RotatedToken, TokenService, REVOKED_MSG};
use crate::envelope::{Reason, Results};
use crate::store::StoreError;

/// A riavzon operation's typed decision: its data, or the reason it refuses.
pub trait Decision {
    type Data;
    fn into_data(self) -> Result<Self::Data, Reason>;
}

/// What a revocation did. Idempotent: nothing to revoke is a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Revoked {
        token_id: u64,
        user_id: crate::domain::UserId,
    },
    NothingToRevoke,
}

/// What an IP or privilege update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Done; the message riavzon answers for it.
    Updated(&'static str),
    /// The owner has no valid token with that key.
    NotFound,
}

/// What a rotation decided. Anything but `Rotated` left the old token as it was.
#[derive(Debug, Clone)]
pub enum RotationDecision {
    Rotated(RotatedToken),
    /// Unknown, revoked, or another privilege.
    OldInvalid,
    OldExpired,
    /// The new key could not be inserted (an identifier collision).
    CreateFailed,
    LimitReached {
        limit: u32,
    },
}

/// What a metadata snapshot found.
#[derive(Debug, Clone)]
pub enum SnapshotDecision {
    Found(MetadataSnapshot),
    /// Unknown, revoked, expired earlier, or another privilege.
    InvalidKey,
    /// Expired now (and just marked invalid).
    Expired,
    /// Verified, but the owner has no rows any more.
    NoRows,
}

impl Decision for SnapshotDecision {
    type Data = MetadataSnapshot;
    fn into_data(self) -> Result<MetadataSnapshot, Reason> {
        match self {
            Self::Found(snapshot) => Ok(snapshot),
            Self::InvalidKey => Err(Reason::InvalidKey),
            Self::Expired => Err(Reason::TokenExpired),
            Self::NoRows => Err(Reason::MetadataInvalidToken),
        }
    }
}

impl Decision for Revocation {
    type Data = RevokeData;
    fn into_data(self) -> Result<RevokeData, Reason> {
        Ok(match self {
            Self::Revoked { token_id, user_id } => RevokeData::Revoked {
                msg: REVOKED_MSG,
                invalided_token_id: token_id,
                user_id,
            },
            Self::NothingToRevoke => RevokeData::NothingToRevoke(REVOKED_MSG),
        })
    }
}

impl Decision for Update {
    type Data = Message;
    fn into_data(self) -> Result<Message, Reason> {
        match self {
            Self::Updated(msg) => Ok(Message { msg }),
            Self::NotFound => Err(Reason::NotFoundOrUnauthorized),
        }
    }
}

impl Decision for RotationDecision {
    type Data = RotatedToken;
    fn into_data(self) -> Result<RotatedToken, Reason> {
        match self {
            Self::Rotated(rotated) => Ok(rotated),
            Self::OldInvalid => Err(Reason::RotateRevoked),
            Self::OldExpired => Err(Reason::RotateNotNow),
            Self::CreateFailed => Err(Reason::RotateCreateFailed),
            Self::LimitReached { limit } => Err(Reason::TooManyTokens { limit }),
        }
    }
}

impl TokenService {
    /// The one adapter: a decision becomes its envelope; a store failure is logged once and
    /// answered with `store_reason`.
    pub(super) fn envelope<D: Decision>(
        &self,
        operation: &'static str,
        decided: Result<D, StoreError>,
        store_reason: Reason,
    ) -> Results<D::Data> {
        match decided.map(Decision::into_data) {
            Ok(Ok(data)) => self.success(data),
            Ok(Err(reason)) => self.failure(reason),
            Err(err) => self.store_failure(operation, &err, store_reason),
        }
    }
}
