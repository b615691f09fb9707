//! The rows of the analytics rollups (SPEC B11) and what a read of them asks for: values the
//! analytics room and the store exchange.

use super::analytics::{Code, Granularity, TagSet};

/// Verifications counted in one bucket of one rollup: the row's key and its sums. `token_id`
/// and `user_id` are 0 for a verification that found no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub granularity: Granularity,
    /// The unix second the bucket starts at.
    pub bucket: i64,
    pub token_id: u64,
    pub user_id: u64,
    pub code: Code,
    pub tags: TagSet,
    pub total: u64,
    /// Credits actually deducted by these verifications.
    pub credits: u64,
}

/// What the rows of a read are grouped by, besides bucket and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Every row of a bucket and code together.
    Nothing,
    Token,
    User,
    /// The stored tag set (the analytics room reads one key's value out of it).
    Tags,
}

/// Which rows of one rollup a read sums: `[start, end)` in unix seconds, each filter optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupFilter {
    pub granularity: Granularity,
    pub start: i64,
    pub end: i64,
    /// `Some(0)`: the verifications that found no token.
    pub token_id: Option<u64>,
    pub user_id: Option<u64>,
    /// Empty: every code.
    pub codes: Vec<Code>,
    /// Each `(key, value)` must be in the row's tags.
    pub tags: Vec<(String, String)>,
    /// Only these tokens or users (of the dimension read), when given.
    pub among: Option<Vec<u64>>,
}

/// A sum of rows: one bucket (or the whole range), one group value, one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupSum {
    /// The bucket start; for totals over the range, the range's start.
    pub bucket: i64,
    /// The token or user id (0: none), by the dimension read; 0 for `Nothing` and `Tags`.
    pub id: u64,
    /// The tag set, for `Tags`.
    pub tags: TagSet,
    pub code: Code,
    pub total: u64,
    pub credits: u64,
}
