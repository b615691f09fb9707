//! MySQL: statements on `api_tokens` (and the owner lock).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{params, Value};

use super::rows::{insert_params, select_tokens};
use super::tx::{on, MySqlTx};
use super::{server_code, ER_DUP_ENTRY};
use crate::domain::{Digest, IpRestriction, Metadata, Privilege, UserId};
use crate::store::backend::{Lock, TokenSql};
use crate::store::{NewToken, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStatus};

const BY_DIGEST: &str = select_tokens!("WHERE api_token = :digest");
const BY_DIGEST_FOR_UPDATE: &str = select_tokens!("WHERE api_token = :digest FOR UPDATE");
const BY_ID: &str = select_tokens!("WHERE id = :id");
const BY_ID_FOR_UPDATE: &str = select_tokens!("WHERE id = :id FOR UPDATE");
const VALID_OF_OWNER: &str = select_tokens!("WHERE id = :id AND user_id = :user_id AND valid = 1");
const EXPIRED_VALID: &str = "SELECT id FROM api_tokens \
    WHERE user_id = :user_id AND valid = 1 AND expires_at <= :now";
const COUNT_VALID: &str = "SELECT COUNT(*) FROM api_tokens WHERE user_id = :user_id AND valid = 1";
const COUNTS: &str = "SELECT \
    COALESCE(SUM(valid = 1 AND (expires_at IS NULL OR expires_at > :now)), 0), COUNT(*) \
    FROM api_tokens WHERE user_id = :user_id";
const LIST_VALID: &str = select_tokens!(
    "WHERE user_id = :user_id AND valid = 1 AND (expires_at IS NULL OR expires_at > :now) ",
    "ORDER BY id DESC"
);
const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";
const LOCK_OWNER: &str = "INSERT INTO api_token_owners (user_id) VALUES (:user_id) \
    ON DUPLICATE KEY UPDATE user_id = user_id";
const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
    (user_id, api_token, public_identifier, prefix, name, created_at, expires_at, \
     restricted_to_ip_address, privilege_type, metadata) \
    VALUES (:user_id, :digest, :public_identifier, :prefix, :name, :created_at, :expires_at, \
     :ips, :privilege, :metadata)";
const INVALIDATE: &str = "UPDATE api_tokens SET valid = 0 WHERE id = :id AND valid = 1";
const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = :id";
const SET_IPS: &str = "UPDATE api_tokens SET restricted_to_ip_address = :ips WHERE id = :id";
const SET_PRIVILEGE: &str = "UPDATE api_tokens SET privilege_type = :privilege WHERE id = :id";
const SET_METADATA: &str = "UPDATE api_tokens SET metadata = :metadata WHERE id = :id";

#[async_trait]
impl TokenSql for MySqlTx {
    async fn token_by_digest(
        &mut self,
        digest: &Digest,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = match lock {
            Lock::No => BY_DIGEST,
            Lock::ForUpdate => BY_DIGEST_FOR_UPDATE,
        };
        self.record(sql, params! { "digest" => digest.as_str() })
            .await
    }

    async fn token_by_id(
        &mut self,
        id: u64,
        lock: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = match lock {
            Lock::No => BY_ID,
            Lock::ForUpdate => BY_ID_FOR_UPDATE,
        };
        self.record(sql, params! { "id" => id }).await
    }

    async fn valid_token_of(
        &mut self,
        user_id: UserId,
        id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let params = params! { "id" => id, "user_id" => user_id.get() };
        self.record(VALID_OF_OWNER, params).await
    }

    async fn expired_valid_ids(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let params = params! { "user_id" => user_id.get(), "now" => now.naive_utc() };
        Ok(on!(self, |q| q.exec(EXPIRED_VALID, params).await)?)
    }

    async fn count_valid(&mut self, user_id: UserId) -> Result<u64, StoreError> {
        let params = params! { "user_id" => user_id.get() };
        let count: Option<u64> = on!(self, |q| q.exec_first(COUNT_VALID, params).await)?;
        Ok(count.unwrap_or(0))
    }

    async fn counts(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<TokenCounts, StoreError> {
        let params = params! { "user_id" => user_id.get(), "now" => now.naive_utc() };
        let row: Option<(u64, u64)> = on!(self, |q| q.exec_first(COUNTS, params).await)?;
        let (valid, total) = row.unwrap_or((0, 0));
        Ok(TokenCounts {
            valid,
            invalid: total.saturating_sub(valid),
        })
    }

    async fn list_valid(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let params = params! { "user_id" => user_id.get(), "now" => now.naive_utc() };
        self.records(LIST_VALID, params).await
    }

    async fn list_tokens(&mut self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let mut sql = format!("{} WHERE user_id = ?", select_tokens!());
        let mut params: Vec<Value> = vec![query.user_id.get().into()];
        let now = query.now.naive_utc();
        match query.status {
            TokenStatus::All => {}
            TokenStatus::Valid => {
                sql.push_str(&format!(" AND {IS_VALID}"));
                params.push(now.into());
            }
            TokenStatus::Invalid => {
                sql.push_str(&format!(" AND NOT {IS_VALID}"));
                params.push(now.into());
            }
        }
        if let Some((key, value)) = &query.metadata {
            // The key is checked to be [A-Za-z0-9_]{1,40} before it gets here. Compared as
            // bytes: the JSON text's collation would pad trailing spaces.
            sql.push_str(
                " AND CAST(JSON_UNQUOTE(JSON_EXTRACT(metadata, ?)) AS BINARY) = CAST(? AS BINARY)",
            );
            params.push(format!("$.\"{key}\"").into());
            params.push(value.clone().into());
        }
        if let Some(before) = query.before_id {
            sql.push_str(" AND id < ?");
            params.push(before.into());
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        params.push(query.limit.into());
        self.records(&sql, params.into()).await
    }

    async fn lock_owner(&mut self, user_id: UserId) -> Result<(), StoreError> {
        self.change(LOCK_OWNER, params! { "user_id" => user_id.get() })
            .await?;
        Ok(())
    }

    async fn insert_token(&mut self, new: &NewToken) -> Result<Option<u64>, StoreError> {
        let inserted = on!(self, |q| {
            match q.exec_drop(INSERT_TOKEN, insert_params(new)).await {
                Ok(()) => Ok(q.last_insert_id()),
                Err(err) => Err(err),
            }
        });
        match inserted {
            Ok(id) => Ok(Some(id.unwrap_or_default())),
            Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn invalidate(&mut self, id: u64) -> Result<bool, StoreError> {
        Ok(self.change(INVALIDATE, params! { "id" => id }).await? > 0)
    }

    async fn delete_token(&mut self, id: u64) -> Result<(), StoreError> {
        self.change(DELETE_TOKEN, params! { "id" => id }).await?;
        Ok(())
    }

    async fn set_ip_restriction(&mut self, id: u64, ips: &IpRestriction) -> Result<(), StoreError> {
        let params = params! { "id" => id, "ips" => ips.to_stored() };
        self.change(SET_IPS, params).await?;
        Ok(())
    }

    async fn set_privilege(&mut self, id: u64, privilege: Privilege) -> Result<(), StoreError> {
        let params = params! { "id" => id, "privilege" => privilege.as_str() };
        self.change(SET_PRIVILEGE, params).await?;
        Ok(())
    }

    async fn set_metadata(&mut self, id: u64, metadata: &Metadata) -> Result<(), StoreError> {
        let params = params! { "id" => id, "metadata" => metadata.to_stored() };
        self.change(SET_METADATA, params).await?;
        Ok(())
    }
}
