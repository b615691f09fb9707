//! The stored form of a key: lower-case hex SHA-256 of the whole raw key.

use sha2::{Digest as _, Sha256};

/// 64 lower-case hex characters. Knowing it lets a caller act on a token ("internal hash"),
/// so it is treated as a secret in logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    /// SHA-256 of the text, hex encoded.
    pub fn of(raw: &str) -> Self {
        Self(hex::encode(Sha256::digest(raw.as_bytes())))
    }

    /// Accepts exactly 64 hex characters (upper case is folded to lower case).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }

    /// The digest a management call means by `text`: a 64-hex string is taken as the digest
    /// itself ("internal hash"; a raw key always contains `_`, so the two never collide),
    /// anything else is hashed as a raw key. No checksum step: an unknown key simply finds
    /// no row.
    pub fn of_presented(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|| Self::of(text))
    }

    /// The hex form of a SHA-256 output.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(hex::encode(bytes))
    }

    /// SHA-256 of the text as raw bytes: the hot path's cache key, with no hex round trip.
    pub fn bytes_of(raw: &str) -> [u8; 32] {
        Sha256::digest(raw.as_bytes()).into()
    }

    /// The 32 bytes the hex stands for (compact map keys).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        // Cannot fail: the text is 64 hex characters by construction.
        let _ = hex::decode_to_slice(&self.0, &mut bytes);
        bytes
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(<redacted>)")
    }
}
