//! Verification analytics through the service (SPEC B11): what the adapters count themselves
//! (refusals before a key is looked up), the query, `usage24h`, and the retention prune.

use std::collections::HashMap;
use std::sync::Arc;

use super::TokenService;
use crate::analytics::{Analytics, QueryError, Report, VerificationQuery};
use crate::domain::analytics::{Code, TagError, Tags};
use crate::store::StoreError;

impl TokenService {
    /// The analytics of this service, when `analytics.enabled`.
    pub fn analytics(&self) -> Option<&Arc<Analytics>> {
        self.analytics.as_ref()
    }

    /// A verification's tags, checked against `analytics.tags` (unknown keys, values over 64
    /// characters, control characters: the error names the tag). Without analytics, tags are
    /// accepted and ignored.
    pub fn analytics_tags<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Tags, TagError> {
        match &self.analytics {
            Some(analytics) => analytics.tags(pairs),
            None => Ok(Tags::default()),
        }
    }

    /// The tags forward-auth fills itself (SPEC B13): `route` and `method`, each only when
    /// `analytics.tags` names it (see [`Tags::filled`]).
    pub fn gateway_tags(&self, route: &str, method: &str) -> Tags {
        match &self.analytics {
            Some(analytics) => analytics.filled_tags([("route", route), ("method", method)]),
            None => Tags::default(),
        }
    }

    /// Counts a verification refused before its key was looked up: `Blocked` by an abuse
    /// limiter, `NotFound` without a key.
    pub fn count_refused(&self, code: Code) {
        if let Some(analytics) = &self.analytics {
            analytics.count(self.clock.now().timestamp(), None, code, 0, None);
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

    /// Verifications of each token over the last 24 hours (all codes), a batch whose write
    /// failed and waits for its retry included; `None` without analytics.
    pub async fn usage_24h(&self, ids: &[u64]) -> Result<Option<HashMap<u64, u64>>, StoreError> {
        let by_hour = self.usage_24h_by_hour(ids).await?;
        Ok(by_hour.map(|usage| {
            usage
                .into_iter()
                .map(|(id, hours)| (id, hours.iter().sum()))
                .collect()
        }))
    }

    /// [`Self::usage_24h`] by UTC hour, oldest first (the console's sparklines; see
    /// `Analytics::usage_24h_by_hour`).
    pub async fn usage_24h_by_hour(
        &self,
        ids: &[u64],
    ) -> Result<Option<HashMap<u64, Vec<u64>>>, StoreError> {
        let Some(analytics) = &self.analytics else {
            return Ok(None);
        };
        let now = self.clock.now().timestamp();
        let mut usage = analytics.usage_24h_by_hour(&*self.store, ids, now).await?;
        if let Some(recorder) = &self.usage {
            let since = Analytics::usage_24h_since(now);
            for (id, hours) in &mut usage {
                if let Some(last) = hours.last_mut() {
                    *last += recorder.unconfirmed_verifications(*id, since);
                }
            }
        }
        Ok(Some(usage))
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
