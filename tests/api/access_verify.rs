//! SPEC B4 at verification: permission queries on the public route (403, the 200 body
//! unchanged), on admin verify (`INSUFFICIENT_PERMISSIONS`, roles and permissions in the
//! answer) and in process; a failed query is not a use and not a limiter failure; malformed
//! queries are 400s naming the offset; role changes are seen at once here and within the cache
//! TTL by another instance.

use std::sync::Arc;
use std::time::Duration;

use iam_tokens::clock::ManualClock;
use iam_tokens::domain::access::{Query, RoleChange, RoleName};
use iam_tokens::domain::Privilege;
use iam_tokens::service::{
    CacheConfig, ServiceOptions, TokenService, VerifyOptions, VerifyOutcome,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_admin_app, spawn_admin_app_with, AdminToken, Answer, TestApp};

async fn role(app: &TestApp, name: &str, permissions: Value) {
    let body = json!({"name": name, "permissions": permissions});
    let answer = app.admin_json(Method::POST, "/roles", &body).await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

/// A `full` token of a user of its own holding `roles` and direct `permissions`.
async fn holder(app: &TestApp, roles: Value, permissions: Value) -> AdminToken {
    static NEXT_USER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let user = NEXT_USER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    app.admin_create(&json!({
        "userId": user, "name": "svc", "privilege": "full", "roles": roles, "permissions": permissions,
    }))
    .await
}

async fn verify_with(app: &TestApp, key: &str, query: &str) -> Answer {
    let request = app
        .client
        .get(app.url("/api/public/verify"))
        .query(&[("privilege", "full"), ("permissions", query)])
        .header("x-api-key", key);
    Answer::from(request.send().await.unwrap()).await
}

async fn admin_verify(app: &TestApp, body: Value) -> Answer {
    app.admin_json(Method::POST, "/verify", &body).await
}

async fn plans(app: &TestApp) {
    role(app, "free", json!(["projects.read"])).await;
    role(app, "pro", json!(["projects.*", "billing.read"])).await;
}

#[tokio::test]
async fn the_public_route_answers_403_for_a_query_the_key_fails_and_the_same_200_otherwise() {
    let app = spawn_admin_app().await;
    plans(&app).await;
    let token = holder(&app, json!(["pro"]), json!(["reports.export"])).await;
    let plain = app.verify(&token.key, "full").await;
    assert_eq!(plain.status, 200);
    for query in [
        "projects.write AND billing.read",
        "projects.* AND NOT admin.*",
        "(billing.write OR reports.export) and projects.a.b",
        "*",
    ] {
        let answer = verify_with(&app, &token.key, query).await;
        assert_eq!(answer.status, 200, "{query}: {answer:?}");
        let mut expected = plain.body.clone();
        expected["data"]["usageCount"] = answer.body["data"]["usageCount"].clone();
        assert_eq!(
            answer.body, expected,
            "{query}: riavzon's body, nothing added"
        );
    }
    let (uses, _) = app.usage_and_valid(token.id).await;
    assert_eq!(uses, 5);
    for query in [
        "billing.write",
        "projects.read AND NOT billing.read",
        "admin.*",
        "projects",
    ] {
        let answer = verify_with(&app, &token.key, query).await;
        answer.assert_is(403, &app.failure_now("Insufficient permissions"), query);
    }
    assert_eq!(
        app.usage_and_valid(token.id).await.0,
        5,
        "a refused query is not a use"
    );
}

#[tokio::test]
async fn a_malformed_query_is_a_400_naming_the_offset_whatever_the_key() {
    let app = spawn_admin_app().await;
    plans(&app).await;
    let token = holder(&app, json!(["free"]), json!([])).await;
    let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
    let nested = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    let huge = "a".repeat(1 << 20);
    let long = format!("a{}", " OR a".repeat(200));
    #[rustfmt::skip]
    let cases = [
        ("projects.read AND", "expected a permission name at 17"),
        ("(a OR b", "expected AND, OR or ) at 7"),
        ("a OR b)", "expected AND, OR or the end of the query at 6"),
        ("AND a", "expected a permission name at 0"),
        ("", "expected a permission name at 0"),
        ("a\0b", "invalid permission name: a permission is 1 to 100 characters of A-Z, a-z, 0-9, _, ., : and - at 0"),
        ("x OR projets.é", "invalid permission name: a permission is 1 to 100 characters of A-Z, a-z, 0-9, _, ., : and - at 5"),
        (deep.as_str(), "a query nests at most 32 levels at 32"),
        (nested.as_str(), "a query is at most 1000 characters"),
        ("NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT a", "a query nests at most 32 levels at 128"),
        (long.as_str(), "a query is at most 1000 characters"),
    ];
    // A well-formed key no token has: had a query reached the store, its absence would be cached.
    let unknown =
        iam_tokens::domain::GeneratedKey::generate(&iam_tokens::domain::Prefix::default());
    let cached = app.tokens.cached_tokens();
    for (query, why) in cases {
        let expected = app.failure_now(&format!("Invalid permissions query: {why}"));
        for key in [token.key.as_str(), unknown.raw.expose(), "api_nothing"] {
            let answer = verify_with(&app, key, query).await;
            answer.assert_is(400, &expected, &query[..query.len().min(40)]);
        }
    }
    assert_eq!(app.usage_and_valid(token.id).await.0, 0);
    assert_eq!(
        app.tokens.cached_tokens(),
        cached,
        "no malformed query reached the store"
    );
    // Past what a request line may carry: refused by the HTTP layer before any handler.
    let address = app.address.trim_start_matches("http://").to_owned();
    let status = tokio::task::spawn_blocking(move || {
        raw_get(
            &address,
            &format!("/api/public/verify?privilege=full&permissions={huge}"),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        status, 431,
        "a 1 MiB request line is refused before any handler"
    );
    let repeated = app
        .client
        .get(app.url("/api/public/verify?privilege=full&permissions=a&permissions=b"))
        .header("x-api-key", &token.key);
    let answer = Answer::from(repeated.send().await.unwrap()).await;
    answer.assert_is(400, &app.failure_now("Bad Request"), "repeated");
}

#[tokio::test]
async fn refused_queries_are_not_limiter_failures() {
    let app = spawn_admin_app_with(|s| {
        s.rate_limiters.enabled = true;
    })
    .await;
    plans(&app).await;
    let token = holder(&app, json!(["free"]), json!([])).await;
    for _ in 0..30 {
        let answer = verify_with(&app, &token.key, "billing.read").await;
        assert_eq!(answer.status, 403, "{answer:?}");
    }
    let answer = verify_with(&app, &token.key, "projects.read").await;
    assert_eq!(
        answer.status, 200,
        "30 refusals blocked nothing: {answer:?}"
    );
}

#[tokio::test]
async fn admin_verify_answers_insufficient_permissions_with_roles_and_effective_permissions() {
    let app = spawn_admin_app().await;
    plans(&app).await;
    let token = holder(&app, json!(["pro", "free"]), json!(["reports.export"])).await;
    let passed = admin_verify(
        &app,
        json!({"key": token.key, "permissions": "billing.read AND projects.x"}),
    )
    .await;
    assert_eq!(passed.status, 200);
    assert_eq!(
        (passed.body["valid"].clone(), passed.body["code"].clone()),
        (json!(true), json!("VALID"))
    );
    assert_eq!(passed.body["roles"], json!(["free", "pro"]));
    assert_eq!(
        passed.body["permissions"],
        json!([
            "billing.read",
            "projects.*",
            "projects.read",
            "reports.export"
        ])
    );
    assert_eq!(passed.body["usageCount"], 1);

    let failed = admin_verify(
        &app,
        json!({"key": token.key, "permissions": "NOT reports.*"}),
    )
    .await;
    assert_eq!(failed.status, 200);
    let mut expected = passed.body.clone();
    expected["valid"] = json!(false);
    expected["code"] = json!("INSUFFICIENT_PERMISSIONS");
    assert_eq!(
        failed.body, expected,
        "the token is shown; the use is not counted"
    );
    assert_eq!(app.usage_and_valid(token.id).await.0, 1);

    let malformed = admin_verify(&app, json!({"key": token.key, "permissions": "a AND (b"})).await;
    malformed.assert_is(
        400,
        &crate::helpers::admin_error(
            "bad_request",
            "expected AND, OR or ) at 8",
            Some("permissions"),
        ),
        "malformed",
    );
    let long = format!("a{}", " OR a".repeat(200));
    let too_long = admin_verify(&app, json!({"key": token.key, "permissions": long})).await;
    too_long.assert_is(
        400,
        &crate::helpers::admin_error(
            "bad_request",
            "a query is at most 1000 characters",
            Some("permissions"),
        ),
        "1,001 characters",
    );
    let huge = json!({"key": token.key, "permissions": "a".repeat(1 << 20)});
    assert_eq!(
        admin_verify(&app, huge).await.status,
        413,
        "a 1 MiB body is over the 16 KiB limit"
    );
    assert_eq!(
        app.usage_and_valid(token.id).await.0,
        1,
        "refusals count nothing"
    );
    let unknown = admin_verify(&app, json!({"key": "api_x", "permissions": "a"})).await;
    unknown.assert_is(
        200,
        &json!({"valid": false, "code": "NOT_FOUND"}),
        "unknown key",
    );
}

#[tokio::test]
async fn a_role_change_is_seen_by_the_next_verification_of_every_cached_holder() {
    let app = spawn_admin_app().await;
    plans(&app).await;
    let mut keys = Vec::new();
    for _ in 0..40 {
        keys.push(holder(&app, json!(["pro"]), json!([])).await.key);
    }
    let query = Query::parse("billing.read").unwrap();
    let verify_all = |expect_valid: bool| {
        let (tokens, query, keys) = (app.tokens.clone(), query.clone(), keys.clone());
        async move {
            for key in &keys {
                let options = VerifyOptions::new(Privilege::Full, None).permissions(&query);
                let outcome = tokens.verify_outcome(key, options).await.unwrap();
                assert_eq!(
                    matches!(outcome, VerifyOutcome::Valid(_)),
                    expect_valid,
                    "{outcome:?}"
                );
            }
        }
    };
    verify_all(true).await;
    let cached = app.tokens.cached_tokens();
    assert!(cached >= 40, "every holder is cached: {cached}");

    let change = json!({"remove": ["billing.read"]});
    let answer = app.admin_json(Method::PATCH, "/roles/pro", &change).await;
    assert_eq!(answer.body["tokens"], 40);
    verify_all(false).await;
    let answer = app
        .admin_json(Method::PATCH, "/roles/pro", &json!({"add": ["billing.*"]}))
        .await;
    assert_eq!(answer.status, 200);
    let under = Query::parse("billing.read AND billing.*").unwrap();
    let options = VerifyOptions::new(Privilege::Full, None).permissions(&under);
    let outcome = app.tokens.verify_outcome(&keys[0], options).await.unwrap();
    assert!(matches!(outcome, VerifyOutcome::Valid(_)), "{outcome:?}");

    let delete = app.admin_request(Method::DELETE, "/roles/pro?force=true");
    assert_eq!(delete.send().await.unwrap().status(), 200);
    let anything = Query::parse("*").unwrap();
    let options = VerifyOptions::new(Privilege::Full, None).permissions(&anything);
    let outcome = app.tokens.verify_outcome(&keys[1], options).await.unwrap();
    assert_eq!(
        outcome,
        VerifyOutcome::InsufficientPermissions,
        "the role is gone"
    );
}

#[tokio::test]
async fn a_tokens_own_access_change_is_seen_at_once_and_in_process_refusals_name_the_reason() {
    let app = spawn_admin_app().await;
    plans(&app).await;
    let token = holder(&app, json!(["free"]), json!([])).await;
    let query = Query::parse("projects.write").unwrap();
    let options = VerifyOptions::new(Privilege::Full, None).permissions(&query);
    let refused = app.tokens.verify(&token.key, options).await;
    assert_eq!(
        refused.outcome.unwrap_err().as_str(),
        "Insufficient permissions"
    );
    let path = format!("/tokens/{}/access", token.id);
    let answer = app
        .admin_json(Method::POST, &path, &json!({"addRoles": ["pro"]}))
        .await;
    assert_eq!(answer.status, 200);
    let passed = app.tokens.verify(&token.key, options).await;
    assert_eq!(passed.outcome.unwrap().usage_count, 1);
}

#[tokio::test]
async fn another_instance_sees_a_role_change_within_its_cache_ttl() {
    let app = spawn_admin_app().await;
    plans(&app).await;
    let token = holder(&app, json!(["pro"]), json!([])).await;
    let clock = Arc::new(ManualClock::starting_now());
    let ttl = Duration::from_secs(30);
    let options = ServiceOptions {
        limit_tokens_per_user: 10,
        cache: Some(CacheConfig {
            ttl,
            negative_ttl: ttl,
            max_entries: 1000,
            max_stale: None,
        }),
        batch_usage: false,
        flush_every: None,
        analytics: None,
        webhooks: Default::default(),
    };
    let other = TokenService::with_options(app.own_store().await, clock.clone(), options);
    let query = Query::parse("billing.read").unwrap();
    let check = || {
        let (other, query, key) = (other.clone(), query.clone(), token.key.clone());
        async move {
            let options = VerifyOptions::new(Privilege::Full, None).permissions(&query);
            other.verify_outcome(&key, options).await.unwrap()
        }
    };
    assert!(matches!(check().await, VerifyOutcome::Valid(_)));
    let change = RoleChange {
        remove: [iam_tokens::domain::access::Grant::parse("billing.read").unwrap()].into(),
        ..RoleChange::default()
    };
    app.tokens
        .update_role(&RoleName::parse("pro").unwrap(), change)
        .await
        .unwrap();
    assert!(
        matches!(check().await, VerifyOutcome::Valid(_)),
        "the other instance answers from its cache until the TTL"
    );
    clock.advance(ttl);
    assert_eq!(check().await, VerifyOutcome::InsufficientPermissions);
}

/// `GET target` over a plain socket (clients refuse to build a 1 MiB URI); the status.
fn raw_get(address: &str, target: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    // The server may answer and close before reading it all.
    let _ = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn refused_queries_are_counted_as_their_own_outcome_and_role_routes_by_status() {
    use crate::metrics::{scrape, value};
    let app = spawn_admin_app().await;
    plans(&app).await;
    let token = holder(&app, json!(["free"]), json!([])).await;
    let (_, before) = scrape(&app).await;
    for _ in 0..3 {
        assert_eq!(
            verify_with(&app, &token.key, "billing.read").await.status,
            403
        );
    }
    assert_eq!(
        verify_with(&app, &token.key, "projects.read").await.status,
        200
    );
    let body = json!({"key": token.key, "permissions": "billing.read"});
    assert_eq!(
        admin_verify(&app, body).await.body["code"],
        "INSUFFICIENT_PERMISSIONS"
    );
    assert_eq!(app.admin_get("/roles/ghost").await.status, 404);
    let (_, after) = scrape(&app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    let refused = r#"iam_verifications_total{route="public",outcome="insufficient_permissions"}"#;
    assert_eq!(moved(refused), 3.0);
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="valid"}"#),
        1.0
    );
    let admin = r#"iam_verifications_total{route="admin",outcome="insufficient_permissions"}"#;
    assert_eq!(moved(admin), 1.0);
    let missing =
        r#"iam_http_requests_total{method="GET",route="/api/admin/roles/{name}",status="404"}"#;
    assert_eq!(moved(missing), 1.0);
}

/// A role change costs one store call whatever the number of holders; then each cached holder
/// is read again once, at its next verification, and a key holding no role not at all.
#[tokio::test]
async fn a_role_change_is_one_store_call_and_one_reload_per_holder_at_its_next_use() {
    use crate::verify_cache::{cache, counted_service};
    use iam_tokens::domain::access::{Grant, NewRole, TokenAccess};
    use iam_tokens::domain::TokenName;
    use iam_tokens::service::CreateToken;
    use std::sync::atomic::Ordering;
    let counted = counted_service(
        Some(cache(
            Duration::from_secs(600),
            Duration::from_secs(600),
            10_000,
        )),
        true,
    )
    .await;
    let service = &counted.service;
    let plan = RoleName::parse("plan").unwrap();
    let role = NewRole {
        name: plan.clone(),
        description: None,
        permissions: [Grant::parse("a.read").unwrap()].into(),
    };
    service.create_role(role).await.unwrap();
    let mut keys = Vec::new();
    for user in 1..=60u64 {
        let roles = if user == 60 {
            Default::default()
        } else {
            [plan.clone()].into()
        };
        let access = TokenAccess::new(roles, [Grant::parse("own.read").unwrap()].into());
        let request = CreateToken::new(
            crate::helpers::uid(user),
            Privilege::Full,
            TokenName::parse("k").unwrap(),
        )
        .access(access);
        keys.push(service.create(request).await.outcome.unwrap().raw_api_key);
    }
    let query = Query::parse("own.read").unwrap();
    let options = VerifyOptions::new(Privilege::Full, None).permissions(&query);
    for key in &keys {
        assert!(matches!(
            service.verify_outcome(key, options).await.unwrap(),
            VerifyOutcome::Valid(_)
        ));
    }
    let calls = &counted.store.calls;
    let before = calls.total();
    let finds = calls.find_by_digest.load(Ordering::SeqCst);
    let change = RoleChange {
        add: [Grant::parse("a.write").unwrap()].into(),
        ..RoleChange::default()
    };
    service.update_role(&plan, change).await.unwrap();
    assert_eq!(calls.total() - before, 1, "one store call for 59 holders");
    let write = Query::parse("a.write").unwrap();
    for (i, key) in keys.iter().enumerate() {
        let options = VerifyOptions::new(Privilege::Full, None).permissions(&write);
        let outcome = service.verify_outcome(key, options).await.unwrap();
        let holds = i < 59;
        assert_eq!(
            matches!(outcome, VerifyOutcome::Valid(_)),
            holds,
            "{i}: {outcome:?}"
        );
    }
    assert_eq!(
        calls.find_by_digest.load(Ordering::SeqCst) - finds,
        59,
        "each holder once, the rest never"
    );
    for key in &keys {
        service.verify_outcome(key, options).await.unwrap();
    }
    assert_eq!(
        calls.find_by_digest.load(Ordering::SeqCst) - finds,
        59,
        "then from the cache again"
    );
}

/// With batched counting, a refused admin verification shows the uses counted and not yet
/// written, as a valid one does.
#[tokio::test]
async fn a_refused_admin_verification_shows_the_counts_not_yet_written() {
    let app = spawn_admin_app_with(|s| s.usage.flush_interval = Duration::from_secs(3600)).await;
    plans(&app).await;
    let token = holder(&app, json!(["free"]), json!([])).await;
    for _ in 0..2 {
        assert_eq!(app.verify(&token.key, "full").await.status, 200);
    }
    let refused = admin_verify(
        &app,
        json!({"key": token.key, "permissions": "billing.read"}),
    )
    .await;
    assert_eq!(refused.body["code"], "INSUFFICIENT_PERMISSIONS");
    assert_eq!(refused.body["usageCount"], 2, "{refused:?}");
    assert!(refused.body["lastUsed"].is_string());
    assert_eq!(app.usage_and_valid(token.id).await.0, 0, "not written yet");
}

#[tokio::test]
async fn a_star_segment_in_a_grant_stands_for_exactly_one_segment_on_every_path() {
    let app = spawn_admin_app().await;
    role(&app, "reader", json!(["*.read", "api.*.read_key"])).await;
    let token = holder(&app, json!(["reader"]), json!(["billing.*.export"])).await;
    #[rustfmt::skip]
    let cases = [
        ("projects.read",             200),
        ("billing.read",              200),
        ("read",                      403),
        ("projects.v2.read",          403),
        ("projects.write",            403),
        ("api.v1.read_key",           200),
        ("api.read_key",              403),
        ("billing.monthly.export",    200),
        ("billing.export",            403),
        ("api.*",                     200),
        ("projects.read AND NOT api.v1.read_key", 403),
    ];
    for (query, status) in cases {
        let answer = verify_with(&app, &token.key, query).await;
        assert_eq!(answer.status, status, "{query}: {answer:?}");
    }
    let query = verify_with(&app, &token.key, "*.read").await;
    assert_eq!(query.status, 400, "a query keeps its grammar: {query:?}");
    let reason = query.body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("only a grant may use it"), "{reason}");
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(
        view.body["effectivePermissions"],
        json!(["*.read", "api.*.read_key", "billing.*.export"]),
        "stored and shown as written"
    );

    let bad = json!({"name": "bad", "permissions": ["api.v*.read"]});
    let answer = app.admin_json(Method::POST, "/roles", &bad).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.body["code"], "invalid_permission");
    assert_eq!(answer.body["field"], "permissions[0]");
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("*.read") && detail.contains("projects.*"),
        "{detail}"
    );
    let listed = app.admin_get("/roles").await;
    let names: Vec<&str> = listed.body["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["reader"], "nothing was created");
}
