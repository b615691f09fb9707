//! Rows of the embedded store as domain values.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use crate::domain::{Digest, IpRestriction, Metadata, PublicIdentifier, UserId};
use crate::store::{StoreError, TokenRecord};

/// Every column of `api_tokens`, in the order `record_from_row` reads them.
pub const TOKEN_COLUMNS: &str = "id, user_id, api_token, public_identifier, prefix, name, \
    created_at, expires_at, restricted_to_ip_address, last_used, privilege_type, usage_count, \
    valid, metadata";

/// A token id, event id or count as SQLite's signed integer. Ids the store hands out fit; an id
/// past `i64::MAX` names no row, so it becomes -1, which no row has (ids start at 1), never a
/// neighbour's id.
pub fn to_sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(-1)
}

/// A count as SQLite's signed integer, saturating (a count past `i64::MAX` cannot happen).
pub fn to_sql_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

fn corrupt(column: &str) -> StoreError {
    StoreError::CorruptRow(column.to_owned())
}

/// Reads a row selected with `TOKEN_COLUMNS`; a row that does not fit is an error.
pub fn record_from_row(row: &Row<'_>) -> Result<TokenRecord, StoreError> {
    let digest: String = row.get(2)?;
    let ips: Option<String> = row.get(8)?;
    let privilege: String = row.get(10)?;
    let metadata: Option<String> = row.get(13)?;
    let ip_restriction = IpRestriction::from_stored(ips.as_deref())
        .ok_or_else(|| corrupt("restricted_to_ip_address"))?;
    let metadata = Metadata::from_stored(metadata.as_deref()).ok_or_else(|| corrupt("metadata"))?;
    let id: i64 = row.get(0)?;
    let user_id: i64 = row.get(1)?;
    let usage_count: i64 = row.get(11)?;
    Ok(TokenRecord {
        id: u64::try_from(id).map_err(|_| corrupt("id"))?,
        user_id: UserId::from_i64(user_id).map_err(|_| corrupt("user_id"))?,
        digest: Digest::parse(&digest).ok_or_else(|| corrupt("api_token"))?,
        public_identifier: PublicIdentifier::from_stored(row.get(3)?),
        prefix: row.get(4)?,
        name: row.get(5)?,
        created_at: from_ms(row.get(6)?),
        expires_at: row.get::<_, Option<i64>>(7)?.map(from_ms),
        ip_restriction,
        last_used: row.get::<_, Option<i64>>(9)?.map(from_ms),
        privilege: privilege.parse().map_err(|_| corrupt("privilege_type"))?,
        usage_count: u64::try_from(usage_count).map_err(|_| corrupt("usage_count"))?,
        valid: row.get::<_, i64>(12)? == 1,
        metadata,
        access: Default::default(),
        quota: Default::default(),
        owner_quota: Default::default(),
    })
}
