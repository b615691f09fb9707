//! Batched counting: uses accumulate in memory per token and are written in one statement per
//! flush. Exact: a batch carries an id recorded in the same transaction, so a flush whose
//! outcome is unknown is retried with the same id and can never be applied twice.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::clock::Moment;
use dashmap::DashMap;

use crate::analytics::Analytics;
use crate::domain::analytics::Granularity;
use crate::store::{StoreError, TokenStore, UsageBatch, UsageDelta};
use crate::telemetry::Metrics;

#[derive(Debug, Default)]
struct UsageState {
    /// The stored count as last known (read from the store, plus our applied batches).
    base: u64,
    /// Uses in a batch sent to the store and not yet confirmed.
    in_flight: u64,
    /// Uses not yet sent.
    pending: u64,
    last_used: Option<DateTime<Utc>>,
    /// Last use, store read or confirmed write (monotonic ms): the state is kept at least a
    /// cache TTL past it, so no cached record can be older than what this state accounts for.
    last_touch_ms: i64,
}

impl UsageState {
    fn count(&self) -> u64 {
        self.base + self.in_flight + self.pending
    }
}

pub struct UsageRecorder {
    /// Token id → counts (foldhash: cheaper than SipHash; ids are ours, not callers').
    states: DashMap<u64, UsageState, foldhash::fast::RandomState>,
    store: Arc<dyn TokenStore>,
    /// A batch whose write failed: retried as it is, with the same id.
    unconfirmed: Mutex<Option<UsageBatch>>,
    /// Verifications counted for the analytics: their rollups ride each batch (SPEC B11).
    analytics: Option<Arc<Analytics>>,
    flushing: tokio::sync::Mutex<()>,
    /// Idle states are forgotten after this long (the cache TTL: by then no cached record
    /// predates our last flush).
    forget_after_ms: i64,
    metrics: Arc<Metrics>,
}

impl UsageRecorder {
    pub fn new(
        store: Arc<dyn TokenStore>,
        forget_after: std::time::Duration,
        metrics: Arc<Metrics>,
        analytics: Option<Arc<Analytics>>,
    ) -> Self {
        Self {
            metrics,
            analytics,
            states: DashMap::default(),
            store,
            unconfirmed: Mutex::new(None),
            flushing: tokio::sync::Mutex::new(()),
            forget_after_ms: i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Counts one use; answers the token's count and last use including it.
    pub fn record(
        &self,
        token_id: u64,
        stored_count: u64,
        stored_last_used: Option<DateTime<Utc>>,
        at: Moment,
    ) -> (u64, DateTime<Utc>) {
        let now = at.wall;
        let mut state = self.states.entry(token_id).or_insert_with(|| UsageState {
            base: stored_count,
            last_used: stored_last_used,
            ..UsageState::default()
        });
        state.pending += 1;
        let last = state.last_used.map_or(now, |t| t.max(now));
        state.last_used = Some(last);
        state.last_touch_ms = at.monotonic_ms;
        (state.count(), last)
    }

    /// The count and last use including uses not yet written, if any are tracked.
    pub fn current(&self, token_id: u64) -> Option<(u64, Option<DateTime<Utc>>)> {
        self.states
            .get(&token_id)
            .map(|state| (state.count(), state.last_used))
    }

    /// A fresh read of the store: it includes every batch already confirmed, and other
    /// instances' uses. Ignored while a batch is unconfirmed (the read may or may not hold it).
    pub fn observe(
        &self,
        token_id: u64,
        stored_count: u64,
        stored_last_used: Option<DateTime<Utc>>,
        at: Moment,
    ) {
        if let Some(mut state) = self.states.get_mut(&token_id) {
            state.last_touch_ms = at.monotonic_ms;
            if state.in_flight == 0 {
                state.base = state.base.max(stored_count);
                state.last_used = state.last_used.max(stored_last_used);
            }
        }
    }

    /// Uses of one token counted here and not yet confirmed written, with its last use.
    pub fn unwritten_of(&self, token_id: u64) -> Option<(u64, Option<DateTime<Utc>>)> {
        let state = self.states.get(&token_id)?;
        let uses = state.in_flight + state.pending;
        (uses > 0).then_some((uses, state.last_used))
    }

    /// Verifications of one token since unix second `since` in a batch whose write failed and
    /// waits for its retry (they are neither in the analytics counter nor in the store).
    pub fn unconfirmed_verifications(&self, token_id: u64, since: i64) -> u64 {
        let Ok(slot) = self.unconfirmed.lock() else {
            return 0;
        };
        slot.as_ref().map_or(0, |batch| {
            batch
                .rollups
                .iter()
                .filter(|r| r.granularity == Granularity::Minute)
                .filter(|r| r.token_id == token_id && r.bucket >= since)
                .map(|r| r.total)
                .sum()
        })
    }

    /// Uses counted and not yet confirmed written.
    pub fn unwritten(&self) -> u64 {
        self.states.iter().map(|s| s.in_flight + s.pending).sum()
    }

    /// Writes every pending use. On failure nothing is lost or doubled: the batch is kept and
    /// retried with the same id by the next flush.
    pub async fn flush(&self, at: Moment) -> Result<(), StoreError> {
        let now = at.wall;
        let _one_at_a_time = self.flushing.lock().await;
        let retry = self
            .unconfirmed
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        if let Some(batch) = retry {
            self.write(batch, at).await?;
        }
        let deltas: Vec<UsageDelta> = self
            .states
            .iter_mut()
            .filter(|state| state.pending > 0)
            .map(|mut state| {
                let uses = std::mem::take(&mut state.pending);
                state.in_flight += uses;
                UsageDelta {
                    token_id: *state.key(),
                    uses,
                    last_used: state.last_used.unwrap_or(now),
                }
            })
            .collect();
        let rollups = self
            .analytics
            .as_ref()
            .map(|a| a.take())
            .unwrap_or_default();
        let batch = UsageBatch {
            id: uuid::Uuid::new_v4().simple().to_string(),
            at: now,
            deltas,
            rollups,
        };
        if !batch.is_empty() {
            self.write(batch, at).await?;
        }
        if let Some(analytics) = &self.analytics {
            analytics.flushed(now.timestamp_millis());
        }
        self.forget_idle(at.monotonic_ms);
        Ok(())
    }

    async fn write(&self, batch: UsageBatch, at: Moment) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let written = self.store.apply_usage(&batch).await;
        let uses = batch.deltas.iter().map(|delta| delta.uses).sum();
        self.metrics.flush(
            written.as_ref().map(|()| uses).map_err(|_| ()),
            started.elapsed(),
        );
        if written.is_ok() && !batch.rollups.is_empty() {
            self.metrics.rollup_rows(batch.rollups.len() as u64);
        }
        if written.is_err() {
            self.metrics.store_error("usage-flush");
        }
        match written {
            Ok(()) => {
                for delta in &batch.deltas {
                    if let Some(mut state) = self.states.get_mut(&delta.token_id) {
                        state.in_flight -= delta.uses;
                        state.base += delta.uses;
                        state.last_touch_ms = at.monotonic_ms;
                    }
                }
                Ok(())
            }
            Err(err) => {
                if let Ok(mut slot) = self.unconfirmed.lock() {
                    *slot = Some(batch);
                }
                Err(err)
            }
        }
    }

    fn forget_idle(&self, now_ms: i64) {
        let forget_after = self.forget_after_ms;
        self.states.retain(|_, state| {
            state.pending > 0 || state.in_flight > 0 || now_ms - state.last_touch_ms <= forget_after
        });
    }
}

/// The last handle on the counts is gone: uses still unwritten are lost. Say so loudly, once.
impl Drop for UsageRecorder {
    fn drop(&mut self) {
        let unwritten = self.unwritten();
        if unwritten > 0 {
            tracing::error!(
                uses = unwritten,
                "token service dropped with counted uses never written: \
                 call TokenService::shutdown().await before exiting"
            );
        }
    }
}
