//! SQLite: whole-table statements of `iam-tokens copy`.

use async_trait::async_trait;
use rusqlite::params;

use super::rows::{to_sql_count, to_sql_id};
use super::tx::SqliteTx;
use crate::store::backend::CopySql;
use crate::store::{AuditEvent, RowCounts, StoreError, TokenRecord};

#[async_trait]
impl CopySql for SqliteTx<'_> {
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
        let access = crate::store::access_sql::CLEAR_ALL.iter();
        for statement in access.chain(&crate::store::quota_sql::CLEAR_ALL) {
            self.conn.execute_batch(statement)?;
        }
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
        let (tokens, events, bans, roles): (i64, i64, i64, i64) = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM api_tokens), (SELECT COUNT(*) FROM audit_events), \
             (SELECT COUNT(*) FROM rate_limit_bans), (SELECT COUNT(*) FROM roles)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        Ok(RowCounts {
            tokens: tokens as u64,
            roles: roles as u64,
            events: events as u64,
            bans: bans as u64,
        })
    }
}
