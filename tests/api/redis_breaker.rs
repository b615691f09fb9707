//! A slow Redis costs one call, not an outage (SPEC B6): real answers held back by the TCP
//! proxy. One late answer costs one try (the charge is tried again, and applies once); a
//! charge whose answers are all lost fails closed and is undone; answers late often enough
//! open the breaker, and it closes once they stop; a cut connection opens it at once. Three
//! instances under load with a late answer every second stay exact.
//!
//! The proxy holds only answers to `EVALSHA` (the quota scripts; the abuse limiters are off in
//! these tests), so background pings and the subscription are never held.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{json, Value};

use crate::helpers::{ops_admin, AdminToken, Answer, TestApp};
use crate::proxy::Proxy;
use crate::quotas::{align, metered, verified};
use crate::shared_instances::{
    eventually, instances_at, metric, metrics_text, redis_state, Instances, Shared,
};

const SERVER_ERROR: &str = "Server error validating token.";
const HOUR: u64 = 3_600_000;

/// `n` instances reaching Redis through a proxy that holds only quota-script answers, with
/// the `ops` admin, `timeout` and `connections` connections each.
async fn behind(n: usize, timeout: Duration, connections: usize) -> (Instances, Proxy) {
    let proxy = Proxy::start(6379).await;
    proxy.only_answers_to(b"EVALSHA");
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let fleet = instances_at(n, Shared::Single, Some(url), |settings| {
        ops_admin(settings);
        settings.redis.timeout = timeout;
        settings.redis.connections = connections;
    })
    .await;
    (fleet, proxy)
}

async fn credits_left(app: &TestApp, token: &AdminToken) -> Value {
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(view.status, 200, "{view:?}");
    view.body["credits"]["remaining"].clone()
}

async fn series(app: &TestApp, name: &str) -> f64 {
    metric(&metrics_text(app).await, name)
}

const RETRIES: &str = "iam_redis_retries_total";
const TIMEOUTS: &str = r#"iam_redis_failures_total{kind="timeout"}"#;
const VOIDED: &str = "iam_redis_voided_charges_total";
const OPENED: &str = r#"iam_redis_breaker_transitions_total{to="open"}"#;
const CLOSED: &str = r#"iam_redis_breaker_transitions_total{to="closed"}"#;

#[tokio::test]
async fn one_late_answer_costs_one_try_and_the_charge_applies_once() {
    crate::store_independent!();
    let (fleet, proxy) = behind(1, Duration::from_millis(400), 3).await;
    let app = &fleet.apps[0];
    let token = metered(app, 7, "prepaid", json!({"credits": {"remaining": 1000}})).await;
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(200, &verified(app, &token, 1), "credits leased into Redis");

    proxy.delay_next(1, Duration::from_millis(1500));
    let started = Instant::now();
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(200, &verified(app, &token, 2), "served by the second try");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "within the timeout"
    );
    assert_eq!(proxy.held(), 1);
    for uses in 3..=5 {
        let answer = app.verify(&token.key, "full").await;
        answer.assert_is(200, &verified(app, &token, uses), "the next ones");
    }
    let text = metrics_text(app).await;
    let case = "one try timed out, none of the next ones waited on the held connection";
    assert_eq!(
        (metric(&text, RETRIES), metric(&text, TIMEOUTS)),
        (1.0, 1.0),
        "{case}"
    );
    assert_eq!(metric(&text, "iam_redis_breaker_state"), 0.0, "closed");
    assert_eq!(
        credits_left(app, &token).await,
        json!(995),
        "five served, five spent"
    );

    // Once the held answer has gone by, nothing changes: the charge applied once.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(credits_left(app, &token).await, json!(995));
    assert_eq!(series(app, VOIDED).await, 0.0);
}

#[tokio::test]
async fn a_charge_whose_answers_are_all_lost_fails_closed_and_is_undone() {
    crate::store_independent!();
    let (fleet, proxy) = behind(1, Duration::from_millis(400), 3).await;
    let app = &fleet.apps[0];
    let token = metered(app, 7, "prepaid", json!({"credits": {"remaining": 1000}})).await;
    assert_eq!(app.verify(&token.key, "full").await.status, 200);

    proxy.delay_next(2, Duration::from_millis(1500));
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(401, &app.failure_now(SERVER_ERROR), "both tries held");
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(
        200,
        &verified(app, &token, 2),
        "the third connection, at once",
    );

    let undone = eventually(Duration::from_secs(10), || async {
        series(app, VOIDED).await == 1.0
    })
    .await;
    assert!(undone.is_some(), "the lost charge was voided");
    assert_eq!(
        credits_left(app, &token).await,
        json!(998),
        "two served, two spent: Redis ran the lost charge, and it was undone"
    );
    assert_eq!(
        app.usage_and_valid(token.id).await,
        (2, true),
        "the refusal is no use"
    );
}

/// Public verifications of `key` on `app` one after the other until `/ready` says Redis is
/// down (at most `most`): each answer's status and how long it took.
async fn until_down(app: &TestApp, key: &str, most: usize) -> Vec<(Answer, Duration)> {
    let mut seen = Vec::new();
    for _ in 0..most {
        let started = Instant::now();
        let answer = app.verify(key, "full").await;
        seen.push((answer, started.elapsed()));
        if redis_state(app).await == json!("down") {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn answers_held_ten_seconds_for_thirty_percent_open_the_breaker_until_they_stop() {
    crate::store_independent!();
    let (fleet, proxy) = behind(1, Duration::from_millis(200), 2).await;
    let app = &fleet.apps[0];
    let token = metered(app, 7, "prepaid", json!({"credits": {"remaining": 1000}})).await;
    let plain = metered(app, 8, "plain", json!({})).await;
    assert_eq!(app.verify(&token.key, "full").await.status, 200);
    assert_eq!(series(app, CLOSED).await, 1.0, "closed once at start");

    proxy.delay_share(30, Duration::from_secs(10));
    let seen = until_down(app, &token.key, 60).await;
    assert_eq!(
        redis_state(app).await,
        json!("down"),
        "open after {} calls",
        seen.len()
    );
    assert_eq!(series(app, OPENED).await, 1.0, "one transition");
    for (answer, took) in &seen {
        assert!(
            *took < Duration::from_secs(1),
            "within the timeout: {took:?}"
        );
        if answer.status != 200 {
            answer.assert_is(401, &app.failure_now(SERVER_ERROR), "fails closed");
        }
    }
    let served = seen.iter().filter(|(a, _)| a.status == 200).count() as u64;
    assert!(served >= 3, "the answers not held served: {served}");

    // Open: metered tokens fail closed at once, plain ones are served.
    let started = Instant::now();
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(401, &app.failure_now(SERVER_ERROR), "open: fails closed");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "no wait while open"
    );
    let answer = app.verify(&plain.key, "full").await;
    answer.assert_is(200, &verified(app, &plain, 1), "no quota, no Redis");

    proxy.delay_share(0, Duration::ZERO);
    let closed = eventually(Duration::from_secs(20), || async {
        redis_state(app).await == json!("up")
    })
    .await;
    assert!(closed.is_some(), "closed once the held answers went by");
    assert_eq!(series(app, CLOSED).await, 2.0, "and once again now");
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(200, &verified(app, &token, 2 + served), "metered again");

    // Exact: every credit spent served a verification (the lost charges were undone).
    let spent = 2 + served;
    let exact = eventually(Duration::from_secs(30), || async {
        credits_left(app, &token).await == json!(1000 - spent)
    })
    .await;
    assert!(
        exact.is_some(),
        "{} credits left after {spent} served",
        credits_left(app, &token).await
    );
}

#[tokio::test]
async fn a_cut_connection_opens_the_breaker_at_once() {
    crate::store_independent!();
    let (fleet, proxy) = behind(1, Duration::from_millis(200), 2).await;
    let app = &fleet.apps[0];
    let token = metered(app, 7, "prepaid", json!({"credits": {"remaining": 1000}})).await;
    assert_eq!(app.verify(&token.key, "full").await.status, 200);

    proxy.down().await;
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(401, &app.failure_now(SERVER_ERROR), "fails closed");
    assert_eq!(
        redis_state(app).await,
        json!("down"),
        "at once, no window to fill"
    );
    let text = metrics_text(app).await;
    assert_eq!(metric(&text, OPENED), 1.0);
    assert_eq!(metric(&text, "iam_redis_breaker_state"), 2.0);
    assert!(metric(&text, r#"iam_redis_failures_total{kind="refused"}"#) >= 1.0);

    proxy.up();
    let back = eventually(Duration::from_secs(10), || async {
        app.verify(&token.key, "full").await.status == 200
    })
    .await;
    assert!(back.is_some(), "metered again once Redis is back");
}

/// `calls` public verifications of `key` spread round-robin over `apps`, 64 at a time:
/// `(served, refused with 429 saying reason, failed closed)`.
async fn spread(apps: &[TestApp], key: &str, calls: usize, reason: &str) -> [usize; 3] {
    let requests = (0..calls).map(|n| apps[n % apps.len()].verify(key, "full"));
    let answers: Vec<Answer> = futures_util::stream::iter(requests)
        .buffer_unordered(64)
        .collect()
        .await;
    let mut counts = [0; 3];
    for answer in &answers {
        match answer.status {
            200 => counts[0] += 1,
            429 => {
                assert_eq!(answer.reason(), reason, "{answer:?}");
                counts[1] += 1;
            }
            _ => {
                assert_eq!(answer.status, 401, "{answer:?}");
                assert_eq!(answer.reason(), SERVER_ERROR, "{answer:?}");
                counts[2] += 1;
            }
        }
    }
    counts
}

/// Spends `key` over `apps` in rounds until a round, run after the voids of lost charges
/// had time to land, serves nothing more: the totals.
async fn exhaust(apps: &[TestApp], key: &str, reason: &str) -> [usize; 3] {
    let mut total = [0; 3];
    for _ in 0..20 {
        let round = spread(apps, key, 300, reason).await;
        total = [0, 1, 2].map(|i| total[i] + round[i]);
        if round[0] == 0 && round[2] == 0 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let last = spread(apps, key, 30, reason).await;
            total = [0, 1, 2].map(|i| total[i] + last[i]);
            if last[0] == 0 {
                return total;
            }
        }
    }
    panic!("{key}: still serving after 20 rounds: {total:?}");
}

#[tokio::test]
async fn three_instances_under_load_with_a_late_answer_every_second_stay_exact() {
    crate::store_independent!();
    let (fleet, proxy) = behind(3, Duration::from_millis(400), 2).await;
    let apps = &fleet.apps;
    align(&apps[0].clock, HOUR, 60_000);
    let (k, n) = (600, 600);
    let prepaid = metered(&apps[0], 7, "prepaid", json!({"credits": {"remaining": k}})).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": n, "duration": HOUR}]});
    let limited = metered(&apps[0], 8, "limited", limits).await;

    let lateness = std::sync::Arc::new(proxy);
    let late = lateness.clone();
    let every_second = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            late.delay_next(1, Duration::from_millis(600));
        }
    });
    lateness.delay_next(1, Duration::from_millis(600));
    let credits = exhaust(apps, &prepaid.key, "Usage exceeded").await;
    let window = exhaust(apps, &limited.key, "Rate limit exceeded").await;
    every_second.abort();

    let mut retries = 0.0;
    let mut voided = 0.0;
    for app in apps {
        let text = metrics_text(app).await;
        retries += metric(&text, RETRIES);
        voided += metric(&text, VOIDED);
    }
    eprintln!(
        "late answers: {} held; {retries} retries, {voided} lost charges voided\n\
         credits: {k} → {} served, {} refused, {} failed closed\n\
         limit:   {n} → {} served, {} refused, {} failed closed",
        lateness.held(),
        credits[0],
        credits[1],
        credits[2],
        window[0],
        window[1],
        window[2],
    );
    assert!(lateness.held() >= 2, "answers were held");
    assert_eq!(credits[0], k as usize, "k credits, k successes");
    assert_eq!(window[0], n as usize, "a limit of n, n successes");
    // A read of the credits asks Redis too: right after late answers the breaker may still be
    // open for a moment (503), so it is read once Redis is back.
    let none_left = eventually(Duration::from_secs(10), || async {
        let view = apps[1].admin_get(&format!("/tokens/{}", prepaid.id)).await;
        view.status == 200 && view.body["credits"]["remaining"] == json!(0)
    })
    .await;
    assert!(
        none_left.is_some(),
        "no credit left, as every instance sees it"
    );
}
