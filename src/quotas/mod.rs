//! Customer rate limits and credits (SPEC B5), enforced: a verification's charge against a
//! token's and its owner's limits and credits, all or nothing, exact.
//!
//! **Limits** count uses in fixed windows aligned to the Unix epoch (`floor(now / duration)`),
//! so the reset every answer reports is exact and every instance agrees on it.
//!
//! **Credits** have one source of truth, the store. Whoever spends them — this process without
//! Redis, Redis with it — takes them out in leases (`Credits::lease`: an eighth of what
//! remains, at most `MAX_LEASE`, down to one at a time), spends them where the limits are
//! decided, and gives back what it did not spend on a clean stop. A crash loses at most the
//! unspent part of a lease; nothing is ever granted twice, because a lease leaves the store in
//! the transaction that takes it. A refill or an admin `set` starts a new generation, and
//! credits leased under an older one are void. With Redis the leased credits are one shared
//! balance, so k credits give exactly k successes across every instance.

mod local;
mod scripts;
mod shared;
mod spend;

pub use local::{Balance, LocalHolder};
pub use shared::SharedHolder;
pub use spend::{Answer, CreditStep, LimitStep, Spend, Window, EXHAUSTED_RECHECK_MS};

use std::sync::Arc;

use crate::events::thresholds::{RateLimitAlerts, Refusal};

use chrono::{DateTime, Utc};

use crate::domain::quota::{
    Changed, CreditChange, Credits, LimitName, Quota, QuotaPlan, Refill, Scope, Subject,
    UnknownLimit, Usage,
};
use crate::domain::UserId;
use crate::store::{Audit, QuotaChange, StoreError, TokenStore};
use crate::telemetry::Metrics;

/// Where quota state lives.
pub enum Holder {
    Local(LocalHolder),
    Shared(SharedHolder),
}

/// A limit as an answer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitState {
    pub scope: Scope,
    pub name: LimitName,
    pub limit: u64,
    pub duration_ms: u64,
    /// Uses left in the current window.
    pub remaining: u64,
    /// When the current window ends.
    pub reset: DateTime<Utc>,
    pub auto_apply: bool,
}

/// What a verification's charge found and left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaReport {
    /// The limits it charged (a refusal: the limit that refused).
    pub limits: smallvec::SmallVec<[LimitState; 2]>,
    /// When a refused caller may try again (ms), if that is known.
    pub retry_after_ms: Option<u64>,
    /// Credits deducted by the charge (its cost from each credit pool); 0 when refused.
    pub credits_spent: u64,
}

impl QuotaReport {
    /// The limit closest to refusing: least remaining, then the earliest reset.
    pub fn tightest(&self) -> Option<&LimitState> {
        self.limits
            .iter()
            .min_by_key(|state| (state.remaining, state.reset))
    }
}

/// What the charge decided. Nothing was consumed unless `Allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaDecision {
    Allowed(QuotaReport),
    RateLimited(QuotaReport),
    UsageExceeded(QuotaReport),
    /// The caller named a limit neither the token nor its owner has.
    UnknownLimit(UnknownLimit),
}

/// Credits as an answer shows them: what the store holds and what is leased out unspent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditsView {
    pub remaining: u64,
    pub refill: Option<Refill>,
    pub refilled_at: DateTime<Utc>,
    pub next_refill: Option<DateTime<Utc>>,
}

/// A subject's limits and credits as they stand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaView {
    pub limits: Vec<LimitState>,
    pub credits: Option<CreditsView>,
}

/// How many leases one charge may take while other verifications spend what it leased (each
/// lease either serves it, moves credits out of the store, or finds the store empty).
const ATTEMPTS: usize = 64;
/// Leases of different pools run in parallel; of one pool, one at a time per process.
const LEASE_STRIPES: usize = 64;

/// The enforcement of customer limits and credits.
pub struct Quotas {
    store: Arc<dyn TokenStore>,
    holder: Holder,
    metrics: Arc<Metrics>,
    leasing: Vec<tokio::sync::Mutex<()>>,
    /// Set by `give_back`: no lease ahead starts after it.
    stopping: std::sync::atomic::AtomicBool,
    /// Reports the first refusal of a limit in its window (`ratelimit.exceeded`).
    alerts: Option<Arc<RateLimitAlerts>>,
}

impl Quotas {
    pub fn new(store: Arc<dyn TokenStore>, holder: Holder, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            holder,
            metrics,
            leasing: (0..LEASE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            stopping: Default::default(),
            alerts: None,
        }
    }

    /// Reports first refusals through `alerts`.
    pub fn alerting(mut self, alerts: Option<Arc<RateLimitAlerts>>) -> Self {
        self.alerts = alerts;
        self
    }

    /// Charges one verification of token `token` (of `owner`): `usage.cost` from each
    /// auto-applied limit and each credit pool of `plan`, each named limit at its own cost.
    /// `Err` when the store or Redis cannot answer (the caller fails closed).
    pub async fn charge(
        self: &Arc<Self>,
        token: u64,
        owner: UserId,
        plan: &QuotaPlan,
        usage: &Usage,
        now: DateTime<Utc>,
    ) -> Result<QuotaDecision, StoreError> {
        let charges = match plan.charges(usage) {
            Ok(charges) => charges,
            Err(unknown) => return Ok(QuotaDecision::UnknownLimit(unknown)),
        };
        let spend = Spend::new(token, owner, charges, plan.credit_pools(), usage.cost, now);
        let mut answer = self.spend(&spend).await?;
        for _ in 0..ATTEMPTS {
            let Answer::NeedLease { index } = answer else {
                break;
            };
            // One lease of a pool at a time in this process; whoever takes one spends from it
            // before letting the next in, so every lease serves at least its taker.
            let step = spend.credits[index];
            let _turn = self.leasing[stripe(step.subject)].lock().await;
            answer = self.spend(&spend).await?;
            if answer == (Answer::NeedLease { index }) {
                self.lease(owner, step, now).await?;
                answer = self.spend(&spend).await?;
            }
        }
        Ok(match answer {
            Answer::Done { counts, ahead, .. } => {
                if let Some(index) = ahead {
                    self.lease_ahead(owner, spend.credits[index], now);
                }
                QuotaDecision::Allowed(allowed(&spend, &counts))
            }
            Answer::Limited { index, count } => {
                if let Some(alerts) = &self.alerts {
                    let step = &spend.limits[index];
                    alerts.refused(Refusal {
                        subject: step.subject,
                        owner,
                        limit: step.name().as_str().to_owned(),
                        max: step.limit(),
                        window_index: step.window.index,
                        duration_ms: step.planned.limit.duration_ms,
                        resets_at_ms: step.window.ends_ms,
                        at: now,
                    });
                }
                QuotaDecision::RateLimited(limited(&spend, index, count))
            }
            Answer::Exhausted { index } | Answer::NeedLease { index } => {
                QuotaDecision::UsageExceeded(exhausted(&spend, index, now))
            }
        })
    }

    async fn spend(&self, spend: &Spend<'_>) -> Result<Answer, StoreError> {
        match &self.holder {
            Holder::Local(local) => Ok(local.spend(spend)),
            Holder::Shared(shared) => shared.spend(spend).await,
        }
    }

    /// Takes credits of one pool out of the store into the holder.
    async fn lease(
        &self,
        owner: UserId,
        step: CreditStep,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let lease = self.store.lease(step.subject, step.needed(), now).await?;
        self.metrics
            .credit_lease(lease.as_ref().map_or(0, |lease| lease.granted));
        // No credits row (removed since the token was loaded): nothing to spend.
        let lease = lease.unwrap_or(crate::store::Lease {
            granted: 0,
            generation: 0,
            refilled_at: now,
            remaining: 0,
        });
        let now_ms = now.timestamp_millis();
        match &self.holder {
            Holder::Local(local) => {
                local.add_lease(owner, step.subject, &lease, now_ms);
                Ok(())
            }
            Holder::Shared(shared) => shared.add_lease(owner, step.subject, &lease, now_ms).await,
        }
    }

    /// Leases for a pool running low in the background (one at a time per pool, none once
    /// the process is stopping), so that the verifications after it find credits waiting.
    fn lease_ahead(self: &Arc<Self>, owner: UserId, step: CreditStep, now: DateTime<Utc>) {
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let quotas = Arc::clone(self);
        let ahead = async move {
            let Ok(_turn) = quotas.leasing[stripe(step.subject)].try_lock() else {
                return;
            };
            if let Err(err) = quotas.lease(owner, step, now).await {
                tracing::warn!(error = %err, "could not lease credits ahead");
            }
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(ahead);
        }
    }

    /// Replaces a subject's limits in the store.
    pub async fn set_limits(
        &self,
        subject: Subject,
        limits: &crate::domain::quota::RateLimits,
        audit: &Audit,
    ) -> Result<QuotaChange<()>, StoreError> {
        self.store.set_limits(subject, limits, audit).await
    }

    /// Changes a subject's credits in the store, then in the holder: a decrement larger than
    /// what the store holds takes the rest from what is leased out; a `set` voids the leased
    /// credits; any change ends an `Exhausted` answer at once.
    pub async fn change_credits(
        &self,
        subject: Subject,
        owner: UserId,
        change: &CreditChange,
        audit: &Audit,
    ) -> Result<QuotaChange<Changed>, StoreError> {
        let changed = self.store.change_credits(subject, change, audit).await?;
        if let QuotaChange::Changed { value, .. } = &changed {
            let generation = value.credits.generation;
            match &self.holder {
                Holder::Local(local) => {
                    if value.shortfall > 0 {
                        local.take(owner, subject, generation, value.shortfall);
                    }
                    local.refresh(owner, subject, generation);
                }
                Holder::Shared(shared) => {
                    if value.shortfall > 0 {
                        shared
                            .take(owner, subject, generation, value.shortfall)
                            .await?;
                    }
                    shared.refresh(owner, subject, generation).await?;
                }
            }
        }
        Ok(changed)
    }

    /// A subject's limits (with this window's remaining and reset) and credits (stored plus
    /// leased out and unspent), as they stand at `now`.
    pub async fn view(
        &self,
        subject: Subject,
        owner: UserId,
        quota: &Quota,
        now: DateTime<Utc>,
    ) -> Result<QuotaView, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut limits = Vec::with_capacity(quota.limits.len());
        for limit in quota.limits.iter() {
            let window = Window::at(now_ms, limit.duration_ms);
            let count = match &self.holder {
                Holder::Local(local) => local.count(owner, subject, &limit.name, window.index),
                Holder::Shared(shared) => {
                    shared
                        .count(owner, subject, &limit.name, window.index)
                        .await?
                }
            };
            limits.push(LimitState {
                scope: subject.scope(),
                name: limit.name.clone(),
                limit: limit.limit,
                duration_ms: limit.duration_ms,
                remaining: limit.limit.saturating_sub(count),
                reset: at_ms(window.ends_ms),
                auto_apply: limit.auto_apply,
            });
        }
        let credits = match quota.credits {
            None => None,
            Some(stored) => Some(self.credits_view(subject, owner, stored, now).await?),
        };
        Ok(QuotaView { limits, credits })
    }

    /// Stored credits as they stand at `now`, with what is leased out and unspent.
    pub async fn credits_view(
        &self,
        subject: Subject,
        owner: UserId,
        stored: Credits,
        now: DateTime<Utc>,
    ) -> Result<CreditsView, StoreError> {
        let current = stored.at(now);
        let held = match &self.holder {
            Holder::Local(local) => local.balance(owner, subject),
            Holder::Shared(shared) => shared.balance(owner, subject).await?,
        };
        let boundary = current
            .refill
            .map_or(i64::MIN, |r| r.last_boundary(now).timestamp_millis());
        let leased = held
            .filter(|h| h.generation == current.generation && h.refilled_at_ms >= boundary)
            .map_or(0, |h| h.balance);
        Ok(CreditsView {
            remaining: current.remaining.saturating_add(leased),
            refill: current.refill,
            refilled_at: current.refilled_at,
            next_refill: current.refill.map(|r| r.next_boundary(now)),
        })
    }

    /// A rotation gave token `from`'s credits to token `to`: what `from` had leased out and not
    /// spent goes to `to` in the store.
    pub async fn carry(&self, owner: UserId, from: u64, to: u64) -> Result<(), StoreError> {
        let drained = match &self.holder {
            Holder::Local(local) => local.drain(owner, Subject::Token(from)),
            Holder::Shared(shared) => shared.drain(owner, Subject::Token(from)).await?,
        };
        if let Some(held) = drained.filter(|held| held.balance > 0) {
            let to = Subject::Token(to);
            self.store
                .deposit(to, held.generation, held.balance)
                .await?;
        }
        Ok(())
    }

    /// A clean stop: credits this process leased and did not spend go back to the store
    /// (with Redis they stay there, shared). Answers how many could not be given back.
    pub async fn give_back(&self) -> u64 {
        let Holder::Local(local) = &self.holder else {
            return 0;
        };
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        // Leases under way (ahead of need) land before the pools are emptied.
        let mut turns = Vec::with_capacity(self.leasing.len());
        for stripe in &self.leasing {
            turns.push(stripe.lock().await);
        }
        let mut lost = 0;
        for held in local.drain_all() {
            let subject = held.subject;
            match self
                .store
                .deposit(subject, held.generation, held.balance)
                .await
            {
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, "could not give leased credits back to the store");
                    lost += held.balance;
                }
            }
        }
        lost
    }
}

fn stripe(subject: Subject) -> usize {
    let code = match subject {
        Subject::Token(id) => id.wrapping_mul(2),
        Subject::Owner(user) => user.get().wrapping_mul(2) + 1,
    };
    (code % LEASE_STRIPES as u64) as usize
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn state(step: &LimitStep<'_>, count: u64) -> LimitState {
    LimitState {
        scope: step.planned.scope,
        name: step.name().clone(),
        limit: step.limit(),
        duration_ms: step.planned.limit.duration_ms,
        remaining: step.limit().saturating_sub(count),
        reset: at_ms(step.window.ends_ms),
        auto_apply: step.planned.limit.auto_apply,
    }
}

fn allowed(spend: &Spend<'_>, counts: &[u64]) -> QuotaReport {
    QuotaReport {
        limits: spend
            .limits
            .iter()
            .zip(counts)
            .map(|(step, count)| state(step, *count))
            .collect(),
        retry_after_ms: None,
        credits_spent: spend.credits.iter().map(|step| step.cost).sum(),
    }
}

fn limited(spend: &Spend<'_>, index: usize, count: u64) -> QuotaReport {
    let step = &spend.limits[index];
    QuotaReport {
        limits: smallvec::smallvec![state(step, count)],
        retry_after_ms: Some(u64::try_from(step.window.ends_ms - spend.now_ms).unwrap_or(0)),
        credits_spent: 0,
    }
}

fn exhausted(spend: &Spend<'_>, index: usize, now: DateTime<Utc>) -> QuotaReport {
    let next_refill = spend
        .credits
        .get(index)
        .and_then(|step| step.refill)
        .map(|refill| refill.next_boundary(now));
    QuotaReport {
        limits: smallvec::SmallVec::new(),
        retry_after_ms: next_refill
            .map(|at| u64::try_from((at - now).num_milliseconds()).unwrap_or(0)),
        credits_spent: 0,
    }
}
