//! `Results<T>`: the `{ok, date, data | reason}` envelope every operation and route returns,
//! and `Reason`, the closed set of riavzon failure strings.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// Every failure an operation can report, each with its exact riavzon text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    TooManyTokens {
        limit: u32,
    },
    ReservedPrefix,
    InvalidKey,
    InvalidHost,
    TokenExpired,
    VerifyServerError,
    RevokeError,
    RotateRevoked,
    RotateNotNow,
    RotateCreateFailed,
    RotateServerError,
    MetadataInvalidToken,
    MetadataError,
    NotFoundOrUnauthorized,
    InternalServerError,
    ListServerError,
    InvalidIdentity,
    BadRequest,
    ManagerServerError,
    NoApiKey,
    NotFound,
    /// A failure of the HMAC service guard, with its plain explanation.
    Guard(&'static str),
}

impl Reason {
    pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow::Borrowed;
        match self {
            Self::TooManyTokens { limit } => {
                format!("You cannot have more then {limit} valid tokens at a time").into()
            }
            Self::ReservedPrefix => {
                Borrowed("\"_\" is a reserved character, please exclude it from your prefixes")
            }
            Self::InvalidKey => Borrowed("Invalid key"),
            Self::InvalidHost => Borrowed("Invalid Host"),
            Self::TokenExpired => Borrowed("Token expired"),
            Self::VerifyServerError => Borrowed("Server error validating token."),
            Self::RevokeError => Borrowed("Error invalidating token"),
            Self::RotateRevoked => Borrowed("Cannot rotate revoked token"),
            Self::RotateNotNow => Borrowed("Token cannot be rotated this time"),
            Self::RotateCreateFailed => Borrowed("Cant create new tokens in this rotation"),
            Self::RotateServerError => Borrowed("Server error rotating a token."),
            Self::MetadataInvalidToken => Borrowed("Cant get metadata about invalid token"),
            Self::MetadataError => Borrowed("Error getting metadata"),
            Self::NotFoundOrUnauthorized => Borrowed("Token not found or unauthorized"),
            Self::InternalServerError => Borrowed("Internal server error"),
            Self::ListServerError => Borrowed("Server error"),
            Self::InvalidIdentity => Borrowed("Invalid identity"),
            Self::BadRequest => Borrowed("Bad Request"),
            Self::ManagerServerError => Borrowed("Server Error"),
            Self::NoApiKey => Borrowed("No api key provided"),
            Self::NotFound => Borrowed("Not found"),
            Self::Guard(text) => Borrowed(text),
        }
    }
}

/// The result of one operation, stamped with the time it was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Results<T> {
    pub date: DateTime<Utc>,
    pub outcome: Result<T, Reason>,
}

impl<T> Results<T> {
    pub fn success(date: DateTime<Utc>, data: T) -> Self {
        Self {
            date,
            outcome: Ok(data),
        }
    }

    pub fn failure(date: DateTime<Utc>, reason: Reason) -> Self {
        Self {
            date,
            outcome: Err(reason),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    pub fn data(&self) -> Option<&T> {
        self.outcome.as_ref().ok()
    }

    pub fn reason(&self) -> Option<&Reason> {
        self.outcome.as_ref().err()
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Results<U> {
        Results {
            date: self.date,
            outcome: self.outcome.map(f),
        }
    }
}

/// ISO-8601 UTC with milliseconds and `Z`, as riavzon's `Date#toISOString()`.
pub fn iso(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    // Hand-rolled: this runs three or four times per verification response.
    let ms = t.timestamp_subsec_millis().min(999);
    let fields = [
        (year as u32, 4),
        (t.month(), 2),
        (t.day(), 2),
        (t.hour(), 2),
        (t.minute(), 2),
        (t.second(), 2),
        (ms, 3),
    ];
    let mut out = String::with_capacity(24);
    for (index, (value, width)) in fields.into_iter().enumerate() {
        out.push_str(["", "-", "-", "T", ":", ":", "."][index]);
        let mut digits = [b'0'; 4];
        let mut rest = value;
        for slot in digits[..width].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend(digits[..width].iter().map(|&d| d as char));
    }
    out.push('Z');
    out
}

/// serde helpers for timestamps inside payloads.
pub mod iso_time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&iso(t))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&iso(t)),
                None => s.serialize_none(),
            }
        }
    }
}

impl<T: Serialize> Serialize for Results<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("ok", &self.outcome.is_ok())?;
        map.serialize_entry("date", &iso(&self.date))?;
        match &self.outcome {
            Ok(data) => map.serialize_entry("data", data)?,
            Err(reason) => map.serialize_entry("reason", &reason.as_str())?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn iso_matches_chrono_to_the_millisecond() {
        for millis in [
            0_i64,
            1,
            999,
            1_777_629_600_123,
            253_402_300_799_999,
            86_399_999,
        ] {
            let t = DateTime::from_timestamp_millis(millis).unwrap();
            assert_eq!(
                iso(&t),
                t.to_rfc3339_opts(SecondsFormat::Millis, true),
                "{millis}"
            );
        }
    }

    #[test]
    fn envelopes_serialize_exactly() {
        let date = Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap();
        let ok = Results::success(date, 7);
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ok":true,"date":"2026-05-01T10:00:00.000Z","data":7}"#
        );
        let failed: Results<()> = Results::failure(date, Reason::TooManyTokens { limit: 20 });
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"ok":false,"date":"2026-05-01T10:00:00.000Z","reason":"You cannot have more then 20 valid tokens at a time"}"#
        );
    }
}
