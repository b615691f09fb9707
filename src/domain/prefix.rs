//! The key prefix (`api` in `api_<random>_<checksum>`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The riavzon reason, returned verbatim by `create`.
    #[error("\"_\" is a reserved character, please exclude it from your prefixes")]
    ReservedUnderscore,
    #[error("prefix must be 1 to 32 ASCII letters, digits or '-'")]
    Invalid,
}

impl Prefix {
    pub const MAX_LEN: usize = 32;

    /// `_` separates the key's parts, so it is reserved; otherwise letters, digits and `-`, so
    /// that the key travels unchanged in an HTTP header. The HTTP route narrows this to 2–10.
    pub fn parse(text: &str) -> Result<Self, PrefixError> {
        if text.contains('_') {
            return Err(PrefixError::ReservedUnderscore);
        }
        let ok_char = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.bytes().all(ok_char) {
            return Err(PrefixError::Invalid);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self("api".to_owned())
    }
}
