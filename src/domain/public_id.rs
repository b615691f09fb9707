//! The public identifier `<random>_<checksum>`: not a secret, addresses a token in management calls.

use super::{checksum_matches, checksum_of, random_hex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIdentifier(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublicIdError {
    #[error("public identifier must be exactly 137 characters")]
    WrongLength,
    #[error("public identifier checksum does not match")]
    BadChecksum,
}

impl PublicIdentifier {
    pub const LEN: usize = 137;

    pub fn generate() -> Self {
        let random = random_hex();
        let checksum = checksum_of(&random);
        Self(format!("{random}_{checksum}"))
    }

    /// Length only: what the HTTP schema checks (a wrong length is `Bad Request`).
    pub fn parse_shape(text: &str) -> Result<Self, PublicIdError> {
        if text.chars().count() != Self::LEN {
            return Err(PublicIdError::WrongLength);
        }
        Ok(Self(text.to_owned()))
    }

    /// The checksum step of the private action manager (`Invalid identity` when it fails).
    pub fn checksum_holds(&self) -> bool {
        let Some((random, checksum)) = self.0.split_once('_') else {
            return false;
        };
        random.len() == 128 && checksum.len() == 8 && checksum_matches(random, checksum)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a value read from storage.
    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }
}

impl AsRef<str> for PublicIdentifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identifiers_are_137_chars_with_a_valid_checksum() {
        let id = PublicIdentifier::generate();
        assert_eq!(id.as_str().len(), 137);
        assert!(id.checksum_holds());
        let garbage = PublicIdentifier::parse_shape(&"x".repeat(137)).unwrap();
        assert!(!garbage.checksum_holds());
    }
}
