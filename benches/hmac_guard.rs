//! The HMAC guard of `/api/public/verify` at 10,000 signed requests per second: the cost of one
//! check (signature, window, replay memory) with the ids of 300 s of such traffic remembered,
//! and the time one second of that traffic takes, ids leaving the window as new ones arrive.
//! Run: `cargo bench --bench hmac_guard` (figures in the README).

use futures_util::FutureExt as _;
use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hmac::{Hmac, Mac};
use iam_tokens::config::HmacSettings;
use iam_tokens::http::HmacGuard;
use iam_tokens::secret::Secret;
use sha2::Sha256;

const RATE: u64 = 10_000;
const SECRET: &str = "a-shared-hmac-secret-of-at-least-32-chars";
const PATH: &str = "/api/public/verify?privilege=full";

fn guard() -> HmacGuard {
    HmacGuard::new(&HmacSettings {
        client_id: "bff".into(),
        shared_secret: Secret::new(SECRET),
        max_clock_skew: Duration::from_secs(300),
        max_remembered_ids: 5_000_000,
    })
}

/// A request signed at `at` with request id `n`, as a client sends it.
fn signed(n: u64, at: DateTime<Utc>) -> HttpRequest {
    let (timestamp, id) = (at.timestamp_millis().to_string(), format!("req-{n:016x}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("bff:{timestamp}:GET:{PATH}:{id}").as_bytes());
    TestRequest::get()
        .uri(PATH)
        .insert_header(("x-client-id", "bff"))
        .insert_header(("x-timestamp", timestamp))
        .insert_header(("x-request-id", id))
        .insert_header(("x-signature", hex::encode(mac.finalize().into_bytes())))
        .to_http_request()
}

/// Feeds `seconds` of traffic at RATE, starting at `start`; answers the next id and the time.
fn warm(guard: &HmacGuard, start: DateTime<Utc>, seconds: u64) -> (u64, DateTime<Utc>) {
    let mut n = 0;
    let mut now = start;
    for _ in 0..seconds {
        for _ in 0..RATE {
            guard
                .check(&signed(n, now), now)
                .now_or_never()
                .expect("no I/O without Redis")
                .expect("accepted");
            n += 1;
        }
        now += chrono::Duration::seconds(1);
    }
    (n, now)
}

fn bench_guard(c: &mut Criterion) {
    // `cargo bench` passes --bench; in test mode (`cargo test --all-targets`) a short warm-up.
    let full_run = std::env::args().any(|arg| arg == "--bench");
    let warm_seconds = if full_run { 300 } else { 2 };
    let guard = guard();
    let before = resident_bytes();
    let (mut n, mut now) = warm(&guard, Utc::now(), warm_seconds);
    let remembered = guard.remembered_ids();
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "remembered after {warm_seconds} s at {RATE}/s: {remembered} ids, resident memory +{} MB \
         ({} B an id)",
        grown / 1_000_000,
        grown / remembered.max(1) as u64
    );

    let mut group = c.benchmark_group("hmac_guard");
    group.bench_function("check, 300 s of 10k/s remembered", |b| {
        b.iter_batched(
            || {
                n += 1;
                signed(n, now)
            },
            |request| {
                guard
                    .check(&request, now)
                    .now_or_never()
                    .expect("no I/O without Redis")
                    .expect("accepted")
            },
            BatchSize::SmallInput,
        )
    });
    group.sample_size(10);
    group.bench_function("one second of 10k signed requests", |b| {
        b.iter_custom(|seconds| {
            let mut spent = Duration::ZERO;
            for _ in 0..seconds {
                now += chrono::Duration::seconds(1);
                let requests: Vec<HttpRequest> = (0..RATE)
                    .map(|_| {
                        n += 1;
                        signed(n, now)
                    })
                    .collect();
                let started = Instant::now();
                for request in &requests {
                    guard
                        .check(request, now)
                        .now_or_never()
                        .expect("no I/O without Redis")
                        .expect("accepted");
                }
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
    println!("remembered at the end: {} ids", guard.remembered_ids());
}

/// The process's resident set (Linux), in bytes.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

criterion_group!(benches, bench_guard);
criterion_main!(benches);
