//! The GCRA state of every tracked key, in a map we own so keys can be reset and pruned.
//!
//! Keys are 64-bit keyed hashes (SipHash with a per-process random seed) of the limiter key:
//! 8 bytes instead of a heap string, no allocation per check, and no way for a client to
//! aim collisions at someone else's bucket.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;

/// The keys are already uniform hashes: hashing them again would only cost time.
#[derive(Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

pub type HashedMap<V> = DashMap<u64, V, BuildHasherDefault<PassThroughHasher>>;

/// Theoretical arrival times per key (0 = never seen), shared with governor's `RateLimiter`.
#[derive(Clone, Default)]
pub struct KeyStates(Arc<CountedMap<AtomicU64>>);

impl KeyStates {
    pub fn remove(&self, key: u64) {
        self.0.remove(key);
    }

    /// No key has rate state (one atomic load).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl StateStore for KeyStates {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.0.get(*key) {
            return measure_and_replace_one(&state, f);
        }
        let state = self.0.get_or_insert_with(*key, AtomicU64::default);
        measure_and_replace_one(&state, f)
    }
}

/// governor's compare-and-swap loop: the decision is retried until it applies atomically.
fn measure_and_replace_one<T, F, E>(state: &AtomicU64, f: F) -> Result<T, E>
where
    F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
{
    let mut prev = state.load(Ordering::Acquire);
    let mut decision = f((prev != 0).then(|| Nanos::from(prev)));
    while let Ok((result, new_data)) = decision {
        match state.compare_exchange_weak(
            prev,
            u64::from(new_data),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(result),
            Err(next) => prev = next,
        }
        decision = f((prev != 0).then(|| Nanos::from(prev)));
    }
    decision.map(|(result, _)| result)
}

impl ShrinkableKeyedStateStore<u64> for KeyStates {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = u64::from(drop_below);
        self.0
            .retain(|_, state| state.load(Ordering::Relaxed) > drop_below);
    }

    fn shrink_to_fit(&self) {
        // `retain` already gave the memory back.
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A `HashedMap` that knows cheaply whether it is empty (`DashMap::is_empty` locks every
/// shard), so the common "nobody is blocked" path costs one atomic load.
pub struct CountedMap<V> {
    map: HashedMap<V>,
    len: std::sync::atomic::AtomicUsize,
}

impl<V> Default for CountedMap<V> {
    fn default() -> Self {
        Self {
            map: HashedMap::default(),
            len: Default::default(),
        }
    }
}

impl<V> CountedMap<V> {
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn get(&self, key: u64) -> Option<dashmap::mapref::one::Ref<'_, u64, V>> {
        if self.is_empty() {
            return None;
        }
        self.map.get(&key)
    }

    pub fn get_mut(&self, key: u64) -> Option<dashmap::mapref::one::RefMut<'_, u64, V>> {
        self.map.get_mut(&key)
    }

    pub fn contains_key(&self, key: u64) -> bool {
        !self.is_empty() && self.map.contains_key(&key)
    }

    /// The entry for `key`, made with `make` when absent.
    pub fn get_or_insert_with(
        &self,
        key: u64,
        make: impl FnOnce() -> V,
    ) -> dashmap::mapref::one::RefMut<'_, u64, V> {
        match self.map.entry(key) {
            dashmap::Entry::Occupied(entry) => entry.into_ref(),
            dashmap::Entry::Vacant(entry) => {
                self.len.fetch_add(1, Ordering::AcqRel);
                entry.insert(make())
            }
        }
    }

    pub fn remove(&self, key: u64) -> Option<V> {
        let removed = self.map.remove(&key).map(|(_, v)| v);
        if removed.is_some() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        removed
    }

    pub fn retain(&self, mut keep: impl FnMut(&u64, &mut V) -> bool) {
        let removed = std::sync::atomic::AtomicUsize::new(0);
        self.map.retain(|key, value| {
            let kept = keep(key, value);
            if !kept {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            kept
        });
        self.len.fetch_sub(removed.into_inner(), Ordering::AcqRel);
        self.map.shrink_to_fit();
    }

    pub fn iter(&self) -> dashmap::iter::Iter<'_, u64, V, BuildHasherDefault<PassThroughHasher>> {
        self.map.iter()
    }
}
