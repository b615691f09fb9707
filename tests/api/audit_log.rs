//! The audit log (SPEC B1, B2): every mutation leaves exactly one event naming who made it and
//! what changed, written in the same transaction as the change; failures leave none.

use std::time::Duration;

use iam_tokens::config::AdminTokenSettings;
use iam_tokens::domain::{Actor, Privilege, TokenName};
use iam_tokens::service::RotateToken;
use iam_tokens::TokenService;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::helpers::uid;
use crate::helpers::{
    admin_error, assert_banned, assert_blocked, ops_admin, run_cli, spawn_admin_app,
    spawn_admin_app_with, spawn_app_with, spawn_limited_app, TestApp,
};

type Event = (String, String, Value);

fn event(name: &str, actor: &str, detail: Value) -> Event {
    (name.to_owned(), actor.to_owned(), detail)
}

/// The detail of a `created` event of user `user`'s token, prefix `api`.
fn created(user: u64, name: &str, privilege: &str, metadata_keys: Value) -> Value {
    json!({
        "userId": user, "name": name, "privilege": privilege, "prefix": "api",
        "metadataKeys": metadata_keys,
    })
}

async fn event_count(app: &TestApp) -> u64 {
    app.query_one("SELECT COUNT(*) FROM audit_events", ()).await
}

/// Ids of a token's events, oldest first.
async fn event_ids(app: &TestApp, token_id: u64) -> Vec<u64> {
    let sql = "SELECT id FROM audit_events WHERE token_id = ? ORDER BY id";
    app.query_all(sql, (token_id,)).await
}

/// `/api/manage/*`'s five points of a token named `name`, plus `extra` fields.
fn points(id: u64, public_id: &str, name: &str, extra: Value) -> Value {
    let mut body = json!({"tokenId": id, "publicIdentifier": public_id, "name": name});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

#[tokio::test]
async fn manage_routes_record_each_change_as_the_signed_in_user() {
    let app = spawn_admin_app().await;
    let token = app
        .http_token(7, &json!({"privilege": "full", "name": "bff"}))
        .await;
    let body = |extra| points(token.id, &token.public_id, "bff", extra);
    let ips = ["10.0.0.1", "192.168.0.0/16"];
    let actions = [
        ("ip-restriction-update", body(json!({ "ipv4": ips }))),
        ("privilege-update", body(json!({"newPrivilege": "demo"}))),
        ("ip-restriction-update", body(json!({"ipv4": []}))),
        ("rotate", body(json!({}))),
    ];
    for (action, body) in actions {
        let answer = app.manage_post(action, 7, &body).await;
        assert_eq!(answer.status, 200, "{action}: {answer:?}");
    }
    let sql = "SELECT id, public_identifier FROM api_tokens WHERE valid = 1";
    let (new_id, new_public_id): (u64, String) = app.query_one(sql, ()).await;
    let new_points = points(new_id, &new_public_id, "bff", json!({}));
    assert_eq!(app.manage_post("revoke", 7, &new_points).await.status, 200);
    #[rustfmt::skip]
    let expected = [
        event("created",                "user:7", created(7, "bff", "full", json!([]))),
        event("ip_restriction_updated", "user:7", json!({"old": [], "new": ips})),
        event("privilege_updated",      "user:7", json!({"old": "full", "new": "demo"})),
        event("ip_restriction_updated", "user:7", json!({"old": ips, "new": []})),
        event("rotated",                "user:7", json!({"newTokenId": new_id, "deleted": false})),
    ];
    assert_eq!(app.audit_rows(Some(token.id)).await, expected, "old token");
    let mut detail = created(7, "bff", "demo", json!([]));
    detail["rotatedFrom"] = json!(token.id);
    let revoked = event("revoked", "user:7", json!({}));
    let expected = [event("created", "user:7", detail), revoked];
    assert_eq!(app.audit_rows(Some(new_id)).await, expected, "new token");
    assert_eq!(event_count(&app).await, 7, "and nothing else");
}

#[tokio::test]
async fn admin_changes_are_recorded_as_admin_ops_and_listed_oldest_first() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 3, "name": "crm", "metadata": {"a": 1, "b": "x"}});
    let token = app.admin_create(&body).await;
    let mut times = vec![app.clock_iso()];
    let path = format!("/tokens/{}/metadata", token.id);
    let changes = [
        (
            Method::PATCH,
            json!({"b": "y", "c": true, "a": 1, "z": null}),
        ),
        (Method::PUT, json!({"c": true})),
        (Method::PATCH, json!({"c": true})),
    ];
    for (method, body) in changes {
        app.clock.advance(Duration::from_secs(1));
        times.push(app.clock_iso());
        assert_eq!(app.admin_json(method, &path, &body).await.status, 200);
    }
    app.clock.advance(Duration::from_secs(1));
    times.push(app.clock_iso());
    let revoke = format!("/tokens/{}/revoke", token.id);
    for _ in 0..2 {
        let answer = app.send(app.admin_request(Method::POST, &revoke)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    #[rustfmt::skip]
    let details = [
        ("created",          created(3, "crm", "restricted", json!(["a", "b"]))),
        ("metadata_updated", json!({"mode": "patch", "keys": ["b", "c"]})),
        ("metadata_updated", json!({"mode": "replace", "keys": ["a", "b"]})),
        ("metadata_updated", json!({"mode": "patch", "keys": []})),
        ("revoked",          json!({})),
    ];
    let ids = event_ids(&app, token.id).await;
    assert_eq!(ids.len(), details.len(), "none for the second revoke");
    let events: Vec<Value> = details
        .into_iter()
        .zip(ids.iter().zip(&times))
        .map(|((name, detail), (id, at))| {
            let actor = json!({"type": "config", "id": "ops", "name": "ops"});
            json!({
                "id": id, "kind": name, "event": name, "actor": actor, "tokenId": token.id,
                "userId": 3, "detail": detail, "createdAt": at,
            })
        })
        .collect();
    let answer = app.admin_get(&format!("/tokens/{}/events", token.id)).await;
    answer.assert_is(200, &json!({ "events": events }), "the token's events");
}

#[tokio::test]
async fn the_events_route_answers_404_for_an_unknown_token() {
    let app = spawn_admin_app().await;
    #[rustfmt::skip]
    let cases = [
        ("/tokens/77/events", "no token with id 77"),
        ("/tokens/x/events",  "no token with id \"x\""),
    ];
    for (path, message) in cases {
        let answer = app.admin_get(path).await;
        answer.assert_is(404, &admin_error("not_found", message, None), path);
    }
}

#[tokio::test]
async fn library_changes_are_recorded_as_the_acting_actor_or_system() {
    let app = spawn_admin_app().await;
    let token = app.create_token(4, Privilege::Full, "lib").await;
    let as_user = app.tokens.acting_as(Actor::user(uid(4)));
    for attempt in ["first", "again"] {
        let revoked = as_user.revoke(&token.raw_api_key, Privilege::Full).await;
        assert!(revoked.is_ok(), "{attempt}: {revoked:?}");
    }
    let expected = [
        event("created", "system", created(4, "lib", "full", json!([]))),
        event("revoked", "user:4", json!({})),
    ];
    assert_eq!(app.audit_rows(Some(token.token_id)).await, expected);
}

#[tokio::test]
async fn command_line_changes_are_recorded_as_cli() {
    let app = spawn_admin_app().await;
    let args = [
        "token", "create", "--user", "2", "--name", "ops", "--meta", "plan=pro",
    ];
    let output = run_cli(&app, &args).await;
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let key = printed["data"]["rawApiKey"].as_str().unwrap_or_default();
    let public_id = printed["data"]["rawPublicId"].as_str().unwrap_or_default();
    let id = app.token_id(public_id).await;
    let output = run_cli(&app, &["token", "revoke", key]).await;
    assert!(output.status.success(), "{output:?}");
    let detail = created(2, "ops", "restricted", json!(["plan"]));
    let expected = [
        event("created", "cli", detail),
        event("revoked", "cli", json!({})),
    ];
    assert_eq!(app.audit_rows(Some(id)).await, expected);
}

#[tokio::test]
async fn expiry_is_recorded_as_system_whoever_notices_it() {
    let app = spawn_admin_app().await;
    let short = |name: &str| json!({"userId": 6, "name": name, "expires": 1000});
    let seen_by_verify = app.admin_create(&short("verified")).await;
    let seen_by_create = app.admin_create(&short("counted")).await;
    app.clock.advance(Duration::from_secs(2));
    let expired = app.failure_now("Token expired");
    let answer = app.verify(&seen_by_verify.key, "restricted").await;
    answer.assert_is(401, &expired, "verify after expiry");
    app.admin_create(&json!({"userId": 6, "name": "fresh"}))
        .await;
    for (token, name) in [(&seen_by_verify, "verified"), (&seen_by_create, "counted")] {
        let detail = created(6, name, "restricted", json!([]));
        let expected = [
            event("created", "config:ops", detail),
            event("expired", "system", json!({})),
        ];
        assert_eq!(app.audit_rows(Some(token.id)).await, expected, "{name}");
    }
}

#[tokio::test]
async fn failed_operations_write_no_event() {
    let app = spawn_admin_app_with(|s| s.api_tokens.limit_tokens_per_user = 2).await;
    let first = app.create_token(5, Privilege::Full, "one").await;
    let second = app.create_token(5, Privilege::Full, "two").await;
    let before = event_count(&app).await;
    // A service whose limit is now below what the user holds refuses the rotation.
    let (store, clock) = (app.own_store().await, app.tokens.clock().clone());
    let stricter = TokenService::new(store, clock, 1);
    let name = TokenName::parse("one").expect("name");
    let rotation = RotateToken::new(&first.raw_api_key, Privilege::Full, name);
    let rotated = stricter.rotate(rotation).await.outcome;
    let reason = rotated.expect_err("refused").as_str().into_owned();
    assert_eq!(reason, "You cannot have more then 1 valid tokens at a time");
    let third = json!({"userId": 5, "name": "three"});
    let refused = app.admin_json(Method::POST, "/tokens", &third).await;
    assert_eq!(refused.status, 409, "over the limit: {refused:?}");
    let (id, public_id) = (first.token_id, &first.raw_public_id);
    let theirs = points(id, public_id, "one", json!({"newPrivilege": "demo"}));
    let foreign = app.manage_post("privilege-update", 8, &theirs).await;
    foreign.assert_is(400, &app.failure_now("Bad Request"), "another user's token");
    let wrong = app
        .tokens
        .revoke(&second.raw_api_key, Privilege::Demo)
        .await;
    assert!(wrong.is_ok(), "nothing to revoke: {wrong:?}");
    let path = format!("/tokens/{}/metadata", first.token_id);
    let bad_patch = app
        .admin_json(Method::PATCH, &path, &json!({"crm id": 1}))
        .await;
    assert_eq!(bad_patch.status, 422, "{bad_patch:?}");
    assert_eq!(event_count(&app).await, before, "no failure wrote an event");
    let valid = app.valid_token_rows(5).await;
    assert_eq!(valid, 2, "and no failure changed a token");
}

#[tokio::test]
async fn a_change_whose_event_cannot_be_written_is_not_made() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 3, "name": "kept", "metadata": {"a": 1}});
    let token = app.admin_create(&body).await;
    let rows = app.token_row_count().await;
    // Portable: MySQL and SQLite both take this form.
    app.execute("ALTER TABLE audit_events RENAME TO audit_events_gone", ())
        .await;
    let message = "the token store is unavailable; try again";
    let unavailable = admin_error("unavailable", message, None);
    let path = format!("/tokens/{}/metadata", token.id);
    let patched = app.admin_json(Method::PATCH, &path, &json!({"a": 2})).await;
    patched.assert_is(503, &unavailable, "metadata patch");
    let revoke = format!("/tokens/{}/revoke", token.id);
    let revoked = app.send(app.admin_request(Method::POST, &revoke)).await;
    revoked.assert_is(503, &unavailable, "revoke");
    let new = json!({"userId": 3, "name": "new"});
    let create = app.admin_json(Method::POST, "/tokens", &new).await;
    create.assert_is(503, &unavailable, "create");
    assert_eq!(app.stored_metadata(token.id).await, json!({"a": 1}));
    let state = app.usage_and_valid(token.id).await;
    assert_eq!(state, (0, true), "still valid");
    assert_eq!(app.token_row_count().await, rows, "no token inserted");
}

#[tokio::test]
async fn a_ban_writes_a_banned_event_that_belongs_to_no_token() {
    let app = spawn_limited_app(ops_admin).await;
    let empty = json!({});
    let failing = || app.manage_post("metadata", 42, &empty);
    assert_eq!(failing().await.status, 400, "first call");
    assert_blocked(&failing().await, 900, "second call");
    let banned_at = app.clock_iso();
    assert_banned(&failing().await, "third call");
    let reason = "rejected again while blocked";
    let detail = json!({"limiter": "burst_limiter", "key": "127.0.0.1", "reason": reason});
    let rows = app.audit_rows(None).await;
    assert_eq!(rows, [event("banned", "system", detail)]);
    let sql = "SELECT created_at FROM audit_events";
    let at: chrono::NaiveDateTime = app.query_one(sql, ()).await;
    let at = iam_tokens::envelope::iso(&at.and_utc());
    assert_eq!(at, banned_at, "at the service's time");
}

/// Runs `iam-tokens admin-token config --name <name>` (no database needed): `(secret, digest)`.
async fn new_admin_credential(name: &str) -> (String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
    command.args(["admin-token", "config", "--name", name]);
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env_remove("RUST_LOG");
    for (var, _) in std::env::vars_os().filter(|(v, _)| v.to_string_lossy().starts_with("IAM")) {
        command.env_remove(var);
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await;
    let output = output.expect("blocking task").expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    let secret = lines[0].rsplit(": ").next().unwrap_or_default().to_owned();
    let digest = lines[2].rsplit("digest = \"").next().unwrap_or_default();
    let digest = digest.trim_end_matches("\" }]").to_owned();
    let entry = format!("admin_tokens = [{{ name = \"{name}\", digest = \"{digest}\" }}]");
    assert_eq!(
        lines[1..],
        ["add to config.toml under [auth]:", entry.as_str()]
    );
    (secret, digest)
}

#[tokio::test]
async fn a_credential_from_admin_token_config_works_and_the_log_names_its_admin() {
    let (secret, digest) = new_admin_credential("billing").await;
    assert!(
        secret.starts_with("iam_admin_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(
        digest,
        hex::encode(sha2::Sha256::digest(&secret)),
        "the secret's digest"
    );
    let (again, _) = new_admin_credential("billing").await;
    assert_ne!(again, secret, "every run makes a new secret");
    let admin = AdminTokenSettings {
        name: "billing".into(),
        digest,
    };
    let app = spawn_app_with(|s| s.auth.admin_tokens = vec![admin]).await;
    let request = app
        .client
        .post(app.url("/api/admin/tokens"))
        .bearer_auth(&secret);
    let body = json!({"userId": 1, "name": "by billing"});
    let answer = app.send(request.json(&body)).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let id = answer.body["token"]["id"].as_u64().unwrap_or_default();
    let rows = app.audit_rows(Some(id)).await;
    let detail = created(1, "by billing", "restricted", json!([]));
    assert_eq!(rows, [event("created", "config:billing", detail)]);
}
