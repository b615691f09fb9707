//! A real HTTP receiver for webhook tests: it records every request (headers, body) and
//! answers what a test scripted (default 200), and can refuse connections (`reserved`) until it
//! starts listening on that port (`up`). Every request can be verified with the reference Standard
//! Webhooks library (the `standardwebhooks` crate).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").expect("webhook-id")
    }

    /// Verifies the request with the reference library under `secret` (`whsec_…`). When the
    /// signed timestamp is outside the library's 5-minute tolerance of the real clock (a test
    /// moved its manual clock), the library's own `sign` is compared with every signature
    /// sent instead.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let hook = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::header::HeaderName::from_bytes(name.as_bytes()),
                http::header::HeaderValue::from_str(value),
            ) {
                map.append(name, value);
            }
        }
        let timestamp: i64 = self
            .header("webhook-timestamp")
            .ok_or("no webhook-timestamp")?
            .parse()
            .map_err(|_| "webhook-timestamp is not a number")?;
        let skew = (chrono::Utc::now().timestamp() - timestamp).abs();
        if skew < 240 {
            return hook
                .verify(self.body.as_bytes(), &map)
                .map_err(|e| e.to_string());
        }
        let expected = hook
            .sign(self.webhook_id(), timestamp, self.body.as_bytes())
            .map_err(|e| e.to_string())?;
        let sent = self
            .header("webhook-signature")
            .ok_or("no webhook-signature")?;
        match sent.split(' ').any(|signature| signature == expected) {
            true => Ok(()),
            false => Err("signature invalid".into()),
        }
    }
}

/// An answer to script.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Scripted {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Scripted>,
    /// Answered when the script is empty (200 unless set).
    default: Option<Scripted>,
}

/// The receiver.
pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
    handle: Mutex<Option<ServerHandle>>,
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let received = Received {
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let scripted = {
        let mut state = state.lock().unwrap();
        state.received.push(received);
        let default = state.default.clone();
        state
            .script
            .pop_front()
            .or(default)
            .unwrap_or_else(|| Scripted::status(200))
    };
    if !scripted.delay.is_zero() {
        tokio::time::sleep(scripted.delay).await;
    }
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(scripted.status).unwrap());
    for (name, value) in &scripted.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    response.body(scripted.body)
}

impl Receiver {
    /// Listening on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Self {
            port,
            state: Arc::default(),
            handle: Mutex::new(None),
        };
        receiver.listen_on(listener);
        receiver
    }

    /// A receiver that is not listening yet (its port refuses connections) until `up`.
    pub async fn reserved() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        Self {
            port,
            state: Arc::default(),
            handle: Mutex::new(None),
        }
    }

    fn listen_on(&self, listener: std::net::TcpListener) {
        let state = web::Data::new(self.state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        *self.handle.lock().unwrap() = Some(server.handle());
        tokio::spawn(server);
    }

    /// Starts listening (again) on the same port.
    pub async fn up(&self) {
        let address: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let listener = std::net::TcpListener::bind(address).expect("the port is free again");
        self.listen_on(listener);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next answers, in order (then the default).
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// The answer once the script is spent.
    pub fn answer_by_default(&self, answer: Scripted) {
        self.state.lock().unwrap().default = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits (up to 10 s of real time) until at least `n` requests arrived; answers them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "expected {n} webhook request(s), got {}: {received:#?}",
                    received.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until requests stop arriving for `quiet`, then answers all of them.
    pub async fn settle(&self, quiet: Duration) -> Vec<Received> {
        let mut seen = self.received().len();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.received().len();
            if now == seen {
                return self.received();
            }
            seen = now;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.lock().unwrap().take() {
            drop(handle.stop(false));
        }
    }
}

/// Settings for tests whose receiver is this machine: http and 127.0.0.1 allowed, a fast poll.
pub fn allow_local_receiver(settings: &mut iam_tokens::Settings) {
    settings.webhooks.allow_http = true;
    settings.webhooks.allow_cidrs = vec!["127.0.0.1/32".parse().unwrap()];
    settings.webhooks.poll_interval = Duration::from_millis(20);
}
