//! SQLite: counting uses, and the usage batches applied once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::rows::{from_ms, to_sql_count, to_sql_id};
use super::tx::SqliteTx;
use crate::store::backend::UsageSql;
use crate::store::{StoreError, UsageDelta};

#[async_trait]
impl UsageSql for SqliteTx<'_> {
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
}
