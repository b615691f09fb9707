//! How fast a revocation reaches the other instances (SPEC B6): three `Application`s in one
//! process share one MariaDB database and one Redis (127.0.0.1:6379, a fresh key prefix).
//! 1,000 tokens (50 users × 20) are verified over HTTP on instances B and C, so both cache them
//! (cache TTL 1 h: the TTL can never be what refuses). Then, token by token: B and C must still
//! answer 200, the token is revoked in process through instance A (`TokenService::revoke`, which
//! commits, drops A's copy and publishes the digest), t0 is taken when that call returns, and B
//! and C are polled concurrently in a tight loop (reqwest, keep-alive) until each answers 401.
//! A measurement is the first refusal's arrival − t0; the invalidation itself happened between
//! the sending of the last poll answered 200 (the lower bound printed) and that arrival, so the
//! poll round trip is the resolution. The refused poll is a cache miss (a MariaDB read), so a
//! measurement is the notice's travel plus that read: both are printed apart.
//! Needs MariaDB on 127.0.0.1:3306 and Redis on 127.0.0.1:6379 (scripts/services.sh).
//! Run: `cargo bench --bench revocation` (target: p99 ≤ 100 ms).

#[path = "support/redis_keys.rs"]
mod redis_keys;

use std::time::{Duration, Instant};

use iam_tokens::domain::{Privilege, TokenName, UserId};
use iam_tokens::secret::Secret;
use iam_tokens::service::{CreateToken, RevokeData};
use iam_tokens::telemetry::Metrics;
use iam_tokens::{Application, Settings, TokenService};
use mysql_async::prelude::*;

const SERVER: &str = "mysql://root@127.0.0.1:3306";
const REDIS: &str = "redis://127.0.0.1:6379";
const TOKENS_PER_USER: u64 = 20;

/// 50 users (1,000 tokens) under `cargo bench`; 2 (40 tokens) when `cargo test --all-targets`
/// runs the bench as a test (without `--bench`), so that the suite only proves it works.
fn users() -> u64 {
    if std::env::args().any(|arg| arg == "--bench") {
        50
    } else {
        2
    }
}
/// A measurement that has not seen a refusal by then is a failure.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Drops the database and the prefix's Redis keys when the bench ends, even on a panic.
struct Cleanup {
    db: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (db, prefix) = (self.db.clone(), self.prefix.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = mysql_async::Conn::from_url(SERVER).await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
                        .await;
                    let _ = conn.disconnect().await;
                }
                let deleted = delete_prefix(&prefix).await;
                eprintln!(
                    "cleanup: dropped database {db}, deleted {deleted} Redis key(s) under {prefix}"
                );
            });
        })
        .join();
    }
}

/// Deletes every key under `prefix`; the number deleted.
async fn delete_prefix(prefix: &str) -> usize {
    let mut settings = Settings::defaults().expect("defaults").redis;
    settings.url = Secret::new(REDIS);
    settings.key_prefix = prefix.to_owned();
    let Ok(redis) = iam_tokens::shared::Redis::open(
        &settings,
        Metrics::disabled().redis(),
        std::sync::Arc::new(iam_tokens::SystemClock),
    ) else {
        return 0;
    };
    if redis.probe().await.is_err() {
        return 0;
    }
    redis.health().recovered();
    redis_keys::delete_prefix(&redis, prefix).await
}

struct Instance {
    base: String,
    tokens: TokenService,
}

async fn start(settings: &Settings) -> Instance {
    let app = Application::build(settings.clone())
        .await
        .expect("application builds (MariaDB on 127.0.0.1:3306, Redis on 127.0.0.1:6379)");
    let instance = Instance {
        base: format!("http://127.0.0.1:{}", app.port()),
        tokens: app.tokens().clone(),
    };
    tokio::spawn(app.run_until_stopped());
    instance
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4)
        .build()
        .expect("client")
}

async fn verify(client: &reqwest::Client, url: &str, key: &str) -> u16 {
    let response = client
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .expect("verify request");
    let status = response.status().as_u16();
    let _ = response.bytes().await.expect("verify body");
    status
}

/// One instance's wait for the refusal, from t0.
struct Poll {
    /// Arrival of the first 401 − t0.
    refused: Duration,
    /// Sending of the last poll answered 200 − t0 (zero when the first poll was refused): the
    /// invalidation happened after this.
    lower: Duration,
    polls: u32,
    /// Round trip of the refused poll: a cache miss, so a MariaDB read on B or C.
    refusing: Duration,
    /// Round trips of the polls answered 200.
    round_trips: Vec<Duration>,
}

async fn poll_until_refused(client: &reqwest::Client, url: &str, key: &str, t0: Instant) -> Poll {
    let mut lower = Duration::ZERO;
    let mut polls = 0;
    let mut round_trips = Vec::new();
    loop {
        let sent = Instant::now();
        let status = verify(client, url, key).await;
        let arrived = Instant::now();
        polls += 1;
        match status {
            401 => {
                return Poll {
                    refused: arrived - t0,
                    lower,
                    polls,
                    refusing: arrived - sent,
                    round_trips,
                }
            }
            200 => {
                lower = sent - t0;
                round_trips.push(arrived - sent);
                assert!(arrived - t0 < GIVE_UP, "{url}: still 200 after {GIVE_UP:?}");
            }
            other => panic!("{url}: unexpected status {other} while polling"),
        }
    }
}

async fn ready_says_redis_up(client: &reqwest::Client, base: &str) {
    let body = client
        .get(format!("{base}/ready"))
        .send()
        .await
        .expect("ready")
        .text()
        .await
        .expect("ready body");
    assert!(
        body.contains(r#""redis":"up""#),
        "{base}/ready: Redis is not up: {body}"
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, values: &mut [Duration]) -> (Duration, Duration, Duration) {
    values.sort_unstable();
    let (p50, p99, max) = (
        pct(values, 50.0),
        pct(values, 99.0),
        values[values.len() - 1],
    );
    println!(
        "{label:<44} n={:<5} p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>7.3} ms",
        values.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
    (p50, p99, max)
}

#[tokio::main]
async fn main() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db = format!("iam_bench_{id}");
    let prefix = format!("iam_bench_{id}:");
    let _cleanup = Cleanup {
        db: db.clone(),
        prefix: prefix.clone(),
    };

    let mut settings = Settings::defaults().expect("defaults load");
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.database.url = Secret::new(format!("{SERVER}/{db}"));
    settings.database.max_connections = 8;
    settings.redis.url = Secret::new(REDIS);
    settings.redis.key_prefix = prefix.clone();
    settings.rate_limiters.enabled = false;
    settings.verify.cache_ttl = Duration::from_secs(3600);

    // One after the other: the first migrates the fresh database.
    let a = start(&settings).await;
    let b = start(&settings).await;
    let c = start(&settings).await;
    let (client_b, client_c) = (client(), client());
    for (client, instance) in [(&client_b, &a), (&client_b, &b), (&client_c, &c)] {
        ready_says_redis_up(client, &instance.base).await;
    }
    let url_b = format!("{}/api/public/verify?privilege=full", b.base);
    let url_c = format!("{}/api/public/verify?privilege=full", c.base);

    let created = Instant::now();
    let users = users();
    let mut keys = Vec::with_capacity((users * TOKENS_PER_USER) as usize);
    for user in 1..=users {
        for n in 0..TOKENS_PER_USER {
            let request = CreateToken::new(
                UserId::new(user).unwrap(),
                Privilege::Full,
                TokenName::parse(&format!("bench {n}")).unwrap(),
            );
            let token = a.tokens.create(request).await.outcome.expect("create");
            keys.push(token.raw_api_key);
        }
    }
    println!(
        "created {} tokens ({users} users × {TOKENS_PER_USER}) through A in {:.1} s",
        keys.len(),
        created.elapsed().as_secs_f64()
    );
    for key in &keys {
        assert_eq!(verify(&client_b, &url_b, key).await, 200, "warm B");
        assert_eq!(verify(&client_c, &url_c, key).await, 200, "warm C");
    }
    let (cached_b, cached_c) = (b.tokens.cached_tokens(), c.tokens.cached_tokens());
    println!(
        "cached after warming: B {cached_b}, C {cached_c} (of {})",
        keys.len()
    );
    assert!(
        cached_b >= keys.len() && cached_c >= keys.len(),
        "B and C must cache every token"
    );

    let mut propagation = Vec::with_capacity(keys.len() * 2);
    let mut per_instance = [Vec::new(), Vec::new()];
    let mut lower = Vec::with_capacity(keys.len() * 2);
    let mut round_trips = Vec::new();
    let mut revoke_calls = Vec::with_capacity(keys.len());
    let mut refusing = Vec::with_capacity(keys.len() * 2);
    let mut first_poll_refused = 0;
    let mut polls = 0u64;
    let started = Instant::now();
    for key in &keys {
        // Sanity: both still serve the token (from their cache) right before it is revoked.
        let sent = Instant::now();
        assert_eq!(verify(&client_b, &url_b, key).await, 200, "B before revoke");
        round_trips.push(sent.elapsed());
        let sent = Instant::now();
        assert_eq!(verify(&client_c, &url_c, key).await, 200, "C before revoke");
        round_trips.push(sent.elapsed());

        let called = Instant::now();
        let revoked = a.tokens.revoke(key, Privilege::Full).await.outcome;
        let t0 = Instant::now();
        revoke_calls.push(t0 - called);
        assert!(
            matches!(revoked, Ok(RevokeData::Revoked { .. })),
            "revoke through A: {revoked:?}"
        );
        let (on_b, on_c) = tokio::join!(
            poll_until_refused(&client_b, &url_b, key, t0),
            poll_until_refused(&client_c, &url_c, key, t0),
        );
        for (i, poll) in [on_b, on_c].into_iter().enumerate() {
            propagation.push(poll.refused);
            per_instance[i].push(poll.refused);
            lower.push(poll.lower);
            refusing.push(poll.refusing);
            first_poll_refused += usize::from(poll.polls == 1);
            round_trips.extend(poll.round_trips);
            polls += u64::from(poll.polls);
        }
    }
    let elapsed = started.elapsed();

    println!();
    println!(
        "revocation propagation, A → B and C ({} revocations, {} measurements, {:.1} s)",
        keys.len(),
        propagation.len(),
        elapsed.as_secs_f64()
    );
    println!("revoke: in process on A (TokenService::revoke: MariaDB commit, then PUBLISH queued)");
    let (_, p99, _) = summary("propagation (first 401 − t0), B and C", &mut propagation);
    summary("  on B", &mut per_instance[0]);
    summary("  on C", &mut per_instance[1]);
    summary("lower bound (last 200 sent − t0)", &mut lower);
    summary("poll round trip (verify answered 200)", &mut round_trips);
    summary(
        "refused poll round trip (miss: MariaDB read)",
        &mut refusing,
    );
    summary("revoke call on A (until t0)", &mut revoke_calls);
    println!(
        "polls per measurement: {:.2} on average; refused at the first poll: {} of {}",
        polls as f64 / propagation.len() as f64,
        first_poll_refused,
        propagation.len()
    );
    println!(
        "target p99 ≤ 100 ms: {} (p99 {:.3} ms)",
        if p99 <= Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        },
        ms(p99)
    );
}
