//! Counting uses: one at a time (synchronous mode), or a batch per flush applied exactly once.

use crate::store::sql::families::*;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{work, StoreOps};
use crate::store::backend::{Backend, TxEnd};
use crate::store::{StoreError, UsageBatch};

impl<B: Backend> StoreOps<B> {
    /// Adds uses now, in one statement outside any transaction (it is atomic by itself and
    /// answers the new count, so concurrent calls each see their own): synchronous counting
    /// costs one round trip.
    pub(super) async fn add_usage_now(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move {
                    let counted = tx.count_now(token_id, uses, at).await?;
                    Ok(TxEnd::Commit(counted.map(|count| (count, at))))
                })
            }))
            .await
    }

    /// Applies a batch once: its id is recorded in the same transaction, and a batch whose id
    /// is already there was applied by an earlier attempt whose answer was lost: skipped.
    /// Batch ids older than a day before the batch are forgotten.
    pub(super) async fn apply_usage_batch(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let newest = batch
            .deltas
            .iter()
            .map(|d| d.last_used)
            .max()
            .map_or(batch.at, |used| used.max(batch.at));
        let batch = Arc::new(batch.clone());
        self.backend
            .write(work(move |tx| {
                let batch = batch.clone();
                Box::pin(async move {
                    if !tx.record_batch(&batch.id, newest).await? {
                        return Ok(TxEnd::Rollback(()));
                    }
                    tx.add_usage(&batch.deltas).await?;
                    tx.add_rollups(&batch.rollups).await?;
                    tx.forget_batches_before(newest - chrono::Duration::days(1))
                        .await?;
                    Ok(TxEnd::Commit(()))
                })
            }))
            .await
    }
}
