//! The database goes away and comes back, behind a TCP proxy we switch off and on: cached
//! tokens keep verifying (within `max_stale`), unknown ones fail closed, `/ready` follows the
//! database while `/health` stays up, and uses counted meanwhile are written once it is back.

use std::time::Duration;

use iam_tokens::domain::{GeneratedKey, Prefix};
use iam_tokens::secret::Secret;
use iam_tokens::Settings;
use serde_json::{json, Value};

use crate::helpers::{spawn_on, TestApp};
use crate::proxy::Proxy;

const SERVER_ERROR: &str = "Server error validating token.";

/// A service reaching its fresh database only through a proxy (up at first), with batched
/// counting whose timer never fires and the default cache (5 s TTL, 5 min max stale). The URL
/// is the plain `mysql://root@127.0.0.1:<port>/<db>`: the service must keep using it as written
/// (no move to the server's Unix socket), or these outages would not reach it.
pub(crate) async fn spawn_behind_proxy(configure: impl FnOnce(&mut Settings)) -> (TestApp, Proxy) {
    let proxy = Proxy::start(3306).await;
    let db_name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let mut settings = Settings::defaults().expect("defaults load");
    settings.server.port = 0;
    settings.server.workers = 1;
    let url = format!("mysql://root@127.0.0.1:{}/{db_name}", proxy.port);
    settings.database.url = Secret::new(url);
    settings.database.max_connections = 4;
    settings.rate_limiters.enabled = false;
    settings.usage.flush_interval = Duration::from_secs(3600);
    configure(&mut settings);
    (spawn_on(settings, db_name).await, proxy)
}

/// A `full` token of user 7 named `ci`: its raw key, id and creation time.
async fn token(app: &TestApp) -> (String, u64, String) {
    let created = app
        .create_token(7, iam_tokens::domain::Privilege::Full, "ci")
        .await;
    let id = app.token_id(&created.raw_public_id).await;
    (created.raw_api_key, id, app.clock_iso())
}

/// The whole 200 answer of a verification with this count, as the route answers it now.
fn verified(app: &TestApp, id: u64, created_at: &str, usage_count: u64) -> Value {
    app.success_now(json!({
        "name": "ci",
        "tokenId": id,
        "userId": 7,
        "createdAt": created_at,
        "expiresAt": null,
        "lastUsed": app.clock_iso(),
        "usageCount": usage_count,
        "providedPrivilege": "full",
    }))
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.client.get(app.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn assert_ready(app: &TestApp, up: bool) {
    let (status, body) = get(app, "/ready").await;
    let body: Value = serde_json::from_str(&body).expect("JSON");
    let expected = match up {
        true => (200, json!({"status": "ready", "database": "up"})),
        false => (503, json!({"status": "unavailable", "database": "down"})),
    };
    assert_eq!(
        (status, body),
        expected,
        "/ready with the database up: {up}"
    );
    assert_eq!(get(app, "/health").await, (200, "OK".into()), "/health");
}

#[tokio::test]
async fn a_cached_token_verifies_while_the_database_is_down_until_max_stale() {
    let (app, proxy) = spawn_behind_proxy(|_| {}).await;
    let (key, id, created_at) = token(&app).await;
    let answer = app.verify(&key, "full").await;
    assert_eq!(
        answer.body,
        verified(&app, id, &created_at, 1),
        "read once, cached"
    );

    proxy.down().await;
    let answer = app.verify(&key, "full").await;
    assert_eq!(
        answer.body,
        verified(&app, id, &created_at, 2),
        "within the TTL"
    );
    app.clock.advance(Duration::from_secs(10));
    let answer = app.verify(&key, "full").await;
    assert_eq!(
        answer.body,
        verified(&app, id, &created_at, 3),
        "stale, store down"
    );
    app.clock.advance(Duration::from_secs(290));
    let answer = app.verify(&key, "full").await;
    assert_eq!(
        answer.body,
        verified(&app, id, &created_at, 4),
        "5 min after the read"
    );
    app.clock.advance(Duration::from_millis(1));
    let answer = app.verify(&key, "full").await;
    assert_eq!(answer.status, 401, "past max_stale: {answer:?}");
    assert_eq!(answer.body, app.failure_now(SERVER_ERROR));

    // /metrics says so: two stale serves, three store failures, one verification failed.
    let (_, samples) = crate::metrics::scrape(&app).await;
    let value = |series| crate::metrics::value(&samples, series);
    assert_eq!(value(r#"iam_cache_lookups_total{result="stale"}"#), 2.0);
    assert_eq!(value(r#"iam_store_errors_total{operation="verify"}"#), 3.0);
    assert_eq!(
        value(r#"iam_verifications_total{route="public",outcome="server_error"}"#),
        1.0
    );

    proxy.up();
    let answer = app.verify(&key, "full").await;
    assert_eq!(answer.body, verified(&app, id, &created_at, 5), "back");
}

#[tokio::test]
async fn an_uncached_token_fails_closed_while_the_database_is_down() {
    let (app, proxy) = spawn_behind_proxy(|_| {}).await;
    let (key, id, created_at) = token(&app).await;
    proxy.down().await;
    let unknown = GeneratedKey::generate(&Prefix::default());
    for (presented, case) in [
        (key.as_str(), "a real token"),
        (unknown.raw.expose(), "unknown"),
    ] {
        let answer = app.verify(presented, "full").await;
        assert_eq!(answer.status, 401, "{case}: {answer:?}");
        assert_eq!(answer.body, app.failure_now(SERVER_ERROR), "{case}");
    }
    let answer = app.verify("api_garbage_12345678", "full").await;
    assert_eq!(
        answer.body,
        app.failure_now("Invalid key"),
        "no database needed"
    );

    proxy.up();
    let answer = app.verify(&key, "full").await;
    assert_eq!(answer.body, verified(&app, id, &created_at, 1), "back");
}

#[tokio::test]
async fn health_stays_up_and_ready_follows_the_database() {
    let (app, proxy) = spawn_behind_proxy(|_| {}).await;
    assert_ready(&app, true).await;
    proxy.down().await;
    assert_ready(&app, false).await;
    assert_ready(&app, false).await;
    proxy.up();
    assert_ready(&app, true).await;
}

#[tokio::test]
async fn uses_counted_during_the_outage_are_written_once_the_database_is_back() {
    let (app, proxy) = spawn_behind_proxy(|_| {}).await;
    let (key, id, _) = token(&app).await;
    for _ in 0..3 {
        assert_eq!(app.verify(&key, "full").await.status, 200);
    }
    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(app.usage_and_valid(id).await, (3, true));

    proxy.down().await;
    for n in 4..=6 {
        assert_eq!(app.verify(&key, "full").await.data()["usageCount"], n);
    }
    app.clock.advance(Duration::from_secs(60));
    for n in 7..=8 {
        let answer = app.verify(&key, "full").await;
        assert_eq!(answer.data()["usageCount"], n, "stale entry, store down");
    }
    for attempt in 1..=2 {
        assert!(
            app.tokens.flush_usage().await.is_err(),
            "flush {attempt} fails"
        );
    }
    assert_eq!(
        app.usage_and_valid(id).await,
        (3, true),
        "read behind the proxy"
    );
    assert_eq!(app.tokens.unwritten_uses(), 5);

    proxy.up();
    app.tokens
        .flush_usage()
        .await
        .expect("flush once the database is back");
    assert_eq!(app.usage_and_valid(id).await, (8, true), "every use, once");
    assert_eq!(app.tokens.unwritten_uses(), 0);
    assert_eq!(app.verify(&key, "full").await.data()["usageCount"], 9);
}

#[tokio::test]
async fn without_serve_stale_on_error_a_cached_token_past_its_ttl_fails_closed() {
    let (app, proxy) = spawn_behind_proxy(|s| s.verify.serve_stale_on_error = false).await;
    let (key, id, created_at) = token(&app).await;
    assert_eq!(app.verify(&key, "full").await.status, 200);
    proxy.down().await;
    app.clock.advance(Duration::from_millis(4999));
    let answer = app.verify(&key, "full").await;
    assert_eq!(
        answer.body,
        verified(&app, id, &created_at, 2),
        "within the TTL"
    );
    app.clock.advance(Duration::from_millis(1));
    let answer = app.verify(&key, "full").await;
    assert_eq!(answer.status, 401, "past the TTL: {answer:?}");
    assert_eq!(answer.body, app.failure_now(SERVER_ERROR));
}

/// `database.timeout` in the silent-database tests.
const BOUND: Duration = Duration::from_millis(500);

/// How long a call took, and its answer.
async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = std::time::Instant::now();
    let answer = call.await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_silent_database_fails_unknown_keys_and_ready_within_the_bound() {
    let (app, proxy) = spawn_behind_proxy(|s| s.database.timeout = BOUND).await;
    let (key, _, _) = token(&app).await;
    proxy.silent();
    let unknown = GeneratedKey::generate(&Prefix::default());
    for (presented, case) in [
        (unknown.raw.expose(), "an unknown key"),
        (key.as_str(), "a real key never verified here"),
    ] {
        let (answer, took) = timed(app.verify(presented, "full")).await;
        assert_eq!(answer.status, 401, "{case}: {answer:?}");
        assert_eq!(answer.body, app.failure_now(SERVER_ERROR), "{case}");
        assert!(took < BOUND * 3, "{case}: answered in {took:?}");
    }
    let ((status, body), took) = timed(get(&app, "/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert!(took < BOUND * 3, "/ready answered in {took:?}");
    let (health, took) = timed(get(&app, "/health")).await;
    assert_eq!(health, (200, "OK".into()));
    assert!(
        took < BOUND,
        "/health does not wait for the store: {took:?}"
    );

    proxy.up();
    assert_ready(&app, true).await;
    assert_eq!(app.verify(&key, "full").await.status, 200, "back");
}

#[tokio::test]
async fn a_cached_key_past_its_ttl_keeps_verifying_from_the_stale_entry_when_the_database_is_silent(
) {
    let (app, proxy) = spawn_behind_proxy(|s| s.database.timeout = BOUND).await;
    let (key, id, created_at) = token(&app).await;
    assert_eq!(
        app.verify(&key, "full").await.status,
        200,
        "read once, cached"
    );
    proxy.silent();
    app.clock.advance(Duration::from_secs(10));
    let (answer, took) = timed(app.verify(&key, "full")).await;
    assert_eq!(
        answer.body,
        verified(&app, id, &created_at, 2),
        "stale, store silent"
    );
    assert!(took < BOUND * 3, "answered in {took:?}");
    // The next sight tries the store again, and is bounded again.
    let (answer, took) = timed(app.verify(&key, "full")).await;
    assert_eq!(answer.body, verified(&app, id, &created_at, 3));
    assert!(took < BOUND * 3, "answered in {took:?}");
}

#[tokio::test]
async fn a_flush_to_a_silent_database_fails_within_the_bound_and_loses_nothing() {
    let (app, proxy) = spawn_behind_proxy(|s| s.database.timeout = BOUND).await;
    let (key, id, _) = token(&app).await;
    for _ in 0..3 {
        assert_eq!(app.verify(&key, "full").await.status, 200);
    }
    proxy.silent();
    let (flushed, took) = timed(app.tokens.flush_usage()).await;
    assert!(flushed.is_err(), "the flush cannot be confirmed");
    assert!(took < BOUND * 3, "gave up in {took:?}");
    proxy.up();
    // Once it answers (on a loaded machine one more try may still hit the bound).
    let mut flushed = app.tokens.flush_usage().await;
    for _ in 0..4 {
        if flushed.is_ok() {
            break;
        }
        flushed = app.tokens.flush_usage().await;
    }
    flushed.expect("flush once it answers");
    assert_eq!(app.usage_and_valid(id).await, (3, true), "every use, once");
}

/// mysql_async moves a `127.0.0.1` URL to the server's Unix socket after the first TCP
/// connection unless told not to; the service uses the URL as written.
#[tokio::test]
async fn a_mysql_url_naming_127_0_0_1_keeps_every_connection_on_tcp() {
    let (app, proxy) = spawn_behind_proxy(|s| s.database.timeout = BOUND).await;
    let (key, _, _) = token(&app).await;
    assert_eq!(app.verify(&key, "full").await.status, 200);
    let before = proxy.accepted();
    assert!(before >= 1, "the first connections went through the proxy");
    // New connections after the first: each must be made through the proxy again.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let tokens = app.tokens.clone();
        clients.spawn(async move {
            let unknown = GeneratedKey::generate(&Prefix::default());
            let options =
                iam_tokens::service::VerifyOptions::new(iam_tokens::domain::Privilege::Full, None);
            tokens.verify(unknown.raw.expose(), options).await
        });
    }
    while let Some(answer) = clients.join_next().await {
        assert!(answer.expect("joined").reason().is_some());
    }
    proxy.down().await;
    let unknown = GeneratedKey::generate(&Prefix::default());
    let answer = app.verify(unknown.raw.expose(), "full").await;
    assert_eq!(
        answer.body,
        app.failure_now(SERVER_ERROR),
        "with the proxy down the database is unreachable: no socket bypass"
    );
}

/// Admin credentials fail closed like tokens (SPEC B9): a stored credential already cached keeps
/// authorising while the database is down, one never seen answers 503 `unavailable` (it cannot
/// be checked), and a malformed secret is refused without a lookup.
#[tokio::test]
async fn a_cached_admin_credential_keeps_working_while_the_database_is_down() {
    use crate::helpers::{admin_error, ops_admin};
    let (app, proxy) = spawn_behind_proxy(ops_admin).await;
    let (key, _, _) = token(&app).await;
    let verifier = |name: &str| json!({"name": name, "preset": "verifier"});
    let mut secrets = Vec::new();
    for name in ["seen", "unseen"] {
        let answer = app
            .admin_json(reqwest::Method::POST, "/credentials", &verifier(name))
            .await;
        assert_eq!(answer.status, 201, "{answer:?}");
        secrets.push(answer.body["secret"].as_str().expect("secret").to_owned());
    }
    let verify = |secret: &str| {
        let request = app
            .client
            .post(app.url("/api/admin/verify"))
            .bearer_auth(secret)
            .json(&json!({"key": key, "count": false}));
        app.send(request)
    };
    assert_eq!(
        verify(&secrets[0]).await.body["code"],
        "VALID",
        "cached now"
    );

    proxy.down().await;
    let answer = verify(&secrets[0]).await;
    assert_eq!(
        (answer.status, &answer.body["code"]),
        (200, &json!("VALID")),
        "cached: no store needed to authorise, nor to verify a cached key"
    );
    let unavailable = "the token store is unavailable; try again";
    let answer = verify(&secrets[1]).await;
    answer.assert_is(
        503,
        &admin_error("unavailable", unavailable, None),
        "never seen",
    );
    let message = "a valid admin credential is required (Authorization: Bearer <secret>)";
    let answer = verify("iam_admin_not-a-stored-secret").await;
    answer.assert_is(
        401,
        &admin_error("unauthorized", message, None),
        "malformed",
    );

    proxy.up();
    assert_eq!(verify(&secrets[1]).await.body["code"], "VALID", "back");
}
