//! `BanStore` on SQLite.

use async_trait::async_trait;
use rusqlite::params;
use serde_json::json;

use super::rows::from_ms;
use super::{write_event, SqliteStore};
use crate::store::AuditKind;
use crate::store::{Audit, BanRecord, BanStore, StoreError};
use crate::token::Actor;

#[async_trait]
impl BanStore for SqliteStore {
    async fn insert_ban(&self, ban: &BanRecord) -> Result<(), StoreError> {
        let ban = ban.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    ban.limiter,
                    ban.key,
                    ban.reason,
                    ban.created_at.timestamp_millis()
                ],
            )?;
            if inserted == 0 {
                return Ok((false, ()));
            }
            let audit = Audit {
                actor: Actor::System,
                at: ban.created_at,
            };
            let detail = json!({"limiter": ban.limiter, "key": ban.key, "reason": ban.reason});
            write_event(tx, None, AuditKind::Banned, &audit, detail)?;
            Ok((true, ()))
        })
        .await
    }

    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        self.run(|conn| {
            let mut statement = conn.prepare_cached(
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
        })
        .await
    }

    async fn delete_ban(
        &self,
        limiter: &str,
        key: &str,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let (limiter, key, audit) = (limiter.to_owned(), key.to_owned(), audit.clone());
        self.write(move |tx| {
            let deleted = tx.execute(
                "DELETE FROM rate_limit_bans WHERE limiter = ?1 AND ban_key = ?2",
                params![limiter, key],
            )?;
            if deleted == 0 {
                return Ok((false, false));
            }
            write_event(
                tx,
                None,
                AuditKind::BanLifted,
                &audit,
                json!({"limiter": limiter, "key": key}),
            )?;
            Ok((true, true))
        })
        .await
    }
}
