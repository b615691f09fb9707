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
    String::from_utf8_lossy(&checksum_bytes(random)).into_owned()
}

/// `checksum_of` on the stack (verification runs it on every call).
fn checksum_bytes(random: &str) -> [u8; CHECKSUM_LEN] {
    let hash = Sha256::digest(random.as_bytes());
    let mut hex = [0u8; CHECKSUM_LEN];
    // Cannot fail: 4 bytes are exactly 8 hex characters.
    let _ = hex::encode_to_slice(&hash[..CHECKSUM_LEN / 2], &mut hex);
    hex
}

/// Whether `checksum` is the checksum of `random`, compared in constant time.
pub fn checksum_matches(random: &str, checksum: &str) -> bool {
    bool::from(checksum_bytes(random).ct_eq(checksum.as_bytes()))
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
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    /// The digest of `raw` once its shape and checksum hold: raw bytes, what the verification
    /// cache is keyed by, without copying the secret (the hot path).
    pub fn digest_of_valid(raw: &str) -> Result<[u8; 32], KeyError> {
        Self::check(raw)?;
        Ok(Digest::bytes_of(raw))
    }

    fn check(raw: &str) -> Result<(), KeyError> {
        if raw.len() > MAX_RAW_KEY_LEN || !raw.is_ascii() {
            return Err(KeyError::Malformed);
        }
        // Exactly `<prefix>_<128>_<8>` with a non-empty prefix: two `_` in all, at fixed
        // distances from the end.
        let Some(prefix_len) = raw.len().checked_sub(RANDOM_LEN + CHECKSUM_LEN + 2) else {
            return Err(KeyError::Malformed);
        };
        let bytes = raw.as_bytes();
        let checksum_at = raw.len() - CHECKSUM_LEN;
        if prefix_len == 0
            || bytes[prefix_len] != b'_'
            || bytes[checksum_at - 1] != b'_'
            || bytes.iter().filter(|&&b| b == b'_').count() != 2
        {
            return Err(KeyError::Malformed);
        }
        let (random, checksum) = (&raw[prefix_len + 1..checksum_at - 1], &raw[checksum_at..]);
        if !checksum_matches(random, checksum) {
            return Err(KeyError::BadChecksum);
        }
        Ok(())
    }

    /// The digest stored for this key.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
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
    fn an_extra_separator_anywhere_is_malformed_even_at_the_right_length() {
        let key = GeneratedKey::generate(&Prefix::parse("api").unwrap());
        let text = key.raw.expose();
        let with = |at: usize| {
            let mut bytes = text.as_bytes().to_vec();
            bytes[at] = b'_';
            String::from_utf8(bytes).unwrap()
        };
        let checksum_at = text.len() - CHECKSUM_LEN;
        for bad in [
            with(1),                     // inside the prefix
            with(10),                    // inside the random part
            with(checksum_at - 2),       // the random part's last character
            with(checksum_at + 3),       // inside the checksum
            format!("_{}", &text[3..]),  // no prefix
            text.replacen('_', "__", 1), // an empty part after the prefix
        ] {
            assert_eq!(
                RawKey::parse(&bad).unwrap_err(),
                KeyError::Malformed,
                "{bad:?}"
            );
        }
        assert_eq!(
            RawKey::digest_of_valid(text).unwrap(),
            RawKey::parse(text).unwrap().digest().to_bytes()
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = GeneratedKey::generate(&Prefix::parse("api").unwrap());
        assert_eq!(format!("{:?}", key.raw), "RawKey(<redacted>)");
    }
}
