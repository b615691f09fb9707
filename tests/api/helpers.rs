//! A fresh application on a fresh database per test, and typed helpers per endpoint.

use std::sync::Arc;
use std::time::Duration;

use iam_tokens::clock::ManualClock;
use iam_tokens::http::JwtVerifier;
use iam_tokens::tokens::{CreateToken, CreatedToken};
use iam_tokens::token::{Privilege, TokenName};
use iam_tokens::{Application, Settings, TokenService};
use mysql_async::prelude::*;
use reqwest::{Client, Response};
use serde_json::Value;

pub const SERVER_URL: &str = "mysql://root@127.0.0.1:3306";

/// One running service with its own database, dropped when the test ends (even on panic).
pub struct TestApp {
    pub address: String,
    pub db_name: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub tokens: TokenService,
    pub settings: Settings,
    pub pool: mysql_async::Pool,
    jwt: JwtVerifier,
}

/// Default settings on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Default settings changed by `configure`, on a fresh database.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db_name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let mut settings = Settings::defaults().expect("defaults load");
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.database.url = iam_tokens::secret::Secret::new(format!("{SERVER_URL}/{db_name}"));
    settings.database.max_connections = 16;
    configure(&mut settings);
    spawn_on(settings, db_name).await
}

/// Starts a service with exactly these settings; `db_name` is dropped at the end.
pub async fn spawn_on(settings: Settings, db_name: String) -> TestApp {
    let clock = Arc::new(ManualClock::starting_now());
    let app = Application::build_with_clock(settings.clone(), clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let tokens = app.tokens().clone();
    tokio::spawn(app.run_until_stopped());
    let pool = mysql_async::Pool::new(format!("{SERVER_URL}/{db_name}").as_str());
    TestApp {
        address,
        db_name,
        client: Client::new(),
        clock: clock.clone(),
        tokens,
        jwt: JwtVerifier::new(&settings.auth.jwt_secret, clock),
        settings,
        pool,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let db_name = self.db_name.clone();
        // A fresh runtime on its own thread: Drop cannot await, and may run during a panic.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = mysql_async::Conn::from_url(SERVER_URL).await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS `{db_name}`"))
                        .await;
                    let _ = conn.disconnect().await;
                }
            });
        })
        .join();
    }
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
            .issue(user_id, Duration::from_secs(3600))
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
    pub async fn create_token(&self, user_id: u64, privilege: Privilege, name: &str) -> CreatedToken {
        let request = CreateToken::new(user_id, privilege, TokenName::parse(name).expect("name"));
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
        let mut conn = self.pool.get_conn().await.expect("test connection");
        conn.exec_first(sql, params)
            .await
            .expect("query")
            .expect("one row")
    }
}
