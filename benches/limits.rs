//! Cost of one rate-limit check: a single limiter, the general union, the full management guard.
//! Run: `cargo bench --bench limits` (figures in the README).

use std::collections::hash_map::RandomState;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::limits::{GovernorClock, Limiter, LimiterConfig, Limits, NewBans, Operation};
use iam_tokens::store::{Audit, BanRecord, BanStore, StoreError};
use iam_tokens::{Settings, SystemClock};

/// Bans are never reached in these benches.
struct NoBans;

#[async_trait]
impl BanStore for NoBans {
    async fn insert_ban(&self, _: &BanRecord) -> Result<(), StoreError> {
        Ok(())
    }
    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn delete_ban(&self, _: &str, _: &str, _: &Audit) -> Result<bool, StoreError> {
        Ok(false)
    }
}

fn generous_limiter() -> Limiter {
    let config = LimiterConfig {
        points: NonZeroU32::new(u32::MAX).unwrap(),
        duration: Duration::from_secs(1),
        block_duration: Duration::from_secs(60),
    };
    Limiter::new(
        "bench",
        config,
        2,
        GovernorClock(Arc::new(SystemClock)),
        RandomState::new(),
        NewBans::default(),
    )
}

fn generous_limits() -> Limits {
    let mut settings = Settings::defaults().unwrap().rate_limiters;
    let limits = &mut settings.api_tokens_limiters;
    limits.general_union_limiter.burst_limiter.points = u32::MAX;
    limits.general_union_limiter.slow_limiter.points = u32::MAX;
    limits
        .operation_rate_limits
        .get_metadata_token_limiter
        .points = u32::MAX;
    Limits::new(&settings, false, Arc::new(SystemClock), Arc::new(NoBans))
}

fn bench_checks(c: &mut Criterion) {
    let limiter = generous_limiter();
    c.bench_function("single limiter check (one hot key)", |b| {
        b.iter(|| black_box(limiter.check(black_box("203.0.113.7_42"))))
    });
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("10.0.{}.{}_7", i / 256, i % 256))
        .collect();
    let mut i = 0;
    c.bench_function("single limiter check (10k keys)", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(limiter.check(&keys[i]))
        })
    });
    let limits = generous_limits();
    c.bench_function("general union check (burst + slow)", |b| {
        b.iter(|| black_box(now(limits.management(black_box("203.0.113.7"), false))))
    });
    c.bench_function("full management guard (union + operation + reset)", |b| {
        b.iter(|| {
            let ip = black_box("203.0.113.7");
            black_box(now(limits.management(ip, false)));
            black_box(now(limits.operation(
                Operation::Metadata,
                ip,
                iam_tokens::domain::UserId::new(42).unwrap(),
            )));
            now(limits.management_succeeded(ip));
        })
    });
}

/// Without Redis a decision does no I/O: its future is ready when first polled.
fn now<T>(decision: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(decision).expect("no I/O without Redis")
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_checks
}
criterion_main!(benches);
