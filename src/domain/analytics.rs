//! Verification analytics (SPEC B11): the codes a verification is counted under, the
//! granularities of the rollups, and bounded tags. Pure values: no clock, no store.

use std::fmt::Write as _;
use std::sync::Arc;

/// What a verification answered: admin verify's `code` (one of `ANSWERED`), and for analytics
/// also `BLOCKED` (refused by an abuse limiter before its key was looked up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Valid,
    NotFound,
    Disabled,
    Expired,
    IpNotAllowed,
    InsufficientPermissions,
    RateLimited,
    UsageExceeded,
    Blocked,
}

impl Code {
    pub const ALL: [Self; 9] = [
        Self::Valid,
        Self::NotFound,
        Self::Disabled,
        Self::Expired,
        Self::IpNotAllowed,
        Self::InsufficientPermissions,
        Self::RateLimited,
        Self::UsageExceeded,
        Self::Blocked,
    ];

    /// The codes a verification that was looked up answers (all but `BLOCKED`).
    pub const ANSWERED: [Self; 8] = [
        Self::Valid,
        Self::NotFound,
        Self::Disabled,
        Self::Expired,
        Self::IpNotAllowed,
        Self::InsufficientPermissions,
        Self::RateLimited,
        Self::UsageExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::NotFound => "NOT_FOUND",
            Self::Disabled => "DISABLED",
            Self::Expired => "EXPIRED",
            Self::IpNotAllowed => "IP_NOT_ALLOWED",
            Self::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            Self::RateLimited => "RATE_LIMITED",
            Self::UsageExceeded => "USAGE_EXCEEDED",
            Self::Blocked => "BLOCKED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// Its number in the rollups (stable: stored rows keep it).
    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }
}

/// The width of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    /// Finest first.
    pub const ALL: [Self; 3] = [Self::Minute, Self::Hour, Self::Day];

    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// The start of the bucket holding `unix` (seconds; buckets are aligned on the epoch, UTC).
    pub fn floor(self, unix: i64) -> i64 {
        unix.div_euclid(self.seconds()) * self.seconds()
    }

    /// The first bucket start at or after `unix`.
    pub fn ceil(self, unix: i64) -> i64 {
        let floor = self.floor(unix);
        match floor == unix {
            true => floor,
            false => floor.saturating_add(self.seconds()),
        }
    }

    /// The next coarser granularity, if any.
    pub fn coarser(self) -> Option<Self> {
        match self {
            Self::Minute => Some(Self::Hour),
            Self::Hour => Some(Self::Day),
            Self::Day => None,
        }
    }
}

/// The value a tag takes past `analytics.max_tag_values` distinct values of its key in a day.
pub const OTHER_TAG_VALUE: &str = "__other__";
/// The longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 64;
/// The most tag keys `analytics.tags` may name, and the longest name.
pub const MAX_TAG_KEYS: usize = 4;
pub const MAX_TAG_KEY_CHARS: usize = 32;

/// Separates the tags of a set in its stored form; no key or value may hold it.
const SEPARATOR: char = '\u{1f}';

/// Why tags were refused. Each names the tag at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("unknown tag key {}: analytics.tags allows {}", .keys.join(", "), .allowed.join(", "))]
    Unknown {
        keys: Vec<String>,
        allowed: Vec<String>,
    },
    #[error("tag {0} is longer than 64 characters")]
    TooLong(String),
    #[error("tag {0} holds a control character")]
    Control(String),
    #[error("tag {0} is given twice")]
    Repeated(String),
}

impl TagError {
    /// The request field at fault: `tag.<key>` (the first, for several unknown keys).
    pub fn field(&self) -> String {
        let key = match self {
            Self::Unknown { keys, .. } => keys.first().map_or("", String::as_str),
            Self::TooLong(key) | Self::Control(key) | Self::Repeated(key) => key,
        };
        format!("tag.{key}")
    }
}

/// Whether `name` may be a tag key in `analytics.tags`: 1–32 of a–z, 0–9 and `_`, starting with
/// a letter.
pub fn is_tag_key(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= MAX_TAG_KEY_CHARS
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// A verification's tags, checked against the allowed keys: at most one value per key, each at
/// most 64 characters and free of control characters. Keys are indexes into the allowed list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags {
    values: Vec<(usize, String)>,
}

impl Tags {
    /// Tags from `(key, value)` pairs; unknown keys are all named in one error.
    pub fn parse<'a>(
        allowed: &[String],
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, TagError> {
        let mut values: Vec<(usize, String)> = Vec::new();
        let mut unknown = Vec::new();
        for (key, value) in pairs {
            let Some(index) = allowed.iter().position(|k| k == key) else {
                unknown.push(key.to_owned());
                continue;
            };
            if values.iter().any(|(i, _)| *i == index) {
                return Err(TagError::Repeated(key.to_owned()));
            }
            if value.chars().count() > MAX_TAG_VALUE_CHARS {
                return Err(TagError::TooLong(key.to_owned()));
            }
            if value.chars().any(char::is_control) {
                return Err(TagError::Control(key.to_owned()));
            }
            values.push((index, value.to_owned()));
        }
        if !unknown.is_empty() {
            return Err(TagError::Unknown {
                keys: unknown,
                allowed: allowed.to_vec(),
            });
        }
        values.sort();
        Ok(Self { values })
    }

    /// Tags a caller fills itself (forward-auth's `route` and `method`, SPEC B13): a key
    /// `allowed` does not name is left out, a value loses its control characters and is cut to
    /// 64 characters. Never an error: the values come from the request being checked.
    pub fn filled<'a>(
        allowed: &[String],
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut values: Vec<(usize, String)> = pairs
            .into_iter()
            .filter_map(|(key, value)| {
                let index = allowed.iter().position(|k| k == key)?;
                let value = value
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_TAG_VALUE_CHARS)
                    .collect();
                Some((index, value))
            })
            .collect();
        values.sort();
        values.dedup_by_key(|(index, _)| *index);
        Self { values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `(key index, value)`, by key index.
    pub fn values(&self) -> &[(usize, String)] {
        &self.values
    }

    /// The same tags with the value of key `index` replaced (past the cardinality bound).
    pub fn replace(&mut self, index: usize, value: &str) {
        if let Some(slot) = self.values.iter_mut().find(|(i, _)| *i == index) {
            slot.1 = value.to_owned();
        }
    }

    /// The stored form: `␟key=value␟key=value␟` with keys by name, `""` for no tags. A tag is
    /// found in it by the substring `␟key=value␟` (keys hold no `=`, values no `␟`).
    pub fn encode(&self, allowed: &[String]) -> TagSet {
        if self.values.is_empty() {
            return TagSet::none();
        }
        let mut pairs: Vec<(&str, &str)> = self
            .values
            .iter()
            .filter_map(|(i, v)| allowed.get(*i).map(|k| (k.as_str(), v.as_str())))
            .collect();
        pairs.sort_unstable();
        let mut text = String::from(SEPARATOR);
        for (key, value) in pairs {
            let _ = write!(text, "{key}={value}{SEPARATOR}");
        }
        TagSet(Some(Arc::from(text)))
    }
}

/// A set of tags in its stored form (see [`Tags::encode`]); cheap to clone and hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagSet(Option<Arc<str>>);

impl TagSet {
    pub fn none() -> Self {
        Self(None)
    }

    /// A stored form read back.
    pub fn from_stored(text: &str) -> Self {
        match text.is_empty() {
            true => Self::none(),
            false => Self(Some(Arc::from(text))),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// The substring that finds `key=value` in a stored form.
    pub fn needle(key: &str, value: &str) -> String {
        format!("{SEPARATOR}{key}={value}{SEPARATOR}")
    }

    /// The value of `key` in this set, if it has one.
    pub fn value_of(&self, key: &str) -> Option<&str> {
        self.as_str()
            .split(SEPARATOR)
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["route".into(), "method".into()]
    }

    #[test]
    fn tags_encode_by_key_name_and_are_found_by_their_needle() {
        let tags = Tags::parse(&allowed(), [("route", "/v1/a=b"), ("method", "GET")]).unwrap();
        let set = tags.encode(&allowed());
        assert_eq!(set.as_str(), "\u{1f}method=GET\u{1f}route=/v1/a=b\u{1f}");
        assert!(set.as_str().contains(&TagSet::needle("route", "/v1/a=b")));
        assert!(!set.as_str().contains(&TagSet::needle("route", "/v1/a")));
        assert_eq!(set.value_of("route"), Some("/v1/a=b"));
        assert_eq!(set.value_of("method"), Some("GET"));
        assert_eq!(set.value_of("missing"), None);
        assert_eq!(Tags::default().encode(&allowed()), TagSet::none());
    }

    #[test]
    fn bad_tags_name_the_tag_at_fault() {
        let long = "x".repeat(65);
        let cases = [
            (vec![("nope", "1"), ("what", "2")], "tag.nope", "unknown"),
            (vec![("route", long.as_str())], "tag.route", "too long"),
            (vec![("route", "a\nb")], "tag.route", "control"),
            (
                vec![("method", "GET"), ("method", "PUT")],
                "tag.method",
                "twice",
            ),
        ];
        for (pairs, field, why) in cases {
            let err = Tags::parse(&allowed(), pairs).unwrap_err();
            assert_eq!(err.field(), field, "{why}");
        }
        let exactly = "é".repeat(64);
        assert!(Tags::parse(&allowed(), [("route", exactly.as_str())]).is_ok());
    }

    #[test]
    fn buckets_align_on_the_epoch() {
        assert_eq!(Granularity::Hour.floor(7_199), 3_600);
        assert_eq!(Granularity::Hour.ceil(3_601), 7_200);
        assert_eq!(Granularity::Hour.ceil(3_600), 3_600);
        assert_eq!(Granularity::Minute.floor(-1), -60);
        assert_eq!(Code::from_index(Code::Blocked.index()), Some(Code::Blocked));
        assert_eq!(Code::parse("IP_NOT_ALLOWED"), Some(Code::IpNotAllowed));
    }
}
