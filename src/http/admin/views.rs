//! JSON shapes of the admin API (camelCase; never the digest).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Metadata, Privilege, UserId};
use crate::envelope::iso_time;
use crate::service::CachedToken;
use crate::store::{AuditEvent, BanRecord, TokenRecord};

/// A token as operators see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: u64,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub public_identifier: String,
    pub privilege: Privilege,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time::option")]
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    /// Not revoked, not rotated away and not expired at the time of the answer.
    pub valid: bool,
    pub ip_restriction: Option<Vec<String>>,
    pub metadata: Metadata,
}

impl TokenView {
    pub fn new(record: TokenRecord, now: DateTime<Utc>) -> Self {
        Self {
            valid: record.valid && !record.is_expired_at(now),
            id: record.id,
            user_id: record.user_id,
            name: record.name,
            prefix: record.prefix,
            public_identifier: record.public_identifier.as_str().to_owned(),
            privilege: record.privilege,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used: record.last_used,
            usage_count: record.usage_count,
            ip_restriction: (!record.ip_restriction.is_unrestricted())
                .then(|| record.ip_restriction.entries()),
            metadata: record.metadata,
        }
    }
}

/// A token as verification saw it (what the cache holds).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedView {
    pub id: u64,
    pub user_id: UserId,
    pub name: String,
    pub privilege: Privilege,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time::option")]
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub ip_restriction: Option<Vec<String>>,
    pub metadata: Metadata,
}

impl VerifiedView {
    pub fn new(token: &CachedToken) -> Self {
        Self {
            id: token.id,
            user_id: token.user_id,
            name: token.name.to_string(),
            privilege: token.privilege,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used: token.last_used,
            usage_count: token.usage_count,
            ip_restriction: (!token.ip_restriction.is_unrestricted())
                .then(|| token.ip_restriction.entries()),
            metadata: token.metadata.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: u64,
    pub event: String,
    pub actor: String,
    pub detail: serde_json::Value,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
}

impl From<AuditEvent> for EventView {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: event.id,
            event: event.event,
            actor: event.actor,
            detail: event.detail,
            created_at: event.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BanView {
    pub limiter: String,
    pub key: String,
    pub reason: String,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
}

impl From<BanRecord> for BanView {
    fn from(ban: BanRecord) -> Self {
        Self {
            limiter: ban.limiter,
            key: ban.key,
            reason: ban.reason,
            created_at: ban.created_at,
        }
    }
}
