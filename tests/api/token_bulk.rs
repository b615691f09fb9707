//! Bulk actions (SPEC B10): revoke, disable or enable up to 1,000 tokens, or every valid token
//! of one owner, with a result per token in order, one audit event per token that changed, and
//! the operation's own scope.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    admin_as, admin_error, forbidden, spawn_admin_app, AdminToken, Answer, TestApp,
};

async fn bulk(app: &TestApp, body: &Value) -> Answer {
    app.admin_json(Method::POST, "/tokens/bulk", body).await
}

async fn token(app: &TestApp, user: u64, name: &str) -> AdminToken {
    app.admin_create(&json!({"userId": user, "name": name, "privilege": "full"}))
        .await
}

fn ok(id: u64) -> Value {
    json!({"id": id, "ok": true})
}

fn missing(id: u64) -> Value {
    json!({"id": id, "ok": false, "code": "not_found"})
}

/// How many audit events of `kind` there are.
async fn events_of(app: &TestApp, kind: &str) -> u64 {
    app.query_one("SELECT COUNT(*) FROM audit_events WHERE event = ?", (kind,))
        .await
}

#[tokio::test]
async fn a_bulk_disable_and_enable_answers_per_token_in_order_with_one_event_each() {
    let app = spawn_admin_app().await;
    let (a, b) = (token(&app, 3, "a").await, token(&app, 4, "b").await);
    let body = json!({"op": "disable", "ids": [a.id, 999, b.id], "reason": "fraud review"});
    let expected = json!({"results": [ok(a.id), missing(999), ok(b.id)]});
    bulk(&app, &body)
        .await
        .assert_is(200, &expected, "disabled");
    for key in [&a.key, &b.key] {
        let refused = app.verify(key, "full").await;
        refused.assert_is(401, &app.failure_now("Token disabled"), "disabled");
    }
    assert_eq!(events_of(&app, "disabled").await, 2, "one event per token");
    bulk(&app, &body)
        .await
        .assert_is(200, &expected, "again: nothing changes");
    assert_eq!(
        events_of(&app, "disabled").await,
        2,
        "no event for a repeat"
    );
    let rows = app.audit_rows(Some(a.id)).await;
    let last = rows.last().expect("events");
    assert_eq!(
        (last.0.as_str(), last.1.as_str(), &last.2),
        ("disabled", "config:ops", &json!({"reason": "fraud review"}))
    );
    let enable = json!({"op": "enable", "ids": [b.id, a.id]});
    let expected = json!({"results": [ok(b.id), ok(a.id)]});
    bulk(&app, &enable)
        .await
        .assert_is(200, &expected, "enabled");
    for key in [&a.key, &b.key] {
        assert_eq!(app.verify(key, "full").await.status, 200, "enabled again");
    }
}

#[tokio::test]
async fn a_bulk_revoke_of_an_owner_takes_every_valid_token_of_it_and_nothing_else() {
    let app = spawn_admin_app().await;
    let (first, second) = (token(&app, 7, "one").await, token(&app, 7, "two").await);
    let other = token(&app, 8, "other").await;
    let body = json!({"op": "revoke", "userId": 7});
    let expected = json!({"results": [ok(first.id), ok(second.id)]});
    bulk(&app, &body)
        .await
        .assert_is(200, &expected, "oldest first");
    for key in [&first.key, &second.key] {
        let refused = app.verify(key, "full").await;
        refused.assert_is(401, &app.failure_now("Invalid key"), "revoked");
    }
    assert_eq!(
        app.verify(&other.key, "full").await.status,
        200,
        "another owner"
    );
    assert_eq!(events_of(&app, "revoked").await, 2, "one event per token");
    let again = bulk(&app, &body).await;
    again.assert_is(200, &json!({"results": []}), "no valid token left");
}

#[tokio::test]
async fn a_bulk_action_over_several_chunks_keeps_the_order_of_the_ids() {
    let app = spawn_admin_app().await;
    let mut real = Vec::new();
    for (user, name) in [(1, "first"), (2, "middle"), (3, "last")] {
        real.push(token(&app, user, name).await);
    }
    // 250 ids over three chunks of 100: the real ones at the first, the 150th and the last place.
    let mut ids: Vec<u64> = (10_000..10_250).collect();
    ids[0] = real[0].id;
    ids[149] = real[1].id;
    ids[249] = real[2].id;
    let answer = bulk(&app, &json!({"op": "disable", "ids": ids})).await;
    let expected: Vec<Value> = ids
        .iter()
        .map(|&id| match real.iter().any(|t| t.id == id) {
            true => ok(id),
            false => missing(id),
        })
        .collect();
    answer.assert_is(200, &json!({ "results": expected }), "250 ids");
    assert_eq!(events_of(&app, "disabled").await, 3);
}

#[tokio::test]
async fn bad_bulk_requests_are_refused_naming_the_field_and_change_nothing() {
    let app = spawn_admin_app().await;
    let a = token(&app, 3, "a").await;
    let over: Vec<u64> = (1..=1001).collect();
    let reason = "a reason is 1 to 200 characters, not only spaces, without control characters";
    #[rustfmt::skip]
    let cases = [
        (json!({"op": "revoke", "ids": [a.id], "userId": 3}),
            admin_error("bad_request", "give ids or userId, not both", Some("userId"))),
        (json!({"op": "revoke"}),
            admin_error("bad_request", "give ids or userId", Some("ids"))),
        (json!({"op": "revoke", "ids": []}),
            admin_error("invalid_ids", "ids names 1 to 1000 tokens", Some("ids"))),
        (json!({"op": "revoke", "ids": over}),
            admin_error("invalid_ids", "ids names 1 to 1000 tokens", Some("ids"))),
        (json!({"op": "disable", "ids": [a.id, 5, a.id]}),
            admin_error("invalid_ids", &format!("token {} is named twice", a.id), Some("ids[2]"))),
        (json!({"op": "disable", "ids": [a.id], "reason": "x".repeat(201)}),
            admin_error("invalid_reason", reason, Some("reason"))),
    ];
    for (body, problem) in cases {
        let status = problem["status"].as_u64().unwrap_or_default() as u16;
        bulk(&app, &body)
            .await
            .assert_is(status, &problem, &body.to_string());
    }
    for body in [
        json!({"op": "delete", "ids": [a.id]}),
        json!({"ids": [a.id]}),
    ] {
        let answer = bulk(&app, &body).await;
        assert_eq!(
            (answer.status, &answer.body["field"]),
            (400, &json!("op")),
            "{body}: {answer:?}"
        );
    }
    assert_eq!(app.verify(&a.key, "full").await.status, 200, "unchanged");
    assert_eq!(
        app.audit_rows(Some(a.id)).await.len(),
        1,
        "only its creation"
    );
}

#[tokio::test]
async fn each_operation_needs_its_own_scope() {
    let app = spawn_admin_app().await;
    let a = token(&app, 3, "a").await;
    let mut secrets = Vec::new();
    for scope in ["tokens.disable", "tokens.revoke"] {
        let body = json!({"name": format!("only {scope}"), "scopes": [scope]});
        let created = app.admin_json(Method::POST, "/credentials", &body).await;
        secrets.push(created.body["secret"].as_str().expect("secret").to_owned());
    }
    let call = |secret: &str, op: &str| {
        let body = json!({"op": op, "ids": [a.id]});
        let secret = secret.to_owned();
        let app = &app;
        async move { admin_as(app, &secret, Method::POST, "/tokens/bulk", Some(&body)).await }
    };
    let refused = call(&secrets[0], "revoke").await;
    refused.assert_is(403, &forbidden("tokens.revoke"), "a disabler revokes");
    let refused = call(&secrets[1], "disable").await;
    refused.assert_is(403, &forbidden("tokens.disable"), "a revoker disables");
    let done = json!({"results": [ok(a.id)]});
    call(&secrets[0], "disable")
        .await
        .assert_is(200, &done, "disable");
    call(&secrets[0], "enable")
        .await
        .assert_is(200, &done, "enable");
    call(&secrets[1], "revoke")
        .await
        .assert_is(200, &done, "revoke");
}
