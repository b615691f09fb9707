//! Rotation with a grace period for trusted callers (SPEC B10): the old key keeps verifying
//! until its grace ends, charging the new key's limits and credits, then expires. The BFF's
//! `rotate` stays riavzon's (no grace).

use chrono::{DateTime, Utc};

use super::TokenService;
use crate::domain::state::StateReason;
use crate::domain::{GeneratedKey, Prefix, PublicIdentifier};
use crate::store::{Audit, GraceOutcome, GraceRotation, StoreError, TokenRecord};

/// Longest grace a rotation may give the old key (SPEC B10: 7 days).
pub const MAX_GRACE_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// A rotation with a grace period that happened.
#[derive(Debug)]
pub struct GraceRotated {
    /// Shown here only.
    pub raw_api_key: String,
    pub raw_public_id: String,
    pub new: TokenRecord,
    pub previous_id: u64,
    pub grace_ends_at: DateTime<Utc>,
}

/// What a grace rotation decided. Anything but `Rotated` changed nothing.
#[derive(Debug)]
pub enum GraceDecision {
    Rotated(Box<GraceRotated>),
    NotFound,
    Revoked,
    Expired,
    InProgress {
        older: Option<u64>,
        replaced_by: Option<u64>,
    },
    LimitReached {
        limit: u32,
    },
    CreateFailed,
}

impl TokenService {
    /// Rotates the token with this id, the old key verifying for `grace_ms` more (at most until
    /// its own expiry). `force` ends the grace of an older key of the lineage now.
    pub async fn rotate_with_grace(
        &self,
        token_id: u64,
        grace_ms: u64,
        force: bool,
        reason: Option<StateReason>,
    ) -> Result<GraceDecision, StoreError> {
        let Some(old) = self.store.find_by_id(token_id).await? else {
            return Ok(GraceDecision::NotFound);
        };
        let prefix = Prefix::parse(&old.prefix).unwrap_or_default();
        let key = GeneratedKey::generate(&prefix);
        let public_identifier = PublicIdentifier::generate();
        let grace_ms = i64::try_from(grace_ms.min(MAX_GRACE_MS)).unwrap_or_default();
        let rotation = GraceRotation {
            old_id: token_id,
            digest: key.digest.clone(),
            public_identifier: public_identifier.clone(),
            grace: chrono::Duration::milliseconds(grace_ms),
            force,
            reason,
            limit: self.limit_tokens_per_user,
            audit: Audit {
                actor: self.actor.clone(),
                at: self.clock.now(),
            },
        };
        Ok(match self.store.rotate_with_grace(&rotation).await? {
            GraceOutcome::Rotated {
                old,
                new,
                grace_ends_at,
                ended,
            } => {
                self.invalidate(&old.digest);
                for id in ended {
                    if let Ok(Some(ended)) = self.store.find_by_id(id).await {
                        self.invalidate(&ended.digest);
                    }
                }
                if let Err(err) = self.quotas.carry(old.user_id, old.id, new.id).await {
                    tracing::error!(error = %err, "could not carry a rotated token's leased credits");
                }
                GraceDecision::Rotated(Box::new(GraceRotated {
                    raw_api_key: key.raw.expose().to_owned(),
                    raw_public_id: public_identifier.as_str().to_owned(),
                    new: *new,
                    previous_id: old.id,
                    grace_ends_at,
                }))
            }
            GraceOutcome::NotFound => GraceDecision::NotFound,
            GraceOutcome::Revoked => GraceDecision::Revoked,
            GraceOutcome::Expired => GraceDecision::Expired,
            GraceOutcome::InProgress { older, replaced_by } => {
                GraceDecision::InProgress { older, replaced_by }
            }
            GraceOutcome::LimitReached => GraceDecision::LimitReached {
                limit: self.limit_tokens_per_user,
            },
            GraceOutcome::CreateFailed => GraceDecision::CreateFailed,
        })
    }
}
