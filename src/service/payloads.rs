//! The `data` payloads of each operation, with riavzon's field names and casing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::CachedToken;
use crate::domain::{Metadata, Privilege, UserId};
use crate::envelope::iso_time;
use crate::store::{TokenCounts, TokenRecord};

pub const REVOKED_MSG: &str = "Token invalided successfully";
pub const ROTATED_MSG: &str = "Successfully rotated an api key";
pub const RESTRICTION_UPDATED_MSG: &str = "Restriction updated successfully";
pub const PRIVILEGE_UPDATED_MSG: &str = "Privileges updated successfully";

/// `create` success. The raw key appears here once and nowhere else.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub raw_api_key: String,
    pub raw_public_id: String,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The new token's id (in-process callers; not part of the riavzon response).
    #[serde(skip)]
    pub token_id: u64,
}

/// `verify` success.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedToken {
    pub name: String,
    pub token_id: u64,
    pub user_id: UserId,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time::option")]
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub provided_privilege: Privilege,
    /// Admin-only (SPEC B1): for in-process callers; never serialized, so no end-user or
    /// public verify response can carry it.
    #[serde(skip)]
    pub metadata: Metadata,
}

impl VerifiedToken {
    /// The payload for `token` with the given counts (this use included when it was counted).
    pub fn new(token: &CachedToken, usage_count: u64, last_used: Option<DateTime<Utc>>) -> Self {
        Self {
            name: token.name.to_string(),
            token_id: token.id,
            user_id: token.user_id,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used,
            usage_count,
            provided_privilege: token.privilege,
            metadata: token.metadata.clone(),
        }
    }
}

/// `revoke` success: a bare message when there was nothing to revoke, else the details.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RevokeData {
    NothingToRevoke(&'static str),
    #[serde(rename_all = "camelCase")]
    Revoked {
        msg: &'static str,
        invalided_token_id: u64,
        user_id: UserId,
    },
}

/// `rotate` success.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedToken {
    pub msg: &'static str,
    pub new_raw_token: String,
    #[serde(with = "iso_time::option")]
    pub new_expiry: Option<DateTime<Utc>>,
}

/// `{msg}` acknowledgements of updates.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Message {
    pub msg: &'static str,
}

/// The owner's counts inside a metadata snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotCounts {
    pub total_invalid_tokens: u64,
    pub total_valid_tokens: u64,
    pub total: u64,
}

impl From<TokenCounts> for SnapshotCounts {
    fn from(counts: TokenCounts) -> Self {
        Self {
            total_invalid_tokens: counts.invalid,
            total_valid_tokens: counts.valid,
            total: counts.total(),
        }
    }
}

/// `metadataSnapshot` success.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataSnapshot {
    pub token_meta: VerifiedToken,
    pub counts: SnapshotCounts,
}

/// One row of `listValidTokens`, snake_case as riavzon returns its SQL rows.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TokenListRow {
    pub id: u64,
    pub name: String,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    pub restricted_to_ip_address: Option<Vec<String>>,
    #[serde(with = "iso_time::option")]
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub public_identifier: String,
    pub privilege_type: Privilege,
}

impl From<&TokenRecord> for TokenListRow {
    fn from(record: &TokenRecord) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            restricted_to_ip_address: (!record.ip_restriction.is_unrestricted())
                .then(|| record.ip_restriction.entries()),
            last_used: record.last_used,
            usage_count: record.usage_count,
            public_identifier: record.public_identifier.as_str().to_owned(),
            privilege_type: record.privilege,
        }
    }
}

/// `listValidTokens` success; `tokenList` is left out when empty.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ValidTokenList)]
pub struct TokenList {
    pub total: u64,
    pub total_invalid_tokens: u64,
    pub total_valid_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_list: Option<Vec<TokenListRow>>,
}

/// `totalUserTokensCount` result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserTokenCounts {
    pub user_id: UserId,
    pub total_valid_tokens: u64,
    pub total_invalid_tokens: u64,
    pub total: u64,
}
