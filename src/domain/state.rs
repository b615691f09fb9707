//! Whether a token may verify (SPEC B10): a token and its owner can each be disabled, with who
//! did it and why; the two flags are independent, and a token verifies only while both are
//! enabled. Disabling is not revoking: the token stays valid (riavzon's meaning) and enabling
//! restores it exactly.

use chrono::{DateTime, Utc};

use super::Actor;

/// Who disabled a token or an owner, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub by: Actor,
    pub reason: Option<StateReason>,
}

/// The state of a token as read with it: its own flag and its owner's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenState {
    pub token: Option<Disabled>,
    pub owner: Option<Disabled>,
}

impl TokenState {
    /// Neither the token nor its owner is disabled.
    pub fn enabled(&self) -> bool {
        self.token.is_none() && self.owner.is_none()
    }
}

/// Why a state changed: 1–200 characters, not only spaces, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReason(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a reason is 1 to 200 characters, not only spaces, without control characters")]
pub struct StateReasonError;

impl StateReason {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(text: &str) -> Result<Self, StateReasonError> {
        let chars = text.chars().count();
        if chars == 0
            || chars > Self::MAX_CHARS
            || text.trim().is_empty()
            || text.chars().any(char::is_control)
        {
            return Err(StateReasonError);
        }
        Ok(Self(text.to_owned()))
    }

    /// As stored (a row is read back as written; the rule was checked when it was written).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_state_needs_both_flags_enabled() {
        assert!(StateReason::parse("chargeback on invoice 42").is_ok());
        for bad in ["", "  ", "a\u{7}b", &"x".repeat(201)] {
            assert!(StateReason::parse(bad).is_err(), "{bad:?}");
        }
        let off = Disabled {
            at: DateTime::<Utc>::UNIX_EPOCH,
            by: Actor::cli(None),
            reason: None,
        };
        assert!(TokenState::default().enabled());
        let token_off = TokenState {
            token: Some(off.clone()),
            owner: None,
        };
        let owner_off = TokenState {
            token: None,
            owner: Some(off),
        };
        assert!(!token_off.enabled() && !owner_off.enabled());
    }
}
