//! The owner of a token (SPEC B3): an integer 1 … 2^63−1, the same on every store and at every
//! edge (JWT `sub`, admin bodies and paths, CLI flags, the library). Both stores hold it in a
//! signed or unsigned 64-bit column without clamping: the domain fits either.

use std::num::NonZeroU64;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A valid owner id. Two different values are two different owners everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(NonZeroU64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("user id must be an integer from 1 to 9223372036854775807")]
pub struct UserIdError;

impl UserId {
    /// 2^63−1, the largest id every store holds as it is.
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new(id: u64) -> Result<Self, UserIdError> {
        match NonZeroU64::new(id) {
            Some(id) if id.get() <= Self::MAX => Ok(Self(id)),
            _ => Err(UserIdError),
        }
    }

    /// From a signed column or value; negative ids are not ids.
    pub fn from_i64(id: i64) -> Result<Self, UserIdError> {
        u64::try_from(id)
            .map_err(|_| UserIdError)
            .and_then(Self::new)
    }

    /// Decimal digits only (leading zeros allowed: `"05150"` is 5150), no sign, no space.
    pub fn parse(text: &str) -> Result<Self, UserIdError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UserIdError);
        }
        text.parse::<u64>()
            .map_err(|_| UserIdError)
            .and_then(Self::new)
    }

    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The id as a signed 64-bit value: exact, since the domain ends at `i64::MAX`.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0.get()).unwrap_or(i64::MAX)
    }
}

impl TryFrom<u64> for UserId {
    type Error = UserIdError;

    fn try_from(id: u64) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl std::str::FromStr for UserId {
    type Err = UserIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<UserId> for u64 {
    fn from(id: UserId) -> Self {
        id.get()
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

/// A JSON number in the domain; anything else (0, negative, fractional, larger, a string) is
/// refused with the rule.
impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = u64::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("user id must be an integer from 1 to 9223372036854775807")
        })?;
        Self::new(id).map_err(serde::de::Error::custom)
    }
}

/// An integer from 1 to 2^63−1 in the OpenAPI document.
impl utoipa::PartialSchema for UserId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(Self::MAX))
            .description(Some("An owner: an integer from 1 to 2^63-1 (SPEC B3)."))
            .into()
    }
}

impl utoipa::ToSchema for UserId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_one_to_two_to_the_63_minus_one() {
        assert!(UserId::new(0).is_err());
        assert_eq!(UserId::new(1).map(UserId::get), Ok(1));
        assert_eq!(UserId::new(UserId::MAX).map(UserId::as_i64), Ok(i64::MAX));
        assert!(UserId::new(UserId::MAX + 1).is_err());
        assert!(UserId::new(u64::MAX).is_err());
        assert!(UserId::from_i64(-1).is_err());
        assert_eq!(UserId::from_i64(5).map(UserId::get), Ok(5));
    }

    #[test]
    fn text_is_decimal_digits_only() {
        assert_eq!(UserId::parse("05150").map(UserId::get), Ok(5150));
        assert_eq!(
            UserId::parse("9223372036854775807").map(UserId::get),
            Ok(UserId::MAX)
        );
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "1e3",
            "9223372036854775808",
            "18446744073709551616",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_takes_numbers_in_the_domain_only() {
        let parse = |json: &str| serde_json::from_str::<UserId>(json).map(UserId::get).ok();
        assert_eq!(parse("42"), Some(42));
        for bad in ["0", "-3", "1.5", "9223372036854775808", "\"42\"", "null"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
