//! `Results<T>`: the `{ok, date, data | reason}` envelope every operation and route returns,
//! and `Reason`, the closed set of riavzon failure strings.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
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
    /// The token or its owner is disabled (SPEC B10).
    TokenDisabled,
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
    /// The key is valid but does not satisfy the verification's permission query (SPEC B4).
    InsufficientPermissions,
    /// Valid, but one of the token's or its owner's rate limits is used up (SPEC B5).
    RateLimitExceeded,
    /// Valid, but the token or its owner has no credits left (SPEC B5).
    UsageExceeded,
    /// The `permissions` query could not be parsed: what was expected, and where.
    InvalidPermissionsQuery(String),
    /// An analytics tag (`tag.<key>=`) was refused: which, and why (SPEC B11).
    InvalidTag(String),
    /// A failure of the HMAC service guard, with its plain explanation.
    Guard(&'static str),
}

/// How the text of `InvalidPermissionsQuery` starts (the rest names the offset and the rule).
pub const INVALID_PERMISSIONS_QUERY: &str = "Invalid permissions query: ";

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
            Self::TokenDisabled => Borrowed("Token disabled"),
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
            Self::InsufficientPermissions => Borrowed("Insufficient permissions"),
            Self::RateLimitExceeded => Borrowed("Rate limit exceeded"),
            Self::UsageExceeded => Borrowed("Usage exceeded"),
            Self::InvalidPermissionsQuery(why) => {
                format!("{INVALID_PERMISSIONS_QUERY}{why}").into()
            }
            Self::InvalidTag(why) => format!("Invalid tag: {why}").into(),
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
    match iso_bytes(t) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => t.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// `iso` into a stack buffer; `None` outside the years 0000–9999 (and for leap seconds).
/// Hand-rolled from chrono's field accessors: this runs twice per verification response.
fn iso_bytes(t: &DateTime<Utc>) -> Option<[u8; 24]> {
    let (date, time) = (t.date_naive(), t.time());
    let year = usize::try_from(date.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let millis = (nanos / 1_000_000) as usize;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    put_two_digits(&mut out, 0, year / 100);
    put_two_digits(&mut out, 2, year % 100);
    put_two_digits(&mut out, 5, date.month() as usize);
    put_two_digits(&mut out, 8, date.day() as usize);
    put_two_digits(&mut out, 11, time.hour() as usize);
    put_two_digits(&mut out, 14, time.minute() as usize);
    put_two_digits(&mut out, 17, time.second() as usize);
    out[20] = b'0' + (millis / 100) as u8;
    put_two_digits(&mut out, 21, millis % 100);
    Some(out)
}

/// Writes `value` (0–99) as two digits at `at`.
fn put_two_digits(out: &mut [u8; 24], at: usize, value: usize) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    out[at..at + 2].copy_from_slice(&PAIRS[value * 2..value * 2 + 2]);
}

/// Hands `iso(t)` to `write`, from a stack buffer unless the year is outside 0000–9999.
pub(crate) fn with_iso<R>(t: &DateTime<Utc>, write: impl FnOnce(&str) -> R) -> R {
    match iso_bytes(t) {
        Some(bytes) => write(std::str::from_utf8(&bytes).unwrap_or_default()),
        None => write(&iso(t)),
    }
}

/// Serializes a timestamp without allocating.
fn serialize_iso<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    with_iso(t, |text| s.serialize_str(text))
}

/// A timestamp that serializes as `iso`.
struct Iso<'a>(&'a DateTime<Utc>);

impl Serialize for Iso<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_iso(self.0, s)
    }
}

/// serde helpers for timestamps inside payloads.
pub mod iso_time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        serialize_iso(t, s)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => serialize_iso(t, s),
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
        map.serialize_entry("date", &Iso(&self.date))?;
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
        let samples = [
            0_i64,
            1,
            999,
            86_399_999,
            951_782_400_000, // 2000-02-29
            1_777_629_600_123,
            4_107_542_399_999, // 2100-02-28T23:59:59.999
            253_402_300_799_999,
            -62_167_219_200_000,
            -1,
        ];
        // Plus a sweep over the whole range, every ~92 days at an odd millisecond.
        let sweep = (-62_167_219_200_000..=253_402_300_799_999).step_by(7_919_000_003);
        for millis in samples.into_iter().chain(sweep) {
            let t = DateTime::from_timestamp_millis(millis).unwrap();
            assert_eq!(
                iso(&t),
                t.to_rfc3339_opts(SecondsFormat::Millis, true),
                "{millis}"
            );
        }
    }

    #[test]
    fn a_leap_second_takes_chronos_general_path() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .unwrap()
            .and_utc();
        assert_eq!(
            iso(&leap),
            leap.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
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
