//! Cost of one abuse-limiter decision in Redis (SPEC B6: one Lua script, one round trip), for
//! one limiter and for the union of two on one key, next to the same decision in memory
//! (`Limiter::check`). Limits are generous, so every decision is allowed. Redis on
//! 127.0.0.1:6379 (scripts/services.sh), under a fresh key prefix deleted at the end.
//! Run: `cargo bench --bench shared_limits`.

#[path = "support/redis_keys.rs"]
mod redis_keys;

use std::collections::hash_map::RandomState;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::limits::{
    GovernorClock, Limiter, LimiterConfig, NewBans, SharedAnswer, SharedState,
};
use iam_tokens::secret::Secret;
use iam_tokens::shared::Redis;
use iam_tokens::telemetry::Metrics;
use iam_tokens::{Clock, Settings, SystemClock};

const REDIS: &str = "redis://127.0.0.1:6379";
const KEY: &str = "203.0.113.7_42";

fn generous_limiter(name: &'static str) -> Limiter {
    let config = LimiterConfig {
        points: NonZeroU32::new(u32::MAX).unwrap(),
        duration: Duration::from_secs(1),
        block_duration: Duration::from_secs(60),
    };
    Limiter::new(
        name,
        config,
        2,
        GovernorClock(Arc::new(SystemClock)),
        RandomState::new(),
        NewBans::default(),
    )
}

/// A current-thread runtime, as the other benches use; `SHARED_LIMITS_RUNTIME=multi` picks a
/// multi-thread one (two workers: the connection's driver task runs apart from the caller).
fn runtime() -> tokio::runtime::Runtime {
    let mut builder = match std::env::var("SHARED_LIMITS_RUNTIME").as_deref() {
        Ok("multi") => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build().unwrap()
}

fn bench_shared(c: &mut Criterion) {
    let runtime = runtime();
    let prefix = format!("iam_bench_{}:", uuid::Uuid::new_v4().simple());
    let mut settings = Settings::defaults().unwrap().redis;
    settings.url = Secret::new(REDIS);
    settings.key_prefix = prefix.clone();
    let redis = runtime.block_on(async {
        let redis = Redis::open(
            &settings,
            Metrics::disabled().redis(),
            std::sync::Arc::new(iam_tokens::SystemClock),
        )
        .expect("Redis URL");
        redis.probe().await.expect("Redis on 127.0.0.1:6379");
        // The subscription task marks Redis up in an application; here nothing else does.
        redis.health().recovered();
        redis
    });
    let shared = SharedState::new(redis.clone());
    let clock = SystemClock;
    let now_ms = || clock.now().timestamp_millis();
    let burst = generous_limiter("burst_limiter");
    let slow = generous_limiter("slow_limiter");

    // The first call loads the script (NOSCRIPT, then EVAL); every later one is an EVALSHA.
    let first = runtime.block_on(shared.decide(&[&burst, &slow], KEY, now_ms(), 2));
    assert_eq!(
        first,
        Ok(vec![SharedAnswer::Allowed, SharedAnswer::Allowed]),
        "generous limits allow"
    );

    let decide = |limiters: &[&Limiter]| {
        let answer = runtime
            .block_on(shared.decide(black_box(limiters), black_box(KEY), now_ms(), 2))
            .expect("Redis answers");
        debug_assert!(answer.iter().all(|a| *a == SharedAnswer::Allowed));
        answer
    };
    // The floor of any call through this link: one PING, same connection, same timeout.
    let ping = redis::cmd("PING");
    c.bench_function("redis: PING through the same link", |b| {
        b.iter(|| {
            runtime
                .block_on(redis.query::<String>("ping", black_box(&ping)))
                .expect("PONG")
        })
    });
    c.bench_function("redis: one limiter decision", |b| {
        b.iter(|| decide(&[&burst]))
    });
    c.bench_function("redis: union decision (burst + slow, one key)", |b| {
        b.iter(|| decide(&[&burst, &slow]))
    });
    c.bench_function("memory: one limiter check", |b| {
        b.iter(|| black_box(burst.check(black_box(KEY))))
    });
    c.bench_function("memory: union check (burst + slow)", |b| {
        b.iter(|| {
            let key = black_box(KEY);
            black_box(burst.check(key).and(slow.check(key)))
        })
    });

    // Still allowed after every iteration above.
    let last = runtime.block_on(shared.decide(&[&burst, &slow], KEY, now_ms(), 2));
    assert_eq!(last, Ok(vec![SharedAnswer::Allowed, SharedAnswer::Allowed]));
    let deleted = runtime.block_on(redis_keys::delete_prefix(&redis, &prefix));
    eprintln!("cleanup: deleted {deleted} Redis key(s) under {prefix}");
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_shared
}
criterion_main!(benches);
