//! `rotate`: replace a token by a new one in one transaction.

use super::create::{new_token, parse_prefix_and_expiry};
use super::{RotatedToken, RotationDecision, TokenService, ROTATED_MSG};
use crate::domain::{Digest, IpRestriction, Prefix, Privilege, TokenName};
use crate::envelope::{Reason, Results};
use crate::store::{Audit, RotateOutcome, Rotation, StoreError};

/// The inputs of `rotate`: the old token (raw key or digest) and what the new one looks like.
#[derive(Debug, Clone)]
pub struct RotateToken {
    pub presented: String,
    pub privilege: Privilege,
    pub name: TokenName,
    /// Delete the old row instead of marking it invalid.
    pub delete_old: bool,
    pub ips: IpRestriction,
    /// Lifetime of the new token in ms from now; `None` = never expires.
    pub expires_ms: Option<u64>,
    pub prefix: String,
}

impl RotateToken {
    pub fn new(presented: impl Into<String>, privilege: Privilege, name: TokenName) -> Self {
        Self {
            presented: presented.into(),
            privilege,
            name,
            delete_old: false,
            ips: IpRestriction::unrestricted(),
            expires_ms: None,
            prefix: Prefix::default().as_str().to_owned(),
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

    /// Lifetime of the new token in ms from now; `None` = never expires.
    pub fn expires_ms(mut self, expires_ms: Option<u64>) -> Self {
        self.expires_ms = expires_ms;
        self
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// Where the new token's expiry comes from.
pub(super) enum NewExpiry {
    /// `expires_ms` from now (the library call).
    AfterMs(Option<u64>),
    /// Exactly the old token's expiry: the remaining lifetime (the private action manager).
    Inherit(Option<chrono::DateTime<chrono::Utc>>),
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

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn rotate_with(
        &self,
        old_digest: &Digest,
        privilege: Privilege,
        name: &str,
        delete_old: bool,
        ips: IpRestriction,
        expiry: NewExpiry,
        prefix: &str,
    ) -> Results<RotatedToken> {
        let decided = self
            .decide_rotation(old_digest, privilege, name, delete_old, ips, expiry, prefix)
            .await;
        self.envelope("rotate", decided, Reason::RotateServerError)
    }

    /// `rotate` as a typed decision; `Err` only when the store could not answer.
    pub async fn rotate_outcome(
        &self,
        request: RotateToken,
    ) -> Result<RotationDecision, StoreError> {
        self.decide_rotation(
            &Digest::of_presented(&request.presented),
            request.privilege,
            request.name.as_str(),
            request.delete_old,
            request.ips,
            NewExpiry::AfterMs(request.expires_ms),
            &request.prefix,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn decide_rotation(
        &self,
        old_digest: &Digest,
        privilege: Privilege,
        name: &str,
        delete_old: bool,
        ips: IpRestriction,
        expiry: NewExpiry,
        prefix: &str,
    ) -> Result<RotationDecision, StoreError> {
        let now = self.clock.now();
        let (expires_ms, inherited) = match expiry {
            NewExpiry::AfterMs(ms) => (ms, None),
            NewExpiry::Inherit(at) => (None, at),
        };
        let (prefix, mut expires_at) = match parse_prefix_and_expiry(prefix, expires_ms, now) {
            Ok(parsed) => parsed,
            Err(Reason::ReservedPrefix) => return Ok(RotationDecision::ReservedPrefix),
            Err(_) => return Ok(RotationDecision::Invalid),
        };
        if inherited.is_some() {
            expires_at = inherited;
        }
        // The owner and the metadata are the old token's, known once the store reads it.
        let (key, mut new) = new_token(privilege, name, &prefix, now, expires_at);
        new.ip_restriction = ips;
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
            RotateOutcome::Rotated { new, .. } => RotationDecision::Rotated(RotatedToken {
                msg: ROTATED_MSG,
                new_raw_token: key.raw.expose().to_owned(),
                new_expiry: new.expires_at,
            }),
            RotateOutcome::OldNotFound => RotationDecision::OldInvalid,
            RotateOutcome::OldExpired => RotationDecision::OldExpired,
            RotateOutcome::CreateFailed => RotationDecision::CreateFailed,
            RotateOutcome::LimitReached => RotationDecision::LimitReached {
                limit: self.limit_tokens_per_user,
            },
        })
    }
}
