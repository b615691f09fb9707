//! An admin console session (SPEC B14): who signed in, with which credential, since when, and
//! the token its forms carry. The cookie itself is never kept, only its digest.

use chrono::{DateTime, Duration, Utc};

use super::{Actor, Digest};

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 of the cookie's value.
    pub id: Digest,
    /// SHA-256 of the admin secret it was opened with: every request authenticates it again,
    /// so revoking the credential ends the session.
    pub credential: Digest,
    /// Who signed in, as the audit log names them.
    pub actor: Actor,
    /// The CSRF token of its forms (hex).
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    /// Its last request.
    pub seen_at: DateTime<Utc>,
}

/// How long a session lives: `ttl` from its start whatever happens, `idle` from its last
/// request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub ttl: Duration,
    pub idle: Duration,
}

impl ConsoleSession {
    /// Whether it may still be used at `now`.
    pub fn is_live_at(&self, now: DateTime<Utc>, limits: SessionLimits) -> bool {
        now < self.created_at + limits.ttl && now < self.seen_at + limits.idle
    }

    /// Whether its last-seen time is worth writing again at `now` (at most once a minute: the
    /// idle timeout is counted in minutes).
    pub fn needs_touch_at(&self, now: DateTime<Utc>) -> bool {
        now - self.seen_at >= Duration::minutes(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_at_its_ttl_or_after_its_idle_time() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let session = ConsoleSession {
            id: Digest::of("cookie"),
            credential: Digest::of("secret"),
            actor: Actor::config("ops"),
            csrf: "00".repeat(32),
            created_at: start,
            seen_at: start,
        };
        let limits = SessionLimits {
            ttl: Duration::hours(8),
            idle: Duration::minutes(30),
        };
        assert!(session.is_live_at(start + Duration::minutes(29), limits));
        assert!(!session.is_live_at(start + Duration::minutes(30), limits));
        let busy = ConsoleSession {
            seen_at: start + Duration::minutes(479),
            ..session.clone()
        };
        assert!(busy.is_live_at(start + Duration::minutes(479), limits));
        assert!(!busy.is_live_at(start + Duration::hours(8), limits));
        assert!(!session.needs_touch_at(start + Duration::seconds(59)));
        assert!(session.needs_touch_at(start + Duration::seconds(60)));
    }
}
