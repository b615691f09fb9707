//! SQLite: statements on `api_tokens` (and the owner lock).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter};

use super::rows::to_sql_id;
use super::tx::SqliteTx;
use crate::domain::{Digest, IpRestriction, Metadata, Privilege, UserId};
use crate::store::backend::{Lock, TokenSql};
use crate::store::{NewToken, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStatus};

const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";

#[async_trait]
impl TokenSql for SqliteTx<'_> {
    async fn token_by_digest(
        &mut self,
        digest: &Digest,
        _: Lock,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.record("WHERE api_token = ?1", [digest.as_str()])
    }

    async fn token_by_id(&mut self, id: u64, _: Lock) -> Result<Option<TokenRecord>, StoreError> {
        self.record("WHERE id = ?1", [to_sql_id(id)])
    }

    async fn valid_token_of(
        &mut self,
        user_id: UserId,
        id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let filter = "WHERE id = ?1 AND user_id = ?2 AND valid = 1";
        self.record(filter, params![to_sql_id(id), user_id.as_i64()])
    }

    async fn expired_valid_ids(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id FROM api_tokens WHERE user_id = ?1 AND valid = 1 AND expires_at <= ?2",
        )?;
        let ids = statement.query_map(params![user_id.as_i64(), now.timestamp_millis()], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(ids
            .map(|id| id.map(|id| id as u64))
            .collect::<Result<_, _>>()?)
    }

    async fn count_valid(&mut self, user_id: UserId) -> Result<u64, StoreError> {
        let count: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = ?1 AND valid = 1",
            [user_id.as_i64()],
            |row| row.get(0),
        )?;
        Ok(count as u64)
    }

    async fn counts(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<TokenCounts, StoreError> {
        let sql = format!(
            "SELECT COALESCE(SUM({IS_VALID}), 0), COUNT(*) FROM api_tokens WHERE user_id = ?"
        );
        let (valid, total): (i64, i64) = self.conn.query_row(
            &sql,
            params![now.timestamp_millis(), user_id.as_i64()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(TokenCounts {
            valid: valid as u64,
            invalid: (total - valid).max(0) as u64,
        })
    }

    async fn list_valid(
        &mut self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let filter = format!("WHERE user_id = ? AND {IS_VALID} ORDER BY id DESC");
        self.records(&filter, params![user_id.as_i64(), now.timestamp_millis()])
    }

    async fn list_tokens(&mut self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let mut filter = String::from("WHERE user_id = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![query.user_id.as_i64().into()];
        let now = query.now.timestamp_millis();
        match query.status {
            TokenStatus::All => {}
            TokenStatus::Valid => {
                filter.push_str(&format!(" AND {IS_VALID}"));
                args.push(now.into());
            }
            TokenStatus::Invalid => {
                filter.push_str(&format!(" AND NOT {IS_VALID}"));
                args.push(now.into());
            }
        }
        if let Some((key, value)) = &query.metadata {
            // As MySQL's JSON_UNQUOTE: strings bare, numbers as written, true/false/null.
            filter.push_str(
                " AND (CASE json_type(metadata, ?) WHEN 'true' THEN 'true' \
                 WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' \
                 ELSE CAST(json_extract(metadata, ?) AS TEXT) END) = ?",
            );
            let path = format!("$.\"{key}\"");
            args.push(path.clone().into());
            args.push(path.into());
            args.push(value.clone().into());
        }
        if let Some(before) = query.before_id {
            filter.push_str(" AND id < ?");
            args.push(to_sql_id(before).into());
        }
        filter.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(i64::from(query.limit).into());
        self.records(&filter, params_from_iter(args))
    }

    /// `BEGIN IMMEDIATE` already serialises every write transaction.
    async fn lock_owner(&mut self, _: UserId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert_token(&mut self, new: &NewToken) -> Result<Option<u64>, StoreError> {
        let inserted = self.execute(
            "INSERT INTO api_tokens (user_id, api_token, public_identifier, prefix, name, \
             created_at, expires_at, restricted_to_ip_address, privilege_type, metadata) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                new.user_id.as_i64(),
                new.token.digest.as_str(),
                new.token.public_identifier.as_str(),
                new.token.prefix,
                new.token.name,
                new.token.created_at.timestamp_millis(),
                new.token.expires_at.map(|t| t.timestamp_millis()),
                new.token.ip_restriction.to_stored(),
                new.token.privilege.as_str(),
                new.metadata.to_stored(),
            ],
        );
        match inserted {
            Ok(_) => Ok(Some(self.conn.last_insert_rowid() as u64)),
            // Only a UNIQUE violation (digest or public identifier) is a collision; any
            // other failure (a CHECK, a trigger, …) is a store error, as on MySQL.
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(err, _)))
                if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    async fn invalidate(&mut self, id: u64) -> Result<bool, StoreError> {
        let sql = "UPDATE api_tokens SET valid = 0 WHERE id = ?1 AND valid = 1";
        Ok(self.execute(sql, [to_sql_id(id)])? > 0)
    }

    async fn delete_token(&mut self, id: u64) -> Result<(), StoreError> {
        self.execute("DELETE FROM api_tokens WHERE id = ?1", [to_sql_id(id)])?;
        Ok(())
    }

    async fn set_ip_restriction(&mut self, id: u64, ips: &IpRestriction) -> Result<(), StoreError> {
        let sql = "UPDATE api_tokens SET restricted_to_ip_address = ?1 WHERE id = ?2";
        self.execute(sql, params![ips.to_stored(), to_sql_id(id)])?;
        Ok(())
    }

    async fn set_privilege(&mut self, id: u64, privilege: Privilege) -> Result<(), StoreError> {
        let sql = "UPDATE api_tokens SET privilege_type = ?1 WHERE id = ?2";
        self.execute(sql, params![privilege.as_str(), to_sql_id(id)])?;
        Ok(())
    }

    async fn set_metadata(&mut self, id: u64, metadata: &Metadata) -> Result<(), StoreError> {
        let sql = "UPDATE api_tokens SET metadata = ?1 WHERE id = ?2";
        self.execute(sql, params![metadata.to_stored(), to_sql_id(id)])?;
        Ok(())
    }
}
