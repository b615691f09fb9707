//! The seven `/api/manage/{action}` actions (SPEC A7): success bodies, failure statuses and
//! reasons, methods, and what each leaves in the database.

use std::time::Duration;

use iam_tokens::domain::Privilege;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::helpers::{spawn_app, Answer, HttpToken, TestApp};

#[rustfmt::skip]
const POST_ACTIONS: [&str; 6] =
    ["new-token", "revoke", "metadata", "rotate", "ip-restriction-update", "privilege-update"];

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `<prefix>_<128 lower hex>_<first 8 hex of SHA-256(random)>`.
fn assert_key_shape(key: &str, prefix: &str) {
    let parts: Vec<&str> = key.split('_').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert_eq!(parts[0], prefix, "{key}");
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    assert!(parts[1].len() == 128 && lower_hex(parts[1]), "{key}");
    assert_eq!(parts[2], &sha256_hex(parts[1])[..8], "{key}");
}

/// `body` with the fields of `extra` added.
fn merged(mut body: Value, extra: &Value) -> Value {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// The five points' body: `{tokenId, publicIdentifier, name}` plus `extra` fields.
fn address(token: &HttpToken, name: &str, extra: Value) -> Value {
    let body = json!({"tokenId": token.id, "publicIdentifier": token.public_id, "name": name});
    merged(body, &extra)
}

/// A `full` token named `name` for `user_id`, created over HTTP.
async fn full_token(app: &TestApp, user_id: u64, name: &str) -> HttpToken {
    app.http_token(user_id, &json!({"privilege": "full", "name": name}))
        .await
}

/// `action` on `token` addressed by its five points with `name`, as user 7.
async fn act(app: &TestApp, action: &str, token: &HttpToken, name: &str) -> Answer {
    app.manage_post(action, 7, &address(token, name, json!({})))
        .await
}

/// Every row's id, owner, name, validity, privilege, uses and IP list, as one string.
async fn table_state(app: &TestApp) -> String {
    type Row = (u64, u64, String, u64, String, u64, Option<String>);
    let rows: Vec<Row> = app
        .query_all(
            "SELECT id, user_id, name, valid, privilege_type, usage_count, \
             restricted_to_ip_address FROM api_tokens ORDER BY id",
            (),
        )
        .await;
    let rows: Vec<String> = rows
        .into_iter()
        .map(|(id, user, name, valid, privilege, uses, ips)| {
            let ips = ips.unwrap_or_else(|| "-".into());
            format!("{id}:{user}:{name}:{valid}:{privilege}:{uses}:{ips}")
        })
        .collect();
    rows.join("|")
}

#[tokio::test]
async fn new_token_answers_201_with_the_key_shown_once_and_stores_only_its_digest() {
    let app = spawn_app().await;
    let body = json!({"privilege": "full", "name": "ci"});
    let answer = app.manage_post("new-token", 7, &body).await;
    let key = answer.data()["rawApiKey"].as_str().unwrap().to_owned();
    let public_id = answer.data()["rawPublicId"].as_str().unwrap().to_owned();
    let data = json!({"rawApiKey": key, "rawPublicId": public_id, "expiresAt": null});
    answer.assert_is(201, &app.success_now(data), "created");
    assert_key_shape(&key, "api");
    assert_eq!(public_id.len(), 137);
    assert_eq!(&public_id[129..], &sha256_hex(&public_id[..128])[..8]);

    let row: (u64, String, String, String, String, i64) = app
        .query_one(
            "SELECT user_id, name, prefix, privilege_type, api_token, valid FROM api_tokens \
             WHERE public_identifier = ?",
            (&public_id,),
        )
        .await;
    let digest = sha256_hex(&key);
    assert_eq!(
        row,
        (7, "ci".into(), "api".into(), "full".into(), digest, 1)
    );
}

#[tokio::test]
async fn new_token_takes_its_expiry_in_ms_and_its_prefix_from_the_body() {
    let app = spawn_app().await;
    let in_a_minute = json!(app.clock_iso_after(Duration::from_secs(60)));
    let in_a_ms = json!(app.clock_iso_after(Duration::from_millis(1)));
    #[rustfmt::skip]
    let cases = [
        ("no expires",      json!({}),                        Value::Null, "api"),
        ("expires null",    json!({"expires": null}),         Value::Null, "api"),
        ("one minute",      json!({"expires": 60_000}),       in_a_minute, "api"),
        ("one ms",          json!({"expires": 1}),            in_a_ms,     "api"),
        ("two-char prefix", json!({"prefix": "sk"}),          Value::Null, "sk"),
        ("ten-char prefix", json!({"prefix": "live-key-1"}),  Value::Null, "live-key-1"),
    ];
    for (case, extra, expires_at, prefix) in cases {
        let body = merged(json!({"privilege": "demo", "name": case}), &extra);
        let answer = app.manage_post("new-token", 7, &body).await;
        assert_eq!(answer.status, 201, "{case}: {answer:?}");
        assert_eq!(answer.data()["expiresAt"], expires_at, "{case}");
        assert_key_shape(answer.data()["rawApiKey"].as_str().unwrap(), prefix);
    }
}

#[tokio::test]
async fn list_metadata_of_a_user_without_tokens_leaves_out_token_list() {
    let app = spawn_app().await;
    let answer = app.manage_get("list-metadata", 7).await;
    let data = json!({"total": 0, "totalInvalidTokens": 0, "totalValidTokens": 0});
    answer.assert_is(200, &app.success_now(data), "no tokens");
}

#[tokio::test]
async fn list_metadata_lists_the_valid_tokens_as_snake_case_rows_newest_first() {
    let app = spawn_app().await;
    let t0 = app.clock_iso();
    let plain = full_token(&app, 7, "plain").await;
    let fenced_body = json!({"privilege": "custom", "name": "fenced", "expires": 3_600_000,
        "ipv4": ["10.1.2.3/8", "203.0.113.7"]});
    let fenced = app.http_token(7, &fenced_body).await;
    let revoked = full_token(&app, 7, "revoked").await;
    act(&app, "revoke", &revoked, "revoked").await;
    let short = json!({"privilege": "full", "name": "short", "expires": 1_000});
    app.http_token(7, &short).await;
    full_token(&app, 8, "someone else's").await;

    app.clock.advance(Duration::from_secs(10));
    assert_eq!(app.verify(&plain.key, "full").await.status, 200);
    let answer = app.manage_get("list-metadata", 7).await;
    let row = |token: &HttpToken, name, expires_at, ips, last_used, uses, privilege| {
        json!({"id": token.id, "name": name, "created_at": t0, "expires_at": expires_at,
            "restricted_to_ip_address": ips, "last_used": last_used, "usage_count": uses,
            "public_identifier": token.public_id, "privilege_type": privilege})
    };
    let expiry = json!(app.clock_iso_after(Duration::from_secs(3590)));
    let ips = json!(["10.0.0.0/8", "203.0.113.7"]);
    let now = json!(app.clock_iso());
    let data = json!({
        "total": 4,
        "totalInvalidTokens": 2,
        "totalValidTokens": 2,
        "tokenList": [
            row(&fenced, "fenced", expiry, ips, Value::Null, 0, "custom"),
            row(&plain, "plain", Value::Null, Value::Null, now, 1, "full"),
        ],
    });
    answer.assert_is(200, &app.success_now(data), "two valid of four");
}

#[tokio::test]
async fn revoke_answers_200_and_the_token_stops_verifying() {
    let app = spawn_app().await;
    let token = full_token(&app, 7, "ci").await;
    let answer = act(&app, "revoke", &token, "ci").await;
    let data = json!({"msg": "Token invalided successfully", "invalidedTokenId": token.id,
        "userId": 7});
    answer.assert_is(200, &app.success_now(data), "revoked");
    assert_eq!(app.usage_and_valid(token.id).await, (0, false));
    assert_eq!(app.token_row_count().await, 1, "revoke never deletes");
    let verified = app.verify(&token.key, "full").await;
    verified.assert_is(401, &app.failure_now("Invalid key"), "verify after revoke");

    let again = act(&app, "revoke", &token, "ci").await;
    again.assert_is(401, &app.failure_now("Bad Request"), "revoke again");
}

#[tokio::test]
async fn metadata_answers_200_with_token_meta_and_counts_without_counting_a_use() {
    let app = spawn_app().await;
    let created_at = app.clock_iso();
    let body = json!({"privilege": "full", "name": "ci", "ipv4": ["10.0.0.0/8"]});
    let token = app.http_token(7, &body).await;
    let revoked = full_token(&app, 7, "old").await;
    act(&app, "revoke", &revoked, "old").await;
    app.clock.advance(Duration::from_secs(5));

    // Restricted to 10.0.0.0/8 and asked from 127.0.0.1: metadata never answers `Invalid Host`.
    let answer = act(&app, "metadata", &token, "ci").await;
    let data = json!({
        "tokenMeta": {"name": "ci", "tokenId": token.id, "userId": 7, "createdAt": created_at,
            "expiresAt": null, "lastUsed": null, "usageCount": 0, "providedPrivilege": "full"},
        "counts": {"totalInvalidTokens": 1, "totalValidTokens": 1, "total": 2},
    });
    answer.assert_is(200, &app.success_now(data), "metadata");
    assert_eq!(app.usage_and_valid(token.id).await, (0, true));
}

#[tokio::test]
async fn rotate_answers_200_with_a_new_key_that_inherits_everything_but_the_secret() {
    let app = spawn_app().await;
    let expiry = app.clock_iso_after(Duration::from_secs(3600));
    let body = json!({"privilege": "protected", "name": "ci", "prefix": "sk",
        "expires": 3_600_000, "ipv4": ["10.0.0.0/8"]});
    let old = app.http_token(7, &body).await;
    app.clock.advance(Duration::from_secs(600));

    let answer = act(&app, "rotate", &old, "ci").await;
    let new_key = answer.data()["newRawToken"].as_str().unwrap().to_owned();
    let data = json!({"msg": "Successfully rotated an api key", "newRawToken": new_key,
        "newExpiry": expiry});
    answer.assert_is(200, &app.success_now(data), "rotated");
    assert_key_shape(&new_key, "sk");

    assert_eq!(app.usage_and_valid(old.id).await, (0, false));
    let stale = app.verify(&old.key, "protected").await;
    stale.assert_is(401, &app.failure_now("Invalid key"), "the old key");
    let fenced = app.verify(&new_key, "protected").await;
    fenced.assert_is(
        401,
        &app.failure_now("Invalid Host"),
        "the IP list is inherited",
    );
    let listed = app.manage_get("list-metadata", 7).await;
    let rows = listed.data()["tokenList"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let inherited = [
        "name",
        "privilege_type",
        "expires_at",
        "restricted_to_ip_address",
    ];
    let got: Vec<&Value> = inherited.iter().map(|field| &rows[0][*field]).collect();
    let expected = [
        json!("ci"),
        json!("protected"),
        json!(expiry),
        json!(["10.0.0.0/8"]),
    ];
    assert_eq!(got, expected.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn ip_restriction_update_changes_where_the_token_verifies_from() {
    let app = spawn_app().await;
    let token = full_token(&app, 7, "ci").await;
    #[rustfmt::skip]
    let cases = [
        ("fenced to 10/8",                   json!(["10.0.0.0/8"]), 401),
        ("loopback allowed",                 json!(["127.0.0.1"]),  200),
        ("a bare string entry",              json!("10.9.8.7"),     401),
        ("empty list lifts the restriction", json!([]),             200),
    ];
    let updated = json!({"msg": "Restriction updated successfully"});
    for (case, ipv4, verify_status) in cases {
        let body = address(&token, "ci", json!({ "ipv4": ipv4 }));
        let answer = app.manage_post("ip-restriction-update", 7, &body).await;
        answer.assert_is(200, &app.success_now(updated.clone()), case);
        let status = app.verify(&token.key, "full").await.status;
        assert_eq!(status, verify_status, "{case}");
    }
}

#[tokio::test]
async fn privilege_update_changes_the_privilege_verification_requires() {
    let app = spawn_app().await;
    let token = full_token(&app, 7, "ci").await;
    let body = address(&token, "ci", json!({"newPrivilege": "demo"}));
    let answer = app.manage_post("privilege-update", 7, &body).await;
    let data = json!({"msg": "Privileges updated successfully"});
    answer.assert_is(200, &app.success_now(data), "updated");
    let as_full = app.verify(&token.key, "full").await;
    as_full.assert_is(401, &app.failure_now("Invalid key"), "the old privilege");
    let as_demo = app.verify(&token.key, "demo").await;
    assert_eq!(as_demo.data()["providedPrivilege"], "demo");
}

#[tokio::test]
async fn actions_on_a_token_that_is_not_the_callers_valid_token_fail_with_the_managers_reason() {
    let app = spawn_app().await;
    let mine = full_token(&app, 7, "mine").await;
    let theirs = full_token(&app, 8, "theirs").await;
    let gone = full_token(&app, 7, "gone").await;
    act(&app, "revoke", &gone, "gone").await;
    let before = table_state(&app).await;
    assert!(
        before.contains(":mine:") && before.contains(":gone:0:"),
        "{before}"
    );

    let garbage = HttpToken {
        public_id: "x".repeat(137),
        ..mine.clone()
    };
    let mislabelled = HttpToken {
        id: theirs.id,
        ..mine.clone()
    };
    let unknown_id = HttpToken {
        id: mine.id + 100,
        ..mine.clone()
    };
    #[rustfmt::skip]
    let cases = [
        ("137 chars with a bad checksum",   &garbage,     "mine",     "Invalid identity"),
        ("another user's token",            &theirs,      "theirs",   "Bad Request"),
        ("wrong name",                      &mine,        "not-mine", "Bad Request"),
        ("wrong id",                        &unknown_id,  "mine",     "Bad Request"),
        ("another token's id, my identity", &mislabelled, "mine",     "Bad Request"),
        ("revoked token",                   &gone,        "gone",     "Bad Request"),
    ];
    #[rustfmt::skip]
    let actions = [
        ("revoke", 401), ("metadata", 401),
        ("rotate", 400), ("ip-restriction-update", 400), ("privilege-update", 400),
    ];
    let extra = json!({"ipv4": ["127.0.0.1"], "newPrivilege": "demo"});
    for (action, status) in actions {
        for (case, token, name, reason) in &cases {
            let answer = app
                .manage_post(action, 7, &address(token, name, extra.clone()))
                .await;
            answer.assert_is(
                status,
                &app.failure_now(reason),
                &format!("{action}, {case}"),
            );
        }
    }
    let after = table_state(&app).await;
    assert_eq!(after, before, "no refused action changed a row");
}

#[tokio::test]
async fn new_token_over_the_limit_answers_400_until_a_token_is_revoked() {
    let app = spawn_app().await;
    for n in 0..20 {
        app.create_token(7, Privilege::Demo, &format!("t{n}")).await;
    }
    let body = json!({"privilege": "full", "name": "one too many"});
    let answer = app.manage_post("new-token", 7, &body).await;
    let reason = "You cannot have more then 20 valid tokens at a time";
    answer.assert_is(400, &app.failure_now(reason), "the 21st");
    assert_eq!(app.token_row_count().await, 20);
    let other_user = app.manage_post("new-token", 8, &body).await;
    assert_eq!(other_user.status, 201, "the limit is per user");

    let sql = "SELECT public_identifier FROM api_tokens WHERE name = 't0'";
    let public_id: String = app.query_one(sql, ()).await;
    let id = app.token_id(&public_id).await;
    let first = HttpToken {
        key: String::new(),
        public_id,
        id,
    };
    let revoked = act(&app, "revoke", &first, "t0").await;
    assert_eq!(revoked.status, 200);
    assert_eq!(app.manage_post("new-token", 7, &body).await.status, 201);
}

#[tokio::test]
async fn a_prefix_with_an_underscore_answers_400_with_the_reserved_prefix_reason() {
    let app = spawn_app().await;
    let body = json!({"privilege": "full", "name": "ci", "prefix": "my_key"});
    let answer = app.manage_post("new-token", 7, &body).await;
    let reason = "\"_\" is a reserved character, please exclude it from your prefixes";
    answer.assert_is(400, &app.failure_now(reason), "my_key");
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn an_unknown_action_answers_404_not_found_in_the_envelope() {
    let app = spawn_app().await;
    #[rustfmt::skip]
    let cases = [
        ("GET unknown",                Method::GET,  "delete"),
        ("POST unknown",               Method::POST, "delete"),
        ("actions are case sensitive", Method::POST, "New-Token"),
    ];
    for (case, method, action) in cases {
        let answer = app
            .send(app.manage_request(method, action, 7).json(&json!({})))
            .await;
        answer.assert_is(404, &app.failure_now("Not found"), case);
    }
}

#[tokio::test]
async fn an_action_called_with_the_wrong_method_answers_400_bad_request() {
    let app = spawn_app().await;
    let mut cases = vec![
        ("list-metadata", Method::POST),
        ("list-metadata", Method::DELETE),
        ("new-token", Method::PUT),
    ];
    cases.extend(POST_ACTIONS.iter().map(|action| (*action, Method::GET)));
    let body = json!({"privilege": "full", "name": "ci"});
    for (action, method) in cases {
        let case = format!("{method} {action}");
        let answer = app
            .send(app.manage_request(method, action, 7).json(&body))
            .await;
        answer.assert_is(400, &app.failure_now("Bad Request"), &case);
    }
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn token_id_may_be_a_numeric_string() {
    let app = spawn_app().await;
    let token = full_token(&app, 7, "ci").await;
    let body = address(&token, "ci", json!({"tokenId": token.id.to_string()}));
    let answer = app.manage_post("metadata", 7, &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.data()["tokenMeta"]["tokenId"], token.id);
}

#[tokio::test]
async fn unknown_body_fields_are_ignored_and_cannot_pick_the_owner() {
    let app = spawn_app().await;
    let body = json!({"privilege": "full", "name": "ci", "userId": 99, "user_id": 99,
        "valid": 0, "extra": {"nested": [1, 2, 3]}});
    let token = app.http_token(7, &body).await;
    let sql = "SELECT user_id, valid FROM api_tokens WHERE id = ?";
    let owner: (u64, i64) = app.query_one(sql, (token.id,)).await;
    assert_eq!(owner, (7, 1));

    let revoke = address(
        &token,
        "ci",
        json!({"userId": 99, "privilege": "demo", "x": null}),
    );
    assert_eq!(app.manage_post("revoke", 7, &revoke).await.status, 200);
}
