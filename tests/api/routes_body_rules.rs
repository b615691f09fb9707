//! Bodies of `POST /api/manage/*` (SPEC A7): JSON content type (else 403), at most 1 KiB
//! (else 413), not empty (else 403), well-formed and of the right shape (else 400).

use std::io::{Read, Write};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Answer, TestApp};

const LIMIT: usize = 1024;

fn not_allowed() -> Value {
    json!({"error": "not allowed."})
}

fn too_large() -> Value {
    json!({"error": "Payload too large"})
}

/// `POST /api/manage/{action}` as user 7 with this raw body and content type (none when `None`).
async fn post_raw(
    app: &TestApp,
    action: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = app.manage_request(Method::POST, action, 7).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    app.send(request).await
}

/// A valid new-token body padded with an ignored field to exactly `len` bytes.
fn new_token_body_of(len: usize) -> String {
    let head = r#"{"privilege":"full","name":"ci","pad":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[tokio::test]
async fn a_post_without_a_json_content_type_answers_403_not_allowed() {
    let app = spawn_app().await;
    let body = r#"{"privilege":"full","name":"ci"}"#;
    #[rustfmt::skip]
    let cases = [
        ("no content type",    None),
        ("text/plain",         Some("text/plain")),
        ("form",               Some("application/x-www-form-urlencoded")),
        ("multipart",          Some("multipart/form-data; boundary=x")),
        ("json-patch",         Some("application/json-patch+json")),
        ("jsonp",              Some("application/jsonp")),
        ("bare json",          Some("json")),
        ("empty content type", Some("")),
    ];
    for action in ["new-token", "revoke"] {
        for (case, content_type) in cases {
            let answer = post_raw(&app, action, content_type, body).await;
            answer.assert_is(403, &not_allowed(), &format!("{action}, {case}"));
        }
    }
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn application_json_with_parameters_or_in_another_case_is_accepted() {
    let app = spawn_app().await;
    let body = r#"{"privilege":"full","name":"ci"}"#;
    let cases = [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
    ];
    for content_type in cases {
        let answer = post_raw(&app, "new-token", Some(content_type), body).await;
        assert_eq!(answer.status, 201, "{content_type}: {answer:?}");
    }
    assert_eq!(app.token_row_count().await, cases.len() as u64);
}

#[tokio::test]
async fn a_body_of_exactly_1_kib_is_accepted_and_one_byte_more_answers_413() {
    let app = spawn_app().await;
    let at_limit = new_token_body_of(LIMIT);
    assert_eq!(at_limit.len(), LIMIT);
    let answer = post_raw(&app, "new-token", Some("application/json"), at_limit).await;
    assert_eq!(answer.status, 201, "{answer:?}");

    let over = new_token_body_of(LIMIT + 1);
    let answer = post_raw(&app, "new-token", Some("application/json"), over).await;
    answer.assert_is(413, &too_large(), "1025 bytes");
    assert_eq!(app.token_row_count().await, 1);
}

#[tokio::test]
async fn the_content_type_is_checked_before_the_size_and_the_size_before_the_json() {
    let app = spawn_app().await;
    let garbage = "{".repeat(64 * 1024);
    let valid = new_token_body_of(64 * 1024);
    #[rustfmt::skip]
    let cases = [
        ("big garbage as text", "text/plain",       &garbage, 403, not_allowed()),
        ("big garbage as json", "application/json", &garbage, 413, too_large()),
        ("big valid json",      "application/json", &valid,   413, too_large()),
    ];
    for (case, content_type, sent, status, body) in cases {
        let answer = post_raw(&app, "new-token", Some(content_type), sent.clone()).await;
        answer.assert_is(status, &body, case);
    }
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn a_chunked_body_over_1_kib_without_content_length_answers_413() {
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let jwt = app.access_token(7);
    let body = new_token_body_of(4 * LIMIT);
    let (status, answer) = tokio::task::spawn_blocking(move || chunked_post(&address, &jwt, &body))
        .await
        .unwrap();
    assert_eq!(status, 413, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap(), too_large());
    assert_eq!(app.token_row_count().await, 0);
}

/// Sends `body` to new-token in 512-byte chunks over a plain socket; returns status and body.
fn chunked_post(address: &str, jwt: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!(
        "POST /api/manage/new-token HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {jwt}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(512) {
        let chunk = String::from_utf8_lossy(chunk);
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    // The server may close before reading everything; what arrived before that is the answer.
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn an_empty_body_answers_403_not_allowed() {
    let app = spawn_app().await;
    let cases = [("empty", ""), ("only whitespace", " \r\n\t ")];
    for action in ["new-token", "revoke", "rotate"] {
        for (case, body) in cases {
            let answer = post_raw(&app, action, Some("application/json"), body).await;
            answer.assert_is(403, &not_allowed(), &format!("{action}, {case}"));
        }
    }
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn malformed_json_answers_400_bad_request() {
    let app = spawn_app().await;
    #[rustfmt::skip]
    let cases: [(&str, &[u8]); 9] = [
        ("unclosed object",  br#"{"privilege":"full","name":"ci""#),
        ("trailing comma",   br#"{"privilege":"full","name":"ci",}"#),
        ("single quotes",    br#"{'privilege':'full','name':'ci'}"#),
        ("unquoted keys",    br#"{privilege:"full",name:"ci"}"#),
        ("trailing garbage", br#"{"privilege":"full","name":"ci"} x"#),
        ("two documents",    br#"{"privilege":"full","name":"ci"}{}"#),
        ("invalid UTF-8",    b"{\"privilege\":\"full\",\"name\":\"\xff\"}"),
        ("bare word",        b"nul"),
        ("lone surrogate",   br#"{"privilege":"full","name":"\ud800"}"#),
    ];
    for action in ["new-token", "metadata"] {
        for (case, body) in cases {
            let answer = post_raw(&app, action, Some("application/json"), body.to_vec()).await;
            answer.assert_is(
                400,
                &app.failure_now("Bad Request"),
                &format!("{action}, {case}"),
            );
        }
    }
    assert_eq!(app.token_row_count().await, 0);
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_answers_400_bad_request() {
    let app = spawn_app().await;
    let id = "a".repeat(137);
    let snake_case = json!({"token_id": 1, "public_identifier": id, "name": "ci"});
    let addressed = json!({"tokenId": 1, "publicIdentifier": id, "name": "ci"});
    #[rustfmt::skip]
    let cases = [
        ("new-token",        "null",                json!(null)),
        ("new-token",        "an array",            json!([{"privilege": "full", "name": "ci"}])),
        ("new-token",        "a string",            json!("full")),
        ("new-token",        "a number",            json!(7)),
        ("new-token",        "empty object",        json!({})),
        ("new-token",        "no name",             json!({"privilege": "full"})),
        ("new-token",        "no privilege",        json!({"name": "ci"})),
        ("new-token",        "unknown privilege",   json!({"privilege": "admin", "name": "ci"})),
        ("new-token",        "capitalised keys",    json!({"Privilege": "full", "Name": "ci"})),
        ("revoke",           "empty object",        json!({})),
        ("revoke",           "no tokenId",          json!({"publicIdentifier": id, "name": "ci"})),
        ("revoke",           "no publicIdentifier", json!({"tokenId": 1, "name": "ci"})),
        ("revoke",           "no name",             json!({"tokenId": 1, "publicIdentifier": id})),
        ("revoke",           "snake_case keys",     snake_case),
        ("privilege-update", "no newPrivilege",     addressed),
    ];
    for (action, case, body) in cases {
        let answer = post_raw(&app, action, Some("application/json"), body.to_string()).await;
        answer.assert_is(
            400,
            &app.failure_now("Bad Request"),
            &format!("{action}, {case}"),
        );
    }
    assert_eq!(app.token_row_count().await, 0);
}
