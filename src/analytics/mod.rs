//! Verification analytics (SPEC B11): every verification counted in memory by (minute, token,
//! code, tags), taken by the usage flush into minute, hour and day rollups (additive upserts, so
//! any number of instances add up), read back as zero-filled series, and pruned past each
//! rollup's retention. Nothing here is on a store's path while a verification is answered.

mod admission;
mod counter;
mod query;

pub use query::{
    earliest, run as run_query, tiles, totals, Group, GroupBy, Point, QueryError, Report, Series,
    VerificationQuery, DEFAULT_TOP, MAX_ANSWER_POINTS, MAX_POINTS, MAX_TOP,
};

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use admission::Admission;
use counter::Counter;
use dashmap::DashMap;

use crate::config::analytics::AnalyticsSettings;
use crate::domain::analytics::{Code, Granularity, TagError, TagSet, Tags};
use crate::domain::rollup::{Dimension, RollupFilter, RollupRow};
use crate::store::{AnalyticsStore, StoreError};

/// The counter and settings of one service's analytics.
pub struct Analytics {
    settings: AnalyticsSettings,
    admission: Admission,
    counter: Counter,
    /// When a flush last left nothing counted unwritten (unix ms), for the flush-lag gauge;
    /// 0: not yet.
    flushed_at_ms: AtomicI64,
    /// Tag sets as sent → as counted today (the day in `interned_day`).
    interned: DashMap<Tags, TagSet, foldhash::fast::RandomState>,
    interned_day: AtomicI64,
}

/// The most tag sets remembered per day; past it, each is admitted and encoded per verification.
const MAX_INTERNED: usize = 10_000;

impl Analytics {
    pub fn new(settings: AnalyticsSettings) -> Self {
        Self {
            admission: Admission::new(settings.tags.len(), settings.max_tag_values),
            settings,
            counter: Counter::default(),
            flushed_at_ms: AtomicI64::new(0),
            interned: DashMap::default(),
            interned_day: AtomicI64::new(i64::MIN),
        }
    }

    /// The allowed tag keys (`analytics.tags`).
    pub fn tag_keys(&self) -> &[String] {
        &self.settings.tags
    }

    /// A verification's tags checked against `analytics.tags` (admitted under the day's bound
    /// only when the verification is counted).
    pub fn tags<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Tags, TagError> {
        Tags::parse(&self.settings.tags, pairs)
    }

    /// Tags filled by the service itself: unknown keys left out, values cut (never an error).
    pub fn filled_tags<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
        Tags::filled(&self.settings.tags, pairs)
    }

    /// Counts one verification at unix second `at`; `token` is `(token id, owner id)`. Its tags
    /// are admitted under the day's bound here: a request refused as bad takes no place.
    pub fn count(
        &self,
        at: i64,
        token: Option<(u64, u64)>,
        code: Code,
        credits: u64,
        tags: Option<&Tags>,
    ) {
        match tags.filter(|tags| !tags.is_empty()) {
            None => self.counter.add(at, token, code, credits, &TagSet::none()),
            Some(tags) => {
                let set = self.tag_set(tags, at);
                self.counter.add(at, token, code, credits, &set);
            }
        }
    }

    /// The stored form of `tags` as counted today: admitted once a day, then remembered (at
    /// most `MAX_INTERNED` sets), so a route's every verification neither allocates nor
    /// re-checks the bound.
    fn tag_set(&self, tags: &Tags, at: i64) -> TagSet {
        let day = at.div_euclid(86_400);
        // A plain load on the hot path; the swap (a write every core would contend for) only
        // when the day turns.
        if self.interned_day.load(Ordering::Acquire) != day
            && self.interned_day.swap(day, Ordering::AcqRel) != day
        {
            self.interned.clear();
        }
        if let Some(set) = self.interned.get(tags) {
            return set.clone();
        }
        let mut admitted = tags.clone();
        self.admission.admit(&mut admitted, at);
        let set = admitted.encode(&self.settings.tags);
        if self.interned.len() < MAX_INTERNED {
            self.interned.insert(tags.clone(), set.clone());
        }
        set
    }

    /// Every verification counted so far, as the rows of every rollup.
    pub fn take(&self) -> Vec<RollupRow> {
        self.counter.take()
    }

    /// A flush that started at unix ms `at_ms` wrote everything counted before it.
    pub fn flushed(&self, at_ms: i64) {
        self.flushed_at_ms.fetch_max(at_ms, Ordering::Relaxed);
    }

    /// Seconds since the last flush that wrote everything counted before it: how old the
    /// oldest count not in the store may be (0 before the first flush).
    pub fn lag_seconds(&self, now_ms: i64) -> f64 {
        match self.flushed_at_ms.load(Ordering::Relaxed) {
            0 => 0.0,
            at => (now_ms - at).max(0) as f64 / 1_000.0,
        }
    }

    /// Runs a query of the rollups at unix second `now`.
    pub async fn query(
        &self,
        store: &dyn AnalyticsStore,
        query: VerificationQuery,
        now: i64,
    ) -> Result<Report, QueryError> {
        query::run(store, &self.settings.retention, query, now).await
    }

    /// Verifications of each token in the 1,440 minutes ending with the current one (unix
    /// second `now`), by UTC hour, oldest first: the stored rollups plus what this instance has
    /// not written yet (in the last hour). The first and last hours are partial (25 of them
    /// when the window does not start on an hour); their sum is the exact 24 h count. Three
    /// reads: the minutes of the first hour, whole hours, the minutes of the current hour.
    pub async fn usage_24h_by_hour(
        &self,
        store: &dyn AnalyticsStore,
        ids: &[u64],
        now: i64,
    ) -> Result<HashMap<u64, Vec<u64>>, StoreError> {
        let start = Self::usage_24h_since(now);
        let end = start + 86_400;
        let hour = Granularity::Hour;
        let first = hour.floor(start);
        let hours = ((hour.floor(end - 1) - first) / 3_600 + 1) as usize;
        let pieces = [
            (Granularity::Minute, start, hour.ceil(start), false),
            (hour, hour.ceil(start), hour.floor(end), true),
            (
                Granularity::Minute,
                hour.floor(end).max(hour.ceil(start)),
                end,
                false,
            ),
        ];
        let mut usage: HashMap<u64, Vec<u64>> =
            ids.iter().map(|id| (*id, vec![0; hours])).collect();
        for (granularity, from, to, per_bucket) in pieces {
            if from >= to {
                continue;
            }
            let filter = RollupFilter {
                granularity,
                start: from,
                end: to,
                token_id: None,
                user_id: None,
                codes: Vec::new(),
                tags: Vec::new(),
                among: Some(ids.to_vec()),
            };
            for sum in store
                .rollup_sums(&filter, Dimension::Token, per_bucket)
                .await?
            {
                let slot = ((hour.floor(sum.bucket) - first) / 3_600) as usize;
                if let Some(count) = usage.get_mut(&sum.id).and_then(|hours| hours.get_mut(slot)) {
                    *count += sum.total;
                }
            }
        }
        for (id, hours) in &mut usage {
            if let Some(last) = hours.last_mut() {
                *last += self.counter.of_token_since(*id, start);
            }
        }
        Ok(usage)
    }

    /// The start of the window `usage_24h` reads at unix second `now`.
    pub fn usage_24h_since(now: i64) -> i64 {
        Granularity::Minute.floor(now) + 60 - 86_400
    }

    /// Deletes buckets past each rollup's retention, at most `analytics.prune_batch` rows per
    /// rollup per statement until none is left; how many rows it deleted.
    pub async fn prune(&self, store: &dyn AnalyticsStore, now: i64) -> Result<u64, StoreError> {
        let batch = self.settings.prune_batch;
        let mut deleted = 0;
        for granularity in Granularity::ALL {
            let before = earliest(&self.settings.retention, granularity, now);
            loop {
                let gone = store.prune_rollup(granularity, before, batch).await?;
                deleted += gone;
                if gone < u64::from(batch) {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
