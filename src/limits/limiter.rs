//! One limiter: GCRA counting (governor) plus what governor lacks — blocks, strikes,
//! permanent bans, reset and pruning.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};

use super::clock::GovernorClock;
use super::key_states::{CountedMap, KeyStates};
use crate::store::BanRecord;
use crate::telemetry::metrics::LimiterMetrics;

/// `points` per `duration`, and how long a key is blocked once it goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    pub points: NonZeroU32,
    pub duration: Duration,
    pub block_duration: Duration,
}

/// What a limiter decided for one request. A rejection is a value, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Blocked; the block ends in `retry_after`.
    Limited {
        retry_after: Duration,
    },
    /// Permanently banned until an operator lifts the ban.
    Banned,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Self::Allowed
    }

    /// The stricter of two decisions (a ban beats a block, the longer block wins).
    pub fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::Banned, _) | (_, Self::Banned) => Self::Banned,
            (Self::Limited { retry_after: a }, Self::Limited { retry_after: b }) => Self::Limited {
                retry_after: a.max(b),
            },
            (limited @ Self::Limited { .. }, Self::Allowed)
            | (Self::Allowed, limited @ Self::Limited { .. }) => limited,
            (Self::Allowed, Self::Allowed) => Self::Allowed,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Block {
    until_ms: i64,
    strikes: u32,
}

#[derive(Debug, Clone)]
struct BanEntry {
    key: Box<str>,
    reason: &'static str,
    created_at: DateTime<Utc>,
    /// Written to the store; only persisted bans are dropped when the store no longer has them.
    persisted: bool,
}

/// Bans made by any limiter, waiting to be written to the store.
pub type NewBans = Arc<Mutex<Vec<BanRecord>>>;

const BAN_REASON: &str = "rejected again while blocked";

type Gcra = RateLimiter<u64, KeyStates, GovernorClock, NoOpMiddleware<Nanos>>;

pub struct Limiter {
    name: &'static str,
    config: LimiterConfig,
    gcra: Gcra,
    states: KeyStates,
    blocks: CountedMap<Block>,
    bans: CountedMap<BanEntry>,
    hasher: RandomState,
    clock: GovernorClock,
    ban_after_strikes: u32,
    new_bans: NewBans,
    metrics: LimiterMetrics,
}

impl Limiter {
    /// `points` per `duration` becomes a GCRA quota with a burst of `points`, one point coming
    /// back every `duration / points`.
    pub fn new(
        name: &'static str,
        config: LimiterConfig,
        ban_after_strikes: u32,
        clock: GovernorClock,
        hasher: RandomState,
        new_bans: NewBans,
    ) -> Self {
        let period = (config.duration / config.points.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(config.points))
            .allow_burst(config.points);
        let states = KeyStates::default();
        Self {
            name,
            config,
            gcra: RateLimiter::new(quota, states.clone(), clock.clone()),
            states,
            blocks: CountedMap::default(),
            bans: CountedMap::default(),
            hasher,
            clock,
            ban_after_strikes: ban_after_strikes.max(1),
            new_bans,
            metrics: LimiterMetrics::default(),
        }
    }

    /// Counts this limiter's rejections and bans into `metrics`.
    pub fn observe(&mut self, metrics: LimiterMetrics) {
        self.metrics = metrics;
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn config(&self) -> LimiterConfig {
        self.config
    }

    /// Consumes one point for `key`. Over the quota the key is blocked for `block_duration`;
    /// every rejection is a strike, strikes are remembered while the block lasts, and the
    /// `ban_after_strikes`-th one bans the key permanently.
    pub fn check(&self, key: &str) -> Decision {
        let hash = self.hasher.hash_one(key);
        let decision = match self.rejection(hash, key) {
            Some(decision) => decision,
            None => match self.gcra.check_key(&hash) {
                Ok(()) => return Decision::Allowed,
                Err(_) => self.strike(hash, key),
            },
        };
        self.metrics.rejected.increment(1);
        decision
    }

    /// The key's state without consuming a point or counting a strike: `Banned`, `Limited`
    /// with the time left of its block, or `Allowed`.
    pub fn peek(&self, key: &str) -> Decision {
        let hash = self.hasher.hash_one(key);
        if self.bans.contains_key(hash) {
            return Decision::Banned;
        }
        let Some(until_ms) = self.blocks.get(hash).map(|block| block.until_ms) else {
            return Decision::Allowed;
        };
        let now = self.clock.now_ms();
        if until_ms <= now {
            return Decision::Allowed;
        }
        Decision::Limited {
            retry_after: Duration::from_millis(u64::try_from(until_ms - now).unwrap_or(0)),
        }
    }

    /// Whether this instance knows `key` to be banned (no I/O: the local cache of bans).
    pub fn is_banned(&self, key: &str) -> bool {
        !self.bans.is_empty() && self.bans.contains_key(self.hasher.hash_one(key))
    }

    /// A rejection decided elsewhere (in Redis), counted here.
    pub fn count_rejection(&self) {
        self.metrics.rejected.increment(1);
    }

    /// Bans `key` as the `ban_after_strikes`-th strike does (a decision in Redis made it):
    /// enforced here at once, queued for the store, counted and logged.
    pub fn ban_key(&self, key: &str) {
        self.ban(self.hasher.hash_one(key), key);
    }

    /// Learns that `key` is banned (another instance banned it, and stores the ban).
    pub fn know_ban(&self, key: &str, created_at: DateTime<Utc>) {
        self.bans
            .get_or_insert_with(self.hasher.hash_one(key), || BanEntry {
                key: key.into(),
                reason: BAN_REASON,
                created_at,
                persisted: true,
            });
    }

    /// True when no key has points spent, a block or a ban: a reset would change nothing.
    pub fn is_idle(&self) -> bool {
        self.states.is_empty() && self.blocks.is_empty() && self.bans.is_empty()
    }

    /// Forgets the key's consumed points, keeping any block in force.
    pub fn forget_points(&self, key: &str) {
        self.states.remove(self.hasher.hash_one(key));
    }

    /// Forgets the key's consumed points and block (after a success, or a lifted ban).
    pub fn reset(&self, key: &str) {
        let hash = self.hasher.hash_one(key);
        self.states.remove(hash);
        self.blocks.remove(hash);
    }

    fn rejection(&self, hash: u64, key: &str) -> Option<Decision> {
        if self.bans.contains_key(hash) {
            return Some(Decision::Banned);
        }
        let block = *self.blocks.get(hash)?;
        if block.until_ms <= self.clock.now_ms() {
            self.blocks.remove(hash);
            return None;
        }
        Some(self.strike(hash, key))
    }

    /// Records a rejection: starts the block (first strike) or extends the tally of one.
    fn strike(&self, hash: u64, key: &str) -> Decision {
        let now = self.clock.now_ms();
        let mut block = self.blocks.get_or_insert_with(hash, || Block {
            until_ms: now.saturating_add(duration_ms(self.config.block_duration)),
            strikes: 0,
        });
        block.strikes += 1;
        if block.strikes >= self.ban_after_strikes {
            drop(block);
            self.blocks.remove(hash);
            self.ban(hash, key);
            return Decision::Banned;
        }
        let left_ms = (block.until_ms - now).max(0);
        Decision::Limited {
            retry_after: Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)),
        }
    }

    fn ban(&self, hash: u64, key: &str) {
        let created_at = self.clock.0.now();
        let mut entry = self.bans.get_or_insert_with(hash, || BanEntry {
            key: key.into(),
            reason: BAN_REASON,
            created_at,
            persisted: false,
        });
        entry.persisted = false;
        drop(entry);
        tracing::warn!(limiter = self.name, "key banned permanently");
        self.metrics.banned.increment(1);
        let record = BanRecord {
            limiter: self.name.to_owned(),
            key: key.to_owned(),
            reason: BAN_REASON.to_owned(),
            created_at,
        };
        if let Ok(mut queue) = self.new_bans.lock() {
            queue.push(record);
        }
    }

    /// Marks a ban as written to the store.
    pub fn mark_persisted(&self, key: &str) {
        if let Some(mut entry) = self.bans.get_mut(self.hasher.hash_one(key)) {
            entry.persisted = true;
        }
    }

    /// Makes this limiter's bans equal to the store's (`stored` are this limiter's keys),
    /// keeping bans made here that have not reached the store yet.
    pub fn reconcile_bans(&self, stored: &[BanRecord]) {
        let mut present = HashSet::with_capacity(stored.len());
        for ban in stored {
            let hash = self.hasher.hash_one(ban.key.as_str());
            present.insert(hash);
            self.bans.get_or_insert_with(hash, || BanEntry {
                key: ban.key.as_str().into(),
                reason: BAN_REASON,
                created_at: ban.created_at,
                persisted: true,
            });
        }
        self.bans
            .retain(|hash, entry| !entry.persisted || present.contains(hash));
    }

    /// Lifts a ban in memory and forgets the key's state.
    pub fn lift(&self, key: &str) -> bool {
        let lifted = self.bans.remove(self.hasher.hash_one(key)).is_some();
        self.reset(key);
        lifted
    }

    /// The bans this limiter enforces now.
    pub fn bans(&self) -> Vec<BanRecord> {
        self.bans
            .iter()
            .map(|entry| BanRecord {
                limiter: self.name.to_owned(),
                key: entry.key.to_string(),
                reason: entry.reason.to_owned(),
                created_at: entry.created_at,
            })
            .collect()
    }

    /// Drops keys that are back at a full bucket and blocks that have ended, and gives the
    /// memory back.
    pub fn prune(&self) {
        self.gcra.retain_recent();
        self.gcra.shrink_to_fit();
        let now = self.clock.now_ms();
        self.blocks.retain(|_, block| block.until_ms > now);
    }

    /// Keys with rate state (for tests and the memory benchmark).
    pub fn tracked_keys(&self) -> usize {
        self.gcra.len()
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
