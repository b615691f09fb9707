//! What writing the outbox row costs a change (SPEC B12, issue 29): the latency of creating a
//! token (the owner's lock, the count, the insert, its audit row and, since issue 29, its
//! outbox row, in one transaction), sequentially, on MariaDB and on SQLite. It uses only what
//! existed before issue 29, so the same bench runs at the commit before it (copy it and
//! `support/stores.rs` into a worktree of that commit) for the before/after pair.
//! Run: `cargo bench --bench admin_create` (200 creations under `cargo test`, 2,000 with
//! `--bench`); `ROUNDS=n` alternates n rounds per store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iam_tokens::domain::{Privilege, TokenName, UserId};
use iam_tokens::service::CreateToken;
use iam_tokens::store::TokenStore;
use iam_tokens::{SystemClock, TokenService};
#[path = "support/stores.rs"]
mod stores;

fn creations() -> usize {
    match std::env::args().any(|arg| arg == "--bench") {
        true => 2_000,
        false => 200,
    }
}

/// Median, p90 and p99 of `samples`, in µs.
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    format!(
        "p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs",
        at(0.5),
        at(0.9),
        at(0.99)
    )
}

async fn creations_on(name: &str, store: Arc<dyn TokenStore>) {
    let service = TokenService::new(store, Arc::new(SystemClock), 1_000_000);
    let mut samples = Vec::with_capacity(creations());
    for i in 0..creations() {
        // 50 owners, so that each creation takes an owner's lock and counts a short list.
        let owner = UserId::new(1 + (i % 50) as u64).unwrap();
        let request = CreateToken::new(owner, Privilege::Full, TokenName::parse("bench").unwrap());
        let started = Instant::now();
        let created = service.create(request).await;
        samples.push(started.elapsed());
        assert!(created.is_ok(), "creation {i} failed");
    }
    println!(
        "admin create, {name}: {} creations, {}",
        samples.len(),
        percentiles(samples)
    );
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..rounds {
            for bench in [stores::mysql(4).await, stores::sqlite().await] {
                creations_on(bench.name, bench.store.clone()).await;
                bench.remove().await;
            }
        }
    });
}
