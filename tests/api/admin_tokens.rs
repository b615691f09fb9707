//! The admin token routes (SPEC B2): the admin credential, create for any user, read one token,
//! revoke, and a user's tokens paginated and filtered.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::helpers::{
    admin_error, spawn_admin_app, spawn_admin_app_with, spawn_app, Answer, TestApp, ADMIN_SECRET,
};

fn unauthorized() -> Value {
    let message = "a valid admin credential is required (Authorization: Bearer <secret>)";
    admin_error("unauthorized", message, None)
}

fn bad_request(message: &str, field: &str) -> Value {
    admin_error("bad_request", message, Some(field))
}

fn not_found(message: &str) -> Value {
    admin_error("not_found", message, None)
}

/// `POST /api/admin/tokens` with `body` as `ops`.
async fn create(app: &TestApp, body: &Value) -> Answer {
    app.admin_json(Method::POST, "/tokens", body).await
}

/// `POST /api/admin/tokens/{id}/revoke` as `ops`.
async fn revoke(app: &TestApp, id: impl std::fmt::Display) -> Answer {
    let path = format!("/tokens/{id}/revoke");
    app.send(app.admin_request(Method::POST, &path)).await
}

/// Ids of a listing, in the order answered.
fn ids(answer: &Answer) -> Vec<u64> {
    assert_eq!(answer.status, 200, "{answer:?}");
    let tokens = answer.body["tokens"].as_array().expect("tokens");
    tokens.iter().filter_map(|t| t["id"].as_u64()).collect()
}

/// A token of `user` named `name` with `extra` fields; its id.
async fn token(app: &TestApp, user: u64, name: &str, extra: Value) -> u64 {
    let mut body = json!({"userId": user, "name": name});
    merge(&mut body, extra);
    app.admin_create(&body).await.id
}

fn merge(body: &mut Value, extra: Value) {
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
}

#[tokio::test]
async fn admin_routes_answer_401_to_anything_but_the_configured_secret() {
    let app = spawn_admin_app().await;
    let digest = hex::encode(Sha256::digest(ADMIN_SECRET));
    let shortened = &ADMIN_SECRET[..ADMIN_SECRET.len() - 1];
    let long = format!("{ADMIN_SECRET}{}", "0".repeat(300));
    #[rustfmt::skip]
    let cases = [
        ("no Authorization header",             None),
        ("a Basic credential",                  Some(format!("Basic {ADMIN_SECRET}"))),
        ("an empty bearer",                     Some("Bearer ".into())),
        ("the configured digest",               Some(format!("Bearer {digest}"))),
        ("the secret less its last character",  Some(format!("Bearer {shortened}"))),
        ("an end user's access token",          Some(format!("Bearer {}", app.access_token(1)))),
        ("the secret and 300 more characters",  Some(format!("Bearer {long}"))),
    ];
    for (case, header) in cases {
        let mut request = app.client.get(app.url("/api/admin/users/1/tokens"));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let answer = app.send(request).await;
        answer.assert_is(401, &unauthorized(), case);
        let problem = answer.header("content-type");
        assert_eq!(
            problem,
            Some("application/problem+json"),
            "{case}: problem details"
        );
        let challenge = answer.header("www-authenticate");
        assert_eq!(challenge, Some("Bearer realm=\"iam-tokens\""), "{case}");
    }
    let empty = json!({"tokens": [], "nextCursor": null});
    let answer = app.admin_get("/users/1/tokens").await;
    answer.assert_is(200, &empty, "the right secret");
}

#[tokio::test]
async fn every_admin_route_refuses_a_request_without_the_credential_before_reading_it() {
    let app = spawn_admin_app().await;
    #[rustfmt::skip]
    let routes = [
        (Method::POST, "/tokens"),           (Method::GET, "/tokens/1"),
        (Method::PATCH, "/tokens/1/metadata"), (Method::PUT, "/tokens/1/metadata"),
        (Method::POST, "/tokens/1/revoke"),  (Method::GET, "/tokens/1/events"),
        (Method::GET, "/users/1/tokens"),    (Method::POST, "/verify"),
        (Method::GET, "/bans"),              (Method::DELETE, "/bans/burst_limiter/127.0.0.1"),
    ];
    for (method, path) in routes {
        let case = format!("{method} {path} with a malformed body");
        let url = app.url(&format!("/api/admin{path}"));
        let request = app.client.request(method, url).body("{");
        let answer = app
            .send(request.header("content-type", "application/json"))
            .await;
        answer.assert_is(401, &unauthorized(), &case);
    }
}

#[tokio::test]
async fn a_service_without_admin_credentials_refuses_every_secret() {
    let app = spawn_app().await;
    let answer = app.admin_get("/users/1/tokens").await;
    answer.assert_is(401, &unauthorized(), "no admin is configured");
}

#[tokio::test]
async fn create_answers_201_with_the_raw_key_once_and_the_whole_token() {
    let app = spawn_admin_app().await;
    let metadata = json!({"billing_account": "acct_1", "seats": 12, "isLegacyUser": false});
    let body = json!({
        "userId": 7, "name": "billing sync", "privilege": "full", "prefix": "bill",
        "expires": 3_600_000, "ips": ["10.0.0.0/8", "192.0.2.1"], "metadata": metadata,
    });
    let answer = create(&app, &body).await;
    let key = answer.body["rawApiKey"].as_str().unwrap_or_default();
    let public_id = answer.body["rawPublicId"].as_str().unwrap_or_default();
    let shape = key.starts_with("bill_") && key.len() == 5 + 128 + 1 + 8;
    assert!(shape, "{key}");
    let id = app.token_id(public_id).await;
    let expires_at = app.clock_iso_after(Duration::from_secs(3600));
    let expected = json!({
        "rawApiKey": key, "rawPublicId": public_id, "expiresAt": expires_at,
        "token": {
            "id": id, "userId": 7, "name": "billing sync", "prefix": "bill",
            "publicIdentifier": public_id, "privilege": "full", "createdAt": app.clock_iso(),
            "expiresAt": expires_at, "lastUsed": null, "usageCount": 0, "valid": true,
            "enabled": true, "disabled": null, "ownerDisabled": null,
            "ipRestriction": ["10.0.0.0/8", "192.0.2.1"], "metadata": metadata,
            "roles": [], "permissions": [], "effectivePermissions": [],
            "ratelimits": [], "credits": null,
        },
    });
    answer.assert_is(201, &expected, "create with every field");
    let got = app.admin_get(&format!("/tokens/{id}")).await;
    let mut read = expected["token"].clone();
    read["usage24h"] = json!(0);
    assert_eq!(
        got.body, read,
        "GET answers the same token, with its last 24 hours"
    );
    assert!(!got.body.to_string().contains(key), "the key is shown once");
}

#[tokio::test]
async fn create_defaults_to_restricted_api_never_expiring_unrestricted_and_no_metadata() {
    let app = spawn_admin_app().await;
    let created = app
        .admin_create(&json!({"userId": 9, "name": "plain"}))
        .await;
    assert!(created.key.starts_with("api_"), "{}", created.key);
    let expected = json!({
        "rawApiKey": created.key, "rawPublicId": created.public_id, "expiresAt": null,
        "token": {
            "id": created.id, "userId": 9, "name": "plain", "prefix": "api",
            "publicIdentifier": created.public_id, "privilege": "restricted",
            "createdAt": app.clock_iso(), "expiresAt": null, "lastUsed": null, "usageCount": 0,
            "valid": true, "enabled": true, "disabled": null, "ownerDisabled": null,
            "ipRestriction": null, "metadata": {},
            "roles": [], "permissions": [], "effectivePermissions": [],
            "ratelimits": [], "credits": null,
        },
    });
    assert_eq!(created.body, expected);
    assert_eq!(app.verify(&created.key, "restricted").await.status, 200);
    assert_eq!(app.stored_metadata(created.id).await, Value::Null);
}

#[tokio::test]
async fn create_answers_409_at_the_per_user_limit() {
    let app = spawn_admin_app_with(|s| s.api_tokens.limit_tokens_per_user = 2).await;
    token(&app, 7, "one", json!({})).await;
    token(&app, 7, "two", json!({})).await;
    let answer = create(&app, &json!({"userId": 7, "name": "third"})).await;
    let message = "You cannot have more then 2 valid tokens at a time";
    let expected = admin_error("token_limit", message, None);
    answer.assert_is(409, &expected, "a third token");
    assert_eq!(app.valid_token_rows(7).await, 2);
    token(&app, 8, "another user's", json!({})).await;
}

#[tokio::test]
async fn create_answers_400_naming_the_field_for_each_bad_input() {
    let app = spawn_admin_app().await;
    let name = "name must be 1 to 50 characters without control characters";
    let reserved = "\"_\" is a reserved character, please exclude it from your prefixes";
    let prefix = "prefix must be 1 to 32 ASCII letters, digits or '-'";
    let expires = "expires is a lifetime in ms from 1 to 3153600000000";
    let ip = "entry 1 is not an IP address or CIDR range";
    #[rustfmt::skip]
    let cases = [
        ("an empty name",         json!({"name": ""}),                      name,     "name"),
        ("a 51-character name",   json!({"name": "n".repeat(51)}),          name,     "name"),
        ("a control character",   json!({"name": "a\u{7}b"}),               name,     "name"),
        ("an underscore prefix",  json!({"prefix": "my_app"}),              reserved, "prefix"),
        ("a prefix with a space", json!({"prefix": "my app"}),              prefix,   "prefix"),
        ("a zero lifetime",       json!({"expires": 0}),                    expires,  "expires"),
        ("over 100 years",        json!({"expires": 3_153_600_000_001_u64}), expires, "expires"),
        ("a bad IP entry",        json!({"ips": ["10.0.0.1", "nope"]}),     ip,       "ips"),
    ];
    for (case, change, message, field) in cases {
        let mut body = json!({"userId": 7, "name": "ok"});
        merge(&mut body, change);
        let answer = create(&app, &body).await;
        answer.assert_is(400, &bad_request(message, field), case);
    }
    assert_eq!(app.token_row_count().await, 0, "nothing was created");
}

#[tokio::test]
async fn create_answers_400_for_an_unknown_or_missing_field_and_a_bad_type() {
    let app = spawn_admin_app().await;
    #[rustfmt::skip]
    let cases = [
        ("no userId",            json!({"name": "ok"})),
        ("a negative userId",    json!({"userId": -1, "name": "ok"})),
        ("an unknown privilege", json!({"userId": 7, "name": "ok", "privilege": "root"})),
        ("ips as a bare string", json!({"userId": 7, "name": "ok", "ips": "10.0.0.1"})),
    ];
    for (case, body) in cases {
        let answer = create(&app, &body).await;
        assert_eq!(answer.status, 400, "{case}: {answer:?}");
        assert_eq!(answer.body["code"], "bad_request", "{case}");
    }
    let unknown = create(&app, &json!({"userId": 7, "name": "ok", "owner": 8})).await;
    assert_eq!(app.token_row_count().await, 0, "nothing was created");
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert_eq!(unknown.body["code"], "bad_request");
    let field = &unknown.body["field"];
    assert_eq!(field, "owner", "the unknown field is named: {unknown:?}");
}

#[tokio::test]
async fn create_refuses_malformed_empty_non_json_and_oversized_bodies() {
    let app = spawn_admin_app().await;
    let post = |content_type: &str, body: String| {
        let request = app.admin_request(Method::POST, "/tokens");
        app.send(request.header("content-type", content_type).body(body))
    };
    let json_type = "application/json";
    let malformed = admin_error("bad_request", "malformed JSON at line 1 column 10", None);
    let answer = post(json_type, r#"{"userId":"#.into()).await;
    answer.assert_is(400, &malformed, "malformed JSON");
    let empty = admin_error("bad_request", "the body is empty", None);
    let reply = post(json_type, "  ".into()).await;
    reply.assert_is(400, &empty, "empty");
    let message = "send Content-Type: application/json";
    let media = admin_error("unsupported_media_type", message, None);
    let valid = json!({"userId": 7, "name": "ok"}).to_string();
    let answer = post("text/plain", valid.clone()).await;
    answer.assert_is(415, &media, "text/plain");
    let limit = 16 * 1024;
    let padded = |len: usize| format!("{valid}{}", " ".repeat(len - valid.len()));
    let too_large = admin_error("payload_too_large", "bodies are at most 16384 bytes", None);
    let answer = post(json_type, padded(limit + 1)).await;
    answer.assert_is(413, &too_large, "16 KiB + 1");
    assert_eq!(app.token_row_count().await, 0, "nothing was created");
    let at_limit = post("application/json; charset=utf-8", padded(limit)).await;
    assert_eq!(at_limit.status, 201, "exactly 16 KiB: {at_limit:?}");
}

#[tokio::test]
async fn get_answers_the_token_with_its_metadata_and_never_its_digest() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 3, "name": "crm", "metadata": {"crm_id": "C-1", "n": 1.5}});
    let created = app.admin_create(&body).await;
    app.clock.advance(Duration::from_secs(5));
    assert_eq!(app.verify(&created.key, "restricted").await.status, 200);
    let answer = app.admin_get(&format!("/tokens/{}", created.id)).await;
    let mut expected = created.body["token"].clone();
    expected["lastUsed"] = json!(app.clock_iso());
    expected["usageCount"] = json!(1);
    // A read carries the token's verifications of the last 24 hours (SPEC B11).
    expected["usage24h"] = json!(1);
    answer.assert_is(200, &expected, "GET one token");
    let digest = hex::encode(Sha256::digest(&created.key));
    let text = answer.body.to_string();
    assert!(!text.contains(&digest), "no digest: {text}");
}

#[tokio::test]
async fn get_answers_404_for_an_unknown_or_non_numeric_id() {
    let app = spawn_admin_app().await;
    #[rustfmt::skip]
    let cases = [
        ("/tokens/424242", "no token with id 424242"),
        ("/tokens/abc",    "no token with id \"abc\""),
        ("/tokens/-1",     "no token with id \"-1\""),
    ];
    for (path, message) in cases {
        let answer = app.admin_get(path).await;
        answer.assert_is(404, &not_found(message), path);
    }
}

#[tokio::test]
async fn revoke_is_idempotent_and_the_key_stops_verifying() {
    let app = spawn_admin_app().await;
    let created = app
        .admin_create(&json!({"userId": 4, "name": "gone"}))
        .await;
    let mut view = created.body["token"].clone();
    view["valid"] = json!(false);
    // Limits and credits are shown by reads of one token, not by a revocation's answer.
    let quota_free = view.as_object_mut().expect("an object");
    quota_free.remove("ratelimits");
    quota_free.remove("credits");
    let expected = json!({"revoked": true, "token": view});
    let reply = revoke(&app, created.id).await;
    reply.assert_is(200, &expected, "first revoke");
    let expected = json!({"revoked": false, "token": view});
    let reply = revoke(&app, created.id).await;
    reply.assert_is(200, &expected, "again");
    let verified = app.verify(&created.key, "restricted").await;
    verified.assert_is(401, &app.failure_now("Invalid key"), "verify after revoke");
    assert_eq!(app.usage_and_valid(created.id).await, (0, false));
    let unknown = not_found("no token with id 999");
    let reply = revoke(&app, 999).await;
    reply.assert_is(404, &unknown, "an unknown id");
}

#[tokio::test]
async fn list_filters_by_status_newest_first_and_only_for_that_user() {
    let app = spawn_admin_app().await;
    let kept = token(&app, 5, "kept", json!({})).await;
    let revoked = token(&app, 5, "revoked", json!({})).await;
    let expiring = token(&app, 5, "short", json!({"expires": 1000})).await;
    token(&app, 6, "another user's", json!({})).await;
    assert_eq!(revoke(&app, revoked).await.status, 200);
    app.clock.advance(Duration::from_secs(2));
    #[rustfmt::skip]
    let cases = [
        ("",                vec![expiring, revoked, kept]),
        ("?status=all",     vec![expiring, revoked, kept]),
        ("?status=valid",   vec![kept]),
        ("?status=invalid", vec![expiring, revoked]),
    ];
    for (query, expected) in cases {
        let answer = app.admin_get(&format!("/users/5/tokens{query}")).await;
        assert_eq!(ids(&answer), expected, "{query:?}");
        assert_eq!(answer.body["nextCursor"], Value::Null, "{query:?}");
    }
    let listed = app.admin_get("/users/5/tokens?status=invalid").await;
    assert_eq!(listed.body["tokens"][0]["valid"], false, "expired");
}

#[tokio::test]
async fn list_pages_walk_every_token_once_newest_first() {
    let app = spawn_admin_app().await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.insert(0, token(&app, 5, &format!("t{n}"), json!({})).await);
    }
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, Vec::new());
    loop {
        let query = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let page = app
            .admin_get(&format!("/users/5/tokens?limit=2{query}"))
            .await;
        pages.push(ids(&page).len());
        seen.extend(ids(&page));
        let Some(next) = page.body["nextCursor"].as_u64() else {
            break;
        };
        assert_eq!(
            Some(next),
            seen.last().copied(),
            "the cursor is the last id, an integer"
        );
        cursor = Some(next.to_string());
    }
    assert_eq!((seen, pages), (created.clone(), vec![2, 2, 1]));
    let path = format!("/users/5/tokens?limit=2&cursor={}", created[2]);
    let last_full_page = app.admin_get(&path).await;
    assert_eq!(ids(&last_full_page), created[3..]);
    let next = &last_full_page.body["nextCursor"];
    assert_eq!(next, &Value::Null, "no page after it");
}

#[tokio::test]
async fn list_filters_on_one_metadata_key_and_value_of_any_scalar_type() {
    let app = spawn_admin_app().await;
    let with = |metadata: Value| json!({ "metadata": metadata });
    let gold = json!({"tier": "gold", "seats": 3, "legacy": true});
    let gold = token(&app, 5, "gold", with(gold)).await;
    let silver = json!({"tier": "silver", "seats": 30, "legacy": false});
    let silver = token(&app, 5, "silver", with(silver)).await;
    let gold_too = json!({"tier": "gold", "ratio": 1.5});
    let gold_too = token(&app, 5, "gold too", with(gold_too)).await;
    token(&app, 5, "none", json!({})).await;
    token(&app, 6, "another user's", with(json!({"tier": "gold"}))).await;
    #[rustfmt::skip]
    let cases = [
        ("meta.tier=gold",    vec![gold_too, gold]),
        ("meta.tier=silver",  vec![silver]),
        ("meta.tier=bronze",  vec![]),
        ("meta.seats=3",      vec![gold]),
        ("meta.legacy=true",  vec![gold]),
        ("meta.legacy=false", vec![silver]),
        ("meta.ratio=1.5",    vec![gold_too]),
        ("meta.missing=x",    vec![]),
        // Values compare byte for byte on both stores (no padding, no case folding).
        ("meta.tier=gold%20", vec![]),
        ("meta.tier=GOLD",    vec![]),
        ("meta.tier=gold&status=valid&limit=1", vec![gold_too]),
        // The document's form (a deepObject parameter, as generated clients send it).
        ("meta%5Btier%5D=gold", vec![gold_too, gold]),
        ("meta[seats]=30",      vec![silver]),
    ];
    for (query, expected) in cases {
        let answer = app.admin_get(&format!("/users/5/tokens?{query}")).await;
        assert_eq!(ids(&answer), expected, "{query}");
    }
}

#[tokio::test]
async fn list_answers_400_for_bad_parameters() {
    let app = spawn_admin_app().await;
    let limit = bad_request("limit is 1 to 200", "limit");
    let status = bad_request("status is valid, invalid or all", "status");
    let cursor = bad_request("cursor is the nextCursor of a previous page", "cursor");
    let unknown = bad_request("unknown query parameter \"sort\"", "sort");
    let id_rule = bad_request(
        "userId must be an integer from 1 to 9223372036854775807",
        "userId",
    );
    #[rustfmt::skip]
    let cases = [
        ("/users/5/tokens?limit=0",        limit.clone()),
        ("/users/5/tokens?limit=201",      limit.clone()),
        ("/users/5/tokens?limit=ten",      limit),
        ("/users/5/tokens?status=expired", status),
        ("/users/5/tokens?cursor=abc",     cursor),
        ("/users/5/tokens?sort=asc",       unknown),
        ("/users/me/tokens",               id_rule.clone()),
        ("/users/0/tokens",                id_rule.clone()),
        ("/users/-1/tokens",               id_rule.clone()),
        ("/users/9223372036854775808/tokens", id_rule.clone()),
        ("/users/18446744073709551615/tokens", id_rule),
    ];
    for (path, expected) in cases {
        app.admin_get(path).await.assert_is(400, &expected, path);
    }
    let two = app.admin_get("/users/5/tokens?meta.a=1&meta.b=2").await;
    // Either filter may be the one found second.
    let field = two.body["field"].as_str().unwrap_or_default();
    assert!(["meta.a", "meta.b"].contains(&field), "{two:?}");
    let expected = bad_request("filter on one metadata key at a time", field);
    two.assert_is(400, &expected, "two metadata filters");
    let rule = "crm-id: keys must be 1 to 40 characters of A-Z, a-z, 0-9 and _";
    let expected = admin_error("invalid_metadata", rule, Some("metadata.crm-id"));
    let bad_key = app.admin_get("/users/5/tokens?meta.crm-id=1").await;
    bad_key.assert_is(422, &expected, "a filter on a key no token can have");
}

#[tokio::test]
async fn an_unknown_admin_path_is_a_problem_404_and_a_wrong_method_a_405_naming_the_allowed_ones() {
    let app = spawn_admin_app().await;
    let bearer = format!("Bearer {ADMIN_SECRET}");
    let send = |method: reqwest::Method, path: &str| {
        let request = app.client.request(method, app.url(path));
        app.send(request.header("authorization", bearer.clone()))
    };
    let answer = send(reqwest::Method::GET, "/api/admin/nothing/here").await;
    let missing = admin_error(
        "not_found",
        "no admin route at /api/admin/nothing/here",
        None,
    );
    answer.assert_is(404, &missing, "an unknown admin path");
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    #[rustfmt::skip]
    let cases = [
        (reqwest::Method::DELETE, "/api/admin/tokens/1",  "GET"),
        (reqwest::Method::PUT,    "/api/admin/roles/x",   "GET, PATCH, DELETE"),
        (reqwest::Method::GET,    "/api/admin/tokens",    "POST"),
        (reqwest::Method::HEAD,   "/api/admin/bans",      "GET"),
    ];
    for (method, path, allowed) in cases {
        let answer = send(method.clone(), path).await;
        assert_eq!(answer.status, 405, "{method} {path}: {answer:?}");
        assert_eq!(answer.header("allow"), Some(allowed), "{method} {path}");
        if method != reqwest::Method::HEAD {
            let wrong = admin_error(
                "method_not_allowed",
                &format!("{path} answers {allowed}"),
                None,
            );
            answer.assert_is(405, &wrong, &format!("{method} {path}"));
        }
    }
}

#[tokio::test]
async fn a_wrongly_typed_field_is_refused_naming_the_field_and_creates_nothing() {
    let app = spawn_admin_app().await;
    let limit = json!({"name": "r", "limit": "ten", "duration": 60000});
    #[rustfmt::skip]
    let cases = [
        (json!({"userId": 7, "name": "x", "permissions": 5}), 400, "bad_request",       "permissions"),
        (json!({"userId": 7, "name": "x", "roles": [1]}),     400, "bad_request",       "roles[0]"),
        (json!({"userId": 7, "name": 9}),                     400, "bad_request",       "name"),
        (json!({"userId": 7, "name": "x", "ratelimits": [limit]}), 422, "invalid_ratelimit", "ratelimits[0].limit"),
    ];
    for (body, status, code, field) in cases {
        let answer = app
            .admin_json(reqwest::Method::POST, "/tokens", &body)
            .await;
        assert_eq!(answer.status, status, "{field}: {answer:?}");
        assert_eq!(answer.body["code"], code, "{field}");
        assert_eq!(answer.body["field"], json!(field), "{field}: {answer:?}");
    }
    let listed = app.admin_get("/users/7/tokens").await;
    assert_eq!(listed.body["tokens"], json!([]), "nothing was created");
}
