//! The raw API key `<prefix>_<random>_<checksum>`: generation, parsing and the checksum check.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::{random_hex, Digest, Prefix};

/// Longest raw key we even look at; a real one is at most 10 + 1 + 128 + 1 + 8 characters
/// (longer prefixes are allowed in-process, hence the margin).
const MAX_RAW_KEY_LEN: usize = 512;
const RANDOM_LEN: usize = 128;
const CHECKSUM_LEN: usize = 8;

/// First 8 lower-case hex characters of SHA-256 over the ASCII text of `random`.
pub fn checksum_of(random: &str) -> String {
    let hash = Sha256::digest(random.as_bytes());
    let mut hex = hex::encode(&hash[..CHECKSUM_LEN / 2]);
    hex.truncate(CHECKSUM_LEN);
    hex
}

/// Why a presented key was rejected before any lookup. All of them read `Invalid key` to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not of the form <prefix>_<random>_<checksum>")]
    Malformed,
    #[error("the key's checksum does not match")]
    BadChecksum,
}

/// A presented raw key whose shape and checksum hold. Secret: no `Display`, redacted `Debug`.
#[derive(Clone)]
pub struct RawKey(String);

impl RawKey {
    /// Splits the key into prefix, random part and checksum and checks the checksum in constant
    /// time. Never touches storage, so garbage is rejected in microseconds.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        if raw.len() > MAX_RAW_KEY_LEN || !raw.is_ascii() {
            return Err(KeyError::Malformed);
        }
        let mut parts = raw.split('_');
        let (Some(prefix), Some(random), Some(checksum), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Malformed);
        };
        if prefix.is_empty() || random.len() != RANDOM_LEN || checksum.len() != CHECKSUM_LEN {
            return Err(KeyError::Malformed);
        }
        let expected = checksum_of(random);
        if !bool::from(expected.as_bytes().ct_eq(checksum.as_bytes())) {
            return Err(KeyError::BadChecksum);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The digest stored for this key.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
    }

    /// The digest as raw bytes (what the verification cache is keyed by).
    pub fn digest_bytes(&self) -> [u8; 32] {
        Digest::bytes_of(&self.0)
    }

    /// The raw text, for the one place allowed to reveal it: the creation/rotation response.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RawKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawKey(<redacted>)")
    }
}

/// A freshly generated key together with its digest.
pub struct GeneratedKey {
    pub raw: RawKey,
    pub digest: Digest,
}

impl GeneratedKey {
    /// A new key `<prefix>_<128 hex>_<checksum>` from 64 CSPRNG bytes.
    pub fn generate(prefix: &Prefix) -> Self {
        let random = random_hex();
        let checksum = checksum_of(&random);
        let raw = RawKey(format!("{}_{random}_{checksum}", prefix.as_str()));
        let digest = raw.digest();
        Self { raw, digest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        let key = GeneratedKey::generate(&Prefix::parse("api").unwrap());
        let text = key.raw.expose();
        let parts: Vec<&str> = text.split('_').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "api");
        assert_eq!(parts[1].len(), 128);
        assert!(parts[1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(parts[2], checksum_of(parts[1]));
        assert!(RawKey::parse(text).is_ok());
        assert_eq!(key.digest, RawKey::parse(text).unwrap().digest());
    }

    #[test]
    fn a_flipped_checksum_character_is_rejected() {
        let key = GeneratedKey::generate(&Prefix::parse("api").unwrap());
        let mut text = key.raw.expose().to_owned();
        let last = text.pop().unwrap();
        text.push(if last == '0' { '1' } else { '0' });
        assert_eq!(RawKey::parse(&text).unwrap_err(), KeyError::BadChecksum);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "",
            "api",
            "api_abc",
            "api__",
            "a_b_c_d",
            "_x_y",
            "api_ü_12345678",
        ] {
            assert_eq!(
                RawKey::parse(bad).unwrap_err(),
                KeyError::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = GeneratedKey::generate(&Prefix::parse("api").unwrap());
        assert_eq!(format!("{:?}", key.raw), "RawKey(<redacted>)");
    }
}
