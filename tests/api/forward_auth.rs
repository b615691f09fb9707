//! Forward-auth for gateways (SPEC B13): `ANY /api/forward-auth[/{tail}]` answers nginx
//! `auth_request`, Envoy `ext_authz`, Traefik `forwardAuth` and Caddy `forward_auth`. An allow
//! is a 200 with an empty body naming the token, its owner and its grants; a denial is its
//! status, `X-Auth-Code` and a problem body (nginx gets 400, 429 and 503 as 403). The policy
//! (privilege, permissions, cost, named limits, metadata) comes from the query of a trusted
//! peer or from the first `[[forward_auth.routes]]` rule covering the original method, host and
//! path, else `forward_auth.default`. Forwarded headers are believed only from
//! `server.trusted_proxies`. A call is a verification: it counts, spends, is analysed with the
//! route and method as tags, and is counted in `/metrics` under `route="forward_auth"`.
//! Every request comes from 127.0.0.1; `trust_local_proxy` makes that peer a trusted gateway.
//! The path-spelling test in `forward_auth_rules` proves that another spelling of a covered path
//! (`%61dmin`, dot segments) gets the rule or a 400, never the default (rules were once matched
//! against the raw path).
//!
//! This file holds the helpers the forward-auth suites share and the allow and key tests; the
//! denials are in `forward_auth_denials`, rules, costs, policy, forwarded headers and bad input
//! in `forward_auth_rules`, and the gateway replays, counting, outages and the off switch in
//! `forward_auth_replays`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use iam_tokens::config::RouteSettings;
use iam_tokens::domain::{GeneratedKey, Prefix};
use iam_tokens::Settings;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::helpers::{spawn_admin_app_with, trust_local_proxy, AdminToken, Answer, TestApp};

pub(crate) const FORWARD_AUTH: &str = "/api/forward-auth";
const REMOVE: &str = "authorization, x-api-key";
const CHALLENGE: &str = "Bearer realm=\"iam-tokens\"";

pub(crate) const MISSING: &str = "send the key as Authorization: Bearer <key>, or in x-api-key";
pub(crate) const NOT_VALID: &str = "the key is not valid";
pub(crate) const EXPIRED: &str = "the key has expired";
pub(crate) const DISABLED: &str = "the key is disabled";
pub(crate) const NOT_FROM_HERE: &str = "the key may not be used from here";
pub(crate) const LACKS: &str = "the key lacks the permissions this request needs";
pub(crate) const LIMIT_USED_UP: &str = "a rate limit is used up";
pub(crate) const NO_CREDITS: &str = "no credits are left";
pub(crate) const TOO_MANY_FAILURES: &str = "too many failed attempts";
pub(crate) const NO_RULE: &str = "no forward_auth rule covers this request";
pub(crate) const STORE_DOWN: &str = "the token store is unavailable; try again";
pub(crate) const NOT_FOUND_PAGE: &str = "The page you are looking for doesn't exists";

// ---- Settings ----

/// A rule covering `path` (any method, any host) with no policy of its own: the key alone.
pub(crate) fn route(path: &str) -> RouteSettings {
    RouteSettings {
        path: path.to_owned(),
        ..RouteSettings::default()
    }
}

/// A rule of `method` and `host` (when given) on `path`, costing `cost`.
pub(crate) fn costing(
    method: Option<&str>,
    host: Option<&str>,
    path: &str,
    cost: u64,
) -> RouteSettings {
    RouteSettings {
        method: method.map(str::to_owned),
        host: host.map(str::to_owned),
        cost: Some(cost),
        ..route(path)
    }
}

/// Counting in batches that only explicit flushes write (for the analytics).
pub(crate) fn batched(settings: &mut Settings) {
    settings.usage.flush_interval = Duration::from_secs(3600);
}

// ---- Requests ----

/// `GET /api/forward-auth?<query>` (no query when empty), left open for headers.
pub(crate) fn ask(app: &TestApp, query: &str) -> RequestBuilder {
    ask_with(app, Method::GET, query)
}

/// `<method> /api/forward-auth?<query>`, left open for headers.
fn ask_with(app: &TestApp, method: Method, query: &str) -> RequestBuilder {
    let url = match query {
        "" => app.url(FORWARD_AUTH),
        query => app.url(&format!("{FORWARD_AUTH}?{query}")),
    };
    app.client.request(method, url)
}

/// A gateway's question about `method host uri`, in the `X-Forwarded-*` headers.
pub(crate) fn forwarded(
    app: &TestApp,
    query: &str,
    method: &str,
    host: &str,
    uri: &str,
) -> RequestBuilder {
    ask(app, query)
        .header("x-forwarded-method", method)
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
}

/// A raw key of the right shape and checksum that no token has (it reaches the store).
pub(crate) fn unknown_key() -> String {
    GeneratedKey::generate(&Prefix::default())
        .raw
        .expose()
        .to_owned()
}

pub(crate) async fn role(app: &TestApp, name: &str, permissions: Value) {
    let body = json!({"name": name, "permissions": permissions});
    let answer = app.admin_json(Method::POST, "/roles", &body).await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

/// A token of `user` named `name` with extra creation fields.
pub(crate) async fn issue(app: &TestApp, user: u64, name: &str, extra: Value) -> AdminToken {
    let mut body = json!({"userId": user, "name": name, "privilege": "full"});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    app.admin_create(&body).await
}

/// What the token's credits have left, as the admin API shows it.
pub(crate) async fn credits_left(app: &TestApp, token: &AdminToken) -> u64 {
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(view.status, 200, "{view:?}");
    view.body["credits"]["remaining"]
        .as_u64()
        .unwrap_or_else(|| panic!("no credits in {view:?}"))
}

/// The token's stored use count.
pub(crate) async fn uses(app: &TestApp, token: &AdminToken) -> u64 {
    app.usage_and_valid(token.id).await.0
}

// ---- Answers ----

/// `X-Auth-Principal`, decoded (base64url without padding, then JSON).
fn principal(answer: &Answer) -> Value {
    let text = answer
        .header("x-auth-principal")
        .unwrap_or_else(|| panic!("no X-Auth-Principal in {answer:?}"));
    let json = URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|err| panic!("X-Auth-Principal {text:?} is not base64url: {err}"));
    serde_json::from_slice(&json).expect("X-Auth-Principal is JSON")
}

/// The principal of `token` as created (no metadata).
pub(crate) fn principal_of(token: &AdminToken) -> Value {
    let view = &token.body["token"];
    json!({
        "tokenId": token.id, "userId": view["userId"], "name": view["name"],
        "roles": view["roles"], "permissions": view["effectivePermissions"],
    })
}

/// Asserts an allow for `token`: 200, an empty body, the identity headers, Envoy's list of
/// headers to remove (`remove`) and no `X-Auth-Code`; returns the decoded principal.
#[track_caller]
fn assert_allowed_removing(answer: &Answer, token: &AdminToken, remove: &str, case: &str) -> Value {
    assert_eq!(answer.status, 200, "{case}: {answer:?}");
    assert_eq!(answer.body, json!(""), "{case}: an empty body");
    let id = token.id.to_string();
    let user = token.body["token"]["userId"].to_string();
    let got = (
        answer.header("x-auth-token-id"),
        answer.header("x-auth-user-id"),
        answer.header("x-envoy-auth-headers-to-remove"),
        answer.header("x-auth-code"),
        answer.header("www-authenticate"),
    );
    let expected = (
        Some(id.as_str()),
        Some(user.as_str()),
        Some(remove),
        None,
        None,
    );
    assert_eq!(got, expected, "{case}: {answer:?}");
    let principal = principal(answer);
    assert_eq!(principal["tokenId"], json!(token.id), "{case}");
    principal
}

#[track_caller]
pub(crate) fn assert_allowed(answer: &Answer, token: &AdminToken, case: &str) -> Value {
    assert_allowed_removing(answer, token, REMOVE, case)
}

/// A problem body (RFC 9457) as forward-auth sends it.
fn problem(status: u16, code: &str, detail: &str, field: Option<&str>) -> Value {
    let title = reqwest::StatusCode::from_u16(status)
        .expect("status")
        .canonical_reason()
        .expect("title");
    let mut body = json!({
        "type": format!("urn:iam-tokens:problem:{code}"), "title": title, "status": status,
        "detail": detail, "code": code,
    });
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    body
}

/// Asserts a denial: the status, `X-Auth-Code`, the exact problem body, the challenge on a 401
/// only, and nothing of an allow.
#[track_caller]
pub(crate) fn assert_denied(
    answer: &Answer,
    (status, code): (u16, &str),
    detail: &str,
    field: Option<&str>,
    case: &str,
) {
    answer.assert_is(status, &problem(status, code, detail, field), case);
    let challenge = (status == 401).then_some(CHALLENGE);
    let got = (
        answer.header("x-auth-code"),
        answer.header("content-type"),
        answer.header("www-authenticate"),
    );
    let expected = (Some(code), Some("application/problem+json"), challenge);
    assert_eq!(got, expected, "{case}: {answer:?}");
    for name in [
        "x-auth-token-id",
        "x-auth-user-id",
        "x-auth-principal",
        "x-envoy-auth-headers-to-remove",
    ] {
        assert_eq!(answer.header(name), None, "{case}: {name} in {answer:?}");
    }
}

/// A 400 `BAD_REQUEST` naming `field`.
#[track_caller]
pub(crate) fn assert_bad_request(answer: &Answer, field: &str, detail: &str, case: &str) {
    assert_denied(answer, (400, "BAD_REQUEST"), detail, Some(field), case);
}

#[track_caller]
pub(crate) fn assert_no_quota_headers(answer: &Answer, case: &str) {
    for name in ["ratelimit-policy", "ratelimit", "retry-after"] {
        assert_eq!(answer.header(name), None, "{case}: {name} in {answer:?}");
    }
}

// ---- Allow ----

#[tokio::test]
async fn an_allowed_request_is_a_200_with_an_empty_body_naming_the_token_its_owner_and_grants() {
    let app = spawn_admin_app_with(|_| {}).await;
    role(&app, "pro", json!(["projects.*", "billing.read"])).await;
    let extra = json!({
        "privilege": "protected", "roles": ["pro"], "permissions": ["reports.export"],
        "metadata": {"tenant": "t-1", "seats": 5},
    });
    let token = issue(&app, 42, "gateway-svc", extra).await;
    let expected = json!({
        "tokenId": token.id, "userId": 42, "name": "gateway-svc", "roles": ["pro"],
        "permissions": ["billing.read", "projects.*", "reports.export"],
    });
    assert_eq!(
        principal_of(&token),
        expected,
        "the effective grants, sorted"
    );

    let answer = app.send(ask(&app, "").bearer_auth(&token.key)).await;
    let seen = assert_allowed(&answer, &token, "Authorization: Bearer");
    assert_eq!(
        seen, expected,
        "no metadata unless a rule or the query says so"
    );
    assert_no_quota_headers(&answer, "a token without limits");
    let raw = answer.header("x-auth-principal").expect("principal");
    assert!(
        raw.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url without padding: {raw}"
    );

    let answer = app
        .send(ask(&app, "").header("x-api-key", &token.key))
        .await;
    let seen = assert_allowed(&answer, &token, "x-api-key");
    assert_eq!(seen, expected, "x-api-key");

    // Any method asks (Envoy sends the original one).
    for (n, method) in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH]
        .into_iter()
        .enumerate()
    {
        let request = ask_with(&app, method.clone(), "").bearer_auth(&token.key);
        let answer = app.send(request).await;
        let seen = assert_allowed(&answer, &token, method.as_str());
        assert_eq!(seen, expected, "{method}");
        assert_eq!(uses(&app, &token).await, 3 + n as u64, "{method}: counted");
    }
    assert_eq!(uses(&app, &token).await, 6, "each allowed call is one use");
}

#[tokio::test]
async fn metadata_is_in_the_principal_only_when_a_rule_or_the_query_exposes_it() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            expose_metadata: true,
            ..route("/meta/**")
        }];
    })
    .await;
    let metadata = json!({"tenant": "t-1", "seats": 5, "beta": true});
    let token = issue(&app, 7, "svc", json!({"metadata": metadata})).await;
    let mut with_metadata = principal_of(&token);
    with_metadata["metadata"] = metadata.clone();
    let without = principal_of(&token);
    #[rustfmt::skip]
    let cases = [
        ("a rule exposing it",           "",                      "/meta/a/b", &with_metadata),
        ("a rule exposing it, no depth", "",                      "/meta",     &with_metadata),
        ("no rule",                      "",                      "/plain",    &without),
        ("the query: true",              "expose_metadata=true",  "/plain",    &with_metadata),
        ("the query: 1",                 "expose_metadata=1",     "/plain",    &with_metadata),
        ("the query: no value",          "expose_metadata",       "/plain",    &with_metadata),
        ("the query: false",             "expose_metadata=false", "/plain",    &without),
        ("the query: 0",                 "expose_metadata=0",     "/plain",    &without),
    ];
    for (case, query, uri, expected) in cases {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        let seen = assert_allowed(&answer, &token, case);
        assert_eq!(&seen, expected, "{case}");
    }
    assert_eq!(uses(&app, &token).await, 8);
}

#[tokio::test]
async fn the_key_comes_from_authorization_bearer_first_then_the_configured_key_header() {
    let app = spawn_admin_app_with(|s| s.forward_auth.key_header = "X-Key".into()).await;
    let a = issue(&app, 7, "a", json!({})).await;
    let b = issue(&app, 8, "b", json!({})).await;
    let remove = "authorization, x-key";
    let send = |headers: Vec<(&'static str, String)>| {
        let mut request = ask(&app, "");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        app.send(request)
    };
    let bearer = |key: &str| format!("Bearer {key}");
    let answer = send(vec![("x-key", b.key.clone())]).await;
    assert_allowed_removing(&answer, &b, remove, "the configured header");
    let answer = send(vec![
        ("authorization", bearer(&a.key)),
        ("x-key", b.key.clone()),
    ])
    .await;
    assert_allowed_removing(&answer, &a, remove, "Bearer wins over the header");
    let lower = format!("bearer   {}", a.key);
    let answer = send(vec![("authorization", lower)]).await;
    assert_allowed_removing(
        &answer,
        &a,
        remove,
        "the scheme in any case, spaces trimmed",
    );
    let basic = ("authorization", "Basic dXNlcjpwYXNz".to_owned());
    let answer = send(vec![basic, ("x-key", b.key.clone())]).await;
    assert_allowed_removing(&answer, &b, remove, "another scheme is not a key");

    let unknown = bearer(&unknown_key());
    let answer = send(vec![("authorization", unknown), ("x-key", b.key.clone())]).await;
    let case = "an unknown Bearer key is not replaced by the header's";
    assert_denied(&answer, (401, "NOT_FOUND"), NOT_VALID, None, case);
    let missing = "send the key as Authorization: Bearer <key>, or in x-key";
    let answer = send(vec![("x-api-key", a.key.clone())]).await;
    let case = "x-api-key is not the configured header";
    assert_denied(&answer, (401, "MISSING_KEY"), missing, None, case);
    let answer = send(vec![("authorization", "Bearer ".to_owned())]).await;
    assert_denied(
        &answer,
        (401, "MISSING_KEY"),
        missing,
        None,
        "an empty Bearer",
    );
    let answer = send(vec![("x-key", String::new())]).await;
    assert_denied(
        &answer,
        (401, "MISSING_KEY"),
        missing,
        None,
        "an empty header",
    );
    assert_eq!((uses(&app, &a).await, uses(&app, &b).await), (2, 2));
}

#[tokio::test]
async fn the_principal_follows_a_change_of_the_token_s_access_its_role_and_its_metadata() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            expose_metadata: true,
            ..route("/meta/**")
        }];
    })
    .await;
    role(&app, "reader", json!(["reports.read"])).await;
    let token = issue(
        &app,
        7,
        "svc",
        json!({"roles": ["reader"], "metadata": {"plan": "free"}}),
    )
    .await;
    let seen = |answer: &Answer| principal(answer);
    let call = |path: &'static str| {
        let request = ask(&app, "")
            .header("x-forwarded-uri", path)
            .bearer_auth(&token.key);
        app.send(request)
    };
    let first = seen(&call("/v1/x").await);
    assert_eq!(first["permissions"], json!(["reports.read"]));
    assert_eq!(
        seen(&call("/meta/x").await)["metadata"],
        json!({"plan": "free"})
    );

    let path = format!("/tokens/{}/access", token.id);
    let change = json!({"addPermissions": ["billing.read"]});
    assert_eq!(
        app.admin_json(Method::POST, &path, &change).await.status,
        200
    );
    let body = json!({"add": ["reports.export"]});
    let answer = app.admin_json(Method::PATCH, "/roles/reader", &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let path = format!("/tokens/{}/metadata", token.id);
    let patch = json!({"plan": "pro"});
    assert_eq!(
        app.admin_json(Method::PATCH, &path, &patch).await.status,
        200
    );

    let now = seen(&call("/v1/x").await);
    assert_eq!(
        now["permissions"],
        json!(["billing.read", "reports.export", "reports.read"])
    );
    assert_eq!(now.get("metadata"), None);
    assert_eq!(
        seen(&call("/meta/x").await)["metadata"],
        json!({"plan": "pro"})
    );
}
