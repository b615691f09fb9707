//! The public routes (SPEC A7): `/health`, the 404 fallback, the common headers, and
//! `GET /api/public/verify` with and without its HMAC guard.

use std::time::Duration;

use hmac::{Hmac, Mac};
use iam_tokens::config::HmacSettings;
use iam_tokens::domain::Privilege;
use iam_tokens::secret::Secret;
use iam_tokens::{Clock, Settings};
use reqwest::Method;
use serde_json::json;
use sha2::Sha256;

use crate::helpers::{spawn_app, spawn_app_with, success_json, TestApp};

#[tokio::test]
async fn health_answers_200_ok() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn an_unknown_route_answers_404_with_the_riavzon_message() {
    let app = spawn_app().await;
    let expected = json!({"error": "The page you are looking for doesn't exists"});
    let paths = [
        "/nope",
        "/api",
        "/api/public",
        "/api/manage",
        "/api/manage/revoke/x",
    ];
    for path in paths {
        let answer = app.send(app.client.get(app.url(path))).await;
        answer.assert_is(404, &expected, path);
    }
}

#[tokio::test]
async fn every_json_response_carries_the_content_type_and_security_headers() {
    let app = spawn_app().await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let body = json!({"privilege": "full", "name": "x"});
    let list = app.url("/api/manage/list-metadata");
    #[rustfmt::skip]
    let cases = [
        ("404 fallback",          app.client.get(app.url("/nope"))),
        ("verify success",        app.verify_request(&token.raw_api_key, "full")),
        ("verify failure",        app.verify_request("garbage", "full")),
        ("verify without key",    app.client.get(app.url("/api/public/verify"))),
        ("manage without bearer", app.client.get(&list)),
        ("manage bad jwt",        app.client.get(&list).bearer_auth("x")),
        ("manage created",        app.manage_request(Method::POST, "new-token", 7).json(&body)),
        ("manage list",           app.manage_request(Method::GET, "list-metadata", 7)),
        ("manage not allowed",    app.manage_request(Method::POST, "new-token", 7).body("{}")),
        ("manage unknown action", app.manage_request(Method::GET, "nope", 7)),
    ];
    for (case, request) in cases {
        let answer = app.send(request).await;
        assert!(answer.body.is_object(), "{case}: not JSON: {answer:?}");
        #[rustfmt::skip]
        let expected = [
            ("content-type",    "application/json; charset=utf-8"),
            ("cache-control",   "no-cache, private, max-age=0"),
            ("pragma",          "no-cache"),
            ("expires",         "0"),
            ("x-frame-options", "DENY"),
        ];
        for (name, value) in expected {
            assert_eq!(answer.header(name), Some(value), "{case}: {name}");
        }
        let request_id = answer.header("x-request-id").unwrap_or_default();
        assert!(!request_id.is_empty(), "{case}: no X-Request-Id");
    }
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_an_insane_one_replaced() {
    let app = spawn_app().await;
    let with_id = |id: &str| app.client.get(app.url("/nope")).header("x-request-id", id);
    let echoed = app.send(with_id("trace-42")).await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-42"));

    let too_long = "a".repeat(129);
    let insane = [
        ("contains a space", "two words"),
        ("over 128 chars", &too_long),
    ];
    for (case, sent) in insane {
        let answer = app.send(with_id(sent)).await;
        let got = answer.header("x-request-id").unwrap_or_default();
        assert!(!got.is_empty() && got != sent, "{case}: got {got:?}");
    }
}

#[tokio::test]
async fn verify_without_an_api_key_answers_401_no_api_key_provided() {
    let app = spawn_app().await;
    let url = app.url("/api/public/verify?privilege=full");
    let cases = [
        ("header missing", app.client.get(&url)),
        ("header empty", app.client.get(&url).header("x-api-key", "")),
    ];
    for (case, request) in cases {
        let answer = app.send(request).await;
        answer.assert_is(401, &app.failure_now("No api key provided"), case);
    }
}

#[tokio::test]
async fn verify_with_a_missing_or_unknown_privilege_answers_400_bad_request() {
    let app = spawn_app().await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    #[rustfmt::skip]
    let cases = [
        ("no query",                  ""),
        ("no privilege",              "?other=full"),
        ("empty privilege",           "?privilege="),
        ("unknown privilege",         "?privilege=admin"),
        ("privileges are lower case", "?privilege=FULL"),
        ("trailing NUL",              "?privilege=full%00"),
        ("privilege given twice",     "?privilege=full&privilege=full"),
    ];
    for (case, query) in cases {
        let url = app.url(&format!("/api/public/verify{query}"));
        let answer = app
            .send(app.client.get(url).header("x-api-key", &token.raw_api_key))
            .await;
        answer.assert_is(400, &app.failure_now("Bad Request"), case);
    }
    let id = app.token_id(&token.raw_public_id).await;
    assert_eq!(app.usage_and_valid(id).await, (0, true));
}

#[tokio::test]
async fn the_privilege_parameter_is_percent_decoded_and_other_parameters_are_ignored() {
    let app = spawn_app().await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    for query in ["?privilege=%66ull", "?other=1&privilege=full&x"] {
        let url = app.url(&format!("/api/public/verify{query}"));
        let answer = app
            .send(app.client.get(url).header("x-api-key", &token.raw_api_key))
            .await;
        assert_eq!(answer.status, 200, "{query}: {:?}", answer.body);
    }
    let id = app.token_id(&token.raw_public_id).await;
    assert_eq!(app.usage_and_valid(id).await, (2, true));
}

#[tokio::test]
async fn verify_answers_401_invalid_key_for_bad_unknown_revoked_and_wrong_privilege_keys() {
    let app = spawn_app().await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let revoked = app.create_token(7, Privilege::Full, "old").await;
    app.tokens
        .revoke(&revoked.raw_api_key, Privilege::Full)
        .await;
    let mut bad_checksum = token.raw_api_key.clone();
    let last = if bad_checksum.ends_with('0') {
        "1"
    } else {
        "0"
    };
    bad_checksum.replace_range(bad_checksum.len() - 1.., last);

    #[rustfmt::skip]
    let cases = [
        ("garbage",                 "garbage".to_owned(),       "full"),
        ("bad checksum",            bad_checksum,               "full"),
        ("well formed but unknown", well_formed_unknown_key(),  "full"),
        ("revoked",                 revoked.raw_api_key.clone(), "full"),
        ("another privilege",       token.raw_api_key.clone(),  "demo"),
    ];
    for (case, key, privilege) in cases {
        let answer = app.verify(&key, privilege).await;
        answer.assert_is(401, &app.failure_now("Invalid key"), case);
    }
    let id = app.token_id(&token.raw_public_id).await;
    let uses = app.usage_and_valid(id).await;
    assert_eq!(uses, (0, true), "no failure counted a use");
}

#[tokio::test]
async fn verify_checks_the_ip_restriction_against_the_caller() {
    let app = spawn_app().await;
    let body = |ipv4| json!({"privilege": "full", "name": "ci", "ipv4": ipv4});
    let elsewhere = app.http_token(7, &body(json!(["10.0.0.0/8"]))).await;
    let loopback = app.http_token(7, &body(json!(["127.0.0.0/8"]))).await;

    let refused = app.verify(&elsewhere.key, "full").await;
    refused.assert_is(
        401,
        &app.failure_now("Invalid Host"),
        "restricted to 10.0.0.0/8",
    );
    assert_eq!(app.usage_and_valid(elsewhere.id).await, (0, true));

    let allowed = app.verify(&loopback.key, "full").await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.data()["usageCount"], 1);
}

#[tokio::test]
async fn verify_answers_token_expired_once_then_invalid_key() {
    let app = spawn_app().await;
    let body = json!({"privilege": "full", "name": "ci", "expires": 60_000});
    let token = app.http_token(7, &body).await;
    let status = app.verify(&token.key, "full").await.status;
    assert_eq!(status, 200, "valid before expiry");

    app.clock.advance(Duration::from_secs(60));
    let expired = app.verify(&token.key, "full").await;
    expired.assert_is(401, &app.failure_now("Token expired"), "at expiry");
    assert_eq!(app.usage_and_valid(token.id).await, (1, false));

    let later = app.verify(&token.key, "full").await;
    later.assert_is(401, &app.failure_now("Invalid key"), "after expiry");
}

#[tokio::test]
async fn verify_answers_200_with_exactly_the_token_data_and_counts_each_use() {
    let app = spawn_app().await;
    let token = app.create_token(7, Privilege::Protected, "ci").await;
    let id = app.token_id(&token.raw_public_id).await;
    let created = app.clock_iso();
    let verified = |last_used: &str, usage_count: u64| {
        json!({"name": "ci", "tokenId": id, "userId": 7, "createdAt": created,
            "expiresAt": null, "lastUsed": last_used, "usageCount": usage_count,
            "providedPrivilege": "protected"})
    };

    let first = app.verify(&token.raw_api_key, "protected").await;
    first.assert_is(
        200,
        &success_json(&created, verified(&created, 1)),
        "first use",
    );

    app.clock.advance(Duration::from_secs(90));
    let second = app.verify(&token.raw_api_key, "protected").await;
    let now = app.clock_iso();
    second.assert_is(200, &app.success_now(verified(&now, 2)), "second use");
    assert_eq!(app.usage_and_valid(id).await, (2, true));
}

/// `api_<128 hex>_<checksum>` with a correct checksum that no token has.
fn well_formed_unknown_key() -> String {
    use sha2::Digest as _;
    let random = "ab".repeat(64);
    let checksum = hex::encode(Sha256::digest(random.as_bytes()));
    format!("api_{random}_{}", &checksum[..8])
}

// ---- The HMAC guard ----

const CLIENT_ID: &str = "bff";
const SHARED_SECRET: &str = "a-shared-hmac-secret-of-at-least-32-chars";
const OTHER_SECRET: &str = "not-the-shared-secret-but-just-as-long-!!";
const VERIFY_PATH: &str = "/api/public/verify?privilege=full";
const DEMO_PATH: &str = "/api/public/verify?privilege=demo";

pub(crate) fn with_hmac(settings: &mut Settings) {
    settings.service.hmac = Some(HmacSettings {
        client_id: CLIENT_ID.to_owned(),
        shared_secret: Secret::new(SHARED_SECRET),
        max_clock_skew: Duration::from_secs(300),
        max_remembered_ids: 5_000_000,
    });
}

/// A named change to a correct signing, and the reason the guard must give for it.
type Defect = (&'static str, fn(&mut Signing), &'static str);

/// What a client signs, and how the sent headers may then differ from it.
pub(crate) struct Signing {
    client: &'static str,
    secret: &'static str,
    at_ms: i64,
    method: &'static str,
    path: &'static str,
    request_id: String,
    /// A guard header left out.
    omit: Option<&'static str>,
    /// A guard header sent with another value than the one signed.
    tamper: Option<(&'static str, &'static str)>,
}

impl Signing {
    /// `GET VERIFY_PATH` at `at_ms` signed by the configured client with the shared secret.
    pub(crate) fn new(at_ms: i64, request_id: &str) -> Self {
        Self {
            client: CLIENT_ID,
            secret: SHARED_SECRET,
            at_ms,
            method: "GET",
            path: VERIFY_PATH,
            request_id: request_id.into(),
            omit: None,
            tamper: None,
        }
    }

    /// `GET VERIFY_PATH` with `x-api-key` and the guard headers.
    pub(crate) fn request(&self, app: &TestApp, key: &str) -> reqwest::RequestBuilder {
        let message = format!(
            "{}:{}:{}:{}:{}",
            self.client, self.at_ms, self.method, self.path, self.request_id
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(message.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let mut request = app
            .client
            .get(app.url(VERIFY_PATH))
            .header("x-api-key", key);
        #[rustfmt::skip]
        let headers = [
            ("x-client-id",  self.client.to_owned()),
            ("x-timestamp",  self.at_ms.to_string()),
            ("x-request-id", self.request_id.clone()),
            ("x-signature",  signature),
        ];
        for (name, signed) in headers {
            let value = match self.tamper {
                Some((tampered, value)) if tampered == name => value.to_owned(),
                _ => signed,
            };
            if self.omit != Some(name) {
                request = request.header(name, value);
            }
        }
        request
    }
}

#[tokio::test]
async fn a_correctly_signed_verification_passes_the_hmac_guard() {
    let app = spawn_app_with(with_hmac).await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let now = app.clock.now().timestamp_millis();

    let signed = Signing::new(now, "req-1").request(&app, &token.raw_api_key);
    let answer = app.send(signed).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.data()["usageCount"], 1);
    assert_eq!(answer.header("x-request-id"), Some("req-1"));

    let edge = Signing::new(now - 300_000, "req-2").request(&app, &token.raw_api_key);
    let answer = app.send(edge).await;
    assert_eq!(
        answer.status, 200,
        "a timestamp 300 s old is inside the window"
    );
}

#[tokio::test]
async fn the_hmac_guard_answers_401_with_its_reason_for_each_defect() {
    let app = spawn_app_with(with_hmac).await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let now = app.clock.now().timestamp_millis();
    let (missing, bad) = ("Missing signature headers", "Invalid signature");
    let window = "Request timestamp outside the allowed window";
    let (no_time, long_id) = ("Invalid timestamp", "Invalid request id");
    #[rustfmt::skip]
    let cases: [Defect; 15] = [
        ("no X-Client-Id",              |s| s.omit = Some("x-client-id"),  missing),
        ("no X-Timestamp",              |s| s.omit = Some("x-timestamp"),  missing),
        ("no X-Request-Id",             |s| s.omit = Some("x-request-id"), missing),
        ("no X-Signature",              |s| s.omit = Some("x-signature"),  missing),
        ("another client, self-signed", |s| s.client = "intruder",         "Unknown client"),
        ("signed with another secret",  |s| s.secret = OTHER_SECRET,       bad),
        ("signed over another query",   |s| s.path = DEMO_PATH,            bad),
        ("signed over another method",  |s| s.method = "POST",             bad),
        ("signature not hex",           |s| s.tamper = Some(("x-signature", "zz")), bad),
        ("sent another request id",     |s| s.tamper = Some(("x-request-id", "2")), bad),
        ("sent another timestamp",      |s| s.tamper = Some(("x-timestamp", "1")), window),
        ("timestamp 301 s old",         |s| s.at_ms -= 301_000,            window),
        ("timestamp 301 s ahead",       |s| s.at_ms += 301_000,            window),
        ("timestamp not a number",      |s| s.tamper = Some(("x-timestamp", "x")), no_time),
        ("request id over 128 chars",   |s| s.request_id = "r".repeat(129), long_id),
    ];
    for (case, change, reason) in cases {
        let mut signing = Signing::new(now, "req");
        change(&mut signing);
        let answer = app.send(signing.request(&app, &token.raw_api_key)).await;
        answer.assert_is(401, &app.failure_now(reason), case);
    }
    let id = app.token_id(&token.raw_public_id).await;
    let uses = app.usage_and_valid(id).await;
    assert_eq!(uses, (0, true), "no rejected request counted a use");
}

#[tokio::test]
async fn the_hmac_guard_refuses_a_replayed_request_id() {
    let app = spawn_app_with(with_hmac).await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let signed_now = |id: &str| {
        let at = app.clock.now().timestamp_millis();
        Signing::new(at, id).request(&app, &token.raw_api_key)
    };
    let used = "Request id already used";

    assert_eq!(app.send(signed_now("once")).await.status, 200);
    let replay = app.send(signed_now("once")).await;
    replay.assert_is(401, &app.failure_now(used), "replayed");
    app.clock.advance(Duration::from_secs(5));
    let re_signed = app.send(signed_now("once")).await;
    re_signed.assert_is(401, &app.failure_now(used), "re-signed later");

    let id = app.token_id(&token.raw_public_id).await;
    let uses = app.usage_and_valid(id).await;
    assert_eq!(uses, (1, true), "only the first request counted");
}

/// An id is remembered exactly while a replay could pass the timestamp check: once its
/// timestamp is older than the skew, the replay fails on the timestamp, and the id is
/// forgotten (a fresh signing may use it again).
#[tokio::test]
async fn a_request_id_is_remembered_until_its_timestamp_leaves_the_window() {
    let app = spawn_app_with(with_hmac).await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let first_at = app.clock.now().timestamp_millis();
    let first = Signing::new(first_at, "id-1");
    assert_eq!(
        app.send(first.request(&app, &token.raw_api_key))
            .await
            .status,
        200
    );
    app.clock.advance(Duration::from_secs(300));
    let replay = app.send(first.request(&app, &token.raw_api_key)).await;
    replay.assert_is(
        401,
        &app.failure_now("Request id already used"),
        "at the edge",
    );
    app.clock.advance(Duration::from_secs(1));
    let replay = app.send(first.request(&app, &token.raw_api_key)).await;
    let window = "Request timestamp outside the allowed window";
    replay.assert_is(401, &app.failure_now(window), "301 s later");
    let fresh = Signing::new(app.clock.now().timestamp_millis(), "id-1");
    let answer = app.send(fresh.request(&app, &token.raw_api_key)).await;
    assert_eq!(
        answer.status, 200,
        "a new signing may reuse a forgotten id: {answer:?}"
    );
}

#[tokio::test]
async fn the_replay_window_is_bounded_and_frees_up_as_ids_leave_it() {
    let app = spawn_app_with(|s| {
        with_hmac(s);
        if let Some(hmac) = &mut s.service.hmac {
            hmac.max_remembered_ids = 2;
        }
    })
    .await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let signed_now = |id: &str| {
        let at = app.clock.now().timestamp_millis();
        Signing::new(at, id).request(&app, &token.raw_api_key)
    };
    assert_eq!(app.send(signed_now("a")).await.status, 200);
    assert_eq!(app.send(signed_now("b")).await.status, 200);
    let full = app.send(signed_now("c")).await;
    let reason = "Too many signed requests in the replay window";
    full.assert_is(401, &app.failure_now(reason), "a third id");
    app.clock.advance(Duration::from_secs(301));
    assert_eq!(
        app.send(signed_now("c")).await.status,
        200,
        "a and b left the window"
    );
}

#[tokio::test]
async fn with_the_guard_on_an_unsigned_request_is_refused_before_its_key_is_read() {
    let app = spawn_app_with(with_hmac).await;
    let token = app.create_token(7, Privilege::Full, "ci").await;
    let answer = app.verify(&token.raw_api_key, "full").await;
    answer.assert_is(
        401,
        &app.failure_now("Missing signature headers"),
        "unsigned",
    );
    let id = app.token_id(&token.raw_public_id).await;
    assert_eq!(app.usage_and_valid(id).await, (0, true));
}
