//! What metrics cost one public verification: the request counter, the verification counter,
//! the latency sample (two clock reads and a histogram push) and the cache counter. The bound
//! is ~50 ns (issue 13). Run: `cargo bench --bench metrics`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::http::request_series;
use iam_tokens::telemetry::metrics::{CacheResult, VerifyResult, VerifyRoute};
use iam_tokens::telemetry::Metrics;

fn bench_metrics(c: &mut Criterion) {
    let metrics = Metrics::new(request_series());
    // Upkeep folds the samples into buckets as the application does every few seconds.
    let upkeep = metrics.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        upkeep.upkeep();
    });
    c.bench_function("metrics: one public verification's series", |b| {
        b.iter(|| {
            let timer = metrics.verify_timer();
            metrics.cache(black_box(CacheResult::Hit));
            metrics.verification(VerifyRoute::Public, black_box(VerifyResult::Valid));
            metrics.verify_latency(timer);
            metrics.request(black_box(0), black_box(200));
        })
    });
    c.bench_function("metrics: part: counters only", |b| {
        b.iter(|| {
            metrics.cache(black_box(CacheResult::Hit));
            metrics.verification(VerifyRoute::Public, black_box(VerifyResult::Valid));
            metrics.request(black_box(0), black_box(200));
        })
    });
    c.bench_function(
        "metrics: part: timed sample (clock pair + histogram)",
        |b| b.iter(|| metrics.verify_latency(Some(black_box(quanta::Instant::now())))),
    );
    let atomic = std::sync::atomic::AtomicU64::new(0);
    c.bench_function("metrics: bound: three relaxed atomic adds", |b| {
        b.iter(|| {
            for _ in 0..3 {
                black_box(&atomic).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    let disabled = Metrics::disabled();
    c.bench_function("metrics: the same, disabled (library)", |b| {
        b.iter(|| {
            disabled.cache(black_box(CacheResult::Hit));
            disabled.verification(VerifyRoute::Public, black_box(VerifyResult::Valid));
            disabled.request(black_box(0), black_box(200));
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_metrics
}
criterion_main!(benches);
