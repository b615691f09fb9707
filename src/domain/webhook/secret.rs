//! An endpoint's signing secret: `whsec_` and 24 random bytes in base64, as Standard Webhooks
//! libraries read it. Shown once; its `Debug` is redacted.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "whsec_";
const BYTES: usize = 24;

#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored webhook secret is not whsec_ and base64")]
pub struct SecretError;

impl EndpointSecret {
    /// A new secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A stored secret, checked to be one.
    pub fn from_stored(text: String) -> Result<Self, SecretError> {
        let secret = Self(text);
        secret.key().map(|_| secret)
    }

    /// The text to store and to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the bytes after `whsec_`.
    pub fn key(&self) -> Result<Vec<u8>, SecretError> {
        let encoded = self.0.strip_prefix(PREFIX).ok_or(SecretError)?;
        STANDARD.decode(encoded).map_err(|_| SecretError)
    }
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(whsec_…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_whsec_and_24_bytes_and_never_debug_printed() {
        let secret = EndpointSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().unwrap().len(), 24);
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
        assert_eq!(EndpointSecret::from_stored("nope".into()), Err(SecretError));
    }
}
