//! Clients that trickle are cut off, and cost the others nothing: a request head must arrive
//! within `server.request_timeout`, a body within `server.body_timeout` (408, connection
//! closed). Load balancers' `HEAD` probes of `/health` and `/ready` are answered.
//!
//! These tests run on real time (socket timeouts are the kernel's and tokio's, not the injected
//! clock), with bounds of a few hundred milliseconds.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_admin_app_with, spawn_app, spawn_app_with, TestApp, ADMIN_SECRET};

const BOUND: Duration = Duration::from_millis(400);

async fn spawn_impatient_app() -> TestApp {
    spawn_admin_app_with(|s| {
        s.server.request_timeout = BOUND;
        s.server.body_timeout = BOUND;
        s.server.workers = 2;
    })
    .await
}

fn port_of(app: &TestApp) -> u16 {
    app.address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("port")
}

/// Opens a connection and sends `head`, then one byte of the declared body every 100 ms until
/// the server answers or closes (at most 10 s). Answers what it read and when it ended.
async fn trickle(port: u16, head: String) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(10) {
        let _ = stream.write_all(b" ").await;
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => {}
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

fn manage_head(app: &TestApp, path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 900\r\n\r\n{{",
        app.access_token(7)
    )
}

#[tokio::test]
async fn twenty_trickled_bodies_are_cut_off_with_408_while_others_are_served() {
    let app = spawn_impatient_app().await;
    let port = port_of(&app);
    let mut trickling = tokio::task::JoinSet::new();
    for i in 0..20 {
        let head = if i % 2 == 0 {
            manage_head(&app, "/api/manage/new-token")
        } else {
            format!(
                "POST /api/admin/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_SECRET}\r\n\
                 Content-Type: application/json\r\nContent-Length: 900\r\n\r\n{{"
            )
        };
        trickling.spawn(trickle(port, head));
    }
    // Meanwhile everyone else is served at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let health = app
            .client
            .get(app.url("/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(health.status(), 200);
        let body = json!({"privilege": "full", "name": "fast"});
        let created = app.manage_post("new-token", 7, &body).await;
        assert_eq!(created.status, 201, "{created:?}");
        assert!(started.elapsed() < BOUND, "served while others trickle");
    }
    let mut cut = 0;
    while let Some(joined) = trickling.join_next().await {
        let (answer, took) = joined.expect("trickling client");
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a trickled body gets 408: {answer:?}"
        );
        assert!(
            answer.contains("{\"error\":\"Request timeout\"}")
                || answer.contains("\"code\":\"request_timeout\""),
            "{answer}"
        );
        assert!(took < BOUND * 4, "cut off in {took:?}, bound {BOUND:?}");
        cut += 1;
    }
    assert_eq!(cut, 20);
    assert_eq!(
        app.token_row_count().await,
        5,
        "only the fast clients made tokens"
    );
}

#[tokio::test]
async fn a_trickled_request_head_is_cut_off_too() {
    let app = spawn_impatient_app().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port_of(&app)))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial head");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(started.elapsed() < BOUND * 4, "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_timeouts_are_configured_with_a_few_seconds_by_default() {
    let app = spawn_app().await;
    assert_eq!(app.settings.server.request_timeout, Duration::from_secs(5));
    assert_eq!(app.settings.server.body_timeout, Duration::from_secs(5));
    assert_eq!(app.settings.database.timeout, Duration::from_secs(2));
}

#[tokio::test]
async fn head_probes_of_health_and_ready_are_answered_without_a_body() {
    let app = spawn_app_with(|_| {}).await;
    for (path, content_type) in [
        ("/health", "text/plain; charset=utf-8"),
        ("/ready", "application/json; charset=utf-8"),
    ] {
        let head = app.client.head(app.url(path)).send().await.expect("HEAD");
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(
            head.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type),
            "HEAD {path}"
        );
        assert!(head.headers().contains_key("x-request-id"), "HEAD {path}");
        let body = head.bytes().await.expect("body");
        assert!(body.is_empty(), "HEAD {path} has no body");
    }
}
