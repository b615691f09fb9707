//! Management operations (SPEC A5): revoke, metadata snapshot, IP and privilege updates,
//! listing and counting.

use std::time::Duration;

use iam_tokens::domain::{Digest, IpRestriction, Privilege, TokenName};
use iam_tokens::service::CreateToken;
use serde_json::{json, Value};

use crate::helpers::{envelope_json, failure_json, spawn_app, success_json, TestApp};
use crate::helpers::{ms, uid};

const REVOKED: &str = "Token invalided successfully";

/// A token for `user_id` named `name`; returns the raw key, the public id and the token id.
async fn token_with(
    app: &TestApp,
    user_id: u64,
    name: &str,
    request: impl FnOnce(CreateToken) -> CreateToken,
) -> (String, String, u64) {
    let base = CreateToken::new(
        uid(user_id),
        Privilege::Full,
        TokenName::parse(name).expect("name"),
    );
    let created = app.lib_create(request(base)).await;
    let created = created.data().expect("token created");
    let id = app.token_id(&created.raw_public_id).await;
    (
        created.raw_api_key.clone(),
        created.raw_public_id.clone(),
        id,
    )
}

async fn token(app: &TestApp, user_id: u64, name: &str) -> (String, u64) {
    let (key, _, id) = token_with(app, user_id, name, |r| r).await;
    (key, id)
}

fn ips(entries: &[&str]) -> IpRestriction {
    IpRestriction::parse(entries).expect("test IPs")
}

async fn stored_ips(app: &TestApp, id: u64) -> Option<Value> {
    let stored: Option<String> = app
        .query_one(
            "SELECT restricted_to_ip_address FROM api_tokens WHERE id = ?",
            (id,),
        )
        .await;
    stored.map(|text| serde_json::from_str(&text).expect("stored JSON"))
}

#[tokio::test]
async fn revoke_invalidates_the_token_and_keeps_its_row() {
    let app = spawn_app().await;
    let (key, id) = token(&app, 7, "ci").await;
    let revoked = app.tokens.revoke(&key, Privilege::Full).await;
    assert_eq!(
        envelope_json(&revoked),
        success_json(
            &app.clock_iso(),
            json!({"msg": REVOKED, "invalidedTokenId": id, "userId": 7})
        )
    );
    assert_eq!(app.usage_and_valid(id).await, (0, false));
    assert_eq!(app.token_row_count().await, 1, "revoke deletes nothing");
    let answer = app.lib_verify(&key, Privilege::Full, None).await;
    assert_eq!(
        answer.reason().map(|r| r.as_str()),
        Some("Invalid key".into())
    );
}

#[tokio::test]
async fn revoke_is_idempotent_for_unknown_and_already_revoked_tokens() {
    let app = spawn_app().await;
    let (key, _) = token(&app, 7, "ci").await;
    assert!(app.tokens.revoke(&key, Privilege::Full).await.is_ok());
    let unknown = iam_tokens::domain::GeneratedKey::generate(&Default::default());
    let cases = [
        (key.as_str(), "already revoked"),
        (unknown.raw.expose(), "unknown key"),
        ("not even a key", "garbage"),
    ];
    for (presented, case) in cases {
        let answer = app.tokens.revoke(presented, Privilege::Full).await;
        assert_eq!(
            envelope_json(&answer),
            success_json(&app.clock_iso(), json!(REVOKED)),
            "{case}"
        );
    }
}

#[tokio::test]
async fn revoke_accepts_the_digest_in_place_of_the_raw_key() {
    let app = spawn_app().await;
    let (key, id) = token(&app, 7, "ci").await;
    let revoked = app
        .tokens
        .revoke(Digest::of(&key).as_str(), Privilege::Full)
        .await;
    assert_eq!(
        envelope_json(&revoked)["data"],
        json!({"msg": REVOKED, "invalidedTokenId": id, "userId": 7})
    );
    assert_eq!(app.usage_and_valid(id).await, (0, false));
}

#[tokio::test]
async fn revoke_with_another_privilege_revokes_nothing() {
    let app = spawn_app().await;
    let (key, id) = token(&app, 7, "ci").await;
    let answer = app.tokens.revoke(&key, Privilege::Demo).await;
    assert_eq!(
        envelope_json(&answer),
        success_json(&app.clock_iso(), json!(REVOKED))
    );
    assert_eq!(app.usage_and_valid(id).await, (0, true));
    assert!(app.lib_verify(&key, Privilege::Full, None).await.is_ok());
}

#[tokio::test]
async fn metadata_snapshot_reports_the_token_and_the_owners_counts_without_counting() {
    let app = spawn_app().await;
    let created_at = app.clock_iso();
    let (key, _, id) = token_with(&app, 7, "ci", |r| {
        r.ips(ips(&["10.0.0.0/8"])).lifetime(ms(3_600_000))
    })
    .await;
    let (other, _) = token(&app, 7, "other").await;
    token(&app, 7, "third").await;
    token(&app, 8, "someone else's").await;
    assert!(app.tokens.revoke(&other, Privilege::Full).await.is_ok());
    app.clock.advance(Duration::from_secs(10));

    // No caller IP is involved at all: a restricted token never answers `Invalid Host`.
    let snapshot = app.tokens.metadata_snapshot(&key, Privilege::Full).await;
    assert_eq!(
        envelope_json(&snapshot),
        success_json(
            &app.clock_iso(),
            json!({
                "tokenMeta": {
                    "name": "ci",
                    "tokenId": id,
                    "userId": 7,
                    "createdAt": created_at,
                    "expiresAt": app.clock_iso_after(Duration::from_secs(3_590)),
                    "lastUsed": null,
                    "usageCount": 0,
                    "providedPrivilege": "full",
                },
                "counts": {"totalInvalidTokens": 1, "totalValidTokens": 2, "total": 3},
            })
        )
    );
    assert_eq!(app.usage_and_valid(id).await, (0, true), "not counted");
}

#[tokio::test]
async fn metadata_snapshot_fails_like_verify() {
    let app = spawn_app().await;
    let (expiring, _, expiring_id) = token_with(&app, 7, "short", |r| r.lifetime(ms(1_000))).await;
    let (revoked, _) = token(&app, 7, "revoked").await;
    assert!(app.tokens.revoke(&revoked, Privilege::Full).await.is_ok());
    let (full, _) = token(&app, 7, "full").await;
    app.clock.advance(Duration::from_secs(2));

    let cases = [
        (
            expiring.as_str(),
            Privilege::Full,
            "Token expired",
            "expired",
        ),
        (
            expiring.as_str(),
            Privilege::Full,
            "Invalid key",
            "expired, asked again",
        ),
        (revoked.as_str(), Privilege::Full, "Invalid key", "revoked"),
        (
            full.as_str(),
            Privilege::Demo,
            "Invalid key",
            "another privilege",
        ),
    ];
    for (key, privilege, reason, case) in cases {
        let answer = app.tokens.metadata_snapshot(key, privilege).await;
        assert_eq!(
            envelope_json(&answer),
            failure_json(&app.clock_iso(), reason),
            "{case}"
        );
    }
    assert_eq!(app.usage_and_valid(expiring_id).await, (0, false));
}

#[tokio::test]
async fn update_ip_restriction_replaces_the_list_and_an_empty_list_removes_it() {
    let app = spawn_app().await;
    let (key, id) = token(&app, 7, "ci").await;
    let updated = app
        .tokens
        .update_ip_restriction(uid(7), &key, ips(&["10.0.0.0/8", "2001:db8::/32"]))
        .await;
    assert_eq!(
        envelope_json(&updated),
        success_json(
            &app.clock_iso(),
            json!({"msg": "Restriction updated successfully"})
        )
    );
    assert_eq!(
        stored_ips(&app, id).await,
        Some(json!(["10.0.0.0/8", "2001:db8::/32"]))
    );
    assert!(app
        .lib_verify(&key, Privilege::Full, Some("10.1.1.1"))
        .await
        .is_ok());
    let outside = app
        .lib_verify(&key, Privilege::Full, Some("11.1.1.1"))
        .await;
    assert_eq!(
        outside.reason().map(|r| r.as_str()),
        Some("Invalid Host".into())
    );

    let cleared = app
        .tokens
        .update_ip_restriction(uid(7), &key, ips(&[]))
        .await;
    assert!(cleared.is_ok(), "{cleared:?}");
    assert_eq!(stored_ips(&app, id).await, None, "NULL column");
    assert!(app
        .lib_verify(&key, Privilege::Full, Some("11.1.1.1"))
        .await
        .is_ok());
}

#[tokio::test]
async fn updates_of_a_token_the_user_does_not_own_or_that_is_revoked_are_refused() {
    let app = spawn_app().await;
    let (key, id) = token(&app, 7, "ci").await;
    let (revoked, _) = token(&app, 8, "revoked").await;
    assert!(app.tokens.revoke(&revoked, Privilege::Full).await.is_ok());
    let cases = [
        (8, key.as_str(), "another user"),
        (8, revoked.as_str(), "revoked"),
    ];
    for (user_id, key, case) in cases {
        let ip = app
            .tokens
            .update_ip_restriction(uid(user_id), key, ips(&["10.0.0.0/8"]))
            .await;
        let privilege = app
            .tokens
            .update_privilege(uid(user_id), key, Privilege::Demo)
            .await;
        for answer in [envelope_json(&ip), envelope_json(&privilege)] {
            assert_eq!(
                answer,
                failure_json(&app.clock_iso(), "Token not found or unauthorized"),
                "{case}"
            );
        }
    }
    assert_eq!(stored_ips(&app, id).await, None);
    assert!(app.lib_verify(&key, Privilege::Full, None).await.is_ok());
}

#[tokio::test]
async fn update_privilege_moves_the_token_to_the_new_privilege() {
    let app = spawn_app().await;
    let (key, _) = token(&app, 7, "ci").await;
    let updated = app
        .tokens
        .update_privilege(uid(7), &key, Privilege::Demo)
        .await;
    assert_eq!(
        envelope_json(&updated),
        success_json(
            &app.clock_iso(),
            json!({"msg": "Privileges updated successfully"})
        )
    );
    let old = app.lib_verify(&key, Privilege::Full, None).await;
    assert_eq!(old.reason().map(|r| r.as_str()), Some("Invalid key".into()));
    let new = app.lib_verify(&key, Privilege::Demo, None).await;
    assert_eq!(
        new.data().map(|t| t.provided_privilege),
        Some(Privilege::Demo)
    );
}

#[tokio::test]
async fn list_valid_tokens_leaves_out_the_token_list_when_there_is_none() {
    let app = spawn_app().await;
    let (key, _) = token(&app, 7, "revoked").await;
    assert!(app.tokens.revoke(&key, Privilege::Full).await.is_ok());
    for (user_id, invalid) in [(7, 1), (99, 0)] {
        let listed = app.tokens.list_valid_tokens(uid(user_id)).await;
        assert_eq!(
            envelope_json(&listed),
            success_json(
                &app.clock_iso(),
                json!({"total": invalid, "totalInvalidTokens": invalid, "totalValidTokens": 0})
            ),
            "user {user_id}"
        );
    }
}

#[tokio::test]
async fn list_valid_tokens_lists_valid_unexpired_rows_in_snake_case() {
    let app = spawn_app().await;
    let created_at = app.clock_iso();
    let (_, public_id, id) = token_with(&app, 7, "ci", |r| {
        r.ips(ips(&["10.0.0.0/8"])).lifetime(ms(3_600_000))
    })
    .await;
    let (plain_key, plain_public_id, plain_id) = token_with(&app, 7, "plain", |r| r).await;
    let (revoked, _) = token(&app, 7, "revoked").await;
    assert!(app.tokens.revoke(&revoked, Privilege::Full).await.is_ok());
    token_with(&app, 7, "short", |r| r.lifetime(ms(1_000))).await;
    token(&app, 8, "someone else's").await;
    app.clock.advance(Duration::from_secs(2));
    assert!(app
        .lib_verify(&plain_key, Privilege::Full, None)
        .await
        .is_ok());
    let used_at = app.clock_iso();

    let listed = envelope_json(&app.tokens.list_valid_tokens(uid(7)).await);
    let mut rows = listed["data"]["tokenList"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rows.sort_by_key(|row| row["id"].as_u64());
    assert_eq!(
        rows,
        vec![
            json!({
                "id": id, "name": "ci", "created_at": created_at,
                "expires_at": app.clock_iso_after(Duration::from_secs(3_598)),
                "restricted_to_ip_address": ["10.0.0.0/8"], "last_used": null,
                "usage_count": 0, "public_identifier": public_id, "privilege_type": "full",
            }),
            json!({
                "id": plain_id, "name": "plain", "created_at": created_at, "expires_at": null,
                "restricted_to_ip_address": null, "last_used": used_at, "usage_count": 1,
                "public_identifier": plain_public_id, "privilege_type": "full",
            }),
        ]
    );
    let mut counts = listed["data"].clone();
    if let Some(data) = counts.as_object_mut() {
        data.remove("tokenList");
    }
    assert_eq!(
        counts,
        json!({"total": 4, "totalInvalidTokens": 2, "totalValidTokens": 2})
    );
}

#[tokio::test]
async fn total_user_tokens_count_covers_every_row_of_the_owner() {
    let app = spawn_app().await;
    token(&app, 7, "one").await;
    let (revoked, _) = token(&app, 7, "two").await;
    assert!(app.tokens.revoke(&revoked, Privilege::Full).await.is_ok());
    token_with(&app, 7, "short", |r| r.lifetime(ms(1_000))).await;
    token(&app, 8, "someone else's").await;
    app.clock.advance(Duration::from_secs(2));

    let counts = app
        .tokens
        .total_user_tokens_count(uid(7))
        .await
        .outcome
        .expect("counts");
    assert_eq!(
        serde_json::to_value(&counts).expect("serializes"),
        json!({"userId": 7, "totalValidTokens": 1, "totalInvalidTokens": 2, "total": 3})
    );
    let nobody = app
        .tokens
        .total_user_tokens_count(uid(99))
        .await
        .outcome
        .expect("counts");
    assert_eq!(
        serde_json::to_value(&nobody).expect("serializes"),
        json!({"userId": 99, "totalValidTokens": 0, "totalInvalidTokens": 0, "total": 0})
    );
}
