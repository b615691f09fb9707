//! Admin console sessions (SPEC B14): opened by signing in with an admin secret, found again
//! by the digest of their cookie, and authenticated again on every request by the digest of
//! that secret, so that revoking (or unconfiguring) the credential ends them. The cookie and
//! the secret are never stored.

use std::net::IpAddr;

use super::{Admins, Caller, Refusal};
use crate::domain::session::{ConsoleSession, SessionLimits};
use crate::domain::{random_secret_hex, Digest};
use crate::store::StoreError;

/// A session in use: who, and the session's row.
#[derive(Debug, Clone)]
pub struct Signed {
    pub caller: Caller,
    pub session: ConsoleSession,
}

/// Why a cookie names no usable session.
#[derive(Debug)]
pub enum SessionRefusal {
    /// None, ended, past its lifetime or idle time, or its credential no longer authenticates
    /// (the row is deleted then).
    Gone,
    Unavailable(StoreError),
}

impl From<StoreError> for SessionRefusal {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err)
    }
}

impl Admins {
    /// Signs in with `secret`: the new session and the cookie value that names it (shown once,
    /// to the browser).
    pub async fn sign_in(
        &self,
        secret: &str,
        ip: Option<IpAddr>,
    ) -> Result<(String, Signed), Refusal> {
        let caller = self.authenticate(secret, ip).await?;
        let cookie = random_secret_hex();
        let now = self.clock.now();
        let session = ConsoleSession {
            id: Digest::of(&cookie),
            credential: Digest::from_bytes(&Digest::bytes_of(secret)),
            actor: caller.actor.clone(),
            csrf: random_secret_hex(),
            created_at: now,
            seen_at: now,
        };
        self.store
            .create_session(&session)
            .await
            .map_err(Refusal::Unavailable)?;
        Ok((cookie, Signed { caller, session }))
    }

    /// The session `cookie` names, if it may still be used; its credential authenticated again
    /// and its last request recorded (at most once a minute).
    pub async fn session(
        &self,
        cookie: &str,
        limits: SessionLimits,
        ip: Option<IpAddr>,
    ) -> Result<Signed, SessionRefusal> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Err(SessionRefusal::Gone);
        }
        let id = Digest::of(cookie);
        let Some(session) = self.store.session(&id).await? else {
            return Err(SessionRefusal::Gone);
        };
        let now = self.clock.now();
        if !session.is_live_at(now, limits) {
            self.store.end_session(&id).await?;
            return Err(SessionRefusal::Gone);
        }
        let mut credential = [0u8; 32];
        if hex::decode_to_slice(session.credential.as_str(), &mut credential).is_err() {
            return Err(SessionRefusal::Gone);
        }
        let caller = match self.authenticate_digest(credential, ip).await {
            Ok(caller) => caller,
            Err(Refusal::Unauthorized) => {
                self.store.end_session(&id).await?;
                return Err(SessionRefusal::Gone);
            }
            Err(Refusal::Unavailable(err)) => return Err(SessionRefusal::Unavailable(err)),
        };
        if session.needs_touch_at(now) {
            self.store.touch_session(&id, now).await?;
        }
        Ok(Signed { caller, session })
    }

    /// Ends the session `cookie` names (sign-out); nothing when there is none.
    pub async fn sign_out(&self, cookie: &str) -> Result<(), StoreError> {
        self.store.end_session(&Digest::of(cookie)).await
    }

    /// Deletes sessions past their lifetime or idle time (run now and then; a request for one
    /// deletes it anyway).
    pub async fn prune_sessions(&self, limits: SessionLimits) -> Result<u64, StoreError> {
        let now = self.clock.now();
        self.store
            .prune_sessions(now - limits.ttl, now - limits.idle)
            .await
    }
}
