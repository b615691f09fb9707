//! A token's display name: 1–50 characters, no control characters.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TokenName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to 50 characters without control characters")]
pub struct NameError;

impl TokenName {
    pub const MAX_CHARS: usize = 50;

    /// Counts Unicode scalar values, so `"ü" * 50` is a valid name; rejects control characters
    /// (newlines, NUL, …) that would corrupt logs and UIs.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let chars = text.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || text.chars().any(char::is_control) {
            return Err(NameError);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_counted_in_characters() {
        assert!(TokenName::parse(&"ü".repeat(50)).is_ok());
        assert!(TokenName::parse(&"a".repeat(51)).is_err());
        assert!(TokenName::parse("").is_err());
        assert!(TokenName::parse("a\nb").is_err());
        assert!(TokenName::parse("'; DROP TABLE api_tokens; --").is_ok());
    }
}
