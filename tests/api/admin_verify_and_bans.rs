//! `POST /api/admin/verify` (always 200 with a code; existence never leaks) and the bans routes
//! (list what every instance enforces, lift one).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::helpers::{
    admin_error, assert_banned, assert_blocked, ops_admin, spawn_admin_app, spawn_limited_app,
    AdminToken, Answer, TestApp,
};

async fn verify(app: &TestApp, body: Value) -> Answer {
    app.admin_json(Method::POST, "/verify", &body).await
}

fn not_found() -> Value {
    json!({"valid": false, "code": "NOT_FOUND"})
}

/// What admin verify shows of `token` (its creation view), with `code` and the usage given.
fn seen(token: &AdminToken, code: &str, usage: u64, last_used: Option<String>) -> Value {
    let view = &token.body["token"];
    let mut seen = json!({"valid": code == "VALID", "code": code});
    seen["usageCount"] = json!(usage);
    seen["lastUsed"] = json!(last_used);
    let fields = [
        "id",
        "userId",
        "name",
        "privilege",
        "createdAt",
        "expiresAt",
    ];
    for field in fields
        .into_iter()
        .chain(["ipRestriction", "metadata", "roles"])
    {
        seen[field] = view[field].clone();
    }
    // Verification answers the effective permissions.
    seen["permissions"] = view["effectivePermissions"].clone();
    seen
}

/// A raw key of the right shape and checksum that no token has.
fn unknown_key() -> String {
    let random = "ab".repeat(64);
    let checksum = &hex::encode(Sha256::digest(&random))[..8];
    format!("api_{random}_{checksum}")
}

/// `(usage_count, valid)` of a token row.
async fn usage(app: &TestApp, token: &AdminToken) -> (u64, bool) {
    app.usage_and_valid(token.id).await
}

/// The answer for `token` when valid, used `count` times, last just now.
fn valid(app: &TestApp, token: &AdminToken, count: u64) -> Value {
    seen(token, "VALID", count, Some(app.clock_iso()))
}

#[tokio::test]
async fn verify_answers_valid_with_the_whole_token_and_its_metadata_and_counts_the_use() {
    let app = spawn_admin_app().await;
    let body = json!({
        "userId": 7, "name": "svc", "privilege": "full", "expires": 3_600_000,
        "ips": ["10.0.0.0/8"], "metadata": {"tenant": "t-1", "seats": 5, "beta": true},
    });
    let token = app.admin_create(&body).await;
    app.clock.advance(Duration::from_secs(1));
    let request = json!({"key": token.key, "privilege": "full", "ip": "10.1.2.3"});
    let answer = verify(&app, request).await;
    answer.assert_is(200, &valid(&app, &token, 1), "a valid key");
    assert_eq!(usage(&app, &token).await, (1, true), "the use is counted");
    let digest = hex::encode(Sha256::digest(&token.key));
    assert!(!answer.body.to_string().contains(&digest), "{answer:?}");
}

#[tokio::test]
async fn unknown_malformed_revoked_and_wrong_privilege_keys_are_all_not_found() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 7, "name": "svc", "privilege": "full"});
    let token = app.admin_create(&body).await;
    let revoked = app.admin_create(&body).await;
    let path = format!("/tokens/{}/revoke", revoked.id);
    app.send(app.admin_request(Method::POST, &path)).await;
    let mut bad_checksum = token.key.clone();
    let last = if bad_checksum.ends_with('0') {
        "1"
    } else {
        "0"
    };
    bad_checksum.replace_range(bad_checksum.len() - 1.., last);
    let digest = hex::encode(Sha256::digest(&token.key));
    #[rustfmt::skip]
    let cases = [
        ("an unknown key",               json!({"key": unknown_key()})),
        ("a key of another privilege",   json!({"key": token.key, "privilege": "demo"})),
        ("a revoked key",                json!({"key": revoked.key})),
        ("a revoked key, its privilege", json!({"key": revoked.key, "privilege": "full"})),
        ("a wrong checksum",             json!({"key": bad_checksum})),
        ("the digest, not the key",      json!({"key": digest})),
        ("a malformed key",              json!({"key": "api_not-a-key"})),
        ("an empty key",                 json!({"key": ""})),
    ];
    for (case, body) in cases {
        verify(&app, body).await.assert_is(200, &not_found(), case);
    }
    assert_eq!(usage(&app, &token).await, (0, true), "nothing was counted");
}

#[tokio::test]
async fn an_expired_key_is_expired_once_then_not_found() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 7, "name": "short", "expires": 1000});
    let token = app.admin_create(&body).await;
    app.clock.advance(Duration::from_millis(1001));
    let expired = seen(&token, "EXPIRED", 0, None);
    let first = verify(&app, json!({"key": token.key})).await;
    first.assert_is(200, &expired, "the first sight after expiry");
    assert_eq!(usage(&app, &token).await, (0, false), "marked invalid");
    let later = verify(&app, json!({"key": token.key})).await;
    later.assert_is(200, &not_found(), "later");
}

#[tokio::test]
async fn an_ip_outside_the_restriction_is_ip_not_allowed_and_no_ip_skips_the_check() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 7, "name": "lan", "ips": ["10.0.0.0/8", "2001:db8::/32"]});
    let token = app.admin_create(&body).await;
    let refused = seen(&token, "IP_NOT_ALLOWED", 0, None);
    for ip in ["192.0.2.1", "2001:db9::1", "11.0.0.1"] {
        let answer = verify(&app, json!({"key": token.key, "ip": ip})).await;
        answer.assert_is(200, &refused, ip);
    }
    let uses = usage(&app, &token).await;
    assert_eq!(uses, (0, true), "refusals are not uses");
    let allowed = [Some("10.9.9.9"), Some("::ffff:10.0.0.1"), None];
    for (uses, ip) in (1..).zip(allowed) {
        let answer = verify(&app, json!({"key": token.key, "ip": ip})).await;
        answer.assert_is(200, &valid(&app, &token, uses), &format!("{ip:?}"));
    }
}

#[tokio::test]
async fn without_a_privilege_any_privilege_is_accepted() {
    let app = spawn_admin_app().await;
    for privilege in ["demo", "restricted", "protected", "full", "custom"] {
        let body = json!({"userId": 7, "name": privilege, "privilege": privilege});
        let token = app.admin_create(&body).await;
        let answer = verify(&app, json!({"key": token.key})).await;
        answer.assert_is(200, &valid(&app, &token, 1), privilege);
        let named = json!({"key": token.key, "privilege": privilege});
        let answer = verify(&app, named).await;
        answer.assert_is(200, &valid(&app, &token, 2), privilege);
    }
}

#[tokio::test]
async fn count_false_does_not_count_the_use_and_counting_is_the_default() {
    let app = spawn_admin_app().await;
    let token = app.admin_create(&json!({"userId": 7, "name": "n"})).await;
    let peek = json!({"key": token.key, "count": false});
    let answer = verify(&app, peek.clone()).await;
    answer.assert_is(200, &seen(&token, "VALID", 0, None), "count: false");
    assert_eq!(usage(&app, &token).await, (0, true));
    app.clock.advance(Duration::from_secs(3));
    let used = verify(&app, json!({"key": token.key})).await;
    used.assert_is(200, &valid(&app, &token, 1), "by default");
    let again = verify(&app, json!({"key": token.key, "count": true})).await;
    again.assert_is(200, &valid(&app, &token, 2), "count: true");
    // At once, within the verification cache's lifetime.
    let answer = verify(&app, peek).await;
    answer.assert_is(200, &valid(&app, &token, 2), "a peek shows the uses so far");
    assert_eq!(usage(&app, &token).await, (2, true));
}

#[tokio::test]
async fn verify_answers_401_without_the_credential_and_400_for_a_malformed_request() {
    let app = spawn_admin_app().await;
    let token = app.admin_create(&json!({"userId": 7, "name": "svc"})).await;
    let url = app.url("/api/admin/verify");
    let anonymous = app.client.post(url).json(&json!({"key": token.key}));
    let message = "a valid admin credential is required (Authorization: Bearer <secret>)";
    let unauthorized = admin_error("unauthorized", message, None);
    let reply = app.send(anonymous).await;
    reply.assert_is(401, &unauthorized, "no credential");
    #[rustfmt::skip]
    let cases = [
        ("no key",               json!({})),
        ("a numeric key",        json!({"key": 5})),
        ("an unknown field",     json!({"key": token.key, "userId": 7})),
        ("an unknown privilege", json!({"key": token.key, "privilege": "root"})),
        ("a bad IP",             json!({"key": token.key, "ip": "10.0.0"})),
        ("count as a string",    json!({"key": token.key, "count": "no"})),
        ("an array",             json!([token.key])),
    ];
    for (case, body) in cases {
        let answer = verify(&app, body).await;
        assert_eq!(answer.status, 400, "{case}: {answer:?}");
        assert_eq!(answer.body["code"], "bad_request", "{case}");
    }
    let request = app.admin_request(Method::POST, "/verify");
    let request = request.header("content-type", "application/json");
    let malformed = admin_error("bad_request", "malformed JSON at line 1 column 6", None);
    let reply = app.send(request.body(r#"{"key""#)).await;
    reply.assert_is(400, &malformed, "malformed JSON");
    assert_eq!(usage(&app, &token).await, (0, true), "nothing was counted");
}

// ---- Bans ----

const USER: u64 = 42;
const REASON: &str = "rejected again while blocked";

/// A management call that passes the union and then fails body validation (400).
async fn failing_call(app: &TestApp) -> Answer {
    app.manage_post("metadata", USER, &json!({})).await
}

/// Bans 127.0.0.1 in the burst limiter; the service's time of the ban.
async fn ban_the_ip(app: &TestApp) -> String {
    assert_eq!(failing_call(app).await.status, 400, "first call");
    assert_blocked(&failing_call(app).await, 900, "second call");
    let banned_at = app.clock_iso();
    assert_banned(&failing_call(app).await, "third call");
    banned_at
}

/// Stores a ban as another instance would, at `at`.
async fn store_ban(app: &TestApp, limiter: &str, key: &str, at: &str) {
    let sql = "INSERT INTO rate_limit_bans VALUES (?, ?, ?, ?)";
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("ISO time");
    let row = (limiter, key, REASON, at.naive_utc());
    app.execute(sql, row).await;
}

fn ban(limiter: &str, key: &str, at: &str) -> Value {
    json!({"limiter": limiter, "key": key, "reason": REASON, "createdAt": at})
}

#[tokio::test]
async fn get_bans_lists_every_stored_ban_exactly() {
    let app = spawn_limited_app(ops_admin).await;
    let reply = app.admin_get("/bans").await;
    reply.assert_is(200, &json!({"bans": []}), "no bans yet");
    let earlier = "2026-01-02T03:04:05.678Z";
    store_ban(&app, "rotation_rate_limiter", "203.0.113.7_42", earlier).await;
    app.clock.advance(Duration::from_secs(60));
    let banned_at = ban_the_ip(&app).await;
    let expected = json!({"bans": [
        ban("rotation_rate_limiter", "203.0.113.7_42", earlier),
        ban("burst_limiter", "127.0.0.1", &banned_at),
    ]});
    let reply = app.admin_get("/bans").await;
    reply.assert_is(200, &expected, "a stored and a new ban");
}

#[tokio::test]
async fn delete_lifts_a_ban_at_once_and_a_second_delete_is_404() {
    let app = spawn_limited_app(ops_admin).await;
    ban_the_ip(&app).await;
    let path = "/bans/burst_limiter/127.0.0.1";
    let lifted = app.send(app.admin_request(Method::DELETE, path)).await;
    let expected = json!({"lifted": true, "limiter": "burst_limiter", "key": "127.0.0.1"});
    lifted.assert_is(200, &expected, "lift");
    assert!(app.ban_rows().await.is_empty(), "the stored ban is gone");
    let reply = app.admin_get("/bans").await;
    reply.assert_is(200, &json!({"bans": []}), "listed no more");
    let answer = failing_call(&app).await;
    assert_eq!(answer.status, 400, "let through again: {answer:?}");
    let again = app.send(app.admin_request(Method::DELETE, path)).await;
    let message = "no ban of \"127.0.0.1\" by \"burst_limiter\"";
    again.assert_is(404, &admin_error("not_found", message, None), "second lift");
    let rows = app.audit_rows(None).await;
    let detail = json!({"limiter": "burst_limiter", "key": "127.0.0.1"});
    let banned = json!({"limiter": "burst_limiter", "key": "127.0.0.1", "reason": REASON});
    let expected = [
        ("banned".to_owned(), "system".to_owned(), banned),
        ("ban_lifted".to_owned(), "config:ops".to_owned(), detail),
    ];
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn delete_lifts_a_ban_stored_by_another_instance_and_404s_an_unknown_one() {
    let app = spawn_limited_app(ops_admin).await;
    let at = app.clock_iso();
    let (limiter, key) = ("consumption_rate_limiter", "key:0011223344556677");
    store_ban(&app, limiter, key, &at).await;
    let path = format!("/bans/{limiter}/{key}");
    let lifted = app.send(app.admin_request(Method::DELETE, &path)).await;
    let expected = json!({"lifted": true, "limiter": limiter, "key": key});
    lifted.assert_is(200, &expected, "a ban made elsewhere");
    assert!(app.ban_rows().await.is_empty());
    #[rustfmt::skip]
    let cases = [
        ("/bans/burst_limiter/127.0.0.1", "no ban of \"127.0.0.1\" by \"burst_limiter\""),
        ("/bans/no_such_limiter/x",       "no ban of \"x\" by \"no_such_limiter\""),
        // Keys compare byte for byte (MariaDB's collation would pad the trailing space).
        ("/bans/burst_limiter/10.0.0.1%20", "no ban of \"10.0.0.1 \" by \"burst_limiter\""),
    ];
    store_ban(&app, "burst_limiter", "10.0.0.1", &at).await;
    for (path, message) in cases {
        let answer = app.send(app.admin_request(Method::DELETE, path)).await;
        answer.assert_is(404, &admin_error("not_found", message, None), path);
    }
    assert_eq!(app.ban_rows().await.len(), 1, "10.0.0.1 is still banned");
}
