//! Rate limits of `/api/manage/*` (SPEC A8): the general union (burst ∪ slow) in front of every
//! action, each action's own limiter, resets, blocks, escalation to bans, and their keys.

use std::time::Duration;

use iam_tokens::domain::Privilege;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_banned, assert_blocked, failure_json, spawn_app_with, spawn_limited_app, spawn_on,
    trust_local_proxy, Answer, TestApp,
};

const USER: u64 = 7;

/// A management call that passes the union and then fails body validation (400), from the
/// socket peer or, through a proxy, from `ip`.
async fn failing_call(app: &TestApp, ip: Option<&str>) -> Answer {
    let mut request = app.manage_request(Method::POST, "metadata", USER);
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    app.send(request.json(&json!({}))).await
}

/// `metadata` for `user` on the token `body` addresses, from the peer or through a proxy.
async fn metadata(app: &TestApp, user: u64, body: &Value, ip: Option<&str>) -> Answer {
    let mut request = app
        .manage_request(Method::POST, "metadata", user)
        .json(body);
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    app.send(request).await
}

/// 20 successful metadata calls without moving the clock, then the 21st is blocked 30 minutes.
async fn block_metadata(app: &TestApp, user: u64, body: &Value, ip: Option<&str>) {
    for call in 1..=20 {
        let answer = metadata(app, user, body, ip).await;
        assert_eq!(answer.status, 200, "metadata call {call}: {answer:?}");
    }
    assert_blocked(
        &metadata(app, user, body, ip).await,
        1800,
        "metadata call 21",
    );
}

/// A token of `user` created through the library, addressed as management bodies address it.
async fn address(app: &TestApp, user: u64, name: &str) -> Value {
    let created = app.create_token(user, Privilege::Full, name).await;
    let id = app.token_id(&created.raw_public_id).await;
    json!({"tokenId": id, "publicIdentifier": created.raw_public_id, "name": name})
}

/// `count` tokens of USER, each addressed.
async fn addresses(app: &TestApp, count: usize) -> Vec<Value> {
    let mut bodies = Vec::with_capacity(count);
    for i in 1..=count {
        bodies.push(address(app, USER, &format!("token-{i}")).await);
    }
    bodies
}

/// `token` with `field` set to each of `values`, one body per value.
fn with_each(token: &Value, field: &str, values: &[Value]) -> Vec<Value> {
    let with = |value: &Value| {
        let mut body = token.clone();
        body[field] = value.clone();
        body
    };
    values.iter().map(with).collect()
}

/// Sends `action` once per body without moving the clock: every call but the last answers
/// `status` (each success resets the union), the last is refused by the action's own limiter.
async fn assert_threshold(app: &TestApp, action: &str, bodies: &[Value], status: u16, block: u64) {
    let (last, allowed) = bodies.split_last().expect("at least one body");
    for (i, body) in allowed.iter().enumerate() {
        let answer = app.manage_post(action, USER, body).await;
        assert_eq!(answer.status, status, "{action} call {}: {answer:?}", i + 1);
    }
    let refused = app.manage_post(action, USER, last).await;
    assert_blocked(&refused, block, &format!("{action} call {}", bodies.len()));
}

async fn new_token(app: &TestApp, name: &str) -> Answer {
    let body = json!({"privilege": "full", "name": name});
    app.manage_post("new-token", USER, &body).await
}

// ---- The general union: burst ∪ slow, keyed by client IP ----

#[tokio::test]
async fn two_failing_management_calls_within_a_second_block_the_ip_for_15_minutes() {
    let app = spawn_limited_app(|_| {}).await;
    let first = failing_call(&app, None).await;
    let bad_request = failure_json(&app.clock_iso(), "Bad Request");
    assert_eq!((first.status, &first.body), (400, &bad_request));
    assert_blocked(&failing_call(&app, None).await, 900, "same second");
}

#[tokio::test]
async fn the_union_sits_after_authentication_and_action_lookup_and_before_validation() {
    let app = spawn_limited_app(|_| {}).await;
    assert_eq!(failing_call(&app, None).await.status, 400);
    let anonymous = app.client.post(app.url("/api/manage/metadata"));
    let anonymous = app.send(anonymous.json(&json!({}))).await;
    assert_eq!(anonymous.status, 401, "authentication first: {anonymous:?}");
    let unknown = app.manage_get("no-such-action", USER).await;
    assert_eq!((unknown.status, unknown.reason()), (404, "Not found"));
    // A wrong method would be a 400; the union answers first.
    let wrong_method = app.manage_get("new-token", USER).await;
    assert_blocked(&wrong_method, 900, "GET new-token inside the burst");
}

#[tokio::test]
async fn a_third_call_during_the_union_block_bans_the_ip_permanently() {
    let app = spawn_limited_app(|_| {}).await;
    assert_eq!(failing_call(&app, None).await.status, 400);
    assert_blocked(&failing_call(&app, None).await, 900, "second call");
    assert_banned(&failing_call(&app, None).await, "third call");
    app.clock.advance(Duration::from_secs(2 * 3600));
    assert_banned(&failing_call(&app, None).await, "2 hours later");
}

#[tokio::test]
async fn a_union_block_counts_down_in_whole_seconds_and_ends_on_time() {
    let app = spawn_limited_app(|s| s.rate_limiters.ban_after_strikes = 3).await;
    assert_eq!(failing_call(&app, None).await.status, 400);
    assert_blocked(&failing_call(&app, None).await, 900, "block starts");
    app.clock.advance(Duration::from_millis(299_500));
    assert_blocked(&failing_call(&app, None).await, 601, "600.5 s left");
    app.clock.advance(Duration::from_millis(600_500));
    let after = failing_call(&app, None).await;
    assert_eq!(after.status, 400, "the block is over: {after:?}");
}

#[tokio::test]
async fn successful_actions_reset_the_union_so_they_never_trip_the_burst_limiter() {
    let app = spawn_limited_app(|_| {}).await;
    for i in 1..=3 {
        let created = new_token(&app, &format!("t{i}")).await;
        assert_eq!(created.status, 201, "creation {i}: {created:?}");
    }
    let failed = failing_call(&app, None).await;
    assert_eq!(failed.status, 400, "the last success reset the union");
    assert_blocked(
        &failing_call(&app, None).await,
        900,
        "failures reset nothing",
    );
}

#[tokio::test]
async fn list_metadata_has_its_own_union_budget_that_a_successful_list_does_not_reset() {
    let app = spawn_limited_app(|_| {}).await;
    assert_eq!(app.manage_get("list-metadata", USER).await.status, 200);
    let again = app.manage_get("list-metadata", USER).await;
    assert_blocked(&again, 900, "second list in the same second");
    let created = new_token(&app, "x").await;
    assert_eq!(created.status, 201, "other actions are not blocked");
    assert_eq!(failing_call(&app, None).await.status, 400);
}

#[tokio::test]
async fn the_slow_limiter_allows_50_calls_a_minute_then_blocks_for_an_hour() {
    let app = spawn_limited_app(|s| {
        s.rate_limiters
            .api_tokens_limiters
            .general_union_limiter
            .burst_limiter
            .points = 1000;
    })
    .await;
    for call in 1..=50 {
        assert_eq!(failing_call(&app, None).await.status, 400, "call {call}");
    }
    assert_blocked(&failing_call(&app, None).await, 3600, "call 51");
}

#[tokio::test]
async fn when_both_union_limiters_refuse_the_longer_block_is_reported() {
    let app = spawn_limited_app(|s| {
        s.rate_limiters
            .api_tokens_limiters
            .general_union_limiter
            .slow_limiter
            .points = 1;
    })
    .await;
    assert_eq!(failing_call(&app, None).await.status, 400);
    assert_blocked(
        &failing_call(&app, None).await,
        3600,
        "burst 900, slow 3600",
    );
}

// ---- Each action's own limiter, keyed `<ip>_<userId>`, with the shipped defaults ----

#[tokio::test]
async fn the_6th_token_creation_within_10_minutes_is_refused_for_an_hour() {
    let app = spawn_limited_app(|_| {}).await;
    let bodies: Vec<Value> = (1..=6)
        .map(|i| json!({"privilege": "full", "name": format!("t{i}")}))
        .collect();
    assert_threshold(&app, "new-token", &bodies, 201, 3600).await;
    assert_eq!(
        app.valid_token_rows(USER).await,
        5,
        "the 6th created nothing"
    );
}

#[tokio::test]
async fn the_6th_revocation_within_10_minutes_is_refused_for_2_hours() {
    let app = spawn_limited_app(|_| {}).await;
    let bodies = addresses(&app, 6).await;
    assert_threshold(&app, "revoke", &bodies, 200, 7200).await;
    assert_eq!(
        app.valid_token_rows(USER).await,
        1,
        "the 6th revoked nothing"
    );
}

#[tokio::test]
async fn the_21st_metadata_call_within_2_seconds_is_refused_for_30_minutes() {
    let app = spawn_limited_app(|_| {}).await;
    let body = address(&app, USER, "meta").await;
    assert_threshold(&app, "metadata", &vec![body; 21], 200, 1800).await;
}

#[tokio::test]
async fn the_6th_rotation_within_10_minutes_is_refused_for_2_hours() {
    let app = spawn_limited_app(|_| {}).await;
    let bodies = addresses(&app, 6).await;
    assert_threshold(&app, "rotate", &bodies, 200, 7200).await;
    // 6 originals + 5 replacements; the 6th original was not rotated.
    assert_eq!(app.token_row_count().await, 11);
    assert_eq!(app.valid_token_rows(USER).await, 6);
}

#[tokio::test]
async fn the_6th_ip_restriction_update_within_10_minutes_is_refused_for_30_minutes() {
    let app = spawn_limited_app(|_| {}).await;
    let token = address(&app, USER, "ips").await;
    let lists: Vec<Value> = (1..=6).map(|i| json!([format!("10.0.0.{i}")])).collect();
    let bodies = with_each(&token, "ipv4", &lists);
    assert_threshold(&app, "ip-restriction-update", &bodies, 200, 1800).await;
}

#[tokio::test]
async fn the_6th_privilege_update_within_10_minutes_is_refused_for_30_minutes() {
    let app = spawn_limited_app(|_| {}).await;
    let token = address(&app, USER, "privileges").await;
    let privileges = ["demo", "restricted", "protected", "custom", "full", "demo"].map(Value::from);
    let bodies = with_each(&token, "newPrivilege", &privileges);
    assert_threshold(&app, "privilege-update", &bodies, 200, 1800).await;
}

#[tokio::test]
async fn an_operation_limiter_gives_one_point_back_every_duration_over_points() {
    let app = spawn_limited_app(|_| {}).await;
    let body = address(&app, USER, "meta").await;
    for call in 1..=20 {
        assert_eq!(
            metadata(&app, USER, &body, None).await.status,
            200,
            "call {call}"
        );
    }
    app.clock.advance(Duration::from_millis(100));
    let refilled = metadata(&app, USER, &body, None).await;
    assert_eq!(
        refilled.status, 200,
        "20 per 2 s: a point back after 100 ms"
    );
    assert_blocked(&metadata(&app, USER, &body, None).await, 1800, "only one");
}

#[tokio::test]
async fn an_operation_block_counts_down_in_whole_seconds_and_ends_on_time() {
    let app = spawn_limited_app(|s| {
        s.rate_limiters.ban_after_strikes = 4;
        // A refusal does not reset the union: widen the burst so it cannot answer 1 ms later.
        s.rate_limiters
            .api_tokens_limiters
            .general_union_limiter
            .burst_limiter
            .points = 1000;
    })
    .await;
    let body = address(&app, USER, "meta").await;
    block_metadata(&app, USER, &body, None).await;
    app.clock.advance(Duration::from_millis(600_500));
    assert_blocked(
        &metadata(&app, USER, &body, None).await,
        1200,
        "1199.5 s left",
    );
    app.clock.advance(Duration::from_millis(1_199_499));
    assert_blocked(&metadata(&app, USER, &body, None).await, 1, "1 ms left");
    app.clock.advance(Duration::from_millis(1));
    let after = metadata(&app, USER, &body, None).await;
    assert_eq!(after.status, 200, "the block is over: {after:?}");
}

#[tokio::test]
async fn a_second_refusal_during_an_operation_block_bans_the_key_for_good() {
    let app = spawn_limited_app(|_| {}).await;
    let body = address(&app, USER, "meta").await;
    block_metadata(&app, USER, &body, None).await;
    // One second gives the burst limiter its point back; the 30-minute block stays.
    app.clock.advance(Duration::from_secs(1));
    assert_banned(&metadata(&app, USER, &body, None).await, "strike 2");
    app.clock.advance(Duration::from_secs(24 * 3600));
    assert_banned(&metadata(&app, USER, &body, None).await, "a day later");
    let rows = app.ban_rows().await;
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(keys, [("get_metadata_token_limiter", "127.0.0.1_7")]);
}

// ---- Isolation of limiters and keys ----

#[tokio::test]
async fn a_ban_by_one_operation_limiter_leaves_other_limiters_and_users_alone() {
    let app = spawn_limited_app(|_| {}).await;
    let mine = address(&app, USER, "mine").await;
    let theirs = address(&app, 8, "theirs").await;
    block_metadata(&app, USER, &mine, None).await;
    app.clock.advance(Duration::from_secs(1));
    assert_banned(&metadata(&app, USER, &mine, None).await, "user 7 banned");
    app.clock.advance(Duration::from_secs(1));
    // new_token_creation_limiter uses the same key, `127.0.0.1_7`.
    assert_eq!(
        new_token(&app, "n").await.status,
        201,
        "other limiter, same key"
    );
    let other_user = metadata(&app, 8, &theirs, None).await;
    assert_eq!(other_user.status, 200, "same limiter, other user");
    assert_banned(&metadata(&app, USER, &mine, None).await, "still banned");
}

#[tokio::test]
async fn a_union_ban_of_an_ip_leaves_verification_and_listing_from_that_ip_alone() {
    let app = spawn_limited_app(|_| {}).await;
    let token = app.create_token(USER, Privilege::Full, "verified").await;
    assert_eq!(failing_call(&app, None).await.status, 400);
    assert_blocked(&failing_call(&app, None).await, 900, "second call");
    assert_banned(&failing_call(&app, None).await, "third call");
    // The consumption limiter keys failures by the same string, `127.0.0.1`.
    assert_eq!(app.verify(&token.raw_api_key, "full").await.status, 200);
    assert_eq!(app.verify("api_not_a_key", "full").await.status, 401);
    assert_eq!(app.manage_get("list-metadata", USER).await.status, 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budgets() {
    let app = spawn_limited_app(trust_local_proxy).await;
    let (seven, eight) = (Some("203.0.113.7"), Some("203.0.113.8"));
    assert_eq!(failing_call(&app, seven).await.status, 400);
    assert_blocked(&failing_call(&app, seven).await, 900, "same client");
    assert_eq!(
        failing_call(&app, eight).await.status,
        400,
        "another client"
    );
    let body = address(&app, USER, "meta").await;
    block_metadata(&app, USER, &body, Some("198.51.100.1")).await;
    let other = metadata(&app, USER, &body, Some("198.51.100.2")).await;
    assert_eq!(
        other.status, 200,
        "operation limiters key on the forwarded IP"
    );
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_cannot_buy_a_new_budget() {
    let app = spawn_limited_app(|_| {}).await;
    assert_eq!(failing_call(&app, Some("203.0.113.7")).await.status, 400);
    let spoofed = failing_call(&app, Some("203.0.113.8")).await;
    assert_blocked(&spoofed, 900, "the key is the socket peer");
}

// ---- The switch ----

#[tokio::test]
async fn with_rate_limiters_disabled_no_call_is_ever_refused_not_even_a_stored_ban() {
    let first = spawn_app_with(|s| s.rate_limiters.enabled = false).await;
    let sql = "INSERT INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
         VALUES ('burst_limiter', '127.0.0.1', 'test', ?)";
    first.execute(sql, (chrono::Utc::now().naive_utc(),)).await;
    // A fresh instance would load that ban at startup if limits were on.
    let app = spawn_on(first.settings.clone(), first.db_name.clone()).await;
    let body = address(&app, USER, "meta").await;
    for call in 1..=30 {
        assert_eq!(failing_call(&app, None).await.status, 400, "failure {call}");
        assert_eq!(
            metadata(&app, USER, &body, None).await.status,
            200,
            "{call}"
        );
        let listed = app.manage_get("list-metadata", USER).await;
        assert_eq!(listed.status, 200, "list {call}");
        let verified = app.verify("api_not_a_key", "full").await;
        assert_eq!(verified.status, 401, "verify {call}");
    }
}
