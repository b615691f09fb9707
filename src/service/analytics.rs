//! Verification analytics through the service (SPEC B11): what the adapters count themselves
//! (refusals before a key is looked up), the query, `usage24h`, and the retention prune.

use std::collections::HashMap;
use std::sync::Arc;

use super::TokenService;
use crate::analytics::{Analytics, QueryError, Report, VerificationQuery};
use crate::domain::analytics::{Code, TagError, TagSet};
use crate::store::StoreError;

impl TokenService {
    /// The analytics of this service, when `analytics.enabled`.
    pub fn analytics(&self) -> Option<&Arc<Analytics>> {
        self.analytics.as_ref()
    }

    /// A verification's tags, checked against `analytics.tags` (unknown keys, values over 64
    /// characters, control characters: the error names the tag) and admitted under the day's
    /// bound. Without analytics, tags are accepted and ignored.
    pub fn analytics_tags<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TagSet, TagError> {
        match &self.analytics {
            Some(analytics) => analytics.tags(pairs, self.clock.now().timestamp()),
            None => Ok(TagSet::none()),
        }
    }

    /// Counts a verification refused before its key was looked up: `Blocked` by an abuse
    /// limiter, `NotFound` without a key.
    pub fn count_refused(&self, code: Code) {
        if let Some(analytics) = &self.analytics {
            let now = self.clock.now().timestamp();
            analytics.count(now, None, code, 0, &TagSet::none());
            if self.usage.is_none() {
                self.write_rollups_soon();
            }
        }
    }

    /// Synchronous counting (no flush): what was counted is written by a background task
    /// right after, one at a time, so a slow or down store never holds up an answer.
    pub(super) fn write_rollups_soon(&self) {
        let Some(analytics) = &self.analytics else {
            return;
        };
        if !analytics.begin_writing() {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            let Some(analytics) = service.analytics.clone() else {
                return;
            };
            loop {
                let written = service.write_rollups_now().await;
                analytics.end_writing();
                // Counted while it wrote: written too, unless the store is failing (then the
                // next verification, `flush_usage` or `shutdown` tries again).
                if written.is_err() || !analytics.has_unwritten() || !analytics.begin_writing() {
                    break;
                }
            }
        });
    }

    /// Synchronous counting: every verification counted so far, written now. A failed write
    /// keeps them for the next one (logged; a write whose answer was lost may count twice).
    pub(super) async fn write_rollups_now(&self) -> Result<(), StoreError> {
        let Some(analytics) = &self.analytics else {
            return Ok(());
        };
        let started = self.clock.now().timestamp_millis();
        let rows = analytics.take();
        if rows.is_empty() {
            analytics.flushed(started);
            return Ok(());
        }
        match self.store.add_rollups(&rows).await {
            Ok(()) => {
                self.metrics.rollup_rows(rows.len() as u64);
                analytics.flushed(started);
                Ok(())
            }
            Err(err) => {
                analytics.restore(&rows);
                self.metrics.store_error("analytics");
                tracing::warn!(error = %err, "could not write verification analytics; kept for the next write");
                Err(err)
            }
        }
    }

    /// `GET /api/admin/analytics/verifications`: the rollups as series, as of now.
    pub async fn verification_analytics(
        &self,
        query: VerificationQuery,
    ) -> Result<Report, QueryError> {
        let Some(analytics) = &self.analytics else {
            return Err(QueryError::Disabled);
        };
        let now = self.clock.now().timestamp();
        analytics.query(&*self.store, query, now).await
    }

    /// Verifications of each token over the last 24 hours (all codes); empty without
    /// analytics.
    pub async fn usage_24h(&self, ids: &[u64]) -> Result<HashMap<u64, u64>, StoreError> {
        match &self.analytics {
            Some(analytics) if !ids.is_empty() => {
                let now = self.clock.now().timestamp();
                analytics.usage_24h(&*self.store, ids, now).await
            }
            _ => Ok(HashMap::new()),
        }
    }

    /// Deletes rollup buckets past their retention; how many rows went.
    pub async fn prune_analytics(&self) -> Result<u64, StoreError> {
        match &self.analytics {
            Some(analytics) => {
                let now = self.clock.now().timestamp();
                analytics.prune(&*self.store, now).await
            }
            None => Ok(0),
        }
    }
}
