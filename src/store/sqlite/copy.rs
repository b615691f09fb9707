//! Whole-store export and import on SQLite (`iam-tokens copy`).

use async_trait::async_trait;
use rusqlite::params;

use super::rows::{from_ms, record_from_row, to_sql_count, to_sql_id, TOKEN_COLUMNS};
use super::SqliteStore;
use crate::store::{AuditEvent, BanStore, CopyStore, RowCounts, Snapshot, StoreError};

#[async_trait]
impl CopyStore for SqliteStore {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        let (tokens, events) = self
            .run(|conn| {
                let mut statement =
                    conn.prepare(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"))?;
                let mut rows = statement.query([])?;
                let mut tokens = Vec::new();
                while let Some(row) = rows.next()? {
                    tokens.push(record_from_row(row)?);
                }
                let mut statement = conn.prepare(
                    "SELECT id, token_id, event, actor, detail, created_at FROM audit_events ORDER BY id",
                )?;
                let mut rows = statement.query([])?;
                let mut events = Vec::new();
                while let Some(row) = rows.next()? {
                    let detail: String = row.get(4)?;
                    events.push(AuditEvent {
                        id: row.get::<_, i64>(0)? as u64,
                        token_id: row.get::<_, Option<i64>>(1)?.map(|id| id as u64),
                        event: row.get(2)?,
                        actor: row.get(3)?,
                        detail: serde_json::from_str(&detail)
                            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
                        created_at: from_ms(row.get(5)?),
                    });
                }
                Ok((tokens, events))
            })
            .await?;
        let bans = self.list_bans().await?;
        Ok(Snapshot {
            tokens,
            events,
            bans,
        })
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let snapshot = snapshot.clone();
        self.write(move |tx| {
            tx.execute_batch(
                "DELETE FROM audit_events; DELETE FROM api_tokens; \
                 DELETE FROM rate_limit_bans; DELETE FROM usage_flushes;",
            )?;
            for t in &snapshot.tokens {
                tx.execute(
                    "INSERT INTO api_tokens (id, user_id, api_token, public_identifier, prefix, \
                     name, created_at, expires_at, restricted_to_ip_address, last_used, \
                     privilege_type, usage_count, valid, metadata) \
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
            }
            for e in &snapshot.events {
                tx.execute(
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
            }
            for b in &snapshot.bans {
                tx.execute(
                    "INSERT INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![b.limiter, b.key, b.reason, b.created_at.timestamp_millis()],
                )?;
            }
            Ok((true, ()))
        })
        .await
    }

    async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        self.run(|conn| {
            let (tokens, events, bans): (i64, i64, i64) = conn.query_row(
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
        })
        .await
    }
}
