//! The events we send and the patterns an endpoint subscribes with (`token.*`, `*`).

use crate::domain::record::AuditKind;

/// Every event type (SPEC B12). `webhook.test` is only sent by a test send, to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    TokenCreated,
    TokenUpdated,
    TokenRotated,
    TokenRevoked,
    TokenDisabled,
    TokenEnabled,
    TokenExpiringSoon,
    TokenExpired,
    CreditsLow,
    CreditsExhausted,
    RateLimitExceeded,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    EndpointDisabled,
    Test,
}

impl EventType {
    pub const ALL: [Self; 16] = [
        Self::TokenCreated,
        Self::TokenUpdated,
        Self::TokenRotated,
        Self::TokenRevoked,
        Self::TokenDisabled,
        Self::TokenEnabled,
        Self::TokenExpiringSoon,
        Self::TokenExpired,
        Self::CreditsLow,
        Self::CreditsExhausted,
        Self::RateLimitExceeded,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::EndpointDisabled,
        Self::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenCreated => "token.created",
            Self::TokenUpdated => "token.updated",
            Self::TokenRotated => "token.rotated",
            Self::TokenRevoked => "token.revoked",
            Self::TokenDisabled => "token.disabled",
            Self::TokenEnabled => "token.enabled",
            Self::TokenExpiringSoon => "token.expiring_soon",
            Self::TokenExpired => "token.expired",
            Self::CreditsLow => "credits.low",
            Self::CreditsExhausted => "credits.exhausted",
            Self::RateLimitExceeded => "ratelimit.exceeded",
            Self::RoleCreated => "role.created",
            Self::RoleUpdated => "role.updated",
            Self::RoleDeleted => "role.deleted",
            Self::EndpointDisabled => "webhook.endpoint.disabled",
            Self::Test => "webhook.test",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The event an audit row of this kind is (the one mapping: the outbox row is written
    /// beside the audit row). Changes of quotas, bans and admin credentials send none.
    pub fn of_audit(kind: AuditKind) -> Option<Self> {
        Some(match kind {
            AuditKind::Created => Self::TokenCreated,
            AuditKind::Revoked => Self::TokenRevoked,
            AuditKind::Rotated => Self::TokenRotated,
            AuditKind::Expired => Self::TokenExpired,
            AuditKind::IpRestrictionUpdated
            | AuditKind::PrivilegeUpdated
            | AuditKind::MetadataUpdated
            | AuditKind::AccessUpdated => Self::TokenUpdated,
            AuditKind::Disabled => Self::TokenDisabled,
            AuditKind::Enabled => Self::TokenEnabled,
            AuditKind::RoleCreated => Self::RoleCreated,
            AuditKind::RoleUpdated => Self::RoleUpdated,
            AuditKind::RoleDeleted => Self::RoleDeleted,
            AuditKind::WebhookDisabled => Self::EndpointDisabled,
            AuditKind::Banned
            | AuditKind::BanLifted
            | AuditKind::RateLimitsUpdated
            | AuditKind::CreditsUpdated
            | AuditKind::CredentialCreated
            | AuditKind::CredentialUpdated
            | AuditKind::CredentialRevoked
            | AuditKind::WebhookCreated
            | AuditKind::WebhookUpdated
            | AuditKind::WebhookDeleted
            | AuditKind::WebhookSecretRotated => return None,
        })
    }
}

/// The dedupe key of a token's `token.expired`: the sweep and the verification that finds the
/// token expired write one event between them.
pub fn expired_key(token: u64) -> String {
    format!("{}:{token}", EventType::TokenExpired.as_str())
}

/// At most this many patterns per endpoint.
pub const MAX_PATTERNS: usize = 32;

/// What an endpoint subscribes to: event types, `prefix.*` (every type under a prefix) or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventFilterError {
    #[error("events is a non-empty list of at most {MAX_PATTERNS} event types or patterns")]
    Count,
    #[error("{0:?} is not an event type or a pattern of one (token.created, token.*, *)")]
    Unknown(String),
}

impl EventFilter {
    /// Every pattern must name a type of the catalogue or a prefix of some (`webhook.test` is
    /// not subscribed to: a test send goes to its endpoint whatever it filters).
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, EventFilterError> {
        if patterns.is_empty() || patterns.len() > MAX_PATTERNS {
            return Err(EventFilterError::Count);
        }
        let mut kept: Vec<String> = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let known = EventType::ALL
                .into_iter()
                .filter(|kind| *kind != EventType::Test)
                .any(|kind| matches(pattern, kind.as_str()));
            if !known {
                return Err(EventFilterError::Unknown(pattern.to_owned()));
            }
            if !kept.iter().any(|p| p == pattern) {
                kept.push(pattern.to_owned());
            }
        }
        Ok(Self(kept))
    }

    /// A stored filter (as written by `parse`); `None` when it no longer parses.
    pub fn from_stored(json: &str) -> Option<Self> {
        let patterns: Vec<String> = serde_json::from_str(json).ok()?;
        Self::parse(&patterns).ok()
    }

    pub fn to_stored(&self) -> String {
        serde_json::Value::from(self.0.clone()).to_string()
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    pub fn admits(&self, kind: EventType) -> bool {
        self.0.iter().any(|pattern| matches(pattern, kind.as_str()))
    }
}

/// `*`, `prefix.*` or the type itself.
fn matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => kind.starts_with(prefix),
        Some(_) => false,
        None => pattern == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_types_prefixes_and_everything() {
        let filter = EventFilter::parse(&["token.*", "credits.low"]).unwrap();
        assert!(filter.admits(EventType::TokenExpiringSoon));
        assert!(filter.admits(EventType::CreditsLow));
        assert!(!filter.admits(EventType::CreditsExhausted));
        assert!(EventFilter::parse(&["*"])
            .unwrap()
            .admits(EventType::RoleDeleted));
        assert!(EventFilter::parse(&["webhook.*"])
            .unwrap()
            .admits(EventType::EndpointDisabled));
    }

    #[test]
    fn unknown_types_and_shapes_are_refused() {
        for bad in [
            "token.nope",
            "tok*",
            "token",
            "",
            "nope.*",
            "webhook.test",
            "*.created",
        ] {
            assert_eq!(
                EventFilter::parse(&[bad]),
                Err(EventFilterError::Unknown(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            EventFilter::parse::<&str>(&[]),
            Err(EventFilterError::Count)
        );
    }

    #[test]
    fn every_type_has_one_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
    }
}
