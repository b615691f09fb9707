//! Disabling and enabling tokens and owners (SPEC B10): a disabled key is refused as `Token
//! disabled` (admin: `DISABLED`) without counting a use, spending credits or counting as an
//! abuse-limiter failure; enabling restores it exactly; the owner's flag and the token's are
//! independent; every change is audited once; the BFF still sees the token as riavzon does.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    admin_error, ops_admin, run_cli, spawn_admin_app, spawn_admin_app_with, AdminToken, Answer,
    TestApp,
};
use crate::shared_instances::{eventually, instances, Shared};

async fn put_state(app: &TestApp, path: &str, body: &Value) -> Answer {
    app.admin_json(Method::PUT, path, body).await
}

fn state(enabled: bool, changed: bool) -> Value {
    json!({"enabled": enabled, "changed": changed})
}

async fn admin_verify(app: &TestApp, key: &str) -> Answer {
    let body = json!({"key": key, "count": false});
    app.admin_json(Method::POST, "/verify", &body).await
}

/// The `/tokens/{id}` body's `enabled`, `disabled` and `ownerDisabled`.
async fn shown_state(app: &TestApp, id: u64) -> Value {
    let read = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(read.status, 200, "{read:?}");
    json!({
        "enabled": read.body["enabled"],
        "disabled": read.body["disabled"],
        "ownerDisabled": read.body["ownerDisabled"],
    })
}

fn ops() -> Value {
    json!({"type": "config", "id": "ops", "name": "ops"})
}

#[tokio::test]
async fn a_disabled_token_is_refused_without_a_use_and_enabling_restores_it_exactly() {
    let app = spawn_admin_app().await;
    let token: AdminToken = app
        .admin_create(&json!({"userId": 3, "name": "ci", "privilege": "full"}))
        .await;
    let path = format!("/tokens/{}/credits", token.id);
    let credits = app
        .admin_json(Method::PATCH, &path, &json!({"remaining": 5}))
        .await;
    assert_eq!(credits.status, 200, "{credits:?}");
    let before = app.verify(&token.key, "full").await;
    assert_eq!(before.status, 200, "{before:?}");

    let state_path = format!("/tokens/{}/state", token.id);
    let off = json!({"enabled": false, "reason": "chargeback on invoice 42"});
    put_state(&app, &state_path, &off)
        .await
        .assert_is(200, &state(false, true), "disabled");
    let disabled_at = app.clock_iso();
    for attempt in 0..3 {
        let refused = app.verify(&token.key, "full").await;
        refused.assert_is(
            401,
            &app.failure_now("Token disabled"),
            &format!("public {attempt}"),
        );
    }
    let admin = admin_verify(&app, &token.key).await;
    assert_eq!(
        (admin.status, &admin.body["valid"], &admin.body["code"]),
        (200, &json!(false), &json!("DISABLED")),
        "{admin:?}"
    );
    let expected = json!({
        "enabled": false,
        "disabled": {"at": disabled_at, "by": ops(), "reason": "chargeback on invoice 42"},
        "ownerDisabled": null,
    });
    assert_eq!(
        shown_state(&app, token.id).await,
        expected,
        "the admin read"
    );
    let (uses, valid) = app.usage_and_valid(token.id).await;
    assert_eq!((uses, valid), (1, true), "no use counted; not revoked");
    let read = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(
        read.body["credits"]["remaining"], 4,
        "no credit spent while disabled"
    );

    put_state(&app, &state_path, &off)
        .await
        .assert_is(200, &state(false, false), "idempotent");
    put_state(&app, &state_path, &json!({"enabled": true}))
        .await
        .assert_is(200, &state(true, true), "enabled");
    put_state(&app, &state_path, &json!({"enabled": true}))
        .await
        .assert_is(200, &state(true, false), "idempotent");
    let after = app.verify(&token.key, "full").await;
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.data()["usageCount"], 2, "counted again");
    let expected = json!({"enabled": true, "disabled": null, "ownerDisabled": null});
    assert_eq!(shown_state(&app, token.id).await, expected, "restored");

    let events: Vec<(String, String, Value)> = app
        .audit_rows(Some(token.id))
        .await
        .into_iter()
        .filter(|(kind, _, _)| kind == "disabled" || kind == "enabled")
        .collect();
    assert_eq!(
        events,
        [
            (
                "disabled".to_owned(),
                "config:ops".to_owned(),
                json!({"reason": "chargeback on invoice 42"})
            ),
            (
                "enabled".to_owned(),
                "config:ops".to_owned(),
                json!({"reason": null})
            ),
        ],
        "one event per change, none for a repeat"
    );
}

#[tokio::test]
async fn refusing_a_disabled_key_is_not_an_abuse_limiter_failure() {
    let app = spawn_admin_app_with(|s| s.rate_limiters.enabled = true).await;
    let token = app
        .admin_create(&json!({"userId": 3, "name": "ci", "privilege": "full"}))
        .await;
    let state_path = format!("/tokens/{}/state", token.id);
    put_state(&app, &state_path, &json!({"enabled": false})).await;
    for attempt in 0..30 {
        let refused = app.verify(&token.key, "full").await;
        refused.assert_is(
            401,
            &app.failure_now("Token disabled"),
            &format!("{attempt}"),
        );
    }
    put_state(&app, &state_path, &json!({"enabled": true})).await;
    let answer = app.verify(&token.key, "full").await;
    assert_eq!(answer.status, 200, "never blocked: {answer:?}");
}

#[tokio::test]
async fn a_disabled_owner_disables_every_token_present_and_future_and_each_flag_is_its_own() {
    let app = spawn_admin_app().await;
    let create = |user: u64, name: &str| json!({"userId": user, "name": name, "privilege": "full"});
    let own = app.admin_create(&create(7, "own")).await;
    let shared = app.admin_create(&create(7, "shared")).await;
    let other = app.admin_create(&create(8, "other")).await;
    let own_path = format!("/tokens/{}/state", own.id);
    put_state(&app, &own_path, &json!({"enabled": false})).await;
    let off = json!({"enabled": false, "reason": "unpaid"});
    put_state(&app, "/users/7/state", &off).await.assert_is(
        200,
        &state(false, true),
        "owner disabled",
    );
    put_state(&app, "/users/7/state", &off).await.assert_is(
        200,
        &state(false, false),
        "idempotent",
    );
    let later = app.admin_create(&create(7, "later")).await;
    for (token, case) in [
        (&own, "own"),
        (&shared, "shared"),
        (&later, "created after"),
    ] {
        let refused = app.verify(&token.key, "full").await;
        refused.assert_is(401, &app.failure_now("Token disabled"), case);
    }
    assert_eq!(
        app.verify(&other.key, "full").await.status,
        200,
        "another owner"
    );
    let owner_off = json!({"at": app.clock_iso(), "by": ops(), "reason": "unpaid"});
    let shown = shown_state(&app, shared.id).await;
    assert_eq!(
        shown,
        json!({"enabled": false, "disabled": null, "ownerDisabled": owner_off}),
        "the owner's state on its token"
    );

    put_state(&app, "/users/7/state", &json!({"enabled": true}))
        .await
        .assert_is(200, &state(true, true), "owner enabled");
    let refused = app.verify(&own.key, "full").await;
    refused.assert_is(
        401,
        &app.failure_now("Token disabled"),
        "still disabled on its own",
    );
    for (token, case) in [(&shared, "shared"), (&later, "created after")] {
        assert_eq!(app.verify(&token.key, "full").await.status, 200, "{case}");
    }
    let audit = app.admin_get("/audit?userId=7&kind=disabled").await;
    let events = audit.body["events"].as_array().expect("events").clone();
    let owner_event: Vec<&Value> = events.iter().filter(|e| e["tokenId"].is_null()).collect();
    assert_eq!(owner_event.len(), 1, "{events:?}");
    assert_eq!(
        owner_event[0]["detail"],
        json!({"scope": "owner", "userId": 7, "reason": "unpaid"})
    );
}

#[tokio::test]
async fn the_bff_still_sees_a_disabled_token_as_riavzon_does() {
    let app = spawn_admin_app().await;
    let token = app
        .http_token(5, &json!({"privilege": "full", "name": "mine"}))
        .await;
    let listed_before = app.manage_get("list-metadata", 5).await;
    let path = format!("/tokens/{}/state", token.id);
    put_state(&app, &path, &json!({"enabled": false})).await;
    let listed = app.manage_get("list-metadata", 5).await;
    assert_eq!(listed.status, listed_before.status);
    assert_eq!(
        listed.data(),
        listed_before.data(),
        "still a valid token there"
    );
}

#[tokio::test]
async fn bad_state_requests_are_refused_naming_the_field_and_change_nothing() {
    let app = spawn_admin_app().await;
    let token = app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let path = format!("/tokens/{}/state", token.id);
    let reason = "a reason is 1 to 200 characters, not only spaces, without control characters";
    #[rustfmt::skip]
    let cases = [
        (path.clone(), json!({"enabled": false, "reason": "x".repeat(201)}),
            admin_error("invalid_reason", reason, Some("reason"))),
        (path.clone(), json!({"enabled": false, "reason": "  "}),
            admin_error("invalid_reason", reason, Some("reason"))),
        ("/tokens/999/state".to_owned(), json!({"enabled": false}),
            admin_error("not_found", "no token with id 999", None)),
        ("/users/0/state".to_owned(), json!({"enabled": false}),
            admin_error("bad_request", "userId must be an integer from 1 to 9223372036854775807", Some("userId"))),
    ];
    for (path, body, problem) in cases {
        let answer = put_state(&app, &path, &body).await;
        let status = problem["status"].as_u64().unwrap_or_default() as u16;
        answer.assert_is(status, &problem, &path);
    }
    for body in [
        json!({}),
        json!({"enabled": "no"}),
        json!({"enabled": false, "why": 1}),
    ] {
        let answer = put_state(&app, &path, &body).await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
    }
    assert_eq!(
        app.verify(&token.key, "restricted").await.status,
        200,
        "unchanged"
    );
    let events = app.audit_rows(Some(token.id)).await;
    assert_eq!(events.len(), 1, "only its creation: {events:?}");
}

#[tokio::test]
async fn the_command_line_disables_and_enables_a_token() {
    let app = spawn_admin_app().await;
    let token = app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let id = token.id.to_string();
    let run = |args: Vec<&str>| {
        let app = &app;
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = run_cli(app, &args).await;
            assert!(output.status.success(), "{output:?}");
            String::from_utf8(output.stdout).expect("UTF-8")
        }
    };
    let printed = run(vec!["token", "disable", &id, "--reason", "paused"]).await;
    assert_eq!(
        printed,
        format!("id       {id}\nenabled  false\nchanged  true\n")
    );
    let refused = app.verify(&token.key, "restricted").await;
    assert_eq!(refused.reason(), "Token disabled", "{refused:?}");
    let printed = run(vec!["token", "enable", &id]).await;
    assert_eq!(
        printed,
        format!("id       {id}\nenabled  true\nchanged  true\n")
    );
    let output = run_cli(&app, &["token", "disable", "999"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no token with id 999"), "{stderr}");
}

async fn a_disabled_token_is_refused_everywhere_within_100_ms(shared: Shared) {
    crate::store_independent!();
    let fleet = instances(3, shared, ops_admin).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let token = a
        .admin_create(&json!({"userId": 3, "name": "ci", "privilege": "full"}))
        .await;
    for app in [a, b, c] {
        assert_eq!(app.verify(&token.key, "full").await.status, 200, "cached");
    }
    let path = format!("/tokens/{}/state", token.id);
    assert_eq!(
        put_state(a, &path, &json!({"enabled": false})).await.status,
        200
    );
    let answered = Instant::now();
    for (name, app) in [("B", b), ("C", c)] {
        let refused = eventually(Duration::from_millis(100), || async {
            app.verify(&token.key, "full").await.status == 401
        })
        .await;
        assert!(
            refused.is_some(),
            "{name} still verifies it after {:?}",
            answered.elapsed()
        );
    }
}

#[tokio::test]
async fn a_disabled_token_is_refused_everywhere_within_100_ms_on_one_redis() {
    a_disabled_token_is_refused_everywhere_within_100_ms(Shared::Single).await;
}
