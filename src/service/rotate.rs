//! `rotate`: replace a token by a new one in one transaction.

use chrono::{DateTime, Utc};

use super::create::new_token;
use super::{RotatedToken, RotationDecision, TokenService, ROTATED_MSG};
use crate::domain::{Digest, IpRestriction, Lifetime, Prefix, Privilege, TokenName};
use crate::envelope::{Reason, Results};
use crate::store::{Audit, RotateOutcome, Rotation, StoreError};

/// The inputs of `rotate`, parsed: the old token (raw key or digest) and what the new one
/// looks like (prefix `api`, no expiry, no IP restriction unless set).
#[derive(Debug, Clone)]
pub struct RotateToken {
    pub presented: String,
    pub privilege: Privilege,
    pub name: TokenName,
    /// Delete the old row instead of marking it invalid.
    pub delete_old: bool,
    pub ips: IpRestriction,
    /// Lifetime of the new token from now; `None` = never expires.
    pub lifetime: Option<Lifetime>,
    pub prefix: Prefix,
}

impl RotateToken {
    pub fn new(presented: impl Into<String>, privilege: Privilege, name: TokenName) -> Self {
        Self {
            presented: presented.into(),
            privilege,
            name,
            delete_old: false,
            ips: IpRestriction::unrestricted(),
            lifetime: None,
            prefix: Prefix::default(),
        }
    }

    /// Delete the old row instead of marking it invalid.
    pub fn delete_old(mut self, delete_old: bool) -> Self {
        self.delete_old = delete_old;
        self
    }

    pub fn ips(mut self, ips: IpRestriction) -> Self {
        self.ips = ips;
        self
    }

    /// Lifetime of the new token from now; `None` = never expires.
    pub fn lifetime(mut self, lifetime: impl Into<Option<Lifetime>>) -> Self {
        self.lifetime = lifetime.into();
        self
    }

    pub fn prefix(mut self, prefix: Prefix) -> Self {
        self.prefix = prefix;
        self
    }
}

/// What the new token of a rotation looks like, its expiry already decided.
pub(super) struct NewShape<'a> {
    pub name: &'a str,
    pub prefix: &'a Prefix,
    pub ips: IpRestriction,
    pub expires_at: Option<DateTime<Utc>>,
}

impl TokenService {
    /// Rotates atomically: if the new token cannot be created the old one stays valid.
    /// Fails with `Cannot rotate revoked token`, `Token cannot be rotated this time` (expired),
    /// `Cant create new tokens in this rotation`, create's reasons, or
    /// `Server error rotating a token.`.
    pub async fn rotate(&self, request: RotateToken) -> Results<RotatedToken> {
        let decided = self.rotate_outcome(request).await;
        self.envelope("rotate", decided, Reason::RotateServerError)
    }

    /// `rotate` as a typed decision; `Err` only when the store could not answer.
    pub async fn rotate_outcome(
        &self,
        request: RotateToken,
    ) -> Result<RotationDecision, StoreError> {
        let now = self.clock.now();
        let shape = NewShape {
            name: request.name.as_str(),
            prefix: &request.prefix,
            ips: request.ips,
            expires_at: request.lifetime.map(|lifetime| lifetime.expiry_from(now)),
        };
        let old_digest = Digest::of_presented(&request.presented);
        self.decide_rotation(&old_digest, request.privilege, request.delete_old, shape)
            .await
    }

    pub(super) async fn decide_rotation(
        &self,
        old_digest: &Digest,
        privilege: Privilege,
        delete_old: bool,
        shape: NewShape<'_>,
    ) -> Result<RotationDecision, StoreError> {
        let now = self.clock.now();
        // The owner and the metadata are the old token's, known once the store reads it.
        let (key, new) = new_token(
            privilege,
            shape.name,
            shape.prefix,
            shape.ips,
            now,
            shape.expires_at,
        );
        let rotation = Rotation {
            old_digest: old_digest.clone(),
            privilege,
            delete_old,
            new,
            limit: self.limit_tokens_per_user,
            audit: Audit {
                actor: self.actor.clone(),
                at: now,
            },
        };
        let rotated = self.store.rotate(&rotation).await;
        self.invalidate(old_digest);
        Ok(match rotated? {
            RotateOutcome::Rotated { old, new } => {
                // Credits the old token had leased out and not spent go with the rest.
                if let Err(err) = self.quotas.carry(old.user_id, old.id, new.id).await {
                    tracing::error!(error = %err, "could not carry a rotated token's leased credits");
                }
                RotationDecision::Rotated(RotatedToken {
                    msg: ROTATED_MSG,
                    new_raw_token: key.raw.expose().to_owned(),
                    new_expiry: new.expires_at,
                })
            }
            RotateOutcome::OldNotFound => RotationDecision::OldInvalid,
            RotateOutcome::OldExpired => RotationDecision::OldExpired,
            RotateOutcome::CreateFailed => RotationDecision::CreateFailed,
            RotateOutcome::LimitReached => RotationDecision::LimitReached {
                limit: self.limit_tokens_per_user,
            },
        })
    }
}
