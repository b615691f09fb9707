//! `verify`: the hot path of SPEC A6, steps in order.

use std::net::IpAddr;

use super::{TokenService, VerifiedToken};
use crate::envelope::{Reason, Results};
use crate::store::{StoreError, TokenRecord};
use crate::token::{Digest, Privilege, RawKey};

/// How to verify. The defaults are the public route's: count the use and check the IP.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    pub privilege: Privilege,
    /// Do not count this use (`usage_count`, `last_used` unchanged).
    pub skip_count_updates: bool,
    /// Ignore the token's IP restriction.
    pub bypass_ip_check: bool,
    /// The presented value is the 64-hex digest, not a raw key (no checksum step).
    pub is_internal_hash: bool,
    /// The caller's address, for the IP restriction.
    pub ip: Option<IpAddr>,
}

impl VerifyOptions {
    pub fn new(privilege: Privilege, ip: Option<IpAddr>) -> Self {
        Self {
            privilege,
            skip_count_updates: false,
            bypass_ip_check: false,
            is_internal_hash: false,
            ip,
        }
    }
}

/// What verification decided. Storage failures are not outcomes: they are `Err`.
#[derive(Debug, Clone, PartialEq)]
pub enum VerifyOutcome {
    Valid(VerifiedToken),
    /// Malformed, bad checksum, unknown, revoked, expired earlier, or another privilege.
    InvalidKey,
    InvalidHost,
    /// Expired now; the token has just been marked invalid.
    Expired,
}

impl VerifyOutcome {
    /// The verified token, or the riavzon reason of the rejection.
    pub fn into_token(self) -> Result<VerifiedToken, Reason> {
        match self {
            Self::Valid(token) => Ok(token),
            Self::InvalidKey => Err(Reason::InvalidKey),
            Self::InvalidHost => Err(Reason::InvalidHost),
            Self::Expired => Err(Reason::TokenExpired),
        }
    }
}

impl TokenService {
    /// Verifies `presented` (a raw key, or the digest when `is_internal_hash`). Fails with
    /// `Invalid key`, `Invalid Host`, `Token expired`, or `Server error validating token.` when
    /// the store cannot answer (fail closed).
    pub async fn verify(&self, presented: &str, options: VerifyOptions) -> Results<VerifiedToken> {
        match self.verify_outcome(presented, options).await {
            Ok(outcome) => Results {
                date: self.clock.now(),
                outcome: outcome.into_token(),
            },
            Err(err) => self.store_failure("verify", &err, Reason::VerifyServerError),
        }
    }

    /// The decision itself, for callers that map outcomes on their own (HTTP, admin verify).
    pub async fn verify_outcome(
        &self,
        presented: &str,
        options: VerifyOptions,
    ) -> Result<VerifyOutcome, StoreError> {
        // 1–2. Shape and checksum (no I/O), then the digest.
        let digest = if options.is_internal_hash {
            match Digest::parse(presented) {
                Some(digest) => digest,
                None => return Ok(VerifyOutcome::InvalidKey),
            }
        } else {
            match RawKey::parse(presented) {
                Ok(raw) => raw.digest(),
                Err(_) => return Ok(VerifyOutcome::InvalidKey),
            }
        };
        // 3. A valid row with that digest and exactly that privilege.
        let Some(record) = self.store.find_by_digest(&digest).await? else {
            return Ok(VerifyOutcome::InvalidKey);
        };
        self.decide(record, options).await
    }

    /// Steps 3–6 on a loaded record.
    async fn decide(
        &self,
        record: TokenRecord,
        options: VerifyOptions,
    ) -> Result<VerifyOutcome, StoreError> {
        if !record.valid || record.privilege != options.privilege {
            return Ok(VerifyOutcome::InvalidKey);
        }
        // 4. IP restriction.
        if !options.bypass_ip_check && !record.ip_restriction.allows(options.ip) {
            return Ok(VerifyOutcome::InvalidHost);
        }
        // 5. Expiry: the first sight of an expired token invalidates it.
        let now = self.clock.now();
        if record.is_expired_at(now) {
            self.store.invalidate(record.id).await?;
            return Ok(VerifyOutcome::Expired);
        }
        let mut token = VerifiedToken::from_record(&record);
        // 6. Count this use; the answer includes it.
        if !options.skip_count_updates {
            if let Some((count, last_used)) = self.store.record_usage(record.id, 1, now).await? {
                token.usage_count = count;
                token.last_used = Some(last_used);
            }
        }
        Ok(VerifyOutcome::Valid(token))
    }
}
