//! The audit trail (SPEC B9): every change names who made it as `{type, id, name}`; the whole
//! log is listed newest first at `/api/admin/audit`, filtered and keyset-paginated. Rows written
//! before actors were typed: `audit_migration.rs`; credentials changed across instances:
//! `credential_fleet.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{admin_as, admin_error, forbidden, run_cli, spawn_admin_app, TestApp};

// ---- What a caller sees ----

pub(crate) fn actor(kind: &str, id: Option<&str>, name: Option<&str>) -> Value {
    json!({"type": kind, "id": id, "name": name})
}

/// The configured admin `ops` (`ADMIN_SECRET`).
pub(crate) fn ops() -> Value {
    actor("config", Some("ops"), Some("ops"))
}

/// One event as `/api/admin/audit` and `/api/admin/tokens/{id}/events` show it; `about` is
/// `(tokenId, userId)`.
pub(crate) fn event(
    id: u64,
    kind: &str,
    who: Value,
    about: (Option<u64>, Option<u64>),
    detail: Value,
    at: &str,
) -> Value {
    json!({
        "id": id, "kind": kind, "event": kind, "actor": who, "tokenId": about.0,
        "userId": about.1, "detail": detail, "createdAt": at,
    })
}

/// The detail of a `created` event (prefix `api`, no metadata).
pub(crate) fn created(user: u64, name: &str, privilege: &str) -> Value {
    json!({
        "userId": user, "name": name, "privilege": privilege, "prefix": "api",
        "metadataKeys": [],
    })
}

/// A stored credential `name` with `grant` (`{"preset": …}` or `{"scopes": […]}`), created by
/// `ops`: its id and its secret.
pub(crate) async fn credential(app: &TestApp, name: &str, grant: Value) -> (u64, String) {
    let mut body = grant;
    body["name"] = json!(name);
    let answer = app.admin_json(Method::POST, "/credentials", &body).await;
    assert_eq!(answer.status, 201, "credential {name}: {answer:?}");
    let id = answer.body["id"].as_u64().expect("id");
    (
        id,
        answer.body["secret"].as_str().expect("secret").to_owned(),
    )
}

/// `POST /api/admin/tokens` presenting `secret`: the new token's id.
async fn create_as(app: &TestApp, secret: &str, user: u64, name: &str) -> u64 {
    let body = json!({"userId": user, "name": name});
    let answer = admin_as(app, secret, Method::POST, "/tokens", Some(&body)).await;
    assert_eq!(answer.status, 201, "create {name}: {answer:?}");
    answer.body["token"]["id"].as_u64().expect("token.id")
}

/// The ids of a 200 page of `/api/admin/audit{query}`, and its `nextCursor`.
async fn page(app: &TestApp, query: &str) -> (Vec<u64>, Option<u64>) {
    let answer = app.admin_get(&format!("/audit{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {answer:?}");
    let events = answer.body["events"].as_array().expect("events");
    let ids = events
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    (ids, answer.body["nextCursor"].as_u64())
}

/// Every event id in the store, oldest first.
pub(crate) async fn event_ids(app: &TestApp) -> Vec<u64> {
    app.query_all("SELECT id FROM audit_events ORDER BY id", ())
        .await
}

/// `run_cli`, run by the operating-system user `user` (`$USER`), whom the log names.
async fn run_cli_as(app: &TestApp, user: &str, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
    command.args(args).current_dir(env!("CARGO_TARGET_TMPDIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IAM") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG").env("USER", user);
    command.env("IAM__DATABASE__URL", app.database_url());
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("blocking task")
        .expect("the binary runs")
}

// ---- Every actor, the listing and its filters ----

#[tokio::test]
async fn every_kind_of_actor_is_listed_with_its_type_id_and_name() {
    let app = spawn_admin_app().await;
    let mut at = Vec::new();
    let by_config = app
        .admin_create(&json!({"userId": 3, "name": "config"}))
        .await;
    at.push(app.clock_iso());
    app.clock.advance(Duration::from_secs(1));
    let (deploy, secret) = credential(&app, "deploy", json!({"preset": "root"})).await;
    at.push(app.clock_iso());
    app.clock.advance(Duration::from_secs(1));
    let by_credential = create_as(&app, &secret, 4, "cred").await;
    at.push(app.clock_iso());
    app.clock.advance(Duration::from_secs(1));
    let by_user = app
        .http_token(42, &json!({"privilege": "full", "name": "user"}))
        .await;
    at.push(app.clock_iso());
    app.clock.advance(Duration::from_secs(1));
    let short = app
        .admin_create(&json!({"userId": 6, "name": "short", "expires": 1000}))
        .await;
    at.push(app.clock_iso());
    app.clock.advance(Duration::from_secs(2));
    let expired = app.verify(&short.key, "restricted").await;
    expired.assert_is(
        401,
        &app.failure_now("Token expired"),
        "verified after expiry",
    );
    at.push(app.clock_iso());
    // The command line reads its own wall clock, not the service's manual one.
    let before = Utc::now();
    let args = ["token", "create", "--user", "5", "--name", "cli"];
    let output = run_cli_as(&app, "auditor", &args).await;
    let after = Utc::now();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let by_cli = app
        .token_id(printed["data"]["rawPublicId"].as_str().expect("id"))
        .await;

    let answer = app.admin_get("/audit").await;
    let cli_at = answer.body["events"][0]["createdAt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let cli_time: DateTime<Utc> = cli_at.parse().expect("createdAt is RFC 3339");
    let window = before.timestamp_millis()..=after.timestamp_millis();
    assert!(
        window.contains(&cli_time.timestamp_millis()),
        "{cli_at} within the CLI run"
    );
    at.push(cli_at);
    let deploy_id = deploy.to_string();
    let described =
        json!({"credentialId": deploy, "name": "deploy", "scopes": ["*"], "expiresAt": null});
    let deployer = actor("credential", Some(&deploy_id), Some("deploy"));
    let (user, cli) = (
        actor("user", Some("42"), None),
        actor("cli", None, Some("auditor")),
    );
    let expiry = actor("system", None, Some("expiry"));
    let (r, f) = ("restricted", "full");
    #[rustfmt::skip]
    let written = [
        ("created",            ops(),    Some(by_config.id),  Some(3),  created(3, "config", r)),
        ("credential_created", ops(),    None,                None,     described),
        ("created",            deployer, Some(by_credential), Some(4),  created(4, "cred", r)),
        ("created",            user,     Some(by_user.id),    Some(42), created(42, "user", f)),
        ("created",            ops(),    Some(short.id),      Some(6),  created(6, "short", r)),
        ("expired",            expiry,   Some(short.id),      Some(6),  json!({})),
        ("created",            cli,      Some(by_cli),        Some(5),  created(5, "cli", r)),
    ];
    let ids = event_ids(&app).await;
    let mut expected: Vec<Value> = written
        .into_iter()
        .zip(ids.into_iter().zip(&at))
        .map(|((kind, who, token, user, detail), (id, at))| {
            event(id, kind, who, (token, user), detail, at)
        })
        .collect();
    expected.reverse();
    let whole = json!({"events": expected, "nextCursor": null});
    answer.assert_is(200, &whole, "the whole log, newest first");
}

#[tokio::test]
async fn the_log_is_filtered_by_actor_kind_token_owner_and_time() {
    let app = spawn_admin_app().await;
    // e1: the command line, on its own (real) clock: an hour before everything else.
    let output = run_cli(&app, &["token", "create", "--user", "7", "--name", "cli"]).await;
    assert!(output.status.success(), "{output:?}");
    app.clock.advance(Duration::from_secs(3600));
    let mut t = Vec::new();
    let mut tick = || {
        t.push(app.clock_iso());
        app.clock.advance(Duration::from_secs(1));
    };
    let grant = json!({"scopes": ["tokens.*"]});
    let (billing, secret) = credential(&app, "billing", grant).await; // e2
    tick();
    let a = app.admin_create(&json!({"userId": 42, "name": "a"})).await; // e3
    tick();
    app.http_token(42, &json!({"privilege": "full", "name": "b"}))
        .await; // e4
    tick();
    create_as(&app, &secret, 7, "c").await; // e5
    tick();
    let revoke = format!("/tokens/{}/revoke", a.id);
    let revoked = admin_as(&app, &secret, Method::POST, &revoke, None).await; // e6
    assert_eq!(revoked.status, 200, "{revoked:?}");
    tick();
    let credits = json!({"remaining": 3});
    let owner = app
        .admin_json(Method::PATCH, "/users/42/credits", &credits)
        .await; // e7
    assert_eq!(owner.status, 200, "{owner:?}");
    tick();
    app.http_token(43, &json!({"privilege": "full", "name": "d"}))
        .await; // e8
    tick();
    let e: Vec<u64> = event_ids(&app).await;
    assert_eq!(e.len(), 8, "one event per change");
    let id = |n: usize| e[n - 1];
    let ids = |ns: &[usize]| ns.iter().map(|&n| id(n)).collect::<Vec<u64>>();
    let credential_actor = format!("credential:{billing}");
    #[rustfmt::skip]
    let cases = [
        ("actor=config:ops".to_owned(),                          ids(&[7, 3, 2])),
        ("actor=config".to_owned(),                              ids(&[7, 3, 2])),
        (format!("actor={credential_actor}"),                    ids(&[6, 5])),
        (format!("actor=credential:{}", billing + 1),            ids(&[])),
        ("actor=user:42".to_owned(),                             ids(&[4])),
        ("actor=user".to_owned(),                                ids(&[8, 4])),
        ("actor=cli".to_owned(),                                 ids(&[1])),
        ("actor=system".to_owned(),                              ids(&[])),
        ("kind=created".to_owned(),                              ids(&[8, 5, 4, 3, 1])),
        ("kind=revoked".to_owned(),                              ids(&[6])),
        (format!("tokenId={}", a.id),                            ids(&[6, 3])),
        ("userId=42".to_owned(),                                 ids(&[7, 6, 4, 3])),
        ("userId=7".to_owned(),                                  ids(&[5, 1])),
        (format!("since={}", t[2]),                              ids(&[8, 7, 6, 5, 4])),
        (format!("until={}", t[2]),                              ids(&[3, 2, 1])),
        (format!("since={}&until={}", t[1], t[4]),               ids(&[5, 4, 3])),
        ("actor=config:ops&userId=42".to_owned(),                ids(&[7, 3])),
        (format!("kind=created&userId=42&since={}", t[2]),       ids(&[4])),
        (format!("actor={credential_actor}&kind=revoked&tokenId={}", a.id), ids(&[6])),
    ];
    for (query, expected) in cases {
        assert_eq!(
            page(&app, &format!("?{query}")).await,
            (expected, None),
            "{query}"
        );
    }
    let detail =
        json!({"scope": "owner", "userId": 42, "change": {"remaining": 3}, "remaining": 3});
    let quota_event = event(
        id(7),
        "credits_updated",
        ops(),
        (None, Some(42)),
        detail,
        &t[5],
    );
    let answer = app.admin_get("/audit?userId=42&kind=credits_updated").await;
    let body = json!({"events": [quota_event], "nextCursor": null});
    answer.assert_is(200, &body, "an owner's quota event: no token, its owner");
}

#[tokio::test]
async fn pages_chain_by_cursor_and_a_new_event_does_not_shift_them() {
    let app = spawn_admin_app().await;
    for n in 0..7 {
        app.admin_create(&json!({"userId": 2, "name": format!("t{n}")}))
            .await;
    }
    let e = event_ids(&app).await;
    let whole = app.admin_get("/audit").await;
    assert_eq!(whole.status, 200, "{whole:?}");
    let first = app.admin_get("/audit?limit=3").await;
    app.admin_create(&json!({"userId": 2, "name": "between pages"}))
        .await;
    let cursor = first.body["nextCursor"].as_u64().unwrap_or_default();
    let second = app
        .admin_get(&format!("/audit?limit=3&cursor={cursor}"))
        .await;
    let cursor = second.body["nextCursor"].as_u64().unwrap_or_default();
    let third = app
        .admin_get(&format!("/audit?limit=3&cursor={cursor}"))
        .await;
    let all = &whole.body["events"];
    #[rustfmt::skip]
    let pages = [
        (&first,  json!([all[0], all[1], all[2]]), json!(e[4])),
        (&second, json!([all[3], all[4], all[5]]), json!(e[1])),
        (&third,  json!([all[6]]),                 Value::Null),
    ];
    for (n, (answer, events, next)) in pages.into_iter().enumerate() {
        let body = json!({"events": events, "nextCursor": next});
        answer.assert_is(200, &body, &format!("page {}", n + 1));
    }
    let listed: Vec<u64> = (0..7)
        .map(|n| all[n]["id"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(
        listed,
        e.iter().rev().copied().collect::<Vec<_>>(),
        "all 7, newest first"
    );
    let (ids, next) = page(&app, "?limit=8").await;
    assert_eq!(
        ids.len(),
        8,
        "the one written between pages is on top: {ids:?}"
    );
    assert_eq!(next, None, "a page filled exactly promises no next one");
}

#[tokio::test]
async fn bad_audit_parameters_are_a_400_naming_the_parameter() {
    let app = spawn_admin_app().await;
    let actor_rule = "actor is <type> or <type>:<id>, the type one of config, credential, user, \
        cli, system (a credential's or a user's id is a number; cli and system have none)";
    let kinds = "kind is one of created, revoked, rotated, expired, ip_restriction_updated, \
        privilege_updated, metadata_updated, banned, ban_lifted, access_updated, role_created, \
        role_updated, role_deleted, ratelimits_updated, credits_updated, credential_created, \
        credential_updated, credential_revoked, disabled, enabled, webhook_created, webhook_updated, \
        webhook_deleted, webhook_secret_rotated, webhook_disabled";
    let time_rule = "an RFC 3339 time, e.g. 2026-12-07T10:00:00Z";
    let user_rule = "userId: user id must be an integer from 1 to 9223372036854775807";
    #[rustfmt::skip]
    let cases = [
        ("actor=robot",              "actor",   actor_rule),
        ("actor=credential:",        "actor",   actor_rule),
        ("actor=",                   "actor",   actor_rule),
        ("actor=credential:abc",     "actor",   actor_rule),
        ("actor=user:42%20",         "actor",   actor_rule),
        ("actor=user:0",             "actor",   actor_rule),
        ("actor=cli:root",           "actor",   actor_rule),
        ("kind=exploded",            "kind",    kinds),
        ("tokenId=x",                "tokenId", "tokenId is a token id"),
        ("userId=0",                 "userId",  user_rule),
        ("since=yesterday",          "since",   time_rule),
        ("until=2026-13-01T00:00:00Z", "until", time_rule),
        ("limit=0",                  "limit",   "limit is 1 to 200"),
        ("limit=201",                "limit",   "limit is 1 to 200"),
        ("cursor=-1",                "cursor",  "cursor is the nextCursor of a previous page"),
        ("page=2",                   "page",    "unknown query parameter \"page\""),
    ];
    for (query, field, message) in cases {
        let answer = app.admin_get(&format!("/audit?{query}")).await;
        answer.assert_is(
            400,
            &admin_error("bad_request", message, Some(field)),
            query,
        );
    }
}

#[tokio::test]
async fn a_time_between_two_milliseconds_bounds_the_log_alike_on_every_store() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 1, "name": "at a whole ms"}))
        .await;
    let e = event_ids(&app).await;
    // Half a millisecond after the event: it lies before `since` and before `until`.
    let half_after = app.clock_iso().replace('Z', "5Z");
    #[rustfmt::skip]
    let cases = [
        (format!("since={half_after}"), vec![]),
        (format!("until={half_after}"), e.clone()),
    ];
    for (query, expected) in cases {
        assert_eq!(
            page(&app, &format!("?{query}")).await,
            (expected, None),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_cursor_past_every_row_id_lists_the_whole_log_on_every_store() {
    let app = spawn_admin_app().await;
    for name in ["one", "two"] {
        app.admin_create(&json!({"userId": 1, "name": name})).await;
    }
    let newest_first: Vec<u64> = event_ids(&app).await.into_iter().rev().collect();
    for cursor in [
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        let listed = page(&app, &format!("?cursor={cursor}")).await;
        assert_eq!(listed, (newest_first.clone(), None), "cursor={cursor}");
    }
}

#[tokio::test]
async fn a_time_before_the_year_1000_bounds_the_log_alike_on_every_store() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 1, "name": "t"})).await;
    let e = event_ids(&app).await;
    for (query, expected) in [
        ("since=0999-12-31T23:59:59Z", e.clone()),
        ("since=0001-01-01T00:00:00Z", e),
        ("until=0999-12-31T23:59:59Z", vec![]),
    ] {
        assert_eq!(
            page(&app, &format!("?{query}")).await,
            (expected, None),
            "{query}"
        );
    }
}

#[tokio::test]
async fn actor_ids_are_matched_byte_for_byte_on_every_store() {
    let app = spawn_admin_app().await;
    app.admin_create(&json!({"userId": 1, "name": "t"})).await;
    app.http_token(42, &json!({"privilege": "full", "name": "b"}))
        .await;
    for query in ["actor=config:ops%20", "actor=config:OPS"] {
        assert_eq!(
            page(&app, &format!("?{query}")).await,
            (vec![], None),
            "{query}"
        );
    }
}

#[tokio::test]
async fn reading_the_log_takes_the_audit_read_scope() {
    let app = spawn_admin_app().await;
    let token = app.admin_create(&json!({"userId": 1, "name": "t"})).await;
    let (_, reader) = credential(&app, "reader", json!({"scopes": ["tokens.read"]})).await;
    let events = format!("/tokens/{}/events", token.id);
    for path in ["/audit", "/audit?limit=0", &events] {
        let answer = admin_as(&app, &reader, Method::GET, path, None).await;
        answer.assert_is(403, &forbidden("audit.read"), path);
    }
    let (_, auditor) = credential(&app, "auditor", json!({"scopes": ["audit.read"]})).await;
    for path in ["/audit", &events] {
        let answer = admin_as(&app, &auditor, Method::GET, path, None).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
}

#[tokio::test]
async fn a_tokens_events_show_who_created_and_who_revoked_it() {
    let app = spawn_admin_app().await;
    let token = app.admin_create(&json!({"userId": 8, "name": "crm"})).await;
    let created_at = app.clock_iso();
    app.clock.advance(Duration::from_secs(1));
    let (support, secret) = credential(&app, "support desk", json!({"preset": "support"})).await;
    let revoke = format!("/tokens/{}/revoke", token.id);
    let revoked = admin_as(&app, &secret, Method::POST, &revoke, None).await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    let ids: Vec<u64> = app
        .query_all(
            "SELECT id FROM audit_events WHERE token_id = ? ORDER BY id",
            (token.id,),
        )
        .await;
    let support_id = support.to_string();
    let desk = actor("credential", Some(&support_id), Some("support desk"));
    let about = (Some(token.id), Some(8));
    let events = [
        event(
            ids[0],
            "created",
            ops(),
            about,
            created(8, "crm", "restricted"),
            &created_at,
        ),
        event(ids[1], "revoked", desk, about, json!({}), &app.clock_iso()),
    ];
    let answer = app.admin_get(&format!("/tokens/{}/events", token.id)).await;
    answer.assert_is(200, &json!({ "events": events }), "oldest first");
}
