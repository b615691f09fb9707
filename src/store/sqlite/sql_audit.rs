//! SQLite: the audit log and the bans.

use async_trait::async_trait;
use rusqlite::params;

use super::rows::{from_ms, to_sql_id};
use super::tx::SqliteTx;
use crate::store::backend::AuditSql;
use crate::store::{Audit, AuditEvent, AuditKind, BanRecord, StoreError};

#[async_trait]
impl AuditSql for SqliteTx<'_> {
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
}
