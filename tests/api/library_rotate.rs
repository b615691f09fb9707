//! `rotate` (SPEC A5): a new key replaces the old one in one transaction.

use std::time::Duration;

use iam_tokens::domain::{Digest, GeneratedKey, IpRestriction, Prefix, Privilege, TokenName};
use iam_tokens::service::{CreateToken, RotateToken, TokenService};
use serde_json::json;

use crate::helpers::{
    envelope_json, failure_json, spawn_app, spawn_app_with, success_json, TestApp,
};
use crate::helpers::{ms, prefix, uid};

const ROTATED: &str = "Successfully rotated an api key";

fn name(text: &str) -> TokenName {
    TokenName::parse(text).expect("name")
}

/// A `full` token for user 7; returns the raw key and the token id.
async fn token(app: &TestApp, token_name: &str, expires_ms: Option<u64>) -> (String, u64) {
    let request =
        CreateToken::new(uid(7), Privilege::Full, name(token_name)).lifetime(expires_ms.map(ms));
    let created = app.lib_create(request).await;
    let created = created.data().expect("token created");
    let id = app.token_id(&created.raw_public_id).await;
    (created.raw_api_key.clone(), id)
}

fn rotation(old_key: &str, new_name: &str) -> RotateToken {
    RotateToken::new(old_key, Privilege::Full, name(new_name))
}

async fn rows_with_digest(app: &TestApp, key: &str) -> u64 {
    app.query_one(
        "SELECT COUNT(*) FROM api_tokens WHERE api_token = ?",
        (Digest::of(key).as_str(),),
    )
    .await
}

async fn reason_of_verify(app: &TestApp, key: &str, privilege: Privilege) -> Option<String> {
    let answer = app.lib_verify(key, privilege, None).await;
    answer.reason().map(|reason| reason.as_str().into_owned())
}

#[tokio::test]
async fn rotate_answers_the_new_key_and_its_expiry() {
    let app = spawn_app().await;
    let (old, _) = token(&app, "ci", None).await;
    let mut request = rotation(&old, "ci v2");
    request.lifetime = Some(ms(3_600_000));
    let rotated = app.tokens.rotate(request).await;
    let new_key = rotated.data().expect("rotated").new_raw_token.clone();
    assert_eq!(
        envelope_json(&rotated),
        success_json(
            &app.clock_iso(),
            json!({
                "msg": ROTATED,
                "newRawToken": new_key,
                "newExpiry": app.clock_iso_after(Duration::from_secs(3_600)),
            })
        )
    );
    assert!(
        new_key.starts_with("api_") && new_key.len() == 4 + 128 + 1 + 8,
        "{new_key}"
    );
}

#[tokio::test]
async fn after_rotation_the_old_key_is_invalid_and_the_new_one_verifies() {
    let app = spawn_app().await;
    let (old, old_id) = token(&app, "ci", None).await;
    let mut request = rotation(&old, "ci v2");
    request.ips = IpRestriction::parse(&["10.0.0.0/8"]).expect("ips");
    request.prefix = prefix("live");
    let rotated = app.tokens.rotate(request).await;
    let new_key = rotated.data().expect("rotated").new_raw_token.clone();

    assert_eq!(
        reason_of_verify(&app, &old, Privilege::Full)
            .await
            .as_deref(),
        Some("Invalid key")
    );
    assert_eq!(
        app.usage_and_valid(old_id).await,
        (0, false),
        "old row kept, invalid"
    );
    assert!(new_key.starts_with("live_"), "{new_key}");
    let verified = app
        .lib_verify(&new_key, Privilege::Full, Some("10.9.8.7"))
        .await;
    let verified = verified.data().expect("new key verifies");
    assert_eq!(
        (
            verified.name.as_str(),
            verified.user_id,
            verified.provided_privilege
        ),
        ("ci v2", uid(7), Privilege::Full)
    );
    assert_ne!(verified.token_id, old_id);
    let outside = app
        .lib_verify(&new_key, Privilege::Full, Some("192.0.2.1"))
        .await;
    assert_eq!(
        outside.reason().map(|r| r.as_str()),
        Some("Invalid Host".into()),
        "the new IP list applies"
    );
}

#[tokio::test]
async fn rotate_accepts_the_digest_of_the_old_key() {
    let app = spawn_app().await;
    let (old, old_id) = token(&app, "ci", None).await;
    let rotated = app
        .tokens
        .rotate(rotation(Digest::of(&old).as_str(), "ci"))
        .await;
    assert!(rotated.is_ok(), "{rotated:?}");
    assert_eq!(app.usage_and_valid(old_id).await, (0, false));
}

#[tokio::test]
async fn delete_old_removes_the_old_row_and_otherwise_it_is_kept_invalid() {
    let app = spawn_app().await;
    for delete_old in [true, false] {
        let (old, _) = token(&app, &format!("delete {delete_old}"), None).await;
        let mut request = rotation(&old, "rotated");
        request.delete_old = delete_old;
        let rotated = app.tokens.rotate(request).await;
        let new_key = &rotated.data().expect("rotated").new_raw_token;
        let expected_old_rows = u64::from(!delete_old);
        assert_eq!(
            rows_with_digest(&app, &old).await,
            expected_old_rows,
            "delete_old={delete_old}"
        );
        assert_eq!(rows_with_digest(&app, new_key).await, 1);
    }
    assert_eq!(app.valid_token_rows(7).await, 2);
    assert_eq!(app.token_row_count().await, 3);
}

#[tokio::test]
async fn a_revoked_unknown_or_other_privilege_token_cannot_be_rotated() {
    let app = spawn_app().await;
    let (revoked, _) = token(&app, "revoked", None).await;
    assert!(app.tokens.revoke(&revoked, Privilege::Full).await.is_ok());
    let (full, full_id) = token(&app, "full", None).await;
    let unknown = GeneratedKey::generate(&Prefix::default());
    let cases = [
        (rotation(&revoked, "x"), "revoked"),
        (rotation(unknown.raw.expose(), "x"), "unknown"),
        (
            RotateToken::new(full.as_str(), Privilege::Demo, name("x")),
            "another privilege",
        ),
    ];
    for (request, case) in cases {
        let answer = app.tokens.rotate(request).await;
        assert_eq!(
            envelope_json(&answer),
            failure_json(&app.clock_iso(), "Cannot rotate revoked token"),
            "{case}"
        );
    }
    assert_eq!(app.usage_and_valid(full_id).await, (0, true));
    assert_eq!(app.token_row_count().await, 2, "nothing was created");
}

#[tokio::test]
async fn an_expired_token_cannot_be_rotated() {
    let app = spawn_app().await;
    let (old, _) = token(&app, "ci", Some(1_000)).await;
    app.clock.advance(Duration::from_secs(2));
    let answer = app.tokens.rotate(rotation(&old, "ci")).await;
    assert_eq!(
        envelope_json(&answer),
        failure_json(&app.clock_iso(), "Token cannot be rotated this time")
    );
    assert_eq!(app.token_row_count().await, 1, "nothing was created");
}

#[tokio::test]
async fn rotate_keeps_the_old_key_valid_when_the_new_one_cannot_be_created() {
    let app = spawn_app_with(|s| s.api_tokens.limit_tokens_per_user = 3).await;
    let (old, old_id) = token(&app, "first", None).await;
    token(&app, "second", None).await;
    token(&app, "third", None).await;
    let strict = TokenService::new(app.own_store().await, app.tokens.clock().clone(), 1);

    for delete_old in [false, true] {
        let mut request = rotation(&old, "replacement");
        request.delete_old = delete_old;
        let answer = strict.rotate(request).await;
        assert_eq!(
            envelope_json(&answer),
            failure_json(
                &app.clock_iso(),
                "You cannot have more then 1 valid tokens at a time"
            ),
            "delete_old={delete_old}"
        );
        assert_eq!(
            app.token_row_count().await,
            3,
            "delete_old={delete_old}: rows"
        );
        assert_eq!(
            app.usage_and_valid(old_id).await,
            (0, true),
            "delete_old={delete_old}"
        );
    }
    assert!(app.lib_verify(&old, Privilege::Full, None).await.is_ok());
}
