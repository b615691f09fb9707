//! `privateActionManager` (SPEC A5): a user addresses one of their tokens by the five points
//! and the manager dispatches with the stored digest and privilege.

use std::time::Duration;

use iam_tokens::domain::{IpRestriction, Privilege, PublicIdentifier, TokenName};
use iam_tokens::service::{CreateToken, ManagerAction};
use serde_json::{json, Value};

use crate::helpers::{envelope_json, failure_json, spawn_app, success_json, TestApp};
use crate::helpers::{ms, prefix, uid};

const USER: u64 = 7;

/// One token of `USER` and how the manager addresses it.
struct Addressed {
    key: String,
    id: u64,
    public_id: String,
    name: String,
}

async fn token_with(
    app: &TestApp,
    name: &str,
    request: impl FnOnce(CreateToken) -> CreateToken,
) -> Addressed {
    let base = CreateToken::new(
        uid(USER),
        Privilege::Protected,
        TokenName::parse(name).expect("name"),
    );
    let created = app.lib_create(request(base)).await;
    let created = created.data().expect("token created");
    Addressed {
        key: created.raw_api_key.clone(),
        id: app.token_id(&created.raw_public_id).await,
        public_id: created.raw_public_id.clone(),
        name: name.to_owned(),
    }
}

async fn token(app: &TestApp, name: &str) -> Addressed {
    token_with(app, name, |r| r).await
}

/// Runs `action` on the token addressed by these points; returns the serialized envelope.
async fn manage(
    app: &TestApp,
    user_id: u64,
    token_id: u64,
    public_id: &str,
    name: &str,
    action: ManagerAction,
) -> Value {
    let public_id = PublicIdentifier::parse_shape(public_id).expect("137 characters");
    let answer = app
        .tokens
        .private_action_manager(uid(user_id), token_id, &public_id, name, action)
        .await;
    envelope_json(&answer)
}

async fn manage_own(app: &TestApp, token: &Addressed, action: ManagerAction) -> Value {
    manage(app, USER, token.id, &token.public_id, &token.name, action).await
}

async fn reason_of_verify(
    app: &TestApp,
    key: &str,
    privilege: Privilege,
    ip: Option<&str>,
) -> Option<String> {
    let answer = app.lib_verify(key, privilege, ip).await;
    answer.reason().map(|reason| reason.as_str().into_owned())
}

#[tokio::test]
async fn a_public_identifier_with_a_bad_checksum_is_an_invalid_identity() {
    let app = spawn_app().await;
    let target = token(&app, "ci").await;
    let mut tampered = target.public_id.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == '0' { '1' } else { '0' });
    let cases = [
        (tampered, "checksum flipped"),
        ("x".repeat(137), "no separator"),
        (format!("{}_{}", "g".repeat(128), "00000000"), "not hex"),
    ];
    for (public_id, case) in cases {
        let answer = manage(
            &app,
            USER,
            target.id,
            &public_id,
            "ci",
            ManagerAction::Revoke,
        )
        .await;
        assert_eq!(
            answer,
            failure_json(&app.clock_iso(), "Invalid identity"),
            "{case}"
        );
    }
    assert_eq!(app.usage_and_valid(target.id).await, (0, true));
}

#[tokio::test]
async fn any_one_wrong_point_is_a_bad_request() {
    let app = spawn_app().await;
    let target = token(&app, "ci").await;
    let other = token(&app, "other").await;
    let revoked = token(&app, "revoked").await;
    assert!(app
        .tokens
        .revoke(&revoked.key, Privilege::Protected)
        .await
        .is_ok());
    let unrelated_id = PublicIdentifier::generate();
    let cases = [
        (
            USER,
            other.id,
            target.public_id.as_str(),
            "ci",
            "another token's id",
        ),
        (
            USER,
            target.id + 1_000,
            target.public_id.as_str(),
            "ci",
            "an unknown id",
        ),
        (
            USER + 1,
            target.id,
            target.public_id.as_str(),
            "ci",
            "another owner",
        ),
        (
            USER,
            target.id,
            target.public_id.as_str(),
            "CI",
            "another name",
        ),
        (
            USER,
            target.id,
            other.public_id.as_str(),
            "ci",
            "another token's public id",
        ),
        (
            USER,
            target.id,
            unrelated_id.as_str(),
            "ci",
            "an unknown public id",
        ),
        (
            USER,
            revoked.id,
            revoked.public_id.as_str(),
            "revoked",
            "a revoked token",
        ),
    ];
    for (user_id, token_id, public_id, name, case) in cases {
        let answer = manage(
            &app,
            user_id,
            token_id,
            public_id,
            name,
            ManagerAction::Revoke,
        )
        .await;
        assert_eq!(
            answer,
            failure_json(&app.clock_iso(), "Bad Request"),
            "{case}"
        );
    }
    assert_eq!(app.valid_token_rows(USER).await, 2, "nothing revoked");
}

#[tokio::test]
async fn the_revoke_action_revokes_the_addressed_token() {
    let app = spawn_app().await;
    let target = token(&app, "ci").await;
    let answer = manage_own(&app, &target, ManagerAction::Revoke).await;
    assert_eq!(
        answer,
        success_json(
            &app.clock_iso(),
            json!({
                "msg": "Token invalided successfully",
                "invalidedTokenId": target.id,
                "userId": USER,
            })
        )
    );
    assert_eq!(app.usage_and_valid(target.id).await, (0, false));
    let again = manage_own(&app, &target, ManagerAction::Revoke).await;
    assert_eq!(
        again,
        failure_json(&app.clock_iso(), "Bad Request"),
        "no longer valid"
    );
}

#[tokio::test]
async fn the_metadata_action_answers_the_snapshot_without_counting() {
    let app = spawn_app().await;
    let created_at = app.clock_iso();
    let target = token_with(&app, "ci", |r| {
        r.ips(IpRestriction::parse(&["10.0.0.0/8"]).expect("ips"))
    })
    .await;
    app.clock.advance(Duration::from_secs(1));
    let answer = manage_own(&app, &target, ManagerAction::Metadata).await;
    let snapshot = app
        .tokens
        .metadata_snapshot(&target.key, Privilege::Protected)
        .await;
    assert_eq!(
        answer,
        envelope_json(&snapshot),
        "the sub-operation's envelope"
    );
    assert_eq!(
        answer,
        success_json(
            &app.clock_iso(),
            json!({
                "tokenMeta": {
                    "name": "ci", "tokenId": target.id, "userId": USER,
                    "createdAt": created_at, "expiresAt": null, "lastUsed": null,
                    "usageCount": 0, "providedPrivilege": "protected",
                },
                "counts": {"totalInvalidTokens": 0, "totalValidTokens": 1, "total": 1},
            })
        )
    );
    assert_eq!(app.usage_and_valid(target.id).await, (0, true));
}

#[tokio::test]
async fn the_rotate_action_inherits_everything_but_the_key() {
    let app = spawn_app().await;
    let expires_at = app.clock_iso_after(Duration::from_secs(3_600));
    let target = token_with(&app, "ci", |r| {
        r.prefix(prefix("live"))
            .ips(IpRestriction::parse(&["10.0.0.0/8"]).expect("ips"))
            .lifetime(ms(3_600_000))
    })
    .await;
    app.clock.advance(Duration::from_secs(600));

    let answer = manage_own(&app, &target, ManagerAction::Rotate).await;
    let new_key = answer["data"]["newRawToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        answer,
        success_json(
            &app.clock_iso(),
            json!({
                "msg": "Successfully rotated an api key",
                "newRawToken": new_key,
                "newExpiry": expires_at,
            })
        ),
        "the remaining lifetime, not a fresh hour"
    );
    assert!(new_key.starts_with("live_"), "same prefix: {new_key}");
    let verified = app
        .lib_verify(&new_key, Privilege::Protected, Some("10.1.2.3"))
        .await;
    let verified = verified.data().expect("same privilege");
    assert_eq!(verified.name, "ci");
    assert_eq!(
        reason_of_verify(&app, &new_key, Privilege::Protected, Some("192.0.2.1"))
            .await
            .as_deref(),
        Some("Invalid Host"),
        "same IP list"
    );
    assert_eq!(
        reason_of_verify(&app, &target.key, Privilege::Protected, Some("10.1.2.3"))
            .await
            .as_deref(),
        Some("Invalid key"),
        "old key retired"
    );
    assert_eq!(
        app.usage_and_valid(target.id).await,
        (0, false),
        "old row kept"
    );
}

#[tokio::test]
async fn the_ip_restriction_update_action_replaces_the_list() {
    let app = spawn_app().await;
    let target = token(&app, "ci").await;
    let new_ip_address = IpRestriction::parse(&["192.0.2.0/24"]).expect("ips");
    let answer = manage_own(
        &app,
        &target,
        ManagerAction::IpRestrictionUpdate { new_ip_address },
    )
    .await;
    assert_eq!(
        answer,
        success_json(
            &app.clock_iso(),
            json!({"msg": "Restriction updated successfully"})
        )
    );
    let stored: Option<String> = app
        .query_one(
            "SELECT restricted_to_ip_address FROM api_tokens WHERE id = ?",
            (target.id,),
        )
        .await;
    assert_eq!(
        stored.map(|text| serde_json::from_str::<Value>(&text).expect("JSON")),
        Some(json!(["192.0.2.0/24"]))
    );
    assert_eq!(
        reason_of_verify(&app, &target.key, Privilege::Protected, Some("10.0.0.1"))
            .await
            .as_deref(),
        Some("Invalid Host")
    );
}

#[tokio::test]
async fn the_privilege_update_action_changes_the_privilege() {
    let app = spawn_app().await;
    let target = token(&app, "ci").await;
    let action = ManagerAction::PrivilegeUpdate {
        new_privileges: Privilege::Custom,
    };
    let answer = manage_own(&app, &target, action).await;
    assert_eq!(
        answer,
        success_json(
            &app.clock_iso(),
            json!({"msg": "Privileges updated successfully"})
        )
    );
    assert_eq!(
        reason_of_verify(&app, &target.key, Privilege::Protected, None)
            .await
            .as_deref(),
        Some("Invalid key")
    );
    assert_eq!(
        reason_of_verify(&app, &target.key, Privilege::Custom, None).await,
        None
    );
}

#[tokio::test]
async fn the_manager_returns_the_sub_operations_failure_unchanged() {
    let app = spawn_app().await;
    let target = token_with(&app, "ci", |r| r.lifetime(ms(1_000))).await;
    app.clock.advance(Duration::from_secs(2));
    let cases = [
        (ManagerAction::Rotate, "Token cannot be rotated this time"),
        (ManagerAction::Metadata, "Token expired"),
    ];
    for (action, reason) in cases {
        let answer = manage_own(&app, &target, action).await;
        assert_eq!(answer, failure_json(&app.clock_iso(), reason), "{reason}");
    }
}
