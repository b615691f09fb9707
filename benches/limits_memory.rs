//! Memory per tracked key after 1,000,000 distinct keys, and after pruning.
//! Run: `cargo bench --bench limits_memory` (prints bytes/key; figures in the README).

use std::collections::hash_map::RandomState;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use iam_tokens::clock::ManualClock;
use iam_tokens::limits::{GovernorClock, Limiter, LimiterConfig, NewBans};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::live;

const KEYS: usize = 1_000_000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --all-targets` lists benches; nothing to list here.
    }
    let clock = Arc::new(ManualClock::starting_now());
    let config = LimiterConfig {
        points: NonZeroU32::new(5).unwrap(),
        duration: Duration::from_secs(600),
        block_duration: Duration::from_secs(3600),
    };
    let limiter = Limiter::new(
        "memory",
        config,
        2,
        GovernorClock(clock.clone()),
        RandomState::new(),
        NewBans::default(),
    );
    let keys = if std::env::args().any(|a| a == "--bench") {
        KEYS
    } else {
        10_000
    };
    let empty = live();
    for i in 0..keys {
        limiter.check(&format!(
            "{}.{}.{}.{}_{}",
            10,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            i
        ));
    }
    let full = live();
    let per_key = (full - empty) as f64 / keys as f64;
    println!("tracked keys: {}", limiter.tracked_keys());
    println!(
        "memory per tracked key: {per_key:.1} bytes ({keys} keys, {} bytes in all)",
        full - empty
    );
    clock.advance(config.duration + Duration::from_secs(1));
    limiter.prune();
    let pruned = live();
    println!(
        "after pruning idle keys: {} bytes above the empty state ({} keys left)",
        pruned - empty,
        limiter.tracked_keys()
    );
}
