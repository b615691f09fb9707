//! A fresh application on a fresh database per test, and typed helpers per endpoint.

use std::sync::Arc;
use std::time::Duration;

use iam_tokens::clock::ManualClock;
use iam_tokens::domain::{Privilege, TokenName, UserId};
use iam_tokens::http::JwtVerifier;
use iam_tokens::service::{CreateToken, CreatedToken};
use iam_tokens::store::Location;
use iam_tokens::{Application, Settings, TokenService};
use mysql_async::prelude::*;

use crate::test_db::TestDb;
use reqwest::{Client, Response};
use serde_json::Value;

/// A user id the tests know to be in the domain (SPEC B3).
pub fn uid(id: u64) -> UserId {
    UserId::new(id).expect("test user id in 1 ..= 2^63-1")
}

/// A lifetime of `ms` milliseconds.
pub fn ms(ms: u64) -> iam_tokens::domain::Lifetime {
    iam_tokens::domain::Lifetime::from_ms(ms).expect("test lifetime in 1 ms ..= 100 years")
}

pub fn prefix(text: &str) -> iam_tokens::domain::Prefix {
    iam_tokens::domain::Prefix::parse(text).expect("test prefix")
}

pub const SERVER_URL: &str = "mysql://root@127.0.0.1:3306";

/// `IAM_TEST_STORE=sqlite` runs the suite on the embedded store (scripts/test.sh runs both).
pub fn on_sqlite() -> bool {
    std::env::var("IAM_TEST_STORE").as_deref() == Ok("sqlite")
}

/// Ends a test whose logic does not depend on the store (Redis faults, the breaker) when the
/// suite runs on the embedded store: it runs once, in the MySQL pass.
#[macro_export]
macro_rules! store_independent {
    () => {
        if $crate::helpers::on_sqlite() {
            eprintln!("store-independent: run in the MySQL pass only");
            return;
        }
    };
}

/// Ends a test that exercises MySQL itself (a TCP proxy, DROP DATABASE, the migrations lock)
/// when the suite runs on the embedded store; the store conformance suite covers both.
#[macro_export]
macro_rules! mysql_only {
    () => {
        if $crate::helpers::on_sqlite() {
            eprintln!("MySQL-specific: not run on the embedded store");
            return;
        }
    };
}

/// One running service with its own database, dropped when the test ends (even on panic).
pub struct TestApp {
    pub address: String,
    pub db_name: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub tokens: TokenService,
    pub limits: Arc<iam_tokens::limits::Limits>,
    /// The app's admin credentials (`flush_uses` writes their last uses now).
    pub admins: Arc<iam_tokens::admins::Admins>,
    pub settings: Settings,
    /// The app's database, for assertions (portable SQL; see `test_db`).
    pub db: TestDb,
    jwt: JwtVerifier,
    /// The `metrics.address` listener's port, when configured.
    pub metrics_port: Option<u16>,
}

/// Default settings on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Default settings changed by `configure`, on a fresh database.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db_name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let mut settings = test_settings(&db_name);
    configure(&mut settings);
    spawn_on(settings, db_name).await
}

/// The settings every test starts from, on the database `db_name` (of the suite's store).
pub fn test_settings(db_name: &str) -> Settings {
    let mut settings = Settings::defaults().expect("defaults load");
    settings.server.port = 0;
    settings.server.workers = 1;
    let url = if on_sqlite() {
        let dir = std::env::temp_dir().join("iam_tokens_tests");
        format!("sqlite://{}", dir.join(format!("{db_name}.db")).display())
    } else {
        format!("{SERVER_URL}/{db_name}")
    };
    settings.database.url = iam_tokens::secret::Secret::new(url);
    settings.database.max_connections = 16;
    // Limits have their own tests; everything else runs without them (enable in `configure`).
    settings.rate_limiters.enabled = false;
    // Counts are written before answering unless a test turns batching on; the cache stays on.
    settings.usage.flush_interval = std::time::Duration::ZERO;
    settings
}

/// Starts a service with exactly these settings; `db_name` is dropped at the end.
pub async fn spawn_on(settings: Settings, db_name: String) -> TestApp {
    spawn_with_clock(settings, db_name, Arc::new(ManualClock::starting_now())).await
}

/// `spawn_on`, reading time from `clock` (instances of one deployment share one clock, as
/// NTP-synchronised hosts do).
pub async fn spawn_with_clock(
    settings: Settings,
    db_name: String,
    clock: Arc<ManualClock>,
) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let tokens = app.tokens().clone();
    let limits = app.limits().clone();
    let admins = app.admins().clone();
    tokio::spawn(app.run_until_stopped());
    let db = match Location::parse(settings.database.url.expose()).expect("database url") {
        Location::Sqlite(path) => TestDb::Sqlite(path),
        Location::MySql(_) => TestDb::MySql(mysql_async::Pool::new(
            format!("{SERVER_URL}/{db_name}").as_str(),
        )),
    };
    TestApp {
        address,
        db_name,
        client: Client::new(),
        clock: clock.clone(),
        tokens,
        limits,
        admins,
        jwt: JwtVerifier::new(&settings.auth.jwt_secret, clock),
        settings,
        db,
        metrics_port,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match &self.db {
            TestDb::MySql(_) => drop_database(&self.db_name),
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}

/// Drops a test database from synchronous code (a `Drop`, possibly during a panic): a fresh
/// runtime on its own thread, since the caller cannot await.
pub fn drop_database(name: &str) {
    let db_name = name.to_owned();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            if let Ok(mut conn) = mysql_async::Conn::from_url(SERVER_URL).await {
                // The app's connections first: a flush its runtime no longer drives (the test
                // thread is here) would hold its transaction, and the drop would wait for it.
                let sql = "SELECT id FROM information_schema.processlist WHERE db = ?";
                let ids: Vec<u64> = conn.exec(sql, (&db_name,)).await.unwrap_or_default();
                for id in ids {
                    let _ = conn.query_drop(format!("KILL {id}")).await;
                }
                let _ = conn
                    .query_drop(format!("DROP DATABASE IF EXISTS `{db_name}`"))
                    .await;
                let _ = conn.disconnect().await;
            }
        });
    })
    .join();
}

/// A parsed HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from(response: Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The envelope's `reason`, or panics with the whole answer.
    pub fn reason(&self) -> &str {
        self.body["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("no reason in {self:?}"))
    }

    pub fn data(&self) -> &Value {
        assert_eq!(self.body["ok"], Value::Bool(true), "not ok: {self:?}");
        &self.body["data"]
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A valid access token for `user_id`, signed with the configured secret.
    pub fn access_token(&self, user_id: u64) -> String {
        self.jwt
            .issue(uid(user_id), Duration::from_secs(3600))
            .expect("sign")
    }

    pub async fn manage_post(&self, action: &str, user_id: u64, body: &Value) -> Answer {
        let response = self
            .client
            .post(self.url(&format!("/api/manage/{action}")))
            .bearer_auth(self.access_token(user_id))
            .json(body)
            .send()
            .await
            .expect("request");
        Answer::from(response).await
    }

    pub async fn manage_get(&self, action: &str, user_id: u64) -> Answer {
        let response = self
            .client
            .get(self.url(&format!("/api/manage/{action}")))
            .bearer_auth(self.access_token(user_id))
            .send()
            .await
            .expect("request");
        Answer::from(response).await
    }

    pub async fn verify(&self, key: &str, privilege: &str) -> Answer {
        let response = self
            .client
            .get(self.url(&format!("/api/public/verify?privilege={privilege}")))
            .header("x-api-key", key)
            .send()
            .await
            .expect("request");
        Answer::from(response).await
    }

    /// Creates a token through the library and returns its creation data.
    pub async fn create_token(
        &self,
        user_id: u64,
        privilege: Privilege,
        name: &str,
    ) -> CreatedToken {
        let request = CreateToken::new(
            uid(user_id),
            privilege,
            TokenName::parse(name).expect("name"),
        );
        self.tokens
            .create(request)
            .await
            .outcome
            .expect("token created")
    }

    /// The stored id of a token, found by its public identifier.
    pub async fn token_id(&self, public_id: &str) -> u64 {
        self.query_one(
            "SELECT id FROM api_tokens WHERE public_identifier = ?",
            (public_id,),
        )
        .await
    }

    /// `(usage_count, valid)` of a token row.
    pub async fn usage_and_valid(&self, token_id: u64) -> (u64, bool) {
        let (count, valid): (u64, i64) = self
            .query_one(
                "SELECT usage_count, valid FROM api_tokens WHERE id = ?",
                (token_id,),
            )
            .await;
        (count, valid == 1)
    }

    pub async fn query_one<T: FromRow + Send + 'static, P: Into<mysql_async::Params> + Send>(
        &self,
        sql: &str,
        params: P,
    ) -> T {
        self.query_all(sql, params)
            .await
            .into_iter()
            .next()
            .expect("one row")
    }

    pub async fn query_all<T: FromRow + Send + 'static, P: Into<mysql_async::Params> + Send>(
        &self,
        sql: &str,
        params: P,
    ) -> Vec<T> {
        self.db.query(sql, params.into()).await
    }

    pub async fn execute<P: Into<mysql_async::Params> + Send>(&self, sql: &str, params: P) {
        self.db.exec(sql, params.into()).await
    }

    /// The URL the app's store was opened with (for the CLI and second instances).
    /// A store of its own on the app's database (a second service, as another process would).
    pub async fn own_store(&self) -> Arc<dyn iam_tokens::store::Store> {
        iam_tokens::store::open(&self.database_url(), iam_tokens::store::OpenOptions::new(2))
            .await
            .expect("store")
    }

    pub fn database_url(&self) -> String {
        self.settings.database.url.expose().to_owned()
    }
}

// ---- Library-operation helpers (library_*, concurrency, sabotage, cli) ----

/// An envelope exactly as a caller sees it once serialized.
pub fn envelope_json<T: serde::Serialize>(results: &iam_tokens::Results<T>) -> Value {
    serde_json::to_value(results).expect("envelope serializes")
}

/// `{"ok":true,"date":…,"data":…}`.
pub fn success_json(date: &str, data: Value) -> Value {
    serde_json::json!({"ok": true, "date": date, "data": data})
}

/// `{"ok":false,"date":…,"reason":…}`.
pub fn failure_json(date: &str, reason: &str) -> Value {
    serde_json::json!({"ok": false, "date": date, "reason": reason})
}

impl TestApp {
    /// The manual clock's "now" in the envelope format (ISO-8601, ms, `Z`).
    pub fn clock_iso(&self) -> String {
        self.clock_iso_after(Duration::ZERO)
    }

    /// The manual clock's "now" plus `after`, in the envelope format.
    pub fn clock_iso_after(&self, after: Duration) -> String {
        use iam_tokens::Clock as _;
        let at = self.clock.now() + chrono::Duration::from_std(after).expect("duration");
        iam_tokens::envelope::iso(&at)
    }

    /// `create` through the library, returning the whole envelope.
    pub async fn lib_create(&self, request: CreateToken) -> iam_tokens::Results<CreatedToken> {
        self.tokens.create(request).await
    }

    /// Counting, IP-checked `verify` through the library, from `ip` (or no known address).
    pub async fn lib_verify(
        &self,
        key: &str,
        privilege: Privilege,
        ip: Option<&str>,
    ) -> iam_tokens::Results<iam_tokens::service::VerifiedToken> {
        let ip = ip.map(|ip| ip.parse().expect("test IP address"));
        let options = iam_tokens::service::VerifyOptions::new(privilege, ip);
        self.tokens.verify(key, options).await
    }

    /// How many of the owner's rows have `valid = 1`.
    pub async fn valid_token_rows(&self, user_id: u64) -> u64 {
        self.query_one(
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = ? AND valid = 1",
            (user_id,),
        )
        .await
    }

    /// How many rows `api_tokens` holds, valid or not.
    pub async fn token_row_count(&self) -> u64 {
        self.query_one("SELECT COUNT(*) FROM api_tokens", ()).await
    }
}

// ---- HTTP route helpers (routes_*) ----

/// A token created over HTTP: what the user was shown, plus its stored id.
#[derive(Debug, Clone)]
pub struct HttpToken {
    pub key: String,
    pub public_id: String,
    pub id: u64,
}

impl TestApp {
    /// `/api/manage/{action}` with `user_id`'s access token, left open for a body or headers.
    pub fn manage_request(
        &self,
        method: reqwest::Method,
        action: &str,
        user_id: u64,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/api/manage/{action}")))
            .bearer_auth(self.access_token(user_id))
    }

    /// `GET /api/public/verify?privilege=…` with `x-api-key`, left open for more headers.
    pub fn verify_request(&self, key: &str, privilege: &str) -> reqwest::RequestBuilder {
        self.client
            .get(self.url(&format!("/api/public/verify?privilege={privilege}")))
            .header("x-api-key", key)
    }

    /// Sends a hand-built request and parses the answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        Answer::from(request.send().await.expect("request")).await
    }

    /// `new-token` over HTTP for `user_id`; panics unless it answers 201.
    pub async fn http_token(&self, user_id: u64, body: &Value) -> HttpToken {
        let created = self.manage_post("new-token", user_id, body).await;
        assert_eq!(created.status, 201, "new-token failed: {created:?}");
        let key = created.data()["rawApiKey"]
            .as_str()
            .expect("rawApiKey")
            .to_owned();
        let public_id = created.data()["rawPublicId"]
            .as_str()
            .expect("rawPublicId")
            .to_owned();
        let id = self.token_id(&public_id).await;
        HttpToken { key, public_id, id }
    }
}

// ---- Rate-limit helpers (limits_*) ----

/// Asserts the 429 of a block with `seconds` left: header and body say the same number.
pub fn assert_blocked(answer: &Answer, seconds: u64, case: &str) {
    assert_eq!(answer.status, 429, "{case}: {answer:?}");
    let header = seconds.to_string();
    assert_eq!(
        answer.header("retry-after"),
        Some(header.as_str()),
        "{case}: {answer:?}"
    );
    let body = serde_json::json!({"error": "Too many requests", "retry": seconds});
    assert_eq!(answer.body, body, "{case}");
}

/// Asserts the 429 of a permanent ban.
pub fn assert_banned(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 429, "{case}: {answer:?}");
    assert_eq!(
        answer.header("retry-after"),
        Some("permanent"),
        "{case}: {answer:?}"
    );
    let body = serde_json::json!({"error": "Too many requests", "retry": "permanent"});
    assert_eq!(answer.body, body, "{case}");
}

impl TestApp {
    /// Every row of `rate_limit_bans` as `(limiter, key, reason, created_at as ISO)`, sorted.
    pub async fn ban_rows(&self) -> Vec<(String, String, String, String)> {
        let rows: Vec<(String, String, String, chrono::NaiveDateTime)> = self
            .query_all(
                "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans",
                (),
            )
            .await;
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|(limiter, key, reason, at)| {
                (
                    limiter,
                    key,
                    reason,
                    iam_tokens::envelope::iso(&at.and_utc()),
                )
            })
            .collect();
        rows.sort();
        rows
    }
}

// ---- More HTTP route helpers (routes_*) ----

impl Answer {
    /// Asserts the status and the whole body at once, naming `case` when they differ.
    pub fn assert_is(&self, status: u16, body: &Value, case: &str) {
        assert_eq!(self.status, status, "{case}: {self:?}");
        assert_eq!(&self.body, body, "{case}");
    }
}

impl TestApp {
    /// `{"ok":false,"date":<clock now>,"reason":…}`, as a route answers it now.
    pub fn failure_now(&self, reason: &str) -> Value {
        failure_json(&self.clock_iso(), reason)
    }

    /// `{"ok":true,"date":<clock now>,"data":…}`, as a route answers it now.
    pub fn success_now(&self, data: Value) -> Value {
        success_json(&self.clock_iso(), data)
    }
}

// ---- More rate-limit helpers (limits_*) ----

/// Default settings with every rate limiter on, changed by `configure`, on a fresh database.
pub async fn spawn_limited_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        settings.rate_limiters.enabled = true;
        configure(settings);
    })
    .await
}

/// Believes `X-Forwarded-For` from 127.0.0.1, the address every test request comes from.
pub fn trust_local_proxy(settings: &mut Settings) {
    settings.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("CIDR")];
}

// ---- Admin API helpers (admin_*, audit_log) ----

/// The secret the `ops` admin presents; the audit log names changes made with it `config:ops`.
pub const ADMIN_SECRET: &str = "iam_admin_0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Configures one admin credential: `ops`, holding `ADMIN_SECRET` (config keeps its digest).
pub fn ops_admin(settings: &mut Settings) {
    use sha2::Digest as _;
    settings.auth.admin_tokens = vec![iam_tokens::config::AdminTokenSettings {
        name: "ops".into(),
        digest: hex::encode(sha2::Sha256::digest(ADMIN_SECRET)),
    }];
}

/// Default settings with the `ops` admin, changed by `configure`, on a fresh database.
pub async fn spawn_admin_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        ops_admin(settings);
        configure(settings);
    })
    .await
}

/// Default settings with the `ops` admin, on a fresh database.
pub async fn spawn_admin_app() -> TestApp {
    spawn_admin_app_with(|_| {}).await
}

/// The status every answer with this admin failure code has (a code never changes status).
pub fn admin_status(code: &str) -> u16 {
    match code {
        "bad_request" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
        "not_found" => 404,
        "method_not_allowed" => 405,
        "request_timeout" => 408,
        "role_exists"
        | "role_in_use"
        | "role_limit"
        | "token_limit"
        | "credential_revoked"
        | "token_revoked"
        | "token_expired"
        | "rotation_in_progress" => 409,
        "payload_too_large" => 413,
        "unsupported_media_type" => 415,
        "unavailable" => 503,
        // Analytics (SPEC B11): before the `too_many_` prefix below.
        "too_many_points" | "range_exceeds_retention" => 400,
        "analytics_disabled" => 404,
        code if code.starts_with("invalid_")
            || code.starts_with("too_many_")
            || code.starts_with("unknown_") =>
        {
            422
        }
        other => panic!("no status known for admin failure code {other}: add it here"),
    }
}

/// An admin API failure body: RFC 9457 problem details,
/// `{type, title, status, detail, code, field?}`.
pub fn admin_error(code: &str, message: &str, field: Option<&str>) -> Value {
    let status = admin_status(code);
    let title = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut problem = serde_json::json!({
        "type": format!("urn:iam-tokens:problem:{code}"),
        "title": title,
        "status": status,
        "detail": message,
        "code": code,
    });
    if let Some(field) = field {
        problem["field"] = serde_json::json!(field);
    }
    problem
}

/// 403 `forbidden` naming the scope the credential lacks (SPEC B9).
pub fn forbidden(scope: &str) -> Value {
    let message = format!("this credential does not hold the scope {scope}");
    let mut problem = admin_error("forbidden", &message, None);
    problem["missingScope"] = serde_json::json!(scope);
    problem
}

/// `/api/admin{path}` presenting `secret` (a stored credential's, say), with a JSON body when
/// given.
pub async fn admin_as(
    app: &TestApp,
    secret: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let url = app.url(&format!("/api/admin{path}"));
    let request = app.client.request(method, url).bearer_auth(secret);
    app.send(match body {
        Some(body) => request.json(body),
        None => request,
    })
    .await
}

/// An actor object of an event (`{type, id, name}`) as `<type>:<id>` or `<type>`.
pub fn actor_text(actor: &Value) -> String {
    let kind = actor["type"].as_str().unwrap_or_default();
    match actor["id"].as_str() {
        Some(id) => format!("{kind}:{id}"),
        None => kind.to_owned(),
    }
}

/// A token created through `POST /api/admin/tokens`: the raw key and the whole 201 body.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub key: String,
    pub public_id: String,
    pub id: u64,
    pub body: Value,
}

impl TestApp {
    /// `/api/admin{path}` with the `ops` secret, left open for a body or headers.
    pub fn admin_request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/api/admin{path}")))
            .bearer_auth(ADMIN_SECRET)
    }

    /// `GET /api/admin{path}` as `ops`.
    pub async fn admin_get(&self, path: &str) -> Answer {
        self.send(self.admin_request(reqwest::Method::GET, path))
            .await
    }

    /// `/api/admin{path}` as `ops` with a JSON body.
    pub async fn admin_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        self.send(self.admin_request(method, path).json(body)).await
    }

    /// `POST /api/admin/tokens` as `ops`; panics unless it answers 201.
    pub async fn admin_create(&self, body: &Value) -> AdminToken {
        let answer = self
            .admin_json(reqwest::Method::POST, "/tokens", body)
            .await;
        assert_eq!(answer.status, 201, "admin create failed: {answer:?}");
        let text = |field: &str| answer.body[field].as_str().expect(field).to_owned();
        AdminToken {
            key: text("rawApiKey"),
            public_id: text("rawPublicId"),
            id: answer.body["token"]["id"].as_u64().expect("token.id"),
            body: answer.body,
        }
    }

    /// `(event, actor, detail)` of every audit row of `token_id` (`None`: rows of no token),
    /// oldest first; the actor as `<type>:<id>` (`config:ops`, `user:4`) or `<type>` (`cli`,
    /// `system`).
    pub async fn audit_rows(&self, token_id: Option<u64>) -> Vec<(String, String, Value)> {
        let sql = "SELECT event, actor_type, actor_id, detail FROM audit_events \
            WHERE token_id <=> ? ORDER BY id";
        let rows: Vec<(String, String, Option<String>, String)> =
            self.query_all(sql, (token_id,)).await;
        rows.into_iter()
            .map(|(event, kind, id, detail)| {
                let detail = serde_json::from_str(&detail).expect("detail is JSON");
                let actor = id.map_or(kind.clone(), |id| format!("{kind}:{id}"));
                (event, actor, detail)
            })
            .collect()
    }

    /// The `metadata` column of a token, parsed; `Value::Null` when it is NULL.
    pub async fn stored_metadata(&self, token_id: u64) -> Value {
        let text: Option<String> = self
            .query_one("SELECT metadata FROM api_tokens WHERE id = ?", (token_id,))
            .await;
        text.map_or(Value::Null, |text| {
            serde_json::from_str(&text).expect("metadata is JSON")
        })
    }
}

/// Runs `iam-tokens <args>` on `app`'s database, with no inherited `IAM_*` or `RUST_LOG`
/// variables and from a directory without a `config.toml`.
pub async fn run_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
    command.args(args).current_dir(env!("CARGO_TARGET_TMPDIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IAM") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command.env("IAM__DATABASE__URL", app.database_url());
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("blocking task")
        .expect("the binary runs")
}
