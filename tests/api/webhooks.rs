//! Webhook endpoints (SPEC B12) as an operator manages them: a secret shown once, reads that
//! never show it, bad input refused naming its field, scopes, internal addresses refused at
//! creation, and the command line. Deliveries are in `webhook_delivery.rs`; the helpers here
//! serve both.

use std::time::Duration;

use chrono::{DateTime, Utc};
use iam_tokens::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin_credentials::stored;
use crate::helpers::{
    admin_as, admin_error, forbidden, run_cli, spawn_admin_app_with, Answer, TestApp,
};
use crate::webhook_receiver::{allow_local_receiver, Received, Receiver};

// ---- Helpers shared with webhook_delivery.rs ----

/// `ops`, the configured admin, as the actor of an event.
pub(crate) fn ops_actor() -> Value {
    json!({"type": "config", "id": "ops", "name": "ops"})
}

/// An admin app whose receivers are on this machine, polling every 20 ms.
pub(crate) async fn spawn_local() -> TestApp {
    spawn_admin_app_with(allow_local_receiver).await
}

/// An admin app whose receivers are on this machine and which runs no dispatcher: the test
/// drives every round with [`round`].
pub(crate) async fn spawn_driven() -> TestApp {
    spawn_driven_with(|_| {}).await
}

/// [`spawn_driven`], its settings changed by `configure`.
pub(crate) async fn spawn_driven_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_admin_app_with(|settings| {
        allow_local_receiver(settings);
        settings.webhooks.enabled = false;
        configure(settings);
    })
    .await
}

/// One dispatcher round of `app`, run here: how many attempts it made (all finished).
pub(crate) async fn round(app: &TestApp) -> usize {
    app.tokens
        .events()
        .dispatch_once()
        .await
        .expect("a dispatch round")
}

/// An endpoint made through the API.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) id: u64,
    pub(crate) secret: String,
}

/// `POST /api/admin/webhooks` as `ops`; panics unless it answers 201.
pub(crate) async fn add_endpoint(app: &TestApp, body: &Value) -> Endpoint {
    let answer = app.admin_json(Method::POST, "/webhooks", body).await;
    assert_eq!(answer.status, 201, "create {body}: {answer:?}");
    Endpoint {
        id: answer.body["id"].as_u64().expect("id"),
        secret: answer.body["secret"].as_str().expect("secret").to_owned(),
    }
}

/// An endpoint at `receiver` subscribed to `events`.
pub(crate) async fn subscribe(app: &TestApp, receiver: &Receiver, events: &[&str]) -> Endpoint {
    add_endpoint(
        app,
        &json!({"url": receiver.url("/hook"), "events": events}),
    )
    .await
}

/// `GET /api/admin/webhooks/{id}` as `ops`.
pub(crate) async fn endpoint(app: &TestApp, id: u64) -> Answer {
    app.admin_get(&format!("/webhooks/{id}")).await
}

/// `PATCH /api/admin/webhooks/{id}` as `ops`.
pub(crate) async fn patch_endpoint(app: &TestApp, id: u64, body: &Value) -> Answer {
    let path = format!("/webhooks/{id}");
    app.admin_json(Method::PATCH, &path, body).await
}

/// `POST /api/admin/webhooks{path}` as `ops`, without a body.
pub(crate) async fn post(app: &TestApp, path: &str) -> Answer {
    let path = format!("/webhooks{path}");
    app.send(app.admin_request(Method::POST, &path)).await
}

/// The delivery log (`query` starts with `?` or is empty), newest first; panics unless 200.
pub(crate) async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let answer = app.admin_get(&format!("/webhooks/deliveries{query}")).await;
    assert_eq!(answer.status, 200, "deliveries{query}: {answer:?}");
    answer.body["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

/// The one delivery to `endpoint`, once `done` holds of it (polled for up to 10 s of real
/// time: the background dispatcher writes what an attempt got after the receiver answered).
pub(crate) async fn delivery_when(
    app: &TestApp,
    endpoint: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(app, &format!("?endpoint={endpoint}")).await;
        if let [one] = log.as_slice() {
            if done(one) {
                return one.clone();
            }
        }
        if std::time::Instant::now() > deadline {
            panic!("{what}: the delivery log of endpoint {endpoint} is {log:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A timestamp of an answer.
pub(crate) fn at(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|_| panic!("not ISO-8601: {text}"))
        .with_timezone(&Utc)
}

/// Asserts that a request verifies under `secret` with the reference library.
pub(crate) fn assert_verifies(request: &Received, secret: &str, case: &str) {
    if let Err(err) = request.verify(secret) {
        panic!("{case}: does not verify ({err}): {request:#?}");
    }
}

/// The events of what a receiver got, in order of arrival.
pub(crate) fn types(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// ---- Endpoints ----

/// An endpoint as every read shows it (never a secret), made and last changed now.
fn view(app: &TestApp, id: u64, url: &str, description: Value, events: Value, meta: bool) -> Value {
    json!({
        "id": id, "url": url, "description": description, "events": events,
        "includeMetadata": meta, "enabled": true, "failingSince": null,
        "previousSecretExpiresAt": null,
        "createdAt": app.clock_iso(), "updatedAt": app.clock_iso(),
    })
}

/// Panics when a read shows a secret.
fn assert_no_secret(answer: &Answer, case: &str) {
    let text = answer.body.to_string();
    assert!(!text.contains("whsec_"), "{case} shows a secret: {text}");
    assert!(answer.body.get("secret").is_none(), "{case}: {text}");
}

#[tokio::test]
async fn an_endpoint_shows_its_secret_once_and_is_read_changed_and_deleted() {
    // No dispatcher: disabling endpoint 1 must not send endpoint 2 (`*`) anything here.
    let app = spawn_driven().await;
    let url = "http://127.0.0.1:9/hooks/iam";
    let body = json!({"url": url, "events": ["token.*", "credits.low"], "description": "billing"});
    let created = app.admin_json(Method::POST, "/webhooks", &body).await;
    assert_eq!(created.status, 201, "{created:?}");
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let mut without = created.body.clone();
    without.as_object_mut().unwrap().remove("secret");
    let first = view(
        &app,
        1,
        url,
        json!("billing"),
        json!(["token.*", "credits.low"]),
        false,
    );
    assert_eq!(without, first, "the 201 is the endpoint and its secret");

    let second_body =
        json!({"url": "http://127.0.0.1:9/b", "events": ["*"], "includeMetadata": true});
    let second = add_endpoint(&app, &second_body).await;
    assert_ne!(second.secret, secret, "each endpoint has its own secret");
    let second_view = view(
        &app,
        2,
        "http://127.0.0.1:9/b",
        Value::Null,
        json!(["*"]),
        true,
    );

    let list = app.admin_get("/webhooks").await;
    list.assert_is(200, &json!({"webhooks": [first, second_view]}), "list");
    assert_no_secret(&list, "the list");
    let one = endpoint(&app, 1).await;
    one.assert_is(200, &first, "get");
    assert_no_secret(&one, "a read");

    app.clock.advance(Duration::from_secs(1));
    let change = json!({"events": ["token.created", "role.*"], "description": null, "includeMetadata": true});
    let changed = patch_endpoint(&app, 1, &change).await;
    let mut expected = first.clone();
    expected["events"] = json!(["token.created", "role.*"]);
    expected["description"] = Value::Null;
    expected["includeMetadata"] = json!(true);
    expected["updatedAt"] = json!(app.clock_iso());
    changed.assert_is(
        200,
        &expected,
        "PATCH: events, description removed, metadata on",
    );
    assert_no_secret(&changed, "a PATCH");
    let kept = patch_endpoint(&app, 1, &json!({"description": "kept"})).await;
    expected["description"] = json!("kept");
    kept.assert_is(200, &expected, "an absent field is left as it was");
    endpoint(&app, 1)
        .await
        .assert_is(200, &expected, "get after PATCH");

    let off = patch_endpoint(&app, 1, &json!({"enabled": false})).await;
    expected["enabled"] = json!(false);
    expected["disabledReason"] = json!("manual");
    off.assert_is(200, &expected, "disabled by hand");

    let deleted = app
        .send(app.admin_request(Method::DELETE, "/webhooks/1"))
        .await;
    deleted.assert_is(200, &json!({"deleted": 1}), "DELETE");
    let gone = admin_error("not_found", "no webhook with id \"1\"", None);
    endpoint(&app, 1)
        .await
        .assert_is(404, &gone, "get after DELETE");
    let list = app.admin_get("/webhooks").await;
    list.assert_is(
        200,
        &json!({"webhooks": [second_view]}),
        "list after DELETE",
    );
}

#[tokio::test]
async fn an_unknown_or_non_numeric_endpoint_is_404_on_every_route() {
    let app = spawn_local().await;
    for raw in ["99", "x", "-1", "1.5"] {
        let missing = admin_error("not_found", &format!("no webhook with id \"{raw}\""), None);
        let cases = [
            ("GET", app.admin_get(&format!("/webhooks/{raw}")).await),
            ("PATCH", patch_endpoint_raw(&app, raw).await),
            (
                "DELETE",
                app.send(app.admin_request(Method::DELETE, &format!("/webhooks/{raw}")))
                    .await,
            ),
            ("rotate", post(&app, &format!("/{raw}/rotate-secret")).await),
            ("test", post(&app, &format!("/{raw}/test")).await),
        ];
        for (route, answer) in cases {
            answer.assert_is(404, &missing, &format!("{route} /webhooks/{raw}"));
        }
    }
}

async fn patch_endpoint_raw(app: &TestApp, raw: &str) -> Answer {
    let path = format!("/webhooks/{raw}");
    app.admin_json(Method::PATCH, &path, &json!({"description": "x"}))
        .await
}

#[tokio::test]
async fn bad_endpoint_input_is_refused_naming_its_field_and_writes_nothing() {
    let app = spawn_local().await;
    let url = "http://127.0.0.1:9/hook";
    let unknown_type = "\"token.nope\" is not an event type or a pattern of one \
        (token.created, token.*, *)";
    let count = "events is a non-empty list of at most 32 event types or patterns";
    let too_many: Vec<String> = (0..33).map(|_| "token.created".to_owned()).collect();
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, u16, &str, &str, &str)> = vec![
        ("an unknown event", json!({"url": url, "events": ["token.nope"]}),
            422, "invalid_events", unknown_type, "events"),
        ("no events", json!({"url": url, "events": []}),
            422, "invalid_events", count, "events"),
        ("33 patterns", json!({"url": url, "events": too_many}),
            422, "invalid_events", count, "events"),
        ("a test is not subscribed to", json!({"url": url, "events": ["webhook.test"]}),
            422, "invalid_events",
            "\"webhook.test\" is not an event type or a pattern of one (token.created, token.*, *)",
            "events"),
        ("ftp", json!({"url": "ftp://127.0.0.1/", "events": ["*"]}),
            422, "invalid_url", "url must use https", "url"),
        ("credentials in the url", json!({"url": "http://me:pw@127.0.0.1:9/", "events": ["*"]}),
            422, "invalid_url", "url must not carry credentials", "url"),
        ("a fragment", json!({"url": "http://127.0.0.1:9/#x", "events": ["*"]}),
            422, "invalid_url", "url must not have a fragment", "url"),
        ("a relative url", json!({"url": "/hook", "events": ["*"]}),
            422, "invalid_url",
            "url is an absolute http(s) URL of at most 2048 characters", "url"),
        ("a description of 201 characters",
            json!({"url": url, "events": ["*"], "description": "d".repeat(201)}),
            422, "invalid_description", "description is at most 200 characters", "description"),
        ("no url", json!({"events": ["*"]}),
            400, "bad_request", "missing field `url` at line 1 column 16", "url"),
    ];
    for (case, body, status, code, message, field) in cases {
        let answer = app.admin_json(Method::POST, "/webhooks", &body).await;
        let expected = admin_error(code, message, Some(field));
        assert_eq!(
            expected["status"],
            json!(status),
            "{case}: the table is wrong"
        );
        answer.assert_is(status, &expected, case);
    }
    let unknown = json!({"url": url, "events": ["*"], "secret": "whsec_mine"});
    let answer = app.admin_json(Method::POST, "/webhooks", &unknown).await;
    assert_eq!(answer.status, 400, "an unknown field: {answer:?}");
    assert_eq!(
        answer.body["code"],
        json!("bad_request"),
        "an unknown field"
    );
    assert_eq!(answer.body["field"], json!("secret"), "an unknown field");
    let exact = "a description of exactly 200 characters";
    let body = json!({"url": url, "events": ["*"], "description": "é".repeat(200)});
    let answer = app.admin_json(Method::POST, "/webhooks", &body).await;
    assert_eq!(answer.status, 201, "{exact}: {answer:?}");
    let list = app.admin_get("/webhooks").await;
    assert_eq!(
        list.body["webhooks"].as_array().map(Vec::len),
        Some(1),
        "{list:?}"
    );

    let patches = [
        (
            "PATCH an unknown event",
            json!({"events": ["nope.*"]}),
            "invalid_events",
            "events",
        ),
        (
            "PATCH no events",
            json!({"events": []}),
            "invalid_events",
            "events",
        ),
        (
            "PATCH an ftp url",
            json!({"url": "ftp://127.0.0.1/"}),
            "invalid_url",
            "url",
        ),
        (
            "PATCH a long description",
            json!({"description": "d".repeat(201)}),
            "invalid_description",
            "description",
        ),
    ];
    for (case, body, code, field) in patches {
        let answer = patch_endpoint(&app, 1, &body).await;
        assert_eq!(answer.status, 422, "{case}: {answer:?}");
        assert_eq!(
            (answer.body["code"].as_str(), answer.body["field"].as_str()),
            (Some(code), Some(field)),
            "{case}"
        );
    }
    let unchanged = endpoint(&app, 1).await;
    assert_eq!(
        unchanged.body["events"],
        json!(["*"]),
        "a refused PATCH changes nothing"
    );
}

#[tokio::test]
async fn http_is_refused_unless_allowed() {
    let app = spawn_admin_app_with(|_| {}).await;
    let body = json!({"url": "http://1.1.1.1/hook", "events": ["*"]});
    let answer = app.admin_json(Method::POST, "/webhooks", &body).await;
    let message = "url must use https (webhooks.allow_http is off)";
    answer.assert_is(
        422,
        &admin_error("invalid_url", message, Some("url")),
        "http",
    );
    let https = json!({"url": "https://1.1.1.1/hook", "events": ["*"]});
    let created = add_endpoint(&app, &https).await;
    let answer = patch_endpoint(&app, created.id, &json!({"url": "http://1.1.1.1/"})).await;
    answer.assert_is(
        422,
        &admin_error("invalid_url", message, Some("url")),
        "PATCH to http",
    );
}

#[tokio::test]
async fn a_credential_holding_only_webhooks_read_reads_but_cannot_change() {
    let app = spawn_local().await;
    let reader = stored(&app, "reader", &["webhooks.read"]).await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]});
    let refused = admin_as(&app, &reader.secret, Method::POST, "/webhooks", Some(&body)).await;
    refused.assert_is(403, &forbidden("webhooks.write"), "POST with webhooks.read");
    let made = add_endpoint(&app, &body).await;
    let read = admin_as(&app, &reader.secret, Method::GET, "/webhooks", None).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_no_secret(&read, "a read by the reader");
    #[rustfmt::skip]
    let writes = [
        (Method::PATCH, format!("/webhooks/{}", made.id), Some(json!({"enabled": false}))),
        (Method::DELETE, format!("/webhooks/{}", made.id), None),
        (Method::POST, format!("/webhooks/{}/rotate-secret", made.id), None),
        (Method::POST, format!("/webhooks/{}/test", made.id), None),
        (Method::POST, "/webhooks/deliveries/1/retry".to_owned(), None),
    ];
    for (method, path, body) in writes {
        let case = format!("{method} {path} with webhooks.read");
        let answer = admin_as(&app, &reader.secret, method, &path, body.as_ref()).await;
        answer.assert_is(403, &forbidden("webhooks.write"), &case);
    }
    let log = admin_as(
        &app,
        &reader.secret,
        Method::GET,
        "/webhooks/deliveries",
        None,
    )
    .await;
    log.assert_is(
        200,
        &json!({"deliveries": [], "nextCursor": null}),
        "the log",
    );
    endpoint(&app, made.id).await.assert_is(
        200,
        &view(
            &app,
            made.id,
            "http://127.0.0.1:9/hook",
            Value::Null,
            json!(["*"]),
            false,
        ),
        "nothing the reader tried changed it",
    );
}

// ---- Internal addresses ----

#[tokio::test]
async fn an_endpoint_at_an_internal_address_is_refused_naming_the_address() {
    let app = spawn_admin_app_with(|settings| settings.webhooks.allow_http = true).await;
    let receiver = Receiver::start().await;
    let loopback_name = format!("http://localhost:{}/", receiver.port);
    let cases: [(&str, &[&str]); 14] = [
        ("http://127.0.0.1:1/", &["127.0.0.1"]),
        ("http://127.1/", &["127.0.0.1"]),
        ("http://2130706433/", &["127.0.0.1"]),
        ("http://0x7f.0.0.1/", &["127.0.0.1"]),
        ("http://0.0.0.0:1/", &["0.0.0.0"]),
        ("http://100.64.0.1/", &["100.64.0.1"]),
        ("http://[64:ff9b::7f00:1]/", &["64:ff9b::7f00:1"]),
        ("http://[::1]/", &["::1"]),
        ("http://10.0.0.1/", &["10.0.0.1"]),
        ("http://192.168.1.20/in", &["192.168.1.20"]),
        (
            "http://169.254.169.254/latest/meta-data",
            &["169.254.169.254"],
        ),
        ("http://[::ffff:127.0.0.1]/", &["::ffff:127.0.0.1"]),
        ("http://[fd00:ec2::254]/", &["fd00:ec2::254"]),
        (&loopback_name, &["127.0.0.1", "::1"]),
    ];
    for (url, addresses) in cases {
        let body = json!({"url": url, "events": ["*"]});
        let answer = app.admin_json(Method::POST, "/webhooks", &body).await;
        let messages: Vec<String> = addresses
            .iter()
            .map(|ip| {
                format!("url resolves to {ip}, a loopback, private, link-local or reserved address")
            })
            .collect();
        assert_eq!(answer.status, 422, "{url}: {answer:?}");
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(
            messages.iter().any(|m| m == detail),
            "{url}: {detail:?} names none of {addresses:?}"
        );
        answer.assert_is(422, &admin_error("invalid_url", detail, Some("url")), url);
    }
    let list = app.admin_get("/webhooks").await;
    list.assert_is(200, &json!({"webhooks": []}), "nothing was stored");
    assert!(
        receiver.received().is_empty(),
        "nothing was sent to the receiver"
    );

    let public = add_endpoint(&app, &json!({"url": "http://1.1.1.1/", "events": ["*"]})).await;
    let answer = patch_endpoint(&app, public.id, &json!({"url": "http://127.0.0.1:1/"})).await;
    let message = "url resolves to 127.0.0.1, a loopback, private, link-local or reserved address";
    answer.assert_is(
        422,
        &admin_error("invalid_url", message, Some("url")),
        "PATCH",
    );
}

// ---- The command line ----

fn stdout(output: &std::process::Output, case: &str) -> String {
    assert!(
        output.status.success(),
        "{case} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn words(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|line| line.split_whitespace().collect())
        .collect()
}

#[tokio::test]
async fn the_cli_adds_lists_and_removes_endpoints_and_prints_the_secret_once() {
    let app = spawn_admin_app_with(|_| {}).await;
    let url = "https://1.1.1.1/hooks";
    let add = [
        "webhooks",
        "add",
        "--url",
        url,
        "--event",
        "token.*",
        "--event",
        "role.created",
    ];
    let added = stdout(&run_cli(&app, &add).await, "webhooks add");
    let lines = words(&added);
    assert_eq!(lines.len(), 4, "{added}");
    assert_eq!(lines[0], ["id", "1"], "{added}");
    assert_eq!(lines[1], ["url", url], "{added}");
    assert_eq!(lines[2], ["events", "token.*,role.created"], "{added}");
    assert_eq!(lines[3][0], "secret", "{added}");
    let secret = lines[3][1].to_owned();
    assert!(secret.starts_with("whsec_"), "{added}");

    let table = stdout(&run_cli(&app, &["webhooks", "list"]).await, "webhooks list");
    #[rustfmt::skip]
    let expected = vec![
        vec!["ID", "STATE", "EVENTS", "URL"],
        vec!["1", "enabled", "token.*,role.created", url],
    ];
    assert_eq!(words(&table), expected, "{table}");
    let listed = stdout(
        &run_cli(&app, &["webhooks", "list", "--json"]).await,
        "list --json",
    );
    assert!(
        !listed.contains("whsec_") && !table.contains("whsec_"),
        "{table}{listed}"
    );
    let mut rows: Value = serde_json::from_str(&listed).unwrap_or_else(|_| panic!("{listed}"));
    let created_at = rows[0]["createdAt"].take();
    assert!(created_at.is_string(), "{listed}");
    #[rustfmt::skip]
    let expected = json!([{
        "id": 1, "url": url, "description": null, "events": ["token.*", "role.created"],
        "includeMetadata": false, "enabled": true, "disabledReason": null, "createdAt": null,
    }]);
    assert_eq!(rows, expected, "list --json");
    let api = endpoint(&app, 1).await;
    assert_eq!(
        api.body["events"],
        json!(["token.*", "role.created"]),
        "{api:?}"
    );

    let refused = [
        (
            vec!["--url", "http://1.1.1.1/", "--event", "*"],
            "url must use https",
        ),
        (
            vec!["--url", "https://127.0.0.1/", "--event", "*"],
            "url resolves to 127.0.0.1",
        ),
        (
            vec!["--url", url, "--event", "token.nope"],
            "\"token.nope\" is not an event type",
        ),
    ];
    for (args, says) in refused {
        let mut command = vec!["webhooks", "add"];
        command.extend(args);
        let output = run_cli(&app, &command).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?} succeeded");
        assert!(stderr.contains(says), "{command:?}: {stderr}");
    }

    let removed = stdout(&run_cli(&app, &["webhooks", "remove", "1"]).await, "remove");
    assert_eq!(removed, "removed webhook 1\n");
    let listed = stdout(
        &run_cli(&app, &["webhooks", "list", "--json"]).await,
        "list --json",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&listed).ok(),
        Some(json!([])),
        "{listed}"
    );
    let again = run_cli(&app, &["webhooks", "remove", "1"]).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "a second remove succeeded");
    assert!(stderr.contains("no webhook with id 1"), "{stderr}");
}
