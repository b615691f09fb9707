//! Rows as domain values.

use chrono::{DateTime, Utc};

use crate::token::{Digest, IpRestriction, Privilege, PublicIdentifier};

/// One row of `api_tokens`.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: u64,
    pub user_id: u64,
    pub digest: Digest,
    pub public_identifier: PublicIdentifier,
    pub prefix: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ip_restriction: IpRestriction,
    pub last_used: Option<DateTime<Utc>>,
    pub privilege: Privilege,
    pub usage_count: u64,
    pub valid: bool,
}

impl TokenRecord {
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A token about to be inserted.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: u64,
    pub digest: Digest,
    pub public_identifier: PublicIdentifier,
    pub prefix: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ip_restriction: IpRestriction,
    pub privilege: Privilege,
}

/// Counts over every row of one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenCounts {
    pub valid: u64,
    pub invalid: u64,
}

impl TokenCounts {
    pub fn total(&self) -> u64 {
        self.valid + self.invalid
    }
}

/// A permanent ban of one key by one limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    pub limiter: String,
    pub key: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Uses of one token to add to its stored count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageDelta {
    pub token_id: u64,
    pub uses: u64,
    pub last_used: DateTime<Utc>,
}
