//! The verification cache: token records by digest, so a verification costs a hash and a map
//! lookup, not a database round trip. Unknown digests are cached too (negatively), so a flood
//! of made-up keys reaches the database at most once per key per `negative_ttl`.
//!
//! A token's effective permissions are resolved into its entry. A role change bumps one
//! generation counter instead of visiting entries: an entry of a token holding roles that was
//! loaded under an older generation is stale, so the next verification of each such token
//! reads it again — at once, for every token holding a role, with no scan.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::domain::access::{Grants, RoleName};
use crate::domain::quota::QuotaPlan;
use crate::domain::{IpRestriction, Metadata, Privilege, UserId};
use crate::store::TokenRecord;

/// What verification needs of a token, and nothing else (the cache holds many of them).
#[derive(Debug, Clone, PartialEq)]
pub struct CachedToken {
    pub id: u64,
    pub user_id: UserId,
    pub name: Box<str>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub privilege: Privilege,
    pub ip_restriction: IpRestriction,
    pub metadata: Metadata,
    /// Neither it nor its owner is disabled (SPEC B10).
    pub enabled: bool,
    /// Its replacement, while it verifies during a grace rotation (SPEC B10); boxed, since
    /// few cached tokens have one and every cached token carries the field.
    pub replaced: Option<Box<crate::domain::record::Replaced>>,
    /// Sorted.
    pub roles: Box<[RoleName]>,
    /// Direct grants ∪ its roles' grants, as loaded.
    pub grants: Arc<Grants>,
    /// Its limits and credits and its owner's (SPEC B5); `None` when neither has any.
    pub plan: Option<Arc<QuotaPlan>>,
}

impl CachedToken {
    /// Whose limits and credits it charges: its own, or its replacement's during a grace
    /// rotation (one budget per lineage).
    pub fn quota_subject(&self) -> u64 {
        self.replaced
            .as_ref()
            .map_or(self.id, |replaced| replaced.by)
    }

    /// `None` for a row that can never verify (revoked, rotated away, expired earlier).
    pub fn from_record(record: TokenRecord) -> Option<Self> {
        record.valid.then(|| Self {
            plan: QuotaPlan::of(&record.quota, &record.owner_quota),
            grants: if record.access.is_empty() {
                Self::no_grants()
            } else {
                Arc::new(record.access.effective())
            },
            enabled: record.state.enabled(),
            replaced: record.replaced.map(Box::new),
            roles: record.access.roles.into_boxed_slice(),
            id: record.id,
            user_id: record.user_id,
            name: record.name.into_boxed_str(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used: record.last_used,
            usage_count: record.usage_count,
            privilege: record.privilege,
            ip_restriction: record.ip_restriction,
            metadata: record.metadata,
        })
    }

    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The grants of a token that holds nothing: one shared value, not one per cache entry.
    pub fn no_grants() -> Arc<Grants> {
        static NONE: std::sync::LazyLock<Arc<Grants>> = std::sync::LazyLock::new(Arc::default);
        NONE.clone()
    }
}

/// A cached lookup: the token, or the knowledge that no valid token has this digest.
pub type Lookup = Option<Arc<CachedToken>>;

#[derive(Clone)]
struct Entry {
    lookup: Lookup,
    loaded_ms: i64,
    /// The role generation when the store was read for it.
    generation: u64,
}

impl Entry {
    /// Loaded before a role change that may concern it.
    fn behind(&self, generation: u64) -> bool {
        self.generation != generation
            && self
                .lookup
                .as_ref()
                .is_some_and(|token| !token.roles.is_empty())
    }
}

/// Freshness rules of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub negative_ttl: Duration,
    pub max_entries: usize,
    /// How old an entry may be and still answer while the store is down (`None` = never).
    pub max_stale: Option<Duration>,
}

/// Digest → lookup. Every mutation made through this process removes its entry at once.
/// Hashed with foldhash under a per-process random seed: several times cheaper than SipHash on
/// the hot path, and callers who choose keys still cannot aim at one bucket without the seed.
pub struct VerificationCache {
    entries: DashMap<[u8; 32], Entry, foldhash::fast::RandomState>,
    config: CacheConfig,
    /// Which eighth of the digests the next eviction drops (rotates, so evictions spread).
    next_victim: std::sync::atomic::AtomicU8,
    /// Bumped by every role change made through this process.
    generation: std::sync::atomic::AtomicU64,
}

/// Result of asking the cache.
pub enum Cached {
    Fresh(Lookup),
    /// Present but past its TTL: reload, and fall back to it if the store is down.
    Stale(Lookup),
    Missing,
}

impl VerificationCache {
    pub fn new(config: CacheConfig) -> Self {
        Self {
            entries: DashMap::default(),
            config,
            next_victim: Default::default(),
            generation: Default::default(),
        }
    }

    /// The role generation: read it before reading the store for an entry.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A role changed: every entry of a token holding roles is stale from now on.
    pub fn roles_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn get(&self, digest: &[u8; 32], now_ms: i64) -> Cached {
        let Some(entry) = self.entries.get(digest) else {
            return Cached::Missing;
        };
        let ttl = if entry.lookup.is_some() {
            self.config.ttl
        } else {
            self.config.negative_ttl
        };
        if now_ms - entry.loaded_ms < millis(ttl) && !entry.behind(self.generation()) {
            Cached::Fresh(entry.lookup.clone())
        } else {
            Cached::Stale(entry.lookup.clone())
        }
    }

    /// A stale positive entry still young enough to answer during an outage.
    pub fn usable_while_down(&self, digest: &[u8; 32], now_ms: i64) -> Option<Arc<CachedToken>> {
        let max_stale = self.config.max_stale?;
        let entry = self.entries.get(digest)?;
        let token = entry.lookup.clone()?;
        (now_ms - entry.loaded_ms <= millis(max_stale)).then_some(token)
    }

    /// Caches what the store answered for this digest (raw SHA-256 bytes, as every cache
    /// method takes it), loaded at `now_ms` on the monotonic clock, read under the role
    /// `generation` taken before the store was asked.
    pub fn put(&self, digest: [u8; 32], lookup: Lookup, now_ms: i64, generation: u64) {
        if self.entries.len() >= self.config.max_entries {
            self.make_room(now_ms);
        }
        self.entries.insert(
            digest,
            Entry {
                lookup,
                loaded_ms: now_ms,
                generation,
            },
        );
    }

    /// Records a use written straight to the store (synchronous counting), so that answers
    /// that do not count (metadata snapshots) show it before the entry is reloaded.
    pub fn note_usage(&self, digest: &[u8; 32], count: u64, last_used: DateTime<Utc>) {
        if let Some(mut entry) = self.entries.get_mut(digest) {
            if let Some(token) = &entry.lookup {
                if token.usage_count < count {
                    let updated = CachedToken {
                        usage_count: count,
                        last_used: Some(last_used),
                        ..(**token).clone()
                    };
                    entry.lookup = Some(Arc::new(updated));
                }
            }
        }
    }

    /// Forgets a digest: the next verification reads the store.
    pub fn invalidate(&self, digest: &[u8; 32]) {
        self.entries.remove(digest);
    }

    /// Forgets every digest (changes may have been missed: Redis was out of reach).
    pub fn clear(&self) {
        self.entries.clear();
        self.entries.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops expired entries, then eighths of the rest (by digest) until there is room for one
    /// more: a bound, never exceeded.
    fn make_room(&self, now_ms: i64) {
        use std::sync::atomic::Ordering;
        let keep_for = millis(self.config.ttl.max(self.config.negative_ttl));
        self.entries.retain(|_, e| now_ms - e.loaded_ms < keep_for);
        while self.entries.len() >= self.config.max_entries {
            let victim = self.next_victim.fetch_add(1, Ordering::Relaxed) & 7;
            self.entries.retain(|key, _| key[0] & 7 != victim);
        }
        self.entries.shrink_to_fit();
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
