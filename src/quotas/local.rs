//! Quota state held in this process (no Redis): limit counters and leased credits, one lock
//! per owner, so that a token's and its owner's limits and credits are decided together.

use std::sync::Mutex;

use dashmap::DashMap;

use super::spend::{Answer, Spend, EXHAUSTED_RECHECK_MS};
use crate::domain::quota::{LimitName, Subject};
use crate::domain::UserId;
use crate::store::Lease;

#[derive(Debug)]
struct Counter {
    subject: Subject,
    name: LimitName,
    window: u64,
    count: u64,
}

/// Credits taken out of the store and not spent yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub subject: Subject,
    pub generation: u64,
    pub refilled_at_ms: i64,
    pub balance: u64,
    /// Until then an empty balance answers `Exhausted` without asking the store.
    pub exhausted_until_ms: i64,
    /// The size of the last lease of this generation (how fast the pool is refilled).
    pub leased: u64,
    /// Until then no lease ahead is asked for (one is under way).
    pub ahead_until_ms: i64,
}

/// A pool that leases at least this much at a time leases the next one ahead, when a quarter
/// of the last is left: a busy pool never waits for the store.
const AHEAD_FROM: u64 = 64;
/// A lease ahead that did not come back (a store error) is asked for again after this.
const AHEAD_RETRY_MS: i64 = 5_000;

impl Balance {
    fn wants_ahead(&self, now_ms: i64) -> bool {
        self.leased >= AHEAD_FROM && self.balance < self.leased / 4 && self.ahead_until_ms <= now_ms
    }
}

/// The state of one owner and its tokens (a few dozen entries at most: scanned, not hashed).
#[derive(Debug, Default)]
struct OwnerState {
    counters: Vec<Counter>,
    balances: Vec<Balance>,
}

impl OwnerState {
    fn count(&self, subject: Subject, name: &LimitName, window: u64) -> u64 {
        self.counters
            .iter()
            .find(|c| c.subject == subject && c.name == *name && c.window == window)
            .map_or(0, |c| c.count)
    }

    fn balance(&mut self, subject: Subject) -> Option<&mut Balance> {
        self.balances.iter_mut().find(|b| b.subject == subject)
    }
}

/// Owner → its state.
#[derive(Default)]
pub struct LocalHolder {
    owners: DashMap<UserId, Mutex<OwnerState>, foldhash::fast::RandomState>,
}

impl LocalHolder {
    fn with<T>(&self, owner: UserId, body: impl FnOnce(&mut OwnerState) -> T) -> T {
        let lock = |state: &Mutex<OwnerState>| {
            // A poisoned lock's state is still counts and balances: keep using it.
            let mut state = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            body(&mut state)
        };
        // A shared read of the map for an owner it knows (every verification after the first);
        // only the first inserts, under the shard's write lock.
        match self.owners.get(&owner) {
            Some(entry) => lock(&entry),
            None => lock(&self.owners.entry(owner).or_default()),
        }
    }

    /// Checks every limit and pool of `spend`, then charges them all, or none.
    pub fn spend(&self, spend: &Spend<'_>) -> Answer {
        self.with(spend.owner, |state| {
            let mut counts = smallvec::SmallVec::<[u64; 4]>::new();
            for (index, step) in spend.limits.iter().enumerate() {
                let count = state.count(step.subject, step.name(), step.window.index);
                if count.saturating_add(step.needed()) > step.limit() {
                    return Answer::Limited { index, count };
                }
                counts.push(count);
            }
            for (index, step) in spend.credits.iter().enumerate() {
                let held = state
                    .balances
                    .iter()
                    .find(|b| b.subject == step.subject && b.refilled_at_ms >= step.boundary_ms);
                match held {
                    Some(held) if held.balance >= step.needed() => {}
                    Some(held) if held.exhausted_until_ms > spend.now_ms => {
                        return Answer::Exhausted { index }
                    }
                    _ => return Answer::NeedLease { index },
                }
            }
            for (step, count) in spend.limits.iter().zip(counts.iter_mut()) {
                *count += step.cost;
                if step.cost == 0 {
                    continue;
                }
                state.counters.retain(|c| {
                    !(c.subject == step.subject && c.name == *step.name())
                        || c.window == step.window.index
                });
                match state
                    .counters
                    .iter_mut()
                    .find(|c| c.subject == step.subject && c.name == *step.name())
                {
                    Some(counter) => counter.count += step.cost,
                    None => state.counters.push(Counter {
                        subject: step.subject,
                        name: step.name().clone(),
                        window: step.window.index,
                        count: step.cost,
                    }),
                }
            }
            let mut balances = smallvec::SmallVec::<[u64; 2]>::new();
            let mut ahead = None;
            for (index, step) in spend.credits.iter().enumerate() {
                let left = match state.balance(step.subject) {
                    Some(held) => {
                        held.balance -= step.cost;
                        if held.wants_ahead(spend.now_ms) {
                            held.ahead_until_ms = spend.now_ms.saturating_add(AHEAD_RETRY_MS);
                            ahead = Some(index);
                        }
                        held.balance
                    }
                    None => 0,
                };
                balances.push(left);
            }
            Answer::Done {
                counts,
                balances,
                ahead,
            }
        })
    }

    /// Puts leased credits in the pool: they replace credits of an older generation, add to
    /// those of the same, and are dropped when the pool is already newer (a `set` or a refill
    /// voided them). A lease of nothing marks the pool exhausted for a moment.
    pub fn add_lease(&self, owner: UserId, subject: Subject, lease: &Lease, now_ms: i64) {
        self.with(owner, |state| {
            let refilled_at_ms = lease.refilled_at.timestamp_millis();
            let exhausted_until_ms = match lease.granted {
                0 => now_ms.saturating_add(EXHAUSTED_RECHECK_MS),
                _ => 0,
            };
            let fresh = Balance {
                subject,
                generation: lease.generation,
                refilled_at_ms,
                balance: lease.granted,
                exhausted_until_ms,
                leased: lease.granted,
                ahead_until_ms: 0,
            };
            match state.balance(subject) {
                None => state.balances.push(fresh),
                Some(held) if lease.generation > held.generation => *held = fresh,
                Some(held) if lease.generation == held.generation => {
                    held.balance += lease.granted;
                    held.refilled_at_ms = held.refilled_at_ms.max(refilled_at_ms);
                    held.exhausted_until_ms = exhausted_until_ms;
                    held.leased = lease.granted;
                    held.ahead_until_ms = 0;
                }
                Some(_) => {}
            }
        })
    }

    /// Takes up to `amount` from the pool while it is of `generation`; how many it took.
    pub fn take(&self, owner: UserId, subject: Subject, generation: u64, amount: u64) -> u64 {
        self.with(owner, |state| match state.balance(subject) {
            Some(held) if held.generation == generation => {
                let taken = amount.min(held.balance);
                held.balance -= taken;
                taken
            }
            _ => 0,
        })
    }

    /// After a change of the credits in the store: a newer generation voids what is held; the
    /// same one only ends an `Exhausted` answer.
    pub fn refresh(&self, owner: UserId, subject: Subject, generation: u64) {
        self.with(owner, |state| {
            if let Some(held) = state.balance(subject) {
                if generation > held.generation {
                    held.generation = generation;
                    held.balance = 0;
                }
                held.exhausted_until_ms = 0;
            }
        })
    }

    pub fn balance(&self, owner: UserId, subject: Subject) -> Option<Balance> {
        self.with(owner, |state| state.balance(subject).copied())
    }

    /// Removes the pool and answers what it held.
    pub fn drain(&self, owner: UserId, subject: Subject) -> Option<Balance> {
        self.with(owner, |state| {
            let at = state.balances.iter().position(|b| b.subject == subject)?;
            Some(state.balances.swap_remove(at))
        })
    }

    /// Every pool holding credits, emptied (a clean stop gives them back to the store).
    pub fn drain_all(&self) -> Vec<Balance> {
        let mut drained = Vec::new();
        for entry in self.owners.iter() {
            let mut state = entry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for held in state.balances.drain(..) {
                if held.balance > 0 {
                    drained.push(held);
                }
            }
        }
        drained
    }

    /// The count of one limit in one window.
    pub fn count(&self, owner: UserId, subject: Subject, name: &LimitName, window: u64) -> u64 {
        self.with(owner, |state| state.count(subject, name, window))
    }
}
