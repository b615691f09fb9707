//! The analytics rollups read and pruned (SPEC B11); they are written with the usage batch
//! (`usage.rs`), in its transaction.

use crate::store::sql::families::*;
use std::sync::Arc;

use async_trait::async_trait;

use super::{done, work, StoreOps};
use crate::domain::analytics::Granularity;
use crate::domain::rollup::{Dimension, RollupFilter, RollupSum};
use crate::store::backend::Backend;
use crate::store::{AnalyticsStore, StoreError};

#[async_trait]
impl<B: Backend> AnalyticsStore for StoreOps<B> {
    async fn rollup_sums(
        &self,
        filter: &RollupFilter,
        dimension: Dimension,
        per_bucket: bool,
    ) -> Result<Vec<RollupSum>, StoreError> {
        let filter = Arc::new(filter.clone());
        self.backend
            .read(work(move |tx| {
                let filter = filter.clone();
                Box::pin(async move { done(tx.rollup_sums(&filter, dimension, per_bucket).await?) })
            }))
            .await
    }

    async fn prune_rollup(
        &self,
        granularity: Granularity,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move { done(tx.prune_rollup(granularity, before, limit).await?) })
            }))
            .await
    }
}
