//! One verification's charge, as a holder of quota state (this process, or Redis) decides it:
//! every limit and every credit pool checked, then all consumed or none.

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use crate::domain::quota::{Charges, LimitName, PlannedLimit, Refill, Scope, Subject};
use crate::domain::UserId;

/// A limit's window: fixed, aligned to the Unix epoch, so that every instance agrees on it
/// and its reset is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `floor(now / duration)`.
    pub index: u64,
    /// When it ends (ms since the epoch).
    pub ends_ms: i64,
}

impl Window {
    pub fn at(now_ms: i64, duration_ms: u64) -> Self {
        let now = u64::try_from(now_ms).unwrap_or(0);
        let index = now / duration_ms;
        let ends = index.saturating_add(1).saturating_mul(duration_ms);
        Self {
            index,
            ends_ms: i64::try_from(ends).unwrap_or(i64::MAX),
        }
    }
}

/// One limit to charge.
#[derive(Debug, Clone)]
pub struct LimitStep<'p> {
    pub planned: &'p PlannedLimit,
    pub subject: Subject,
    pub cost: u64,
    pub window: Window,
}

impl LimitStep<'_> {
    pub fn name(&self) -> &LimitName {
        &self.planned.limit.name
    }

    pub fn limit(&self) -> u64 {
        self.planned.limit.limit
    }

    /// What must fit in the window: the cost, or one for a check-only charge (cost 0 asks
    /// whether one more use would pass).
    pub fn needed(&self) -> u64 {
        self.cost.max(1)
    }
}

/// One credit pool to spend from.
#[derive(Debug, Clone, Copy)]
pub struct CreditStep {
    pub subject: Subject,
    pub cost: u64,
    pub refill: Option<Refill>,
    /// The last refill boundary at `now` (ms; `i64::MIN` without a refill): credits held from
    /// before it are of an earlier period and void.
    pub boundary_ms: i64,
}

impl CreditStep {
    pub fn needed(&self) -> u64 {
        self.cost.max(1)
    }
}

/// A verification's whole charge against one owner's quota state.
#[derive(Debug, Clone)]
pub struct Spend<'p> {
    pub owner: UserId,
    pub limits: SmallVec<[LimitStep<'p>; 4]>,
    pub credits: SmallVec<[CreditStep; 2]>,
    pub now_ms: i64,
}

impl<'p> Spend<'p> {
    pub fn new(
        token: u64,
        owner: UserId,
        charges: Charges<'p>,
        pools: impl Iterator<Item = (Scope, Option<Refill>)>,
        cost: u64,
        now: DateTime<Utc>,
    ) -> Self {
        let now_ms = now.timestamp_millis();
        let subject = |scope| match scope {
            Scope::Token => Subject::Token(token),
            Scope::Owner => Subject::Owner(owner),
        };
        let limits = charges
            .into_iter()
            .map(|charge| LimitStep {
                planned: charge.planned,
                subject: subject(charge.planned.scope),
                cost: charge.cost,
                window: Window::at(now_ms, charge.planned.limit.duration_ms),
            })
            .collect();
        let credits = pools
            .map(|(scope, refill)| CreditStep {
                subject: subject(scope),
                cost,
                refill,
                boundary_ms: refill.map_or(i64::MIN, |r| r.last_boundary(now).timestamp_millis()),
            })
            .collect();
        Self {
            owner,
            limits,
            credits,
            now_ms,
        }
    }
}

/// What a holder decided. Nothing was consumed unless `Done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every limit and pool charged: each limit's count and each pool's balance after.
    Done {
        counts: SmallVec<[u64; 4]>,
        balances: SmallVec<[u64; 2]>,
        /// A pool running low, to lease for ahead of need (in the background).
        ahead: Option<usize>,
    },
    /// The limit at this index would go over; its count in the window now.
    Limited { index: usize, count: u64 },
    /// The pool at this index holds too few credits (or credits of an older period): take
    /// more out of the store, then ask again.
    NeedLease { index: usize },
    /// The pool at this index is empty and the store had none either, a moment ago.
    Exhausted { index: usize },
}

/// How long an empty pool answers `Exhausted` before the store is asked again: a flood on
/// an empty pool costs the store one call per this, per holder. Every change of credits made
/// through an instance (or through Redis) ends it at once.
pub const EXHAUSTED_RECHECK_MS: i64 = 1_000;
