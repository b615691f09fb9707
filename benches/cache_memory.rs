//! Memory per cached token record with 1,000,000 tokens in the verification cache.
//! Run: `cargo bench --bench cache_memory` (prints bytes/record; figures in the README).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use iam_tokens::domain::{Digest, IpRestriction, Privilege};
use iam_tokens::service::{CacheConfig, CachedToken, VerificationCache};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::live;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tokens = if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        10_000
    };
    let cache = VerificationCache::new(CacheConfig {
        ttl: Duration::from_secs(5),
        negative_ttl: Duration::from_secs(5),
        max_entries: tokens + 1,
        max_stale: None,
    });
    let now = Utc::now();
    let digests: Vec<Digest> = (0..tokens)
        .map(|i| Digest::of(&format!("key-{i}")))
        .collect();
    let before = live();
    for (i, digest) in digests.iter().enumerate() {
        let token = CachedToken {
            id: i as u64,
            user_id: iam_tokens::domain::UserId::new((i % 1000 + 1) as u64).unwrap(),
            name: format!("service token {i}").into_boxed_str(),
            created_at: now,
            expires_at: Some(now),
            last_used: Some(now),
            usage_count: i as u64,
            privilege: Privilege::Restricted,
            ip_restriction: IpRestriction::unrestricted(),
            metadata: Default::default(),
            enabled: true,
            replaced: None,
            roles: Box::default(),
            grants: CachedToken::no_grants(),
            plan: None,
        };
        cache.put(
            digest.to_bytes(),
            Some(Arc::new(token)),
            now.timestamp_millis(),
            cache.generation(),
        );
    }
    let after = live();
    println!(
        "memory per cached token record: {:.1} bytes ({tokens} records, {} bytes in all)",
        (after - before) as f64 / tokens as f64,
        after - before
    );
    assert_eq!(cache.len(), tokens);
}
