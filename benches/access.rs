//! The permission query (issue 14): parse and evaluate a 10-name query against 100 effective
//! permissions (target ≤ 1 µs), and a role change against 100,000 cached holders: the
//! generation bump, and the next lookup of a holder (which finds its entry stale, with no scan).
//! Run: `cargo bench --bench access`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::domain::access::{Grant, Grants, Query};

fn bench_access(c: &mut Criterion) {
    let mut granted: Vec<Grant> = (0..95)
        .map(|n| Grant::parse(&format!("service{}.resource{}.read", n % 10, n)).unwrap())
        .collect();
    for prefix in [
        "billing.*",
        "projects.*",
        "admin.audit.*",
        "teams.*",
        "ops.*",
    ] {
        granted.push(Grant::parse(prefix).unwrap());
    }
    let grants = Grants::new(granted);
    let text = "(service1.resource11.read AND service2.resource12.read) OR \
                (projects.write AND NOT admin.delete) OR billing.invoices.read AND \
                (teams.x OR ops.y OR service9.resource99.read) AND NOT nope.* AND service0.resource0.read";
    let names = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty() && !["AND", "OR", "NOT"].contains(w))
        .count();
    assert_eq!(names, 10, "a 10-name query");
    c.bench_function(
        "access: parse + evaluate, 10 names vs 100 permissions",
        |b| {
            b.iter(|| {
                Query::parse(black_box(text))
                    .unwrap()
                    .holds(black_box(&grants))
            })
        },
    );
    c.bench_function(
        "access: check the text directly (parse and evaluate in one pass)",
        |b| b.iter(|| Query::check(black_box(text), black_box(&grants)).unwrap()),
    );
    let query = Query::parse(text).unwrap();
    c.bench_function("access: evaluate only", |b| {
        b.iter(|| black_box(&query).holds(black_box(&grants)))
    });
}

/// 100,000 cached tokens holding a role: what a role change costs the cache.
fn bench_role_change(c: &mut Criterion) {
    use iam_tokens::domain::access::RoleName;
    use iam_tokens::domain::{Digest, IpRestriction, Privilege, UserId};
    use iam_tokens::service::{CacheConfig, Cached, CachedToken, VerificationCache};
    use std::sync::Arc;
    let holders = 100_000;
    let cache = VerificationCache::new(CacheConfig {
        ttl: Duration::from_secs(3600),
        negative_ttl: Duration::from_secs(3600),
        max_entries: holders + 1,
        max_stale: None,
    });
    let grants = Arc::new(Grants::new([Grant::parse("projects.*").unwrap()]));
    let now = chrono::Utc::now();
    let digests: Vec<[u8; 32]> = (0..holders)
        .map(|i| Digest::of(&format!("key-{i}")).to_bytes())
        .collect();
    for (i, digest) in digests.iter().enumerate() {
        let token = CachedToken {
            id: i as u64,
            user_id: UserId::new(1).unwrap(),
            name: "holder".into(),
            created_at: now,
            expires_at: None,
            last_used: None,
            usage_count: 0,
            privilege: Privilege::Full,
            ip_restriction: IpRestriction::unrestricted(),
            metadata: Default::default(),
            enabled: true,
            replaced: None,
            roles: vec![RoleName::parse("pro").unwrap()].into_boxed_slice(),
            grants: grants.clone(),
            plan: None,
        };
        cache.put(*digest, Some(Arc::new(token)), 0, cache.generation());
    }
    assert_eq!(cache.len(), holders);
    c.bench_function(
        "access: role change with 100,000 cached holders (generation bump)",
        |b| b.iter(|| cache.roles_changed()),
    );
    let mut next = 0;
    c.bench_function(
        "access: a holder's next lookup after the change (finds it stale)",
        |b| {
            b.iter(|| {
                next = (next + 1) % holders;
                let stale = matches!(cache.get(black_box(&digests[next]), 1), Cached::Stale(_));
                assert!(stale);
            })
        },
    );
    cache.put(digests[0], None, 1, cache.generation());
    c.bench_function("access: a fresh lookup, for comparison", |b| {
        b.iter(|| matches!(cache.get(black_box(&digests[0]), 1), Cached::Fresh(_)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_access, bench_role_change
}
criterion_main!(benches);
