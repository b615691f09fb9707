//! A token's lifetime: how long after its creation it expires.

use std::num::NonZeroU64;

use chrono::{DateTime, Duration, Utc};

/// 1 ms … 100 years, so that `now + lifetime` never overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lifetime(NonZeroU64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expires is a lifetime in ms from 1 to {}", Lifetime::MAX_MS)]
pub struct LifetimeError;

impl Lifetime {
    /// Longest lifetime a token may be given (100 years).
    pub const MAX_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

    pub fn from_ms(ms: u64) -> Result<Self, LifetimeError> {
        match NonZeroU64::new(ms) {
            Some(ms) if ms.get() <= Self::MAX_MS => Ok(Self(ms)),
            _ => Err(LifetimeError),
        }
    }

    pub fn as_ms(self) -> u64 {
        self.0.get()
    }

    /// The expiry of a token created at `now`.
    pub fn expiry_from(self, now: DateTime<Utc>) -> DateTime<Utc> {
        // At most 100 years, so in range for any `now` before year 262000.
        let ms = i64::try_from(self.as_ms()).unwrap_or(i64::MAX);
        now.checked_add_signed(Duration::milliseconds(ms))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl TryFrom<u64> for Lifetime {
    type Error = LifetimeError;
    fn try_from(ms: u64) -> Result<Self, LifetimeError> {
        Self::from_ms(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_one_ms_and_a_hundred_years() {
        assert_eq!(Lifetime::from_ms(0), Err(LifetimeError));
        assert_eq!(Lifetime::from_ms(1).map(Lifetime::as_ms), Ok(1));
        assert!(Lifetime::from_ms(Lifetime::MAX_MS).is_ok());
        assert_eq!(Lifetime::from_ms(Lifetime::MAX_MS + 1), Err(LifetimeError));
        assert_eq!(Lifetime::from_ms(u64::MAX), Err(LifetimeError));
        assert_eq!(
            LifetimeError.to_string(),
            "expires is a lifetime in ms from 1 to 3153600000000"
        );
    }

    #[test]
    fn expiry_is_now_plus_the_lifetime() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let hour = Lifetime::from_ms(3_600_000).unwrap();
        assert_eq!(hour.expiry_from(now), now + Duration::hours(1));
    }
}
