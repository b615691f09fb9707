//! Rows of `api_tokens` as domain values: a row that does not fit is an error, never a panic.

use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::prelude::FromValue;
use mysql_async::{params, Params, Row};

use crate::domain::{Digest, IpRestriction, Metadata, PublicIdentifier, UserId};
use crate::store::{NewToken, StoreError, TokenRecord};

/// Every column of `api_tokens`, in the order `record_from_row` reads them.
macro_rules! select_tokens {
    ($($rest:literal),*) => {
        concat!(
            "SELECT id, user_id, api_token, public_identifier, prefix, name, created_at, ",
            "expires_at, restricted_to_ip_address, last_used, privilege_type, usage_count, valid, ",
            "metadata FROM api_tokens ", $($rest),*
        )
    };
}
pub(super) use select_tokens;

pub(super) fn take<T: FromValue>(row: &mut Row, index: usize) -> Result<T, StoreError> {
    row.take_opt(index)
        .ok_or_else(|| StoreError::CorruptRow(format!("column {index} missing")))?
        .map_err(|_| StoreError::CorruptRow(format!("column {index} has an unexpected type")))
}

pub(super) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Reads a row selected by `select_tokens!`.
pub(super) fn record_from_row(mut row: Row) -> Result<TokenRecord, StoreError> {
    let corrupt = |column: &str| StoreError::CorruptRow(column.to_owned());
    let digest: String = take(&mut row, 2)?;
    let ips: Option<String> = take(&mut row, 8)?;
    let privilege: String = take(&mut row, 10)?;
    let metadata: Option<String> = take(&mut row, 13)?;
    let ip_restriction = IpRestriction::from_stored(ips.as_deref())
        .ok_or_else(|| corrupt("restricted_to_ip_address"))?;
    let metadata = Metadata::from_stored(metadata.as_deref()).ok_or_else(|| corrupt("metadata"))?;
    Ok(TokenRecord {
        id: take(&mut row, 0)?,
        user_id: UserId::new(take(&mut row, 1)?).map_err(|_| corrupt("user_id"))?,
        digest: Digest::parse(&digest).ok_or_else(|| corrupt("api_token"))?,
        public_identifier: PublicIdentifier::from_stored(take(&mut row, 3)?),
        prefix: take(&mut row, 4)?,
        name: take(&mut row, 5)?,
        created_at: utc(take(&mut row, 6)?),
        expires_at: take::<Option<NaiveDateTime>>(&mut row, 7)?.map(utc),
        ip_restriction,
        last_used: take::<Option<NaiveDateTime>>(&mut row, 9)?.map(utc),
        privilege: privilege.parse().map_err(|_| corrupt("privilege_type"))?,
        usage_count: take(&mut row, 11)?,
        valid: take::<i64>(&mut row, 12)? == 1,
        metadata,
        access: Default::default(),
        quota: Default::default(),
        owner_quota: Default::default(),
    })
}

pub(super) fn insert_params(new: &NewToken) -> Params {
    params! {
        "user_id" => new.user_id.get(),
        "digest" => new.token.digest.as_str(),
        "public_identifier" => new.token.public_identifier.as_str(),
        "prefix" => new.token.prefix.as_str(),
        "name" => new.token.name.as_str(),
        "created_at" => new.token.created_at.naive_utc(),
        "expires_at" => new.token.expires_at.map(|t| t.naive_utc()),
        "ips" => new.token.ip_restriction.to_stored(),
        "privilege" => new.token.privilege.as_str(),
        "metadata" => new.metadata.to_stored(),
    }
}
