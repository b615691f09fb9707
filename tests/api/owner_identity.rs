//! SPEC B3 on both stores: an owner is an integer 1 … 2^63−1, refused the same way at every
//! edge, and two different ids are two different owners; names and public identifiers are
//! compared byte for byte (no padding, folding or normalisation).

use iam_tokens::domain::{Privilege, UserId};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{admin_error, spawn_admin_app, spawn_app, uid, HttpToken, TestApp};

const ID_RULE: &str = "userId must be an integer from 1 to 9223372036854775807";

/// An access token whose `sub` is exactly `sub`, signed with the app's secret.
fn access_token_for(app: &TestApp, sub: Value) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let secret = app.settings.auth.jwt_secret.expose().as_bytes();
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &EncodingKey::from_secret(secret),
    )
    .expect("sign")
}

#[tokio::test]
async fn ids_past_two_to_the_63_are_not_owners_and_never_reach_another_owners_tokens() {
    let app = spawn_app().await;
    // Before SPEC B3 was enforced, SQLite clamped both of these to i64::MAX, the owner below.
    let top = app.create_token(UserId::MAX, Privilege::Full, "top").await;
    for sub in [
        json!("9223372036854775808"),
        json!("18446744073709551615"),
        json!(9_223_372_036_854_775_808_u64),
        json!(u64::MAX),
    ] {
        let token = access_token_for(&app, sub.clone());
        for (method, action, body) in [
            (Method::GET, "list-metadata", None),
            (
                Method::POST,
                "revoke",
                Some(json!({"tokenId": app.token_id(&top.raw_public_id).await,
                            "publicIdentifier": top.raw_public_id, "name": "top"})),
            ),
        ] {
            let mut request = app
                .client
                .request(method, app.url(&format!("/api/manage/{action}")))
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let answer = app.send(request).await;
            answer.assert_is(
                401,
                &json!({"error": "Malformed token payload"}),
                &format!("{action} as {sub}"),
            );
        }
    }
    let listed = app.tokens.list_valid_tokens(uid(UserId::MAX)).await;
    assert_eq!(listed.data().map(|l| l.total_valid_tokens), Some(1));
    let verified = app.verify(&top.raw_api_key, "full").await;
    assert_eq!(verified.status, 200, "the top owner's token is untouched");
}

#[tokio::test]
async fn the_largest_id_and_its_neighbour_are_two_owners() {
    let app = spawn_app().await;
    let max = app.create_token(UserId::MAX, Privilege::Full, "max").await;
    let below = app
        .create_token(UserId::MAX - 1, Privilege::Full, "below")
        .await;
    for (owner, mine) in [(UserId::MAX, &max), (UserId::MAX - 1, &below)] {
        let answer = app.manage_get("list-metadata", owner).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let list = answer.data()["tokenList"].as_array().expect("tokenList");
        assert_eq!(list.len(), 1, "owner {owner}: {answer:?}");
        assert_eq!(list[0]["public_identifier"], mine.raw_public_id.as_str());
    }
    let rows: Vec<(u64,)> = app
        .query_all("SELECT user_id FROM api_tokens ORDER BY id", ())
        .await;
    assert_eq!(rows, vec![(UserId::MAX,), (UserId::MAX - 1,)]);
}

#[tokio::test]
async fn admin_routes_refuse_ids_outside_the_domain_with_400_naming_the_field() {
    let app = spawn_admin_app().await;
    let refused = admin_error("bad_request", ID_RULE, Some("userId"));
    for user_id in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!(9_223_372_036_854_775_808_u64),
        json!(u64::MAX),
        json!("42"),
        json!(null),
    ] {
        let body = json!({"userId": user_id, "name": "ci"});
        let answer = app.admin_json(Method::POST, "/tokens", &body).await;
        answer.assert_is(400, &refused, &format!("create for {user_id}"));
    }
    for path in [
        "0",
        "9223372036854775808",
        "18446744073709551615",
        "-5",
        "1e3",
    ] {
        let answer = app.admin_get(&format!("/users/{path}/tokens")).await;
        answer.assert_is(400, &refused, &format!("list of {path}"));
    }
    assert_eq!(app.token_row_count().await, 0, "nothing was created");
    let max = json!({"userId": UserId::MAX, "name": "ci"});
    let created = app.admin_create(&max).await;
    assert_eq!(created.body["token"]["userId"], UserId::MAX);
}

#[tokio::test]
async fn the_library_cannot_name_an_owner_outside_the_domain() {
    for id in [0, UserId::MAX + 1, u64::MAX] {
        assert!(UserId::new(id).is_err(), "{id}");
        assert!(UserId::try_from(id).is_err(), "{id}");
    }
    assert_eq!(UserId::new(UserId::MAX).map(u64::from), Ok(UserId::MAX));
}

/// A `full` token named `name` for user 7, created over HTTP.
async fn named(app: &TestApp, name: &str) -> HttpToken {
    app.http_token(7, &json!({"privilege": "full", "name": name}))
        .await
}

#[tokio::test]
async fn names_match_byte_for_byte_in_every_five_point_action() {
    let app = spawn_app().await;
    let nfc = "caf\u{e9}";
    let nfd = "cafe\u{301}";
    // (stored name, presented name, what differs)
    let cases = [
        ("ci key", "ci key ", "a trailing space"),
        ("ci key", "ci key\u{a0}", "a trailing no-break space"),
        ("ci key", "CI KEY", "case"),
        ("ci key", "Ci key", "the case of one letter"),
        (nfc, nfd, "NFC stored, NFD presented"),
        (nfd, nfc, "NFD stored, NFC presented"),
        (
            "ci key ",
            "ci key",
            "a trailing space stored, none presented",
        ),
    ];
    // (action, extra body fields, failure status)
    let actions = [
        ("revoke", json!({}), 401),
        ("metadata", json!({}), 401),
        ("rotate", json!({}), 400),
        ("ip-restriction-update", json!({"ipv4": ["10.0.0.1"]}), 400),
        ("privilege-update", json!({"newPrivilege": "demo"}), 400),
    ];
    let mut wrong = Vec::new();
    for (stored, presented, differs) in cases {
        let token = named(&app, stored).await;
        for (action, extra, status) in &actions {
            let mut body = json!({"tokenId": token.id, "publicIdentifier": token.public_id,
                                  "name": presented});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            let answer = app.manage_post(action, 7, &body).await;
            let expected = app.failure_now("Bad Request");
            if (answer.status, &answer.body) != (*status, &expected) {
                wrong.push(format!("{action}, {differs}: {answer:?}"));
            }
        }
        let row: (u64, String, Option<String>) = app
            .query_one(
                "SELECT valid, privilege_type, restricted_to_ip_address FROM api_tokens WHERE id = ?",
                (token.id,),
            )
            .await;
        assert_eq!(
            row,
            (1, "full".to_owned(), None),
            "{differs}: the token is unchanged"
        );
        // The exact name still addresses it.
        let exact = json!({"tokenId": token.id, "publicIdentifier": token.public_id,
                           "name": stored});
        let answer = app.manage_post("metadata", 7, &exact).await;
        assert_eq!(answer.status, 200, "{differs}, exact name: {answer:?}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn a_public_identifier_with_a_trailing_space_or_another_case_addresses_nothing() {
    let app = spawn_app().await;
    let token = named(&app, "ci").await;
    let upper = token.public_id.to_uppercase();
    let padded = format!("{} ", &token.public_id[..136]);
    for (case, public_id) in [("upper case", upper), ("last char a space", padded)] {
        let body = json!({"tokenId": token.id, "publicIdentifier": public_id, "name": "ci"});
        let answer = app.manage_post("revoke", 7, &body).await;
        assert!(
            answer.status == 401 || answer.status == 400,
            "{case}: {answer:?}"
        );
        assert_ne!(answer.status, 200, "{case}");
    }
    let (_, valid) = app.usage_and_valid(token.id).await;
    assert!(valid, "the token is still valid");
}
