//! The store goes away: verification fails closed with `Server error validating token.`,
//! `/health` keeps answering, and checks that need no database still work (SPEC A6 step 7).

use iam_tokens::domain::{GeneratedKey, Prefix, Privilege, PublicIdentifier, TokenName};
use iam_tokens::secret::Secret;
use iam_tokens::service::{CreateToken, ManagerAction, RotateToken};
use mysql_async::prelude::*;
use serde_json::json;

use crate::helpers::uid;
use crate::helpers::{envelope_json, failure_json, spawn_app, spawn_app_with, TestApp, SERVER_URL};

const SERVER_ERROR: &str = "Server error validating token.";

/// A service whose database URL points at a port where nothing listens.
async fn spawn_app_without_database() -> TestApp {
    spawn_app_with(|s| {
        s.database.migrate_on_start = false;
        s.database.url = Secret::new("mysql://root@127.0.0.1:1/nowhere");
    })
    .await
}

fn well_formed_key() -> String {
    GeneratedKey::generate(&Prefix::default())
        .raw
        .expose()
        .to_owned()
}

async fn assert_health_ok(app: &TestApp) {
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "OK");
}

#[tokio::test]
async fn verify_fails_closed_when_the_database_is_unreachable() {
    let app = spawn_app_without_database().await;
    let answer = app.verify(&well_formed_key(), "full").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, failure_json(&app.clock_iso(), SERVER_ERROR));

    let in_process = app
        .lib_verify(&well_formed_key(), Privilege::Full, None)
        .await;
    assert_eq!(
        envelope_json(&in_process),
        failure_json(&app.clock_iso(), SERVER_ERROR)
    );
    assert_health_ok(&app).await;
}

#[tokio::test]
async fn checks_that_need_no_database_still_answer_when_it_is_unreachable() {
    let app = spawn_app_without_database().await;
    let mut bad_checksum = well_formed_key();
    bad_checksum.pop();
    bad_checksum.push('x');
    let answer = app.verify(&bad_checksum, "full").await;
    assert_eq!(
        (answer.status, answer.body),
        (401, failure_json(&app.clock_iso(), "Invalid key")),
        "a bad checksum is rejected before any lookup"
    );

    let tampered = PublicIdentifier::parse_shape(&"x".repeat(137)).expect("137 characters");
    let managed = app
        .tokens
        .private_action_manager(uid(7), 1, &tampered, "ci", ManagerAction::Revoke)
        .await;
    assert_eq!(
        envelope_json(&managed),
        failure_json(&app.clock_iso(), "Invalid identity"),
        "a bad public-id checksum is rejected before any lookup"
    );
}

#[tokio::test]
async fn every_operation_reports_its_server_error_when_the_database_is_unreachable() {
    let app = spawn_app_without_database().await;
    let key = well_formed_key();
    let tokens = &app.tokens;
    let name = || TokenName::parse("ci").expect("name");
    let public_id = PublicIdentifier::generate();
    let cases = [
        (
            envelope_json(&tokens.revoke(&key, Privilege::Full).await),
            "Error invalidating token",
        ),
        (
            envelope_json(
                &tokens
                    .rotate(RotateToken::new(key.as_str(), Privilege::Full, name()))
                    .await,
            ),
            "Server error rotating a token.",
        ),
        (
            envelope_json(&tokens.metadata_snapshot(&key, Privilege::Full).await),
            SERVER_ERROR,
        ),
        (
            envelope_json(
                &tokens
                    .update_ip_restriction(uid(7), &key, Default::default())
                    .await,
            ),
            "Internal server error",
        ),
        (
            envelope_json(&tokens.update_privilege(uid(7), &key, Privilege::Demo).await),
            "Internal server error",
        ),
        (
            envelope_json(&tokens.list_valid_tokens(uid(7)).await),
            "Server error",
        ),
        (
            envelope_json(
                &tokens
                    .private_action_manager(uid(7), 1, &public_id, "ci", ManagerAction::Metadata)
                    .await,
            ),
            "Server Error",
        ),
    ];
    for (answer, reason) in cases {
        assert_eq!(answer, failure_json(&app.clock_iso(), reason), "{reason}");
    }
    let created = tokens
        .create(CreateToken::new(uid(7), Privilege::Full, name()))
        .await;
    assert!(created.reason().is_some(), "create fails: {created:?}");
    let counted = tokens.total_user_tokens_count(uid(7)).await;
    assert_eq!(
        envelope_json(&counted),
        failure_json(&app.clock_iso(), "Server error"),
        "counts fail with the list's reason"
    );
}

#[tokio::test]
async fn a_database_dropped_mid_flight_fails_closed() {
    crate::mysql_only!();
    let app = spawn_app().await;
    let created = app
        .manage_post("new-token", 7, &json!({"privilege": "full", "name": "ci"}))
        .await;
    let key = created.data()["rawApiKey"]
        .as_str()
        .expect("raw key")
        .to_owned();
    assert_eq!(app.verify(&key, "full").await.status, 200, "works before");

    let mut conn = mysql_async::Conn::from_url(SERVER_URL)
        .await
        .expect("server connection");
    conn.query_drop(format!("DROP DATABASE `{}`", app.db_name))
        .await
        .expect("drop database");
    conn.disconnect().await.expect("disconnect");

    let answer = app.verify(&key, "full").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, failure_json(&app.clock_iso(), SERVER_ERROR));
    assert_health_ok(&app).await;
}
