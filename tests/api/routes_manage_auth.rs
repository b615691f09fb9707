//! Authentication of `/api/manage/*` (SPEC A7): an HS256 access token with `exp` whose `sub`
//! is the numeric user id, checked before anything else.

use std::time::Duration;

use iam_tokens::domain::Privilege;
use iam_tokens::Clock;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Answer, TestApp};

/// `{"alg":"none","typ":"JWT"}`, base64url without padding.
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

fn missing_bearer() -> Value {
    json!({"ok": false, "error": "Missing Bearer token"})
}

fn error(why: &str) -> Value {
    json!({ "error": why })
}

/// Signs `claims` with `secret` and `algorithm`.
fn sign_with(secret: &[u8], algorithm: Algorithm, claims: &Value) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Signs `claims` with the app's own secret and HS256.
fn sign(app: &TestApp, claims: &Value) -> String {
    let secret = app.settings.auth.jwt_secret.expose().as_bytes();
    sign_with(secret, Algorithm::HS256, claims)
}

/// `exp` one hour after the app's clock.
fn in_an_hour(app: &TestApp) -> i64 {
    app.clock.now().timestamp() + 3600
}

/// `GET list-metadata` with this `Authorization` header (none when `None`).
async fn list_with(app: &TestApp, authorization: Option<&str>) -> Answer {
    let mut request = app.client.get(app.url("/api/manage/list-metadata"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    app.send(request).await
}

async fn list_as(app: &TestApp, token: &str) -> Answer {
    list_with(app, Some(&format!("Bearer {token}"))).await
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_answers_401_missing_bearer_token() {
    let app = spawn_app().await;
    let valid = app.access_token(7);
    let (token_scheme, lower_case) = (format!("Token {valid}"), format!("bearer {valid}"));
    #[rustfmt::skip]
    let cases = [
        ("no header",                 None),
        ("empty header",              Some("")),
        ("basic scheme",              Some("Basic dXNlcjpwYXNz")),
        ("token scheme",              Some(token_scheme.as_str())),
        ("scheme in lower case",      Some(lower_case.as_str())),
        ("bare token without scheme", Some(valid.as_str())),
        ("scheme only",               Some("Bearer")),
        ("scheme and blanks",         Some("Bearer    ")),
    ];
    for (case, header) in cases {
        list_with(&app, header)
            .await
            .assert_is(401, &missing_bearer(), case);
    }
}

#[tokio::test]
async fn a_rejected_access_token_writes_nothing() {
    let app = spawn_app().await;
    let body = json!({"privilege": "full", "name": "ci"});
    let new_token = || {
        app.client
            .post(app.url("/api/manage/new-token"))
            .json(&body)
    };
    let no_bearer = app.send(new_token()).await;
    no_bearer.assert_is(401, &missing_bearer(), "no bearer");
    let bad_bearer = app.send(new_token().bearer_auth("x.y.z")).await;
    bad_bearer.assert_is(401, &error("jwt malformed"), "bad bearer");
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn authentication_is_checked_before_the_action_is_looked_up() {
    let app = spawn_app().await;
    let answer = app
        .send(app.client.get(app.url("/api/manage/no-such-action")))
        .await;
    answer.assert_is(401, &missing_bearer(), "unknown action without a bearer");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_answers_invalid_signature() {
    let app = spawn_app().await;
    let claims = json!({"sub": "7", "exp": in_an_hour(&app)});
    let forged = sign_with(
        b"not-the-configured-secret-at-all-!!",
        Algorithm::HS256,
        &claims,
    );
    let answer = list_as(&app, &forged).await;
    answer.assert_is(401, &error("invalid signature"), "another secret");
}

#[tokio::test]
async fn an_expired_access_token_answers_jwt_expired() {
    let app = spawn_app().await;
    let now = app.clock.now().timestamp();
    let cases = [
        (
            "expired an hour ago",
            json!({"sub": "7", "exp": now - 3600}),
        ),
        ("expires this very second", json!({"sub": "7", "exp": now})),
    ];
    for (case, claims) in cases {
        let answer = list_as(&app, &sign(&app, &claims)).await;
        answer.assert_is(401, &error("jwt expired"), case);
    }
}

#[tokio::test]
async fn an_issued_access_token_expires_when_the_clock_passes_its_exp() {
    let app = spawn_app().await;
    let token = app.access_token(7);
    assert_eq!(list_as(&app, &token).await.status, 200, "valid while fresh");

    app.clock.advance(Duration::from_secs(3600));
    let answer = list_as(&app, &token).await;
    answer.assert_is(401, &error("jwt expired"), "an hour later");
}

#[tokio::test]
async fn a_garbage_access_token_answers_jwt_malformed() {
    let app = spawn_app().await;
    #[rustfmt::skip]
    let cases = [
        ("one word",              "garbage"),
        ("three dots of nothing", "a.b.c"),
        ("two segments",          "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3In0"),
        ("not base64",            "%%%.%%%.%%%"),
    ];
    for (case, token) in cases {
        list_as(&app, token)
            .await
            .assert_is(401, &error("jwt malformed"), case);
    }
}

#[tokio::test]
async fn an_access_token_without_exp_is_refused() {
    let app = spawn_app().await;
    let answer = list_as(&app, &sign(&app, &json!({"sub": "7"}))).await;
    answer.assert_is(401, &error("jwt must contain an exp claim"), "no exp");
}

#[tokio::test]
async fn a_sub_that_is_not_a_user_id_answers_malformed_token_payload() {
    let app = spawn_app().await;
    #[rustfmt::skip]
    let cases = [
        ("missing sub",          None),
        ("null",                 Some(json!(null))),
        ("a user name",          Some(json!("alice"))),
        ("empty",                Some(json!(""))),
        ("digits and letters",   Some(json!("12a"))),
        ("negative string",      Some(json!("-5"))),
        ("decimal string",       Some(json!("7.0"))),
        ("padded string",        Some(json!(" 7"))),
        ("over u64 as a string", Some(json!("99999999999999999999999"))),
        ("negative number",      Some(json!(-5))),
        ("fractional number",    Some(json!(1.5))),
        ("boolean",              Some(json!(true))),
        // SPEC B3: the owner id domain is 1 ..= 2^63-1 on every store.
        ("zero as a string",     Some(json!("0"))),
        ("zero",                 Some(json!(0))),
        ("2^63 as a string",     Some(json!("9223372036854775808"))),
        ("2^63",                 Some(json!(9_223_372_036_854_775_808_u64))),
        ("2^64-1 as a string",   Some(json!("18446744073709551615"))),
        ("2^64-1",               Some(json!(u64::MAX))),
        ("a float in range",     Some(json!(7.0))),
        ("an exponent",          Some(json!(1e3))),
    ];
    for (case, sub) in cases {
        let mut claims = json!({"exp": in_an_hour(&app)});
        if let Some(sub) = sub {
            claims["sub"] = sub;
        }
        let answer = list_as(&app, &sign(&app, &claims)).await;
        answer.assert_is(401, &error("Malformed token payload"), case);
    }
}

/// SPEC A7: any non-numeric `sub` is `Malformed token payload`; riavzon's Node jsonwebtoken
/// lets every JSON type through to its own numeric check.
#[tokio::test]
async fn a_sub_that_is_an_array_or_object_answers_malformed_token_payload() {
    let app = spawn_app().await;
    let exp = in_an_hour(&app);
    let cases = [
        ("array", json!({"sub": [7], "exp": exp})),
        ("object", json!({"sub": {"id": 7}, "exp": exp})),
    ];
    let mut wrong = Vec::new();
    for (case, claims) in cases {
        let answer = list_as(&app, &sign(&app, &claims)).await;
        if (answer.status, &answer.body) != (401, &error("Malformed token payload")) {
            wrong.push(format!("{case}: {} {}", answer.status, answer.body));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn sub_as_a_numeric_string_or_a_json_number_names_the_same_user() {
    let app = spawn_app().await;
    let created = app.create_token(7, Privilege::Full, "mine").await;
    app.create_token(8, Privilege::Full, "theirs").await;
    for (case, sub) in [("string", json!("7")), ("number", json!(7))] {
        let token = sign(&app, &json!({"sub": sub, "exp": in_an_hour(&app)}));
        let answer = list_as(&app, &token).await;
        assert_eq!(answer.status, 200, "{case}: {answer:?}");
        let list = answer.data()["tokenList"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{case}: only user 7's tokens");
        assert_eq!(
            list[0]["public_identifier"],
            created.raw_public_id.as_str(),
            "{case}"
        );
    }
}

#[tokio::test]
async fn the_largest_user_id_and_a_sub_with_leading_zeros_are_accepted() {
    let app = spawn_app().await;
    let created = app.create_token(5150, Privilege::Full, "mine").await;
    let token = sign(&app, &json!({"sub": "05150", "exp": in_an_hour(&app)}));
    let answer = list_as(&app, &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let list = answer.data()["tokenList"].as_array().unwrap();
    assert_eq!(list[0]["public_identifier"], created.raw_public_id.as_str());
    let max = sign(
        &app,
        &json!({"sub": "9223372036854775807", "exp": in_an_hour(&app)}),
    );
    let answer = list_as(&app, &max).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.data()["total"], 0);
}

#[tokio::test]
async fn an_access_token_not_yet_active_answers_jwt_not_active() {
    let app = spawn_app().await;
    let now = app.clock.now().timestamp();
    let early = json!({"sub": "7", "exp": now + 3600, "nbf": now + 60});
    list_as(&app, &sign(&app, &early)).await.assert_is(
        401,
        &error("jwt not active"),
        "nbf in the future",
    );
    for (case, nbf) in [("nbf now", now), ("nbf in the past", now - 60)] {
        let claims = json!({"sub": "7", "exp": now + 3600, "nbf": nbf});
        let answer = list_as(&app, &sign(&app, &claims)).await;
        assert_eq!(answer.status, 200, "{case}: {answer:?}");
    }
    let text = json!({"sub": "7", "exp": now + 3600, "nbf": "soon"});
    list_as(&app, &sign(&app, &text)).await.assert_is(
        401,
        &error("invalid nbf value"),
        "nbf as text",
    );
    let text = json!({"sub": "7", "exp": "later"});
    list_as(&app, &sign(&app, &text)).await.assert_is(
        401,
        &error("invalid exp value"),
        "exp as text",
    );
    // Node's order: a token both early and expired is reported as not active.
    let both = json!({"sub": "7", "exp": now - 10, "nbf": now + 60});
    list_as(&app, &sign(&app, &both)).await.assert_is(
        401,
        &error("jwt not active"),
        "early and expired",
    );
}

/// `exp: 1e308` is a number far in the future: riavzon's jsonwebtoken accepts it, and so do
/// we (the BFF that signed it chose it). Non-finite values cannot be written in JSON.
#[tokio::test]
async fn an_exp_far_in_the_future_is_accepted() {
    let app = spawn_app().await;
    let answer = list_as(&app, &sign(&app, &json!({"sub": "7", "exp": 1e308}))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// A few KiB of claims verify like any other token; past 8 KiB the token is refused before any
/// HMAC is computed over it.
#[tokio::test]
async fn a_multi_kib_access_token_is_accepted_up_to_8_kib() {
    let app = spawn_app().await;
    let claims =
        |padding: usize| json!({"sub": "7", "exp": in_an_hour(&app), "pad": "x".repeat(padding)});
    let four_kib = sign(&app, &claims(3 * 1024));
    assert!(four_kib.len() > 4096 && four_kib.len() <= 8192);
    let answer = list_as(&app, &four_kib).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let too_long = sign(&app, &claims(7 * 1024));
    assert!(too_long.len() > 8192);
    list_as(&app, &too_long)
        .await
        .assert_is(401, &error("jwt malformed"), "over 8 KiB");
}

#[tokio::test]
async fn tokens_signed_with_other_algorithms_are_refused() {
    let app = spawn_app().await;
    let claims = json!({"sub": "7", "exp": in_an_hour(&app)});
    let secret = app.settings.auth.jwt_secret.expose().as_bytes();
    let hs512 = sign_with(secret, Algorithm::HS512, &claims);
    let payload = sign(&app, &claims).split('.').nth(1).unwrap().to_owned();
    let (unsigned, fake) = (
        format!("{NONE_HEADER}.{payload}."),
        format!("{NONE_HEADER}.{payload}.e30"),
    );
    #[rustfmt::skip]
    let cases = [
        ("HS512 with the right secret", hs512,    "invalid algorithm"),
        ("alg none, no signature",      unsigned, "jwt malformed"),
        ("alg none, some signature",    fake,     "jwt malformed"),
    ];
    for (case, token, why) in cases {
        list_as(&app, &token)
            .await
            .assert_is(401, &error(why), case);
    }
}

#[tokio::test]
async fn a_valid_access_token_is_accepted_for_get_and_post_actions() {
    let app = spawn_app().await;
    let listed = app
        .send(app.manage_request(Method::GET, "list-metadata", 7))
        .await;
    assert_eq!(listed.status, 200);
    let body = json!({"privilege": "demo", "name": "a"});
    assert_eq!(app.manage_post("new-token", 7, &body).await.status, 201);
}
