//! Rotation with a grace period (SPEC B10): the new key carries everything of the old one; the
//! old one keeps verifying until the grace ends — announcing its end in `Deprecation` and
//! `Sunset` — sharing one budget of limits and credits with the new one, then expires as any
//! token does; a lineage in grace is not rotated again unless forced.

use std::time::Duration;

use iam_tokens::Clock as _;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{admin_error, spawn_admin_app, AdminToken, Answer, TestApp};

const HOUR_MS: u64 = 3_600_000;

async fn rotate(app: &TestApp, id: u64, query: &str, body: &Value) -> Answer {
    let path = format!("/tokens/{id}/rotate{query}");
    app.admin_json(Method::POST, &path, body).await
}

async fn full_token(app: &TestApp, name: &str) -> AdminToken {
    let body = json!({
        "userId": 4, "name": name, "privilege": "full", "prefix": "live",
        "ips": ["127.0.0.1"], "metadata": {"plan": "pro"}, "permissions": ["projects.read"],
        "expires": 30 * 24 * HOUR_MS,
    });
    app.admin_create(&body).await
}

async fn admin_verify(app: &TestApp, key: &str) -> Answer {
    let body = json!({"key": key, "count": false});
    app.admin_json(Method::POST, "/verify", &body).await
}

#[tokio::test]
async fn the_new_key_carries_everything_and_the_old_one_verifies_until_its_grace_ends() {
    let app = spawn_admin_app().await;
    let old = full_token(&app, "billing sync").await;
    let rotated_at = app.clock.now();
    let answer = rotate(
        &app,
        old.id,
        "",
        &json!({"grace": HOUR_MS, "reason": "leaked"}),
    )
    .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let new_key = answer.body["rawApiKey"].as_str().expect("key").to_owned();
    assert!(new_key.starts_with("live_"), "{new_key}");
    let new_id = answer.body["token"]["id"].as_u64().expect("id");
    let grace_ends = app.clock_iso_after(Duration::from_millis(HOUR_MS));
    assert_eq!(
        answer.body["previous"],
        json!({"id": old.id, "graceEndsAt": grace_ends})
    );
    let token = &answer.body["token"];
    let old_token = &old.body["token"];
    for field in [
        "userId",
        "name",
        "privilege",
        "prefix",
        "expiresAt",
        "ipRestriction",
        "metadata",
        "permissions",
    ] {
        assert_eq!(token[field], old_token[field], "{field} carried over");
    }
    assert_eq!(
        answer.body["expiresAt"], old_token["expiresAt"],
        "same expiry"
    );

    let via_old = app.verify(&old.key, "full").await;
    assert_eq!(via_old.status, 200, "{via_old:?}");
    let deprecation = format!("@{}", rotated_at.timestamp());
    assert_eq!(via_old.header("deprecation"), Some(deprecation.as_str()));
    let sunset = (rotated_at + chrono::Duration::milliseconds(HOUR_MS as i64))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    assert_eq!(via_old.header("sunset"), Some(sunset.as_str()));
    let via_new = app.verify(&new_key, "full").await;
    assert_eq!(via_new.status, 200, "{via_new:?}");
    assert_eq!(
        via_new.header("deprecation"),
        None,
        "the new key is not deprecated"
    );
    let detail = admin_verify(&app, &old.key).await;
    assert_eq!(detail.body["code"], "VALID");
    assert_eq!(
        detail.body["rotation"],
        json!({"replacedBy": new_id, "graceEndsAt": grace_ends})
    );
    assert_eq!(
        admin_verify(&app, &new_key).await.body.get("rotation"),
        None
    );

    app.clock.advance(Duration::from_millis(HOUR_MS + 1));
    let expired = app.verify(&old.key, "full").await;
    expired.assert_is(401, &app.failure_now("Token expired"), "after the grace");
    let gone = app.verify(&old.key, "full").await;
    gone.assert_is(401, &app.failure_now("Invalid key"), "then not found");
    assert!(
        !app.usage_and_valid(old.id).await.1,
        "the old row is invalid"
    );
    assert_eq!(
        app.verify(&new_key, "full").await.status,
        200,
        "the new key lives on"
    );
    let rotated: Vec<(String, String, Value)> = app
        .audit_rows(Some(old.id))
        .await
        .into_iter()
        .filter(|(kind, _, _)| kind == "rotated")
        .collect();
    let detail = json!({
        "newTokenId": new_id, "graceEndsAt": grace_ends, "forced": false, "reason": "leaked",
    });
    assert_eq!(
        rotated,
        [("rotated".to_owned(), "config:ops".to_owned(), detail)]
    );
}

#[tokio::test]
async fn both_keys_of_a_lineage_spend_one_budget_of_credits() {
    let app = spawn_admin_app().await;
    let old = full_token(&app, "metered").await;
    let path = format!("/tokens/{}/credits", old.id);
    let set = app
        .admin_json(Method::PATCH, &path, &json!({"remaining": 5}))
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let answer = rotate(&app, old.id, "", &json!({"grace": HOUR_MS})).await;
    let new_key = answer.body["rawApiKey"].as_str().expect("key").to_owned();
    let mut admitted = 0;
    for round in 0..6 {
        for key in [&old.key, &new_key] {
            let answer = app.verify(key, "full").await;
            match answer.status {
                200 => admitted += 1,
                429 => {}
                other => panic!("round {round}: {other} {answer:?}"),
            }
        }
    }
    assert_eq!(
        admitted, 5,
        "5 credits, spent over both keys, never doubled"
    );
}

#[tokio::test]
async fn a_lineage_in_grace_is_rotated_again_only_when_forced() {
    let app = spawn_admin_app().await;
    let old = full_token(&app, "ci").await;
    let first = rotate(&app, old.id, "", &json!({"grace": HOUR_MS})).await;
    let (middle_id, middle_key) = (
        first.body["token"]["id"].as_u64().expect("id"),
        first.body["rawApiKey"].as_str().expect("key").to_owned(),
    );
    let message = format!(
        "token {middle_id} replaced token {}, whose grace still runs; rotate with ?force=true to end it now",
        old.id
    );
    rotate(&app, middle_id, "", &json!({})).await.assert_is(
        409,
        &admin_error("rotation_in_progress", &message, None),
        "newer",
    );
    let message = format!(
        "token {} is being replaced by token {middle_id}, in its grace; rotate token {middle_id}",
        old.id
    );
    rotate(&app, old.id, "?force=true", &json!({}))
        .await
        .assert_is(
            409,
            &admin_error("rotation_in_progress", &message, None),
            "older",
        );
    assert_eq!(
        app.verify(&old.key, "full").await.status,
        200,
        "nothing changed"
    );

    let forced = rotate(&app, middle_id, "?force=true", &json!({"grace": HOUR_MS})).await;
    assert_eq!(forced.status, 201, "{forced:?}");
    // Its grace ended now, and the rotation's sweep of the owner's expired tokens marked it
    // invalid at once (an `expired` event by the system): it is gone.
    let refused = app.verify(&old.key, "full").await;
    refused.assert_is(
        401,
        &app.failure_now("Invalid key"),
        "the older grace ended now",
    );
    let kinds: Vec<String> = app
        .audit_rows(Some(old.id))
        .await
        .into_iter()
        .map(|(kind, actor, _)| format!("{kind} by {actor}"))
        .collect();
    assert_eq!(
        kinds,
        [
            "created by config:ops",
            "rotated by config:ops",
            "expired by system"
        ]
    );
    assert_eq!(
        app.verify(&middle_key, "full").await.status,
        200,
        "in its own grace"
    );
}

#[tokio::test]
async fn without_a_body_the_old_key_stops_at_once() {
    let app = spawn_admin_app().await;
    let old = full_token(&app, "ci").await;
    let request = app.admin_request(Method::POST, &format!("/tokens/{}/rotate", old.id));
    let answer = app.send(request).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(
        answer.body["previous"]["graceEndsAt"],
        json!(app.clock_iso()),
        "no grace"
    );
    let refused = app.verify(&old.key, "full").await;
    refused.assert_is(401, &app.failure_now("Token expired"), "at once");
}

#[tokio::test]
async fn bad_rotations_are_refused_and_change_nothing() {
    let app = spawn_admin_app().await;
    let live = full_token(&app, "live").await;
    let revoked = full_token(&app, "revoked").await;
    let revoke = format!("/tokens/{}/revoke", revoked.id);
    assert_eq!(
        app.send(app.admin_request(Method::POST, &revoke))
            .await
            .status,
        200
    );
    let short = app
        .admin_create(&json!({"userId": 4, "name": "short", "expires": 1000}))
        .await;
    app.clock.advance(Duration::from_secs(2));
    let grace = "grace is 0 to 604800000 ms (7 days)";
    #[rustfmt::skip]
    let cases = [
        (live.id, "", json!({"grace": -1}),
            admin_error("invalid_grace", grace, Some("grace"))),
        (live.id, "", json!({"grace": 604_800_001}),
            admin_error("invalid_grace", grace, Some("grace"))),
        (live.id, "?force=maybe", json!({}),
            admin_error("bad_request", "force is true or false", Some("force"))),
        (revoked.id, "", json!({}),
            admin_error("token_revoked", &format!("token {} is revoked", revoked.id), None)),
        (short.id, "", json!({}),
            admin_error("token_expired", &format!("token {} has expired", short.id), None)),
        (999, "", json!({}), admin_error("not_found", "no token with id 999", None)),
    ];
    let count = "SELECT COUNT(*) FROM api_tokens";
    let before: u64 = app.query_one(count, ()).await;
    for (id, query, body, problem) in cases {
        let status = problem["status"].as_u64().unwrap_or_default() as u16;
        let case = format!("{id}{query} {body}");
        rotate(&app, id, query, &body)
            .await
            .assert_is(status, &problem, &case);
    }
    let after: u64 = app.query_one(count, ()).await;
    assert_eq!(after, before, "no token created");
    assert_eq!(app.verify(&live.key, "full").await.status, 200, "untouched");
}

/// The lineage's one budget holds across instances sharing Redis: 30 credits, 120 verifications
/// alternating the old and the new key over three instances, 64 at a time: exactly 30 pass.
#[tokio::test]
async fn a_lineage_spends_exactly_its_credits_across_three_instances() {
    use futures_util::StreamExt as _;
    crate::store_independent!();
    let fleet = crate::shared_instances::instances(
        3,
        crate::shared_instances::Shared::Single,
        crate::helpers::ops_admin,
    )
    .await;
    let apps = &fleet.apps;
    let old = full_token(&apps[0], "metered").await;
    let path = format!("/tokens/{}/credits", old.id);
    let set = apps[0]
        .admin_json(Method::PATCH, &path, &json!({"remaining": 30}))
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let answer = rotate(&apps[0], old.id, "", &json!({"grace": HOUR_MS})).await;
    let new_key = answer.body["rawApiKey"].as_str().expect("key").to_owned();
    let requests = (0..120).map(|n| {
        let key = if n % 2 == 0 { &old.key } else { &new_key };
        apps[n % 3].verify(key, "full")
    });
    let answers: Vec<Answer> = futures_util::stream::iter(requests)
        .buffer_unordered(64)
        .collect()
        .await;
    let admitted = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers.iter().filter(|a| a.status == 429).count();
    assert_eq!(
        (admitted, refused),
        (30, 90),
        "one budget over both keys and three instances"
    );
}

#[tokio::test]
async fn the_command_line_rotates_with_a_grace() {
    let app = spawn_admin_app().await;
    let old = full_token(&app, "ci").await;
    let id = old.id.to_string();
    let output = crate::helpers::run_cli(&app, &["token", "rotate", &id, "--grace", "1h"]).await;
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let lines: Vec<&str> = printed.lines().collect();
    let key = lines[0]
        .strip_prefix("key (shown once): ")
        .expect("the key first");
    assert!(key.starts_with("live_"), "{key}");
    assert!(
        lines[2].ends_with(&format!("replaces    {id}")),
        "{printed}"
    );
    assert_eq!(app.verify(key, "full").await.status, 200, "the new key");
    assert_eq!(
        app.verify(&old.key, "full").await.status,
        200,
        "the old one, in grace"
    );
    let again = crate::helpers::run_cli(&app, &["token", "rotate", &id]).await;
    assert!(!again.status.success(), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("in its grace"), "{stderr}");
}
