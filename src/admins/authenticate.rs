//! The check of a presented admin secret: the configured digests first (each compared in
//! constant time), then — for a secret of the stored format whose checksum holds — the cache
//! of stored credentials, read from the store only on a miss.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{Admins, Caller, Entry, Known};
use crate::domain::credential::AdminSecret;
use crate::domain::{Actor, Digest};
use crate::store::StoreError;

/// Longest secret looked at (a configured one may be any text up to this).
pub const MAX_SECRET_LEN: usize = 256;
/// Cached lookups kept at most; past it, lookups of secrets that named nothing are dropped
/// first.
const MAX_ENTRIES: usize = 10_000;

/// Why a presented secret does not authenticate.
#[derive(Debug)]
pub enum Refusal {
    /// Malformed, unknown, revoked or expired: all the same to the caller (no oracle).
    Unauthorized,
    /// The credential is not cached and the store did not answer.
    Unavailable(StoreError),
}

impl Admins {
    /// Who `secret` authenticates, its use recorded (written behind) with `ip`.
    pub async fn authenticate(&self, secret: &str, ip: Option<IpAddr>) -> Result<Caller, Refusal> {
        if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
            return Err(Refusal::Unauthorized);
        }
        let presented = Digest::bytes_of(secret);
        if let Some(caller) = self.configured_caller(&presented) {
            return Ok(caller);
        }
        if !AdminSecret::is_well_formed(secret) {
            return Err(Refusal::Unauthorized);
        }
        self.stored_caller(presented, ip).await
    }

    /// Who the secret with this SHA-256 authenticates (the console's sessions keep the digest,
    /// never the secret, and authenticate it again on every request): a configured credential,
    /// else an active stored one.
    pub async fn authenticate_digest(
        &self,
        presented: [u8; 32],
        ip: Option<IpAddr>,
    ) -> Result<Caller, Refusal> {
        match self.configured_caller(&presented) {
            Some(caller) => Ok(caller),
            None => self.stored_caller(presented, ip).await,
        }
    }

    /// The configured credential with this digest (every one compared in constant time).
    fn configured_caller(&self, presented: &[u8; 32]) -> Option<Caller> {
        let mut configured = None;
        for (name, digest) in &self.configured {
            if bool::from(presented.ct_eq(digest)) {
                configured = Some(name);
            }
        }
        configured.map(|name| Caller {
            actor: Actor::config(name),
            scopes: self.everything.clone(),
        })
    }

    /// The active stored credential with this digest, its use recorded.
    async fn stored_caller(
        &self,
        presented: [u8; 32],
        ip: Option<IpAddr>,
    ) -> Result<Caller, Refusal> {
        let known = self.lookup(presented).await?;
        let now = self.clock.now();
        match known {
            Some(known) if known.record.is_active_at(now) => {
                self.uses.record(known.record.id, now, ip);
                Ok(known.caller.clone())
            }
            _ => Err(Refusal::Unauthorized),
        }
    }

    /// The stored credential with this digest: cached, else read once and cached.
    async fn lookup(&self, digest: [u8; 32]) -> Result<Option<Arc<Known>>, Refusal> {
        let now_ms = self.clock.monotonic_ms();
        if let Some(entry) = self.cache.get(&digest) {
            let ttl = match entry.credential {
                Some(_) => self.config.ttl,
                None => self.config.negative_ttl,
            };
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            if now_ms.saturating_sub(entry.loaded_ms) < ttl_ms {
                return Ok(entry.credential.clone());
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let record = self
            .store
            .credential_by_digest(&Digest::from_bytes(&digest))
            .await
            .map_err(Refusal::Unavailable)?;
        let known = record.map(Known::new);
        if self.generation.load(Ordering::Acquire) == generation {
            if self.cache.len() >= MAX_ENTRIES {
                self.cache.retain(|_, entry| entry.credential.is_some());
            }
            let entry = Entry {
                credential: known.clone(),
                loaded_ms: now_ms,
            };
            self.cache.insert(digest, entry);
        }
        Ok(known)
    }
}
