//! Named customer rate limits (SPEC B5): `limit` uses per `duration`, on a token or on its
//! owner, and what one verification costs.

use std::collections::BTreeSet;
use std::sync::Arc;

/// At most this many limits on one token, and on one owner.
pub const MAX_LIMITS: usize = 20;
/// `limit`: 1 … 10^9 uses per window.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// `duration`: 1 s … 30 days, in ms (as `expires` is given).
pub const MIN_DURATION_MS: u64 = 1_000;
pub const MAX_DURATION_MS: u64 = 2_592_000_000;
/// A cost above this is refused: no window can hold more.
pub const MAX_COST: u64 = MAX_LIMIT;

/// 1–64 characters of `A-Z a-z 0-9 _ - . :`, as callers name limits in a verification.
/// Shared, not copied: every answer that reports a limit names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LimitName(Arc<str>);

/// Why a limit (or a set of them) was refused; each names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("name must be 1 to 64 characters of A-Z a-z 0-9 _ - . :")]
    Name,
    #[error("limit must be an integer from 1 to {MAX_LIMIT}")]
    Limit,
    #[error("duration must be an integer of ms from {MIN_DURATION_MS} to {MAX_DURATION_MS}")]
    Duration,
    #[error("at most {MAX_LIMITS} limits")]
    TooMany,
    #[error("the name {0} is given twice")]
    Duplicate(String),
    #[error("cost must be an integer from 0 to {MAX_COST}")]
    Cost,
}

impl LimitName {
    pub fn parse(text: &str) -> Result<Self, LimitError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':');
        if text.is_empty() || text.len() > 64 || !text.bytes().all(allowed) {
            return Err(LimitError::Name);
        }
        Ok(Self(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LimitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One named limit: `limit` uses per `duration_ms`; an auto-applied limit is consumed by every
/// counting verification, the others only when a verification names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub name: LimitName,
    pub limit: u64,
    pub duration_ms: u64,
    pub auto_apply: bool,
}

impl RateLimit {
    pub fn new(
        name: LimitName,
        limit: u64,
        duration_ms: u64,
        auto_apply: bool,
    ) -> Result<Self, LimitError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(LimitError::Limit);
        }
        if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&duration_ms) {
            return Err(LimitError::Duration);
        }
        Ok(Self {
            name,
            limit,
            duration_ms,
            auto_apply,
        })
    }
}

/// The limits of one token or one owner: at most [`MAX_LIMITS`], names distinct, sorted by
/// name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits(Vec<RateLimit>);

impl RateLimits {
    pub fn new(mut limits: Vec<RateLimit>) -> Result<Self, LimitError> {
        if limits.len() > MAX_LIMITS {
            return Err(LimitError::TooMany);
        }
        limits.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = limits.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(LimitError::Duplicate(pair[0].name.to_string()));
        }
        Ok(Self(limits))
    }

    pub fn iter(&self) -> impl Iterator<Item = &RateLimit> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, name: &LimitName) -> Option<&RateLimit> {
        self.0
            .binary_search_by(|limit| limit.name.cmp(name))
            .ok()
            .map(|at| &self.0[at])
    }

    pub fn names(&self) -> BTreeSet<&LimitName> {
        self.0.iter().map(|limit| &limit.name).collect()
    }
}

/// What one verification spends: `0` only checks.
pub fn cost(value: u64) -> Result<u64, LimitError> {
    (value <= MAX_COST).then_some(value).ok_or(LimitError::Cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> LimitName {
        LimitName::parse(text).unwrap()
    }

    #[test]
    fn names_are_short_plain_ascii() {
        for good in ["requests", "api.v1:reads", "a", &"x".repeat(64), "A-Z_09"] {
            assert!(LimitName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", &"x".repeat(65), "with space", "ünï", "a/b", "a\0"] {
            assert_eq!(LimitName::parse(bad), Err(LimitError::Name), "{bad:?}");
        }
    }

    #[test]
    fn limits_and_durations_are_bounded_as_the_spec_says() {
        let limit = |n, d| RateLimit::new(name("r"), n, d, true).map(|l| (l.limit, l.duration_ms));
        assert_eq!(limit(1, 1_000), Ok((1, 1_000)));
        assert_eq!(
            limit(MAX_LIMIT, MAX_DURATION_MS),
            Ok((MAX_LIMIT, MAX_DURATION_MS))
        );
        assert_eq!(limit(0, 1_000), Err(LimitError::Limit));
        assert_eq!(limit(MAX_LIMIT + 1, 1_000), Err(LimitError::Limit));
        assert_eq!(limit(1, 999), Err(LimitError::Duration));
        assert_eq!(limit(1, MAX_DURATION_MS + 1), Err(LimitError::Duration));
        assert_eq!(cost(0), Ok(0));
        assert_eq!(cost(MAX_COST), Ok(MAX_COST));
        assert_eq!(cost(MAX_COST + 1), Err(LimitError::Cost));
    }

    #[test]
    fn a_set_holds_at_most_twenty_distinct_names_sorted() {
        let of = |names: &[&str]| {
            let limits = names
                .iter()
                .map(|n| RateLimit::new(name(n), 10, 60_000, true).unwrap())
                .collect();
            RateLimits::new(limits)
        };
        let set = of(&["b", "a", "c"]).unwrap();
        let sorted: Vec<&str> = set.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(sorted, ["a", "b", "c"]);
        assert_eq!(set.get(&name("b")).map(|l| l.limit), Some(10));
        assert_eq!(set.get(&name("z")), None);
        assert_eq!(of(&["a", "b", "a"]), Err(LimitError::Duplicate("a".into())));
        let twenty: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
        let twenty: Vec<&str> = twenty.iter().map(String::as_str).collect();
        assert_eq!(of(&twenty).map(|s| s.len()), Ok(20));
        let mut twenty_one = twenty.clone();
        twenty_one.push("l20");
        assert_eq!(of(&twenty_one), Err(LimitError::TooMany));
    }
}
