//! Counting uses: one at a time (synchronous mode) or a batch per flush.

use chrono::{DateTime, NaiveDateTime, Utc};
use mysql_async::params;
use mysql_async::prelude::*;

use super::rows::utc;
use super::{server_code, MySqlStore, TxEnd, ER_DUP_ENTRY};
use crate::store::{StoreError, UsageDelta};

const ADD_USAGE: &str = "UPDATE api_tokens SET usage_count = usage_count + :uses, \
    last_used = GREATEST(COALESCE(last_used, :at), :at) WHERE id = :id";
const READ_USAGE: &str = "SELECT usage_count, last_used FROM api_tokens WHERE id = :id";
const RECORD_BATCH: &str = "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (?, ?)";
const FORGET_OLD_BATCHES: &str = "DELETE FROM usage_flushes WHERE applied_at < ? LIMIT 1000";
/// Rows per batched usage statement (3 parameters each, far below the 65,535 limit).
const USAGE_CHUNK: usize = 500;

impl MySqlStore {
    /// Adds uses and reads the result back under the same row lock.
    pub(super) async fn add_usage_now(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        let at = at.naive_utc();
        let read: Option<(u64, Option<NaiveDateTime>)> = self
            .in_transaction(|tx| {
                Box::pin(async move {
                    tx.exec_drop(
                        ADD_USAGE,
                        params! { "id" => token_id, "uses" => uses, "at" => at },
                    )
                    .await?;
                    let read = tx
                        .exec_first(READ_USAGE, params! { "id" => token_id })
                        .await?;
                    Ok(TxEnd::Commit(read))
                })
            })
            .await?;
        Ok(read.map(|(count, last)| (count, utc(last.unwrap_or(at)))))
    }

    /// Applies a batch once: its id is recorded in the same transaction, and a batch whose id
    /// is already there is skipped.
    pub(super) async fn apply_usage_batch(
        &self,
        batch_id: &str,
        deltas: &[UsageDelta],
    ) -> Result<(), StoreError> {
        let Some(newest) = deltas.iter().map(|d| d.last_used).max() else {
            return Ok(());
        };
        let applied_at = newest.naive_utc();
        let forget_before = (newest - chrono::Duration::days(1)).naive_utc();
        self.in_transaction(|tx| {
            let deltas = deltas.to_vec();
            let batch_id = batch_id.to_owned();
            Box::pin(async move {
                match tx.exec_drop(RECORD_BATCH, (batch_id, applied_at)).await {
                    Ok(()) => {}
                    // Applied by an earlier attempt whose answer was lost.
                    Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => {
                        return Ok(TxEnd::Rollback(()));
                    }
                    Err(err) => return Err(err),
                }
                for chunk in deltas.chunks(USAGE_CHUNK) {
                    let params: Vec<mysql_async::Value> = chunk
                        .iter()
                        .flat_map(|d| {
                            [
                                d.token_id.into(),
                                d.uses.into(),
                                d.last_used.naive_utc().into(),
                            ]
                        })
                        .collect();
                    tx.exec_drop(batch_usage_sql(chunk.len()), params).await?;
                }
                tx.exec_drop(FORGET_OLD_BATCHES, (forget_before,)).await?;
                Ok(TxEnd::Commit(()))
            })
        })
        .await
    }
}

/// One statement adding every delta of a chunk: a derived table of `(id, uses, at)` rows
/// joined to `api_tokens`.
fn batch_usage_sql(rows: usize) -> String {
    let mut values = String::from("SELECT ? AS id, ? AS uses, ? AS at");
    for _ in 1..rows {
        values.push_str(" UNION ALL SELECT ?, ?, ?");
    }
    format!(
        "UPDATE api_tokens t JOIN ({values}) u ON t.id = u.id \
         SET t.usage_count = t.usage_count + u.uses, \
         t.last_used = GREATEST(COALESCE(t.last_used, u.at), u.at)"
    )
}
