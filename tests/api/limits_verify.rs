//! Rate limits of `GET /api/public/verify` (SPEC A8): the consumption limiter counts failed
//! verifications by presented key and by client IP (`<ip>_verify` without a key), a success
//! resets both, and `rate_limit_on_successful_request` puts the union in front of every call.

use std::time::Duration;

use iam_tokens::domain::Privilege;
use serde_json::json;

use crate::helpers::{
    assert_banned, assert_blocked, failure_json, spawn_limited_app, trust_local_proxy, Answer,
    TestApp,
};

const USER: u64 = 7;

/// Verifies `key` for `privilege`, sent through a proxy for client `ip`.
async fn verify_from(app: &TestApp, key: &str, privilege: &str, ip: &str) -> Answer {
    let request = app.verify_request(key, privilege);
    app.send(request.header("x-forwarded-for", ip)).await
}

/// A verification without `x-api-key`.
async fn verify_without_key(app: &TestApp) -> Answer {
    let url = app.url("/api/public/verify?privilege=full");
    app.send(app.client.get(url)).await
}

/// A valid key of USER with the `full` privilege.
async fn valid_key(app: &TestApp) -> String {
    let created = app.create_token(USER, Privilege::Full, "machine").await;
    created.raw_api_key
}

/// Sends `count` failing verifications from 127.0.0.1, each with a key never used before.
async fn fail_with_fresh_keys(app: &TestApp, tag: &str, count: usize) {
    for i in 1..=count {
        let answer = app.verify(&format!("api_{tag}_{i}"), "full").await;
        assert_eq!(answer.status, 401, "{tag} failure {i}: {answer:?}");
    }
}

async fn new_token(app: &TestApp) -> Answer {
    let body = json!({"privilege": "full", "name": "m"});
    app.manage_post("new-token", USER, &body).await
}

#[tokio::test]
async fn the_11th_failed_verification_within_a_minute_is_refused_for_an_hour() {
    let app = spawn_limited_app(|_| {}).await;
    for failure in 1..=10 {
        let answer = app.verify("api_wrong_key", "full").await;
        let invalid = failure_json(&app.clock_iso(), "Invalid key");
        assert_eq!((answer.status, &answer.body), (401, &invalid), "{failure}");
    }
    let refused = app.verify("api_wrong_key", "full").await;
    assert_blocked(&refused, 3600, "failure 11");
}

#[tokio::test]
async fn successful_verifications_are_not_counted_by_default() {
    let app = spawn_limited_app(|_| {}).await;
    let key = valid_key(&app).await;
    for call in 1..=30 {
        let answer = app.verify(&key, "full").await;
        assert_eq!(answer.status, 200, "success {call}: {answer:?}");
    }
}

#[tokio::test]
async fn a_verification_block_counts_down_in_whole_seconds_and_ends_after_an_hour() {
    let app = spawn_limited_app(|s| s.rate_limiters.ban_after_strikes = 3).await;
    fail_with_fresh_keys(&app, "wrong", 10).await;
    assert_blocked(&app.verify("api_wrong_11", "full").await, 3600, "11");
    app.clock.advance(Duration::from_millis(1_000_500));
    let later = app.verify("api_wrong_12", "full").await;
    assert_blocked(&later, 2600, "2599.5 s left");
    app.clock.advance(Duration::from_millis(2_599_500));
    let after = app.verify("api_wrong_13", "full").await;
    assert_eq!(after.status, 401, "the block is over: {after:?}");
}

/// SPEC A8: the consumption limiter guards failures only. A valid key is served (and counted)
/// during a block of its IP; the success does not end the block; a failure meanwhile strikes
/// and bans, and a valid key is still served after the ban.
#[tokio::test]
async fn a_valid_key_during_the_block_is_served_and_counted_and_a_failure_still_bans() {
    let app = spawn_limited_app(|_| {}).await;
    let key = valid_key(&app).await;
    fail_with_fresh_keys(&app, "wrong", 10).await;
    assert_blocked(&app.verify("api_wrong_11", "full").await, 3600, "11");
    app.clock.advance(Duration::from_secs(600));
    for call in 1..=2 {
        let valid = app.verify(&key, "full").await;
        assert_eq!(
            valid.status, 200,
            "success {call} during the block: {valid:?}"
        );
        assert_eq!(valid.data()["usageCount"], call, "the use is counted");
    }
    assert_banned(
        &app.verify("api_wrong_12", "full").await,
        "a failure during the block is its second strike",
    );
    app.clock.advance(Duration::from_secs(2 * 3600));
    let after = app.verify(&key, "full").await;
    assert_eq!(after.status, 200, "served after the ban too: {after:?}");
    assert_banned(
        &app.verify("api_wrong_13", "full").await,
        "failures of the banned IP stay banned",
    );
    let usage: u64 = app
        .query_one("SELECT usage_count FROM api_tokens", ())
        .await;
    let pending = app.tokens.unwritten_uses();
    assert_eq!(usage + pending, 3, "every served use is counted");
}

#[tokio::test]
async fn a_success_during_a_block_does_not_end_it() {
    let app = spawn_limited_app(|s| s.rate_limiters.ban_after_strikes = 3).await;
    let key = valid_key(&app).await;
    fail_with_fresh_keys(&app, "wrong", 10).await;
    assert_blocked(&app.verify("api_wrong_11", "full").await, 3600, "strike 1");
    assert_eq!(app.verify(&key, "full").await.status, 200);
    app.clock.advance(Duration::from_secs(1));
    assert_blocked(
        &app.verify("api_wrong_12", "full").await,
        3599,
        "strike 2: the block goes on after the success",
    );
}

#[tokio::test]
async fn failures_of_one_key_are_counted_whatever_the_client_ip() {
    let app = spawn_limited_app(trust_local_proxy).await;
    for i in 1..=10 {
        let ip = format!("10.0.0.{i}");
        let answer = verify_from(&app, "api_wrong_key", "full", &ip).await;
        assert_eq!(answer.status, 401, "failure {i}, from its own IP");
    }
    let refused = verify_from(&app, "api_wrong_key", "full", "10.0.0.11").await;
    assert_blocked(&refused, 3600, "failure 11 of the key, from an unused IP");
    let other_key = verify_from(&app, "api_other_key", "full", "10.0.0.11").await;
    assert_eq!(
        other_key.status, 401,
        "that IP with other keys is not blocked"
    );
}

#[tokio::test]
async fn failures_from_one_ip_are_counted_whatever_the_key() {
    let app = spawn_limited_app(trust_local_proxy).await;
    let key = valid_key(&app).await;
    for i in 1..=10 {
        let wrong = format!("api_wrong_{i}");
        let answer = verify_from(&app, &wrong, "full", "203.0.113.7").await;
        assert_eq!(answer.status, 401, "failure {i}, with its own key");
    }
    let refused = verify_from(&app, "api_wrong_11", "full", "203.0.113.7").await;
    assert_blocked(&refused, 3600, "failure 11 from the IP, with an unused key");
    let elsewhere = verify_from(&app, &key, "full", "203.0.113.8").await;
    assert_eq!(elsewhere.status, 200, "another client is not blocked");
    let failing = verify_from(&app, "api_wrong_12", "full", "203.0.113.8").await;
    assert_eq!(failing.status, 401);
}

#[tokio::test]
async fn a_successful_verification_resets_the_failure_count_of_its_ip() {
    let app = spawn_limited_app(|_| {}).await;
    let key = valid_key(&app).await;
    fail_with_fresh_keys(&app, "before", 10).await;
    assert_eq!(app.verify(&key, "full").await.status, 200);
    fail_with_fresh_keys(&app, "after", 10).await;
    let refused = app.verify("api_after_11", "full").await;
    assert_blocked(&refused, 3600, "11th failure since the reset");
}

#[tokio::test]
async fn a_successful_verification_resets_the_failure_count_of_its_key() {
    let app = spawn_limited_app(trust_local_proxy).await;
    let key = valid_key(&app).await;
    // A wrong privilege fails as `Invalid key` and counts against the presented key.
    for i in 1..=10 {
        let answer = verify_from(&app, &key, "demo", &format!("10.0.1.{i}")).await;
        assert_eq!(answer.status, 401, "failure {i} before the success");
    }
    let success = verify_from(&app, &key, "full", "10.0.2.1").await;
    assert_eq!(success.status, 200, "{success:?}");
    for i in 1..=10 {
        let answer = verify_from(&app, &key, "demo", &format!("10.0.3.{i}")).await;
        assert_eq!(answer.status, 401, "failure {i} after the success");
    }
    let refused = verify_from(&app, &key, "demo", "10.0.3.11").await;
    assert_blocked(&refused, 3600, "11th failure of the key since the reset");
}

#[tokio::test]
async fn verifications_without_a_key_have_their_own_budget_per_ip() {
    let app = spawn_limited_app(|_| {}).await;
    let key = valid_key(&app).await;
    for call in 1..=10 {
        let answer = verify_without_key(&app).await;
        let expected = failure_json(&app.clock_iso(), "No api key provided");
        assert_eq!((answer.status, &answer.body), (401, &expected), "{call}");
    }
    assert_blocked(&verify_without_key(&app).await, 3600, "11th without a key");
    // `<ip>_verify` is blocked, not the IP's budget for presented keys.
    assert_eq!(app.verify("api_wrong_key", "full").await.status, 401);
    assert_eq!(app.verify(&key, "full").await.status, 200);
}

#[tokio::test]
async fn rate_limit_on_successful_request_puts_the_union_in_front_of_every_verification() {
    let app = spawn_limited_app(|s| s.api_tokens.rate_limit_on_successful_request = true).await;
    let key = valid_key(&app).await;
    assert_eq!(app.verify(&key, "full").await.status, 200);
    app.clock.advance(Duration::from_secs(1));
    let next_second = app.verify(&key, "full").await;
    assert_eq!(next_second.status, 200, "one per second is fine");
    assert_blocked(&app.verify(&key, "full").await, 900, "two in a second");
    let created = new_token(&app).await;
    assert_eq!(created.status, 201, "management is keyed by the bare IP");
}

#[tokio::test]
async fn with_rate_limit_on_successful_request_a_strike_during_the_block_bans_ip_verify() {
    let app = spawn_limited_app(|s| s.api_tokens.rate_limit_on_successful_request = true).await;
    let key = valid_key(&app).await;
    assert_eq!(app.verify(&key, "full").await.status, 200);
    assert_blocked(&app.verify(&key, "full").await, 900, "second, same second");
    assert_banned(&app.verify(&key, "full").await, "third, during the block");
    let rows = app.ban_rows().await;
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(keys, [("burst_limiter", "127.0.0.1_verify")]);
    let created = new_token(&app).await;
    assert_eq!(
        created.status, 201,
        "the IP's management key is another key"
    );
}

/// Blocks are intervals on the monotonic clock: a step of the wall clock neither lengthens nor
/// ends one.
#[tokio::test]
async fn a_block_lasts_its_duration_whatever_the_wall_clock_does() {
    let app = spawn_limited_app(|s| s.rate_limiters.ban_after_strikes = 100).await;
    fail_with_fresh_keys(&app, "wrong", 10).await;
    assert_blocked(&app.verify("api_wrong_11", "full").await, 3600, "blocked");
    app.clock.step_wall(chrono::Duration::hours(2));
    assert_blocked(
        &app.verify("api_wrong_12", "full").await,
        3600,
        "the wall clock two hours ahead: no time passed",
    );
    app.clock.step_wall(chrono::Duration::days(-1));
    app.clock.advance(Duration::from_secs(3600));
    let after = app.verify("api_wrong_13", "full").await;
    assert_eq!(
        after.status, 401,
        "an hour passed: the block is over: {after:?}"
    );
}
