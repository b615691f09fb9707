//! The SQLite statements: one `Tx` method, one statement. Times are integer milliseconds.
//! Every method runs synchronously on the blocking thread that holds the connection; the
//! `async` is only the shape of the shared interface.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::rows::{from_ms, record_from_row, to_sql_count, to_sql_id, TOKEN_COLUMNS};
use crate::store::backend::{Lock, Tx};
use crate::store::{
    Audit, AuditEvent, AuditKind, BanRecord, NewToken, RowCounts, StoreError, TokenCounts,
    TokenQuery, TokenRecord, TokenStatus, UsageDelta,
};
use crate::token::{Digest, IpRestriction, Metadata, Privilege, UserId};

const IS_VALID: &str = "(valid = 1 AND (expires_at IS NULL OR expires_at > ?))";
const EVENT_COLUMNS: &str = "id, token_id, event, actor, detail, created_at";

/// The connection of one unit of work (inside `BEGIN IMMEDIATE` for a write).
pub(super) struct SqliteTx<'c> {
    pub(super) conn: &'c mut Connection,
}

impl SqliteTx<'_> {
    fn records(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens {filter}");
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(args)?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(record_from_row(row)?);
        }
        Ok(records)
    }

    fn record(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.records(filter, args)?.into_iter().next())
    }

    fn events(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events {filter} ORDER BY id");
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(args)?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(event_from_row(row)?);
        }
        Ok(events)
    }

    fn execute(&self, sql: &str, args: impl rusqlite::Params) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached(sql)?.execute(args)?)
    }
}

fn event_from_row(row: &Row<'_>) -> Result<AuditEvent, StoreError> {
    let detail: String = row.get(4)?;
    Ok(AuditEvent {
        id: row.get::<_, i64>(0)? as u64,
        token_id: row.get::<_, Option<i64>>(1)?.map(|id| id as u64),
        event: row.get(2)?,
        actor: row.get(3)?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
        created_at: from_ms(row.get(5)?),
    })
}

#[async_trait]
impl Tx for SqliteTx<'_> {
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
                new.digest.as_str(),
                new.public_identifier.as_str(),
                new.prefix,
                new.name,
                new.created_at.timestamp_millis(),
                new.expires_at.map(|t| t.timestamp_millis()),
                new.ip_restriction.to_stored(),
                new.privilege.as_str(),
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

    async fn add_usage(&mut self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        for delta in deltas {
            let at = delta.last_used.timestamp_millis();
            self.execute(
                "UPDATE api_tokens SET usage_count = usage_count + ?1, \
                 last_used = MAX(COALESCE(last_used, ?2), ?2) WHERE id = ?3",
                params![to_sql_count(delta.uses), at, to_sql_id(delta.token_id)],
            )?;
        }
        Ok(())
    }

    async fn usage_of(
        &mut self,
        id: u64,
    ) -> Result<Option<(u64, Option<DateTime<Utc>>)>, StoreError> {
        let read: Option<(i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT usage_count, last_used FROM api_tokens WHERE id = ?1",
                [to_sql_id(id)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(read.map(|(count, last)| (count as u64, last.map(from_ms))))
    }

    async fn record_batch(
        &mut self,
        batch_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT OR IGNORE INTO usage_flushes (flush_id, applied_at) VALUES (?1, ?2)";
        Ok(self.execute(sql, params![batch_id, at.timestamp_millis()])? > 0)
    }

    async fn forget_batches_before(&mut self, before: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "DELETE FROM usage_flushes WHERE applied_at < ?1";
        self.execute(sql, [before.timestamp_millis()])?;
        Ok(())
    }

    async fn write_event(
        &mut self,
        token_id: Option<u64>,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                token_id.map(to_sql_id),
                kind.as_str(),
                audit.actor.to_string(),
                detail.to_string(),
                audit.at.timestamp_millis(),
            ],
        )?;
        Ok(())
    }

    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError> {
        match token_id {
            Some(id) => self.events("WHERE token_id = ?1", [to_sql_id(id)]),
            None => self.events("WHERE token_id IS NULL", []),
        }
    }

    async fn insert_ban(&mut self, ban: &BanRecord) -> Result<bool, StoreError> {
        let inserted = self.execute(
            "INSERT OR IGNORE INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![
                ban.limiter,
                ban.key,
                ban.reason,
                ban.created_at.timestamp_millis()
            ],
        )?;
        Ok(inserted > 0)
    }

    async fn list_bans(&mut self) -> Result<Vec<BanRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans \
             ORDER BY created_at, limiter",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(BanRecord {
                limiter: r.get(0)?,
                key: r.get(1)?,
                reason: r.get(2)?,
                created_at: from_ms(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn delete_ban(&mut self, limiter: &str, key: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM rate_limit_bans WHERE limiter = ?1 AND ban_key = ?2";
        Ok(self.execute(sql, params![limiter, key])? > 0)
    }

    async fn all_tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError> {
        self.records("ORDER BY id", [])
    }

    async fn all_events(&mut self) -> Result<Vec<AuditEvent>, StoreError> {
        self.events("", [])
    }

    async fn clear(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch(
            "DELETE FROM audit_events; DELETE FROM api_tokens; \
             DELETE FROM rate_limit_bans; DELETE FROM usage_flushes;",
        )?;
        Ok(())
    }

    async fn insert_token_row(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO api_tokens (id, user_id, api_token, public_identifier, prefix, name, \
             created_at, expires_at, restricted_to_ip_address, last_used, privilege_type, \
             usage_count, valid, metadata) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                to_sql_id(t.id),
                t.user_id.as_i64(),
                t.digest.as_str(),
                t.public_identifier.as_str(),
                t.prefix,
                t.name,
                t.created_at.timestamp_millis(),
                t.expires_at.map(|at| at.timestamp_millis()),
                t.ip_restriction.to_stored(),
                t.last_used.map(|at| at.timestamp_millis()),
                t.privilege.as_str(),
                to_sql_count(t.usage_count),
                i64::from(t.valid),
                t.metadata.to_stored(),
            ],
        )?;
        Ok(())
    }

    async fn insert_event_row(&mut self, e: &AuditEvent) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO audit_events (id, token_id, event, actor, detail, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                to_sql_id(e.id),
                e.token_id.map(to_sql_id),
                e.event,
                e.actor,
                e.detail.to_string(),
                e.created_at.timestamp_millis(),
            ],
        )?;
        Ok(())
    }

    async fn row_counts(&mut self) -> Result<RowCounts, StoreError> {
        let (tokens, events, bans): (i64, i64, i64) = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM api_tokens), (SELECT COUNT(*) FROM audit_events), \
             (SELECT COUNT(*) FROM rate_limit_bans)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(RowCounts {
            tokens: tokens as u64,
            events: events as u64,
            bans: bans as u64,
        })
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.query_row("SELECT 1", [], |_| Ok(()))?)
    }
}
