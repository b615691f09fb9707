//! Stored admin credentials (SPEC B9): the secret's format, checked before any lookup, and the
//! record the store keeps (a digest, never the secret).

use chrono::{DateTime, Utc};

use super::access::scope::ScopeList;
use super::{checksum_matches, checksum_of, random_secret_hex, Actor, Digest};

const PREFIX: &str = "iam_admin_";
const RANDOM_LEN: usize = 64;
const CHECKSUM_LEN: usize = 8;
/// `iam_admin_` + 64 hex + `_` + 8 hex.
pub const SECRET_LEN: usize = PREFIX.len() + RANDOM_LEN + 1 + CHECKSUM_LEN;

/// A stored credential's secret, `iam_admin_<64 hex>_<checksum>`. Secret: no `Display`,
/// redacted `Debug`; shown once, when it is created.
#[derive(Clone)]
pub struct AdminSecret(String);

impl AdminSecret {
    /// A new secret from 32 CSPRNG bytes.
    pub fn generate() -> Self {
        let random = random_secret_hex();
        let checksum = checksum_of(&random);
        Self(format!("{PREFIX}{random}_{checksum}"))
    }

    /// Whether `text` has the shape of a stored credential's secret and its checksum holds
    /// (compared in constant time). No lookup: garbage is refused without touching a store.
    pub fn is_well_formed(text: &str) -> bool {
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return false;
        };
        if text.len() != SECRET_LEN || rest.as_bytes()[RANDOM_LEN] != b'_' {
            return false;
        }
        let (random, checksum) = (&rest[..RANDOM_LEN], &rest[RANDOM_LEN + 1..]);
        let lower_hex = |part: &str| part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        lower_hex(random) && lower_hex(checksum) && checksum_matches(random, checksum)
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
    }

    /// The one place allowed to reveal it: the answer to its creation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminSecret(<redacted>)")
    }
}

/// A credential's name: 1–64 characters, not only spaces, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a credential's name is 1 to 64 characters, not only spaces, without control characters")]
pub struct CredentialNameError;

impl CredentialName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(text: &str) -> Result<Self, CredentialNameError> {
        let chars = text.chars().count();
        if chars == 0
            || chars > Self::MAX_CHARS
            || text.trim().is_empty()
            || text.chars().any(char::is_control)
        {
            return Err(CredentialNameError);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A credential to store.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub digest: Digest,
    pub name: CredentialName,
    pub scopes: ScopeList,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A change of a credential: what is `Some` is replaced (`expires_at: Some(None)` removes the
/// expiry).
#[derive(Debug, Clone, Default)]
pub struct CredentialChange {
    pub name: Option<CredentialName>,
    pub scopes: Option<ScopeList>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

impl CredentialChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.scopes.is_none() && self.expires_at.is_none()
    }
}

/// A stored credential.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub id: u64,
    pub digest: Digest,
    pub name: String,
    pub scopes: ScopeList,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl CredentialRecord {
    /// Whether it authenticates at `now`: not revoked, not expired.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// The actor of the calls it authenticates.
    pub fn actor(&self) -> Actor {
        Actor::credential(self.id, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_well_formed_and_nothing_else_is() {
        let secret = AdminSecret::generate();
        let text = secret.expose();
        assert_eq!(text.len(), SECRET_LEN);
        assert!(AdminSecret::is_well_formed(text));
        assert_eq!(format!("{secret:?}"), "AdminSecret(<redacted>)");
        let mut flipped = text.to_owned().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            "",
            "iam_admin_",
            &text[..SECRET_LEN - 1],
            &format!("{text}0"),
            &text.to_uppercase(),
            &flipped,
            &text.replace("iam_admin_", "iam_admix_"),
        ] {
            assert!(!AdminSecret::is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_are_bounded() {
        assert!(CredentialName::parse("billing job").is_ok());
        assert!(CredentialName::parse(&"é".repeat(64)).is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
            assert!(CredentialName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
