//! Stored admin credentials (SPEC B9), as an operator sees them: a secret shown once and kept as
//! a digest, bad input refused naming the field, revocation and expiry honoured at once, every
//! change in the audit log under who made it, last use written behind, and the command line
//! writing into the store the service reads. Scopes and their enforcement: `admin_scopes.rs`.

use std::time::Duration;

use iam_tokens::domain::access::scope::CATALOGUE;
use iam_tokens::domain::credential::AdminSecret;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::helpers::{
    admin_as, admin_error, forbidden, run_cli, spawn_admin_app_with, Answer, TestApp,
};

pub(crate) const UNAUTHORIZED: &str =
    "a valid admin credential is required (Authorization: Bearer <secret>)";
pub(crate) const CHALLENGE: &str = "Bearer realm=\"iam-tokens\"";
pub(crate) const SUPPORT: [&str; 5] = [
    "*.read",
    "tokens.rotate",
    "tokens.revoke",
    "tokens.disable",
    "credentials.write",
];

/// The `ops` admin on a fresh database; last uses are written only when a test flushes them
/// (the background flush waits an hour), so every read is exact.
pub(crate) async fn spawn() -> TestApp {
    spawn_admin_app_with(|settings| {
        settings.usage.flush_interval = Duration::from_secs(3600);
    })
    .await
}

/// A stored credential: its secret (shown once, by its creation) and its id.
pub(crate) struct Stored {
    pub(crate) secret: String,
    pub(crate) id: u64,
}

/// `ops`, the configured admin (`ADMIN_SECRET`), as an actor.
pub(crate) fn ops() -> Value {
    json!({"type": "config", "id": "ops", "name": "ops"})
}

pub(crate) fn credential_actor(id: u64, name: &str) -> Value {
    json!({"type": "credential", "id": id.to_string(), "name": name})
}

pub(crate) async fn post_credential(app: &TestApp, body: &Value) -> Answer {
    app.admin_json(Method::POST, "/credentials", body).await
}

/// Creates a credential as `ops` holding `scopes`; panics unless it answers 201.
pub(crate) async fn stored(app: &TestApp, name: &str, scopes: &[&str]) -> Stored {
    stored_with(app, &json!({"name": name, "scopes": scopes})).await
}

pub(crate) async fn stored_with(app: &TestApp, body: &Value) -> Stored {
    let answer = post_credential(app, body).await;
    assert_eq!(answer.status, 201, "create {body}: {answer:?}");
    Stored {
        secret: answer.body["secret"].as_str().expect("secret").to_owned(),
        id: answer.body["id"].as_u64().expect("id"),
    }
}

pub(crate) async fn get_as(app: &TestApp, secret: &str, path: &str) -> Answer {
    admin_as(app, secret, Method::GET, path, None).await
}

/// The secret of a 201, its shape `iam_admin_<64 hex>_<8 hex>` checked, and the body without it
/// (what every later read answers).
pub(crate) fn take_secret(answer: &Answer, case: &str) -> (String, Value) {
    assert_eq!(answer.status, 201, "{case}: {answer:?}");
    let mut body = answer.body.clone();
    let secret = body
        .as_object_mut()
        .and_then(|fields| fields.remove("secret"))
        .and_then(|secret| secret.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{case}: no secret in {answer:?}"));
    let hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let parts = secret
        .strip_prefix("iam_admin_")
        .and_then(|rest| rest.split_once('_'));
    assert!(
        parts.is_some_and(|(random, checksum)| hex(random, 64) && hex(checksum, 8)),
        "{case}: {secret}"
    );
    (secret, body)
}

/// A credential as reads show it: created by `ops` at the app's clock now, never used.
pub(crate) fn view(app: &TestApp, id: u64, name: &str, scopes: Value, effective: Value) -> Value {
    json!({
        "id": id, "name": name, "scopes": scopes, "effectiveScopes": effective,
        "createdAt": app.clock_iso(), "createdBy": ops(), "expiresAt": null,
        "lastUsedAt": null, "lastUsedIp": null, "revokedAt": null, "active": true,
    })
}

/// `(rows of admin_credentials, rows of audit_events)`.
pub(crate) async fn rows(app: &TestApp) -> (u64, u64) {
    let credentials = app
        .query_one("SELECT COUNT(*) FROM admin_credentials", ())
        .await;
    let events = app.query_one("SELECT COUNT(*) FROM audit_events", ()).await;
    (credentials, events)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text))
}

/// Panics when `text` holds one of `secrets`, or its digest.
fn assert_no_secret(text: &str, secrets: &[&str], case: &str) {
    for secret in secrets {
        let leaked = text.contains(secret) || text.contains(&sha256_hex(secret));
        assert!(!leaked, "{case} holds a secret or its digest: {text}");
    }
}

/// A credential holding one scope, as reads show it (see `view`).
pub(crate) fn holding(app: &TestApp, id: u64, name: &str, scope: &str) -> Value {
    view(app, id, name, json!([scope]), json!([scope]))
}

/// The one 401 of the admin API, whatever was wrong with the secret.
pub(crate) fn unauthorized() -> Value {
    admin_error("unauthorized", UNAUTHORIZED, None)
}

/// `PATCH /api/admin/credentials/{id}` as `ops`.
pub(crate) async fn patch(app: &TestApp, id: u64, body: &Value) -> Answer {
    let path = format!("/credentials/{id}");
    app.admin_json(Method::PATCH, &path, body).await
}

/// `DELETE /api/admin/credentials/{id}` (a revocation) as `ops`.
pub(crate) async fn revoke(app: &TestApp, id: u64) -> Answer {
    let path = format!("/credentials/{id}");
    app.send(app.admin_request(Method::DELETE, &path)).await
}

#[tokio::test]
async fn a_credential_from_a_preset_or_scopes_shows_its_secret_once_and_is_stored_as_a_digest() {
    let app = spawn().await;
    let request = json!({"name": "support desk", "preset": "support"});
    let (support_secret, body) = take_secret(&post_credential(&app, &request).await, "preset");
    #[rustfmt::skip]
    let support = view(
        &app, 1, "support desk",
        json!(["*.read", "tokens.disable", "tokens.revoke", "tokens.rotate"]),
        json!([
            "tokens.read", "tokens.rotate", "tokens.revoke", "tokens.disable", "roles.read",
            "quotas.read", "analytics.read", "audit.read", "bans.read", "webhooks.read",
            "credentials.read",
        ]),
    );
    assert_eq!(body, support, "grants sorted, scopes in catalogue order");
    let request = json!({
        "name": "billing job", "scopes": ["tokens.read", "quotas.*", "tokens.read"],
        "expires": 3_600_000,
    });
    let (billing_secret, body) = take_secret(&post_credential(&app, &request).await, "scopes");
    #[rustfmt::skip]
    let mut billing = view(
        &app, 2, "billing job",
        json!(["quotas.*", "tokens.read"]),
        json!(["tokens.read", "quotas.read", "quotas.write"]),
    );
    billing["expiresAt"] = json!(app.clock_iso_after(Duration::from_secs(3600)));
    assert_eq!(body, billing, "grants sorted, without repeats");
    assert_ne!(support_secret, billing_secret);

    let list = app.admin_get("/credentials").await;
    list.assert_is(200, &json!({"credentials": [support, billing]}), "list");
    let first = app.admin_get("/credentials/1").await;
    first.assert_is(200, &support, "read the preset one");
    let second = app.admin_get("/credentials/2").await;
    second.assert_is(200, &billing, "read the scoped one");
    let renamed = patch(&app, 2, &json!({"name": "billing"})).await;
    let revoked = revoke(&app, 1).await;
    let audit = app.admin_get("/audit").await;
    let secrets = [support_secret.as_str(), billing_secret.as_str()];
    #[rustfmt::skip]
    let later = [
        ("list", list), ("read", first), ("read", second), ("change", renamed),
        ("revocation", revoked), ("audit log", audit),
    ];
    for (case, answer) in later {
        assert_eq!(answer.status, 200, "{case}: {answer:?}");
        assert_no_secret(&answer.body.to_string(), &secrets, case);
    }

    let sql = "SELECT digest, name, scopes FROM admin_credentials ORDER BY id";
    let columns: Vec<(String, String, String)> = app.query_all(sql, ()).await;
    #[rustfmt::skip]
    let expected = [
        (sha256_hex(&support_secret), "support desk".to_owned(),
            r#"["*.read","tokens.disable","tokens.revoke","tokens.rotate"]"#.to_owned()),
        (sha256_hex(&billing_secret), "billing".to_owned(),
            r#"["quotas.*","tokens.read"]"#.to_owned()),
    ];
    assert_eq!(columns, expected, "the digest, never the secret");
    let details: Vec<String> = app.query_all("SELECT detail FROM audit_events", ()).await;
    assert_no_secret(&details.join("\n"), &secrets, "the audit rows");
}

#[tokio::test]
async fn bad_credential_input_is_a_problem_naming_the_field_and_writes_nothing() {
    let app = spawn().await;
    stored(&app, "existing", &["tokens.read"]).await;
    let before = rows(&app).await;
    let unknown = format!(
        "\"tokens.fly\" grants no admin scope (the scopes are {})",
        CATALOGUE.join(", ")
    );
    let misplaced = "\"tok*ens.read\": * stands only for a whole segment: alone (*), first or in \
        the middle (*.read, api.*.read_key: exactly one segment), or last (projects.*: \
        everything below)";
    let no_preset =
        "no preset \"god\" (the presets are root, read-only, support, billing, verifier)";
    let name_rule =
        "a credential's name is 1 to 64 characters, not only spaces, without control characters";
    let expiry_rule = "expires is a lifetime in ms from 1 to 3153600000000";
    let empty = "a credential holds at least one scope";
    let too_many = "a credential holds at most 32 scope grants";
    let both = "give scopes or preset, not both";
    let not_a_list = "invalid type: string \"x\", expected a sequence at line 1 column 24";
    let unknown_field = "unknown field `admin`, expected one of `name`, `scopes`, `preset`, \
        `expires` at line 1 column 8";
    let invalid = |code: &str, message: &str, field: &str| admin_error(code, message, Some(field));
    let scope = |message: &str, field: &str| invalid("invalid_scope", message, field);
    let named = |name: &str| json!({"name": name, "scopes": ["tokens.read"]});
    let thirty_three: Vec<&str> = std::iter::repeat_n("tokens.read", 33).collect();
    let lasting = |ms: i64| json!({"name": "x", "scopes": ["tokens.read"], "expires": ms});
    #[rustfmt::skip]
    let cases = [
        ("unknown scope",     json!({"name": "x", "scopes": ["tokens.read", "tokens.fly"]}),
            scope(&unknown, "scopes[1]")),
        ("unknown preset",    json!({"name": "x", "preset": "god"}), scope(no_preset, "preset")),
        ("misplaced *",       json!({"name": "x", "scopes": ["tok*ens.read"]}),
            scope(misplaced, "scopes[0]")),
        ("empty scopes",      json!({"name": "x", "scopes": []}), scope(empty, "scopes")),
        ("33 grants",         json!({"name": "x", "scopes": thirty_three}),
            scope(too_many, "scopes")),
        ("scopes and preset", json!({"name": "x", "scopes": ["tokens.read"], "preset": "root"}),
            scope(both, "preset")),
        ("neither",           json!({"name": "x"}), scope(empty, "scopes")),
        ("65 characters",     named(&"n".repeat(65)), invalid("invalid_name", name_rule, "name")),
        ("empty name",        named(""), invalid("invalid_name", name_rule, "name")),
        ("only spaces",       named("   "), invalid("invalid_name", name_rule, "name")),
        ("expires 0",         lasting(0), invalid("invalid_expiry", expiry_rule, "expires")),
        ("expires -1",        lasting(-1), invalid("invalid_expiry", expiry_rule, "expires")),
        ("over 100 years",    lasting(3_153_600_000_001), invalid("invalid_expiry", expiry_rule, "expires")),
        ("scopes a string",   json!({"name": "x", "scopes": "x"}),
            invalid("bad_request", not_a_list, "scopes")),
        ("unknown field",     json!({"name": "x", "preset": "root", "admin": true}),
            invalid("bad_request", unknown_field, "admin")),
        ("no name",           json!({"preset": "root"}),
            invalid("bad_request", "missing field `name` at line 1 column 17", "name")),
    ];
    for (case, body, problem) in cases {
        let answer = post_credential(&app, &body).await;
        answer.assert_is(admin_status_of(&problem), &problem, &format!("POST {case}"));
    }
    let preset_field = "unknown field `preset`, expected one of `name`, `scopes`, `expires` at \
        line 1 column 9";
    #[rustfmt::skip]
    let changes = [
        ("nothing to change", json!({}),
            admin_error("bad_request", "give name, scopes or expires to change", None)),
        ("unknown scope",     json!({"scopes": ["tokens.read", "tokens.fly"]}),
            scope(&unknown, "scopes[1]")),
        ("empty scopes",      json!({"scopes": []}), scope(empty, "scopes")),
        ("only spaces",       json!({"name": " "}), invalid("invalid_name", name_rule, "name")),
        ("expires 0",         json!({"expires": 0}),
            invalid("invalid_expiry", expiry_rule, "expires")),
        ("a preset",          json!({"preset": "root"}),
            invalid("bad_request", preset_field, "preset")),
    ];
    for (case, body, problem) in changes {
        let answer = patch(&app, 1, &body).await;
        answer.assert_is(
            admin_status_of(&problem),
            &problem,
            &format!("PATCH {case}"),
        );
    }
    let rename = json!({"name": "y"});
    #[rustfmt::skip]
    let unknown_ids = [
        ("/credentials/99", "no credential with id 99"),
        ("/credentials/x",  "no credential with id \"x\""),
    ];
    for (path, message) in unknown_ids {
        let problem = admin_error("not_found", message, None);
        let read = app.admin_get(path).await;
        read.assert_is(404, &problem, &format!("GET {path}"));
        let changed = app.admin_json(Method::PATCH, path, &rename).await;
        changed.assert_is(404, &problem, &format!("PATCH {path}"));
        let revoked = app.send(app.admin_request(Method::DELETE, path)).await;
        revoked.assert_is(404, &problem, &format!("DELETE {path}"));
    }
    assert_eq!(
        rows(&app).await,
        before,
        "no credential and no event written"
    );
    let existing = holding(&app, 1, "existing", "tokens.read");
    let read = app.admin_get("/credentials/1").await;
    read.assert_is(200, &existing, "unchanged");
}

/// The status a problem body states.
fn admin_status_of(problem: &Value) -> u16 {
    let status = problem["status"].as_u64().expect("status");
    u16::try_from(status).expect("an HTTP status")
}

#[tokio::test]
async fn a_revoked_credential_is_refused_on_its_next_call() {
    let app = spawn().await;
    let reader = stored(&app, "reader", &["roles.read"]).await;
    let mut expected = holding(&app, 1, "reader", "roles.read");
    assert_eq!(get_as(&app, &reader.secret, "/roles").await.status, 200);
    app.clock.advance(Duration::from_secs(1));
    let revoked = revoke(&app, 1).await;
    expected["revokedAt"] = json!(app.clock_iso());
    expected["active"] = json!(false);
    revoked.assert_is(200, &expected, "revoked");
    let refused = get_as(&app, &reader.secret, "/roles").await;
    refused.assert_is(401, &unauthorized(), "at once");
    let read = app.admin_get("/credentials/1").await;
    read.assert_is(200, &expected, "still readable");
    revoke(&app, 1)
        .await
        .assert_is(200, &expected, "revoking again answers it as it is");
    let message = "credential 1 is revoked; it stays as it was, for the audit trail";
    let changed = patch(&app, 1, &json!({"scopes": ["*"]})).await;
    changed.assert_is(
        409,
        &admin_error("credential_revoked", message, None),
        "no edits",
    );
    let read = app.admin_get("/credentials/1").await;
    read.assert_is(200, &expected, "as it was when revoked");
}

#[tokio::test]
async fn a_credential_is_refused_once_its_expiry_passes_and_null_removes_the_expiry() {
    let app = spawn().await;
    let body = json!({"name": "short", "scopes": ["roles.read"], "expires": 60_000});
    let short = stored_with(&app, &body).await;
    let mut expected = holding(&app, 1, "short", "roles.read");
    expected["expiresAt"] = json!(app.clock_iso_after(Duration::from_secs(60)));
    app.clock.advance(Duration::from_secs(59));
    assert_eq!(
        get_as(&app, &short.secret, "/roles").await.status,
        200,
        "before"
    );
    app.clock.advance(Duration::from_secs(2));
    let refused = get_as(&app, &short.secret, "/roles").await;
    refused.assert_is(401, &unauthorized(), "after");
    expected["active"] = json!(false);
    let read = app.admin_get("/credentials/1").await;
    read.assert_is(200, &expected, "expired, not revoked");
    let lifted = patch(&app, 1, &json!({"expires": null})).await;
    expected["expiresAt"] = Value::Null;
    expected["active"] = json!(true);
    lifted.assert_is(200, &expected, "expiry removed");
    assert_eq!(
        get_as(&app, &short.secret, "/roles").await.status,
        200,
        "works again"
    );
}

#[tokio::test]
async fn the_audit_log_names_the_credential_that_acted_and_each_change_made_to_a_credential() {
    let app = spawn().await;
    let deployer = stored(&app, "deployer", &["tokens.create", "audit.read"]).await;
    let created_at = app.clock_iso();
    let body = json!({"userId": 5, "name": "svc"});
    let token = admin_as(&app, &deployer.secret, Method::POST, "/tokens", Some(&body)).await;
    assert_eq!(token.status, 201, "{token:?}");
    let token_id = token.body["token"]["id"].as_u64().expect("token id");
    let event_id = |kind: &'static str| {
        let app = &app;
        async move {
            let sql = "SELECT id FROM audit_events WHERE event = ?";
            app.query_one::<u64, _>(sql, (kind,)).await
        }
    };
    let token_event = json!({
        "id": event_id("created").await, "kind": "created", "event": "created",
        "actor": credential_actor(deployer.id, "deployer"), "tokenId": token_id, "userId": 5,
        "detail": {"userId": 5, "name": "svc", "privilege": "restricted", "prefix": "api",
            "metadataKeys": []},
        "createdAt": created_at,
    });
    let events = get_as(
        &app,
        &deployer.secret,
        &format!("/tokens/{token_id}/events"),
    )
    .await;
    let expected = json!({"events": [token_event.clone()]});
    events.assert_is(200, &expected, "the token's events");
    let by_actor = app
        .admin_get(&format!("/audit?actor=credential:{}", deployer.id))
        .await;
    let expected = json!({"events": [token_event], "nextCursor": null});
    by_actor.assert_is(200, &expected, "the log, filtered by actor");

    app.clock.advance(Duration::from_secs(1));
    let updated_at = app.clock_iso();
    let change = json!({"name": "deploy bot", "expires": 86_400_000});
    assert_eq!(patch(&app, deployer.id, &change).await.status, 200);
    let expires_at = json!(app.clock_iso_after(Duration::from_secs(86_400)));
    app.clock.advance(Duration::from_secs(1));
    let revoked_at = app.clock_iso();
    assert_eq!(revoke(&app, deployer.id).await.status, 200);
    let scopes = json!(["audit.read", "tokens.create"]);
    let described = |name: &str, expires: &Value| json!({"credentialId": deployer.id, "name": name, "scopes": scopes, "expiresAt": expires});
    let mut updated = described("deploy bot", &expires_at);
    updated["changed"] = json!(["name", "expiresAt"]);
    #[rustfmt::skip]
    let expected = [
        ("credential_created", described("deployer", &Value::Null), created_at),
        ("credential_updated", updated, updated_at),
        ("credential_revoked", described("deploy bot", &expires_at), revoked_at),
    ];
    for (kind, detail, at) in expected {
        let event = json!({
            "id": event_id(kind).await, "kind": kind, "event": kind, "actor": ops(),
            "tokenId": null, "userId": null, "detail": detail, "createdAt": at,
        });
        let answer = app.admin_get(&format!("/audit?kind={kind}")).await;
        answer.assert_is(200, &json!({"events": [event], "nextCursor": null}), kind);
        assert_no_secret(&answer.body.to_string(), &[&deployer.secret], kind);
    }
}

#[tokio::test]
async fn last_use_is_written_behind_with_the_clock_time_and_the_callers_address() {
    let app = spawn().await;
    let reader = stored(&app, "reader", &["roles.read"]).await;
    let mut expected = holding(&app, 1, "reader", "roles.read");
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(5));
        assert_eq!(get_as(&app, &reader.secret, "/roles").await.status, 200);
    }
    let last_call = app.clock_iso();
    app.clock.advance(Duration::from_secs(5));
    let read = app.admin_get("/credentials/1").await;
    read.assert_is(200, &expected, "not written per request");
    let unused = "SELECT COUNT(*) FROM admin_credentials WHERE last_used_at IS NULL";
    assert_eq!(app.query_one::<u64, _>(unused, ()).await, 1);

    assert_eq!(
        app.admins.flush_uses().await.expect("flush"),
        1,
        "one credential"
    );
    expected["lastUsedAt"] = json!(last_call);
    expected["lastUsedIp"] = json!("127.0.0.1");
    let read = app.admin_get("/credentials/1").await;
    read.assert_is(200, &expected, "after the flush: the latest use");
    let sql = "SELECT last_used_ip FROM admin_credentials WHERE id = 1";
    let ip: Option<String> = app.query_one(sql, ()).await;
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        app.admins.flush_uses().await.expect("flush"),
        0,
        "nothing more"
    );
}

#[tokio::test]
async fn the_command_line_creates_lists_and_revokes_credentials_the_running_app_honours() {
    let app = spawn().await;
    let args = [
        "admin-token",
        "new",
        "--name",
        "ci",
        "--preset",
        "read-only",
    ];
    let output = run_cli(&app, &args).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let (first, fields) = stdout.split_once('\n').expect("lines");
    let secret = first
        .strip_prefix("secret (shown once): ")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(AdminSecret::is_well_formed(secret), "{secret}");
    // Created by the command line's own clock: only its shape is known.
    let created = fields
        .lines()
        .find_map(|line| line.strip_prefix("created     "))
        .expect("created");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    #[rustfmt::skip]
    let printed = [
        ("id", "1"), ("name", "ci"), ("scopes", "*.read"), ("status", "active"),
        ("created", created), ("created by", "cli"), ("expires", "-"), ("last used", "-"),
        ("revoked", "-"),
    ];
    let expected: String = printed
        .iter()
        .map(|(label, value)| format!("{label:<10}  {value}\n"))
        .collect();
    assert_eq!(fields, expected);

    let roles = get_as(&app, secret, "/roles").await;
    roles.assert_is(200, &json!({"roles": []}), "works at once");
    let role = json!({"name": "r", "permissions": []});
    let refused = admin_as(&app, secret, Method::POST, "/roles", Some(&role)).await;
    refused.assert_is(403, &forbidden("roles.write"), "read-only");
    let user = std::env::var("USER").ok().filter(|user| !user.is_empty());
    let credential = app.admin_get("/credentials/1").await;
    let cli = json!({"type": "cli", "id": null, "name": user});
    assert_eq!(credential.body["createdBy"], cli, "{credential:?}");

    let output = run_cli(&app, &["admin-token", "list"]).await;
    assert!(output.status.success(), "{output:?}");
    let listed = "ID  NAME  SCOPES  STATUS  EXPIRES  LAST USED\n\
                  1   ci    *.read  active  -        -\n";
    assert_eq!(String::from_utf8_lossy(&output.stdout), listed);

    let output = run_cli(&app, &["admin-token", "revoke", "1"]).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\nstatus      revoked\n"), "{stdout}");
    let sql = "SELECT COUNT(*) FROM admin_credentials WHERE revoked_at IS NOT NULL";
    assert_eq!(
        app.query_one::<u64, _>(sql, ()).await,
        1,
        "the row is revoked"
    );
    // Without Redis, the app sees it once its cached copy is older than verify.cache_ttl (at
    // least a second).
    let ttl = app.settings.verify.cache_ttl.max(Duration::from_secs(1));
    app.clock.advance(ttl + Duration::from_millis(1));
    let refused = get_as(&app, secret, "/roles").await;
    refused.assert_is(401, &unauthorized(), "revoked by the command line");
}

#[tokio::test]
async fn the_command_line_refuses_an_unknown_preset_naming_it() {
    let app = spawn().await;
    let args = ["admin-token", "new", "--name", "ci", "--preset", "god"];
    let output = run_cli(&app, &args).await;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = "preset: no preset \"god\" (the presets are root, read-only, support, billing, \
        verifier)";
    assert!(stderr.contains(reason), "{stderr}");
    assert_eq!(rows(&app).await, (0, 0), "nothing stored");
}
