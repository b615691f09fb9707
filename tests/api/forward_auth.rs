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
//! The last test proves that another spelling of a covered path (`%61dmin`, dot segments) gets
//! the rule or a 400, never the default (rules were once matched against the raw path).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat};
use iam_tokens::config::RouteSettings;
use iam_tokens::domain::{GeneratedKey, Prefix};
use iam_tokens::secret::Secret;
use iam_tokens::Clock as _;
use iam_tokens::Settings;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::helpers::{spawn_admin_app_with, trust_local_proxy, AdminToken, Answer, TestApp};
use crate::quotas::{align, assert_headers, MINUTE};

const FORWARD_AUTH: &str = "/api/forward-auth";
const REMOVE: &str = "authorization, x-api-key";
const CHALLENGE: &str = "Bearer realm=\"iam-tokens\"";

const MISSING: &str = "send the key as Authorization: Bearer <key>, or in x-api-key";
const NOT_VALID: &str = "the key is not valid";
const EXPIRED: &str = "the key has expired";
const DISABLED: &str = "the key is disabled";
const NOT_FROM_HERE: &str = "the key may not be used from here";
const LACKS: &str = "the key lacks the permissions this request needs";
const LIMIT_USED_UP: &str = "a rate limit is used up";
const NO_CREDITS: &str = "no credits are left";
const TOO_MANY_FAILURES: &str = "too many failed attempts";
const NO_RULE: &str = "no forward_auth rule covers this request";
const STORE_DOWN: &str = "the token store is unavailable; try again";
const NOT_FOUND_PAGE: &str = "The page you are looking for doesn't exists";

// ---- Settings ----

/// A rule covering `path` (any method, any host) with no policy of its own: the key alone.
fn route(path: &str) -> RouteSettings {
    RouteSettings {
        path: path.to_owned(),
        ..RouteSettings::default()
    }
}

/// A rule of `method` and `host` (when given) on `path`, costing `cost`.
fn costing(method: Option<&str>, host: Option<&str>, path: &str, cost: u64) -> RouteSettings {
    RouteSettings {
        method: method.map(str::to_owned),
        host: host.map(str::to_owned),
        cost: Some(cost),
        ..route(path)
    }
}

/// Counting in batches that only explicit flushes write (for the analytics).
fn batched(settings: &mut Settings) {
    settings.usage.flush_interval = Duration::from_secs(3600);
}

// ---- Requests ----

/// `GET /api/forward-auth?<query>` (no query when empty), left open for headers.
fn ask(app: &TestApp, query: &str) -> RequestBuilder {
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
fn forwarded(app: &TestApp, query: &str, method: &str, host: &str, uri: &str) -> RequestBuilder {
    ask(app, query)
        .header("x-forwarded-method", method)
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
}

/// A raw key of the right shape and checksum that no token has (it reaches the store).
fn unknown_key() -> String {
    GeneratedKey::generate(&Prefix::default())
        .raw
        .expose()
        .to_owned()
}

async fn role(app: &TestApp, name: &str, permissions: Value) {
    let body = json!({"name": name, "permissions": permissions});
    let answer = app.admin_json(Method::POST, "/roles", &body).await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

/// A token of `user` named `name` with extra creation fields.
async fn issue(app: &TestApp, user: u64, name: &str, extra: Value) -> AdminToken {
    let mut body = json!({"userId": user, "name": name, "privilege": "full"});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    app.admin_create(&body).await
}

/// What the token's credits have left, as the admin API shows it.
async fn credits_left(app: &TestApp, token: &AdminToken) -> u64 {
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(view.status, 200, "{view:?}");
    view.body["credits"]["remaining"]
        .as_u64()
        .unwrap_or_else(|| panic!("no credits in {view:?}"))
}

/// The token's stored use count.
async fn uses(app: &TestApp, token: &AdminToken) -> u64 {
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
fn principal_of(token: &AdminToken) -> Value {
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
fn assert_allowed(answer: &Answer, token: &AdminToken, case: &str) -> Value {
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
fn assert_denied(
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
fn assert_bad_request(answer: &Answer, field: &str, detail: &str, case: &str) {
    assert_denied(answer, (400, "BAD_REQUEST"), detail, Some(field), case);
}

#[track_caller]
fn assert_no_quota_headers(answer: &Answer, case: &str) {
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

// ---- Denials ----

#[tokio::test]
async fn missing_unknown_expired_and_disabled_keys_are_401_with_a_bearer_challenge() {
    let app = spawn_admin_app_with(|_| {}).await;
    let token = issue(&app, 7, "svc", json!({})).await;
    let short = token_with_expiry(&app).await;

    let answer = app.send(ask(&app, "")).await;
    assert_denied(&answer, (401, "MISSING_KEY"), MISSING, None, "no key");
    for (case, key) in [
        ("an unknown key", unknown_key()),
        ("garbage", "api_nope".to_owned()),
        ("a digest-shaped key", "ab".repeat(32)),
    ] {
        let answer = app.send(ask(&app, "").bearer_auth(&key)).await;
        assert_denied(&answer, (401, "NOT_FOUND"), NOT_VALID, None, case);
    }

    app.clock.advance(Duration::from_millis(1001));
    let answer = app.send(ask(&app, "").bearer_auth(&short.key)).await;
    assert_denied(&answer, (401, "EXPIRED"), EXPIRED, None, "just expired");
    let answer = app.send(ask(&app, "").bearer_auth(&short.key)).await;
    let case = "an expired key is then gone";
    assert_denied(&answer, (401, "NOT_FOUND"), NOT_VALID, None, case);
    assert_eq!(app.usage_and_valid(short.id).await, (0, false));

    let path = format!("/tokens/{}/state", token.id);
    let off = json!({"enabled": false, "reason": "forward-auth test"});
    let changed = app.admin_json(Method::PUT, &path, &off).await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let answer = app.send(ask(&app, "").bearer_auth(&token.key)).await;
    assert_denied(&answer, (401, "DISABLED"), DISABLED, None, "disabled");
    let nginx = app
        .send(ask(&app, "dialect=nginx").bearer_auth(&token.key))
        .await;
    assert_denied(
        &nginx,
        (401, "DISABLED"),
        DISABLED,
        None,
        "nginx: 401 as is",
    );
    assert_eq!(uses(&app, &token).await, 0, "a refusal is not a use");
    let on = json!({"enabled": true});
    let changed = app.admin_json(Method::PUT, &path, &on).await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let answer = app.send(ask(&app, "").bearer_auth(&token.key)).await;
    assert_allowed(&answer, &token, "enabled again");
    assert_eq!(uses(&app, &token).await, 1);
}

/// A token that expires one second after now.
async fn token_with_expiry(app: &TestApp) -> AdminToken {
    issue(app, 9, "short", json!({"expires": 1000})).await
}

#[tokio::test]
async fn a_client_ip_outside_the_restriction_is_403_ip_not_allowed() {
    let app = spawn_admin_app_with(trust_local_proxy).await;
    let ips = json!({"ips": ["10.0.0.0/8", "2001:db8::/32"]});
    let token = issue(&app, 7, "lan", ips).await;
    #[rustfmt::skip]
    let cases: [(&str, &str, &str, bool); 8] = [
        ("X-Forwarded-For inside",                  "x-forwarded-for", "10.1.2.3",               true),
        ("X-Forwarded-For outside",                 "x-forwarded-for", "192.0.2.1",              false),
        ("the first untrusted hop from the right",  "x-forwarded-for", "10.1.2.3, 192.0.2.1",    false),
        ("a spoofed leftmost hop gains nothing",    "x-forwarded-for", "192.0.2.1, 10.1.2.3",    true),
        ("IPv6 inside",                             "x-forwarded-for", "2001:db8::7",            true),
        ("X-Real-IP inside",                        "x-real-ip",       "10.9.9.9",               true),
        ("X-Real-IP outside",                       "x-real-ip",       "198.51.100.4",           false),
        ("no forwarded address: the peer itself",   "x-nothing",       "",                       false),
    ];
    let mut allowed = 0;
    for (case, header, value, ok) in cases {
        let request = ask(&app, "").bearer_auth(&token.key).header(header, value);
        let answer = app.send(request).await;
        match ok {
            true => {
                allowed += 1;
                assert_allowed(&answer, &token, case);
            }
            false => assert_denied(&answer, (403, "IP_NOT_ALLOWED"), NOT_FROM_HERE, None, case),
        }
    }
    let both = ask(&app, "")
        .bearer_auth(&token.key)
        .header("x-forwarded-for", "192.0.2.1")
        .header("x-real-ip", "10.9.9.9");
    let answer = app.send(both).await;
    let case = "X-Forwarded-For before X-Real-IP";
    assert_denied(&answer, (403, "IP_NOT_ALLOWED"), NOT_FROM_HERE, None, case);
    assert_eq!(uses(&app, &token).await, allowed);
}

#[tokio::test]
async fn a_permission_query_the_key_fails_is_403_insufficient_permissions() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            permissions: Some("reports.read AND NOT admin.*".into()),
            ..route("/reports/**")
        }];
    })
    .await;
    role(&app, "analyst", json!(["reports.*"])).await;
    let analyst = issue(&app, 7, "analyst", json!({"roles": ["analyst"]})).await;
    let admin = issue(
        &app,
        8,
        "admin",
        json!({"permissions": ["reports.read", "admin.x"]}),
    )
    .await;
    let plain = issue(&app, 9, "plain", json!({})).await;
    #[rustfmt::skip]
    let cases: [(&str, &AdminToken, &str, &str, bool); 9] = [
        ("the rule, granted by a role",          &analyst, "",                                "/reports/q1", true),
        ("the rule, a denied grant",             &admin,   "",                                "/reports/q1", false),
        ("the rule, no grants",                  &plain,   "",                                "/reports/q1", false),
        ("no rule: the key alone",               &plain,   "",                                "/other",      true),
        ("the query",                            &admin,   "permissions=admin.x",             "/other",      true),
        ("the query, not granted",               &analyst, "permissions=admin.x",             "/other",      false),
        ("the query replaces the rule: refused", &analyst, "permissions=admin.x",             "/reports/q1", false),
        ("the query replaces the rule: allowed", &admin,   "permissions=admin.x",             "/reports/q1", true),
        ("the query, encoded",                   &analyst, "permissions=reports.a%20OR%20x",  "/reports/q1", true),
    ];
    let mut allowed = [0_u64; 3];
    let tokens = [&analyst, &admin, &plain];
    for (case, token, query, uri, ok) in cases {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        match ok {
            true => {
                assert_allowed(&answer, token, case);
                let at = tokens.iter().position(|t| t.id == token.id).expect("token");
                allowed[at] += 1;
            }
            false => assert_denied(
                &answer,
                (403, "INSUFFICIENT_PERMISSIONS"),
                LACKS,
                None,
                case,
            ),
        }
    }
    for (token, n) in tokens.into_iter().zip(allowed) {
        assert_eq!(
            uses(&app, token).await,
            n,
            "{}: refusals are not uses",
            token.id
        );
    }
}

#[tokio::test]
async fn a_used_up_rate_limit_is_429_with_retry_after_and_the_ratelimit_headers() {
    let app = spawn_admin_app_with(|_| {}).await;
    align(&app.clock, MINUTE, 15_000);
    let token = issue(&app, 7, "limited", json!({})).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": MINUTE}]});
    let path = format!("/tokens/{}/ratelimits", token.id);
    let set = app.admin_json(Method::PUT, &path, &limits).await;
    assert_eq!(set.status, 200, "{set:?}");
    let policy = "\"requests\";q=2;w=60";
    for n in 1..=2 {
        let answer = app.send(ask(&app, "").bearer_auth(&token.key)).await;
        let case = format!("call {n}");
        assert_allowed(&answer, &token, &case);
        let state = format!("\"requests\";r={};t=45", 2 - n);
        assert_headers(&answer, policy, &state, &case);
        assert_eq!(answer.header("retry-after"), None, "{case}");
    }
    let refused = app.send(ask(&app, "").bearer_auth(&token.key)).await;
    assert_denied(
        &refused,
        (429, "RATE_LIMITED"),
        LIMIT_USED_UP,
        None,
        "the third",
    );
    assert_eq!(refused.header("retry-after"), Some("45"), "{refused:?}");
    assert_headers(&refused, policy, "\"requests\";r=0;t=45", "the third");

    app.clock.advance(Duration::from_millis(250));
    let nginx = app
        .send(ask(&app, "dialect=nginx").bearer_auth(&token.key))
        .await;
    let case = "nginx: a 429 is sent as 403 with its code";
    assert_denied(&nginx, (403, "RATE_LIMITED"), LIMIT_USED_UP, None, case);
    let case = "nginx keeps Retry-After (44.75 s, rounded up) and the RateLimit headers";
    assert_eq!(nginx.header("retry-after"), Some("45"), "{case}: {nginx:?}");
    assert_headers(&nginx, policy, "\"requests\";r=0;t=45", case);
    assert_eq!(uses(&app, &token).await, 2, "a refusal is not a use");

    app.clock.advance(Duration::from_millis(44_750));
    let answer = app.send(ask(&app, "").bearer_auth(&token.key)).await;
    assert_allowed(&answer, &token, "the next window");
    assert_headers(&answer, policy, "\"requests\";r=1;t=60", "the next window");
    assert_eq!(uses(&app, &token).await, 3);
}

#[tokio::test]
async fn spent_credits_are_429_usage_exceeded_and_nginx_gets_it_as_403() {
    let app = spawn_admin_app_with(|_| {}).await;
    let token = issue(&app, 7, "prepaid", json!({"credits": {"remaining": 2}})).await;
    for n in 1..=2 {
        let answer = app.send(ask(&app, "").bearer_auth(&token.key)).await;
        assert_allowed(&answer, &token, &format!("credit {n}"));
        assert_no_quota_headers(&answer, "credits only");
    }
    let refused = app.send(ask(&app, "").bearer_auth(&token.key)).await;
    assert_denied(
        &refused,
        (429, "USAGE_EXCEEDED"),
        NO_CREDITS,
        None,
        "none left",
    );
    assert_no_quota_headers(&refused, "no refill: no Retry-After");
    let nginx = app
        .send(ask(&app, "dialect=nginx").bearer_auth(&token.key))
        .await;
    assert_denied(&nginx, (403, "USAGE_EXCEEDED"), NO_CREDITS, None, "nginx");
    for dialect in ["caddy", "traefik", "envoy"] {
        let query = format!("dialect={dialect}");
        let answer = app.send(ask(&app, &query).bearer_auth(&token.key)).await;
        assert_denied(&answer, (429, "USAGE_EXCEEDED"), NO_CREDITS, None, dialect);
    }
    assert_eq!(uses(&app, &token).await, 2);
    assert_eq!(credits_left(&app, &token).await, 0);

    let refill = json!({"remaining": 1, "refill": {"interval": "daily", "amount": 5}});
    let daily = issue(&app, 8, "daily", json!({ "credits": refill })).await;
    let answer = app.send(ask(&app, "").bearer_auth(&daily.key)).await;
    assert_allowed(&answer, &daily, "the one credit");
    let refused = app.send(ask(&app, "").bearer_auth(&daily.key)).await;
    assert_denied(
        &refused,
        (429, "USAGE_EXCEEDED"),
        NO_CREDITS,
        None,
        "until the refill",
    );
    let now = app.clock.now();
    let tomorrow = now.date_naive().succ_opt().expect("tomorrow");
    let midnight = tomorrow.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let wait = ((midnight - now).num_milliseconds() + 999) / 1000;
    let wait = wait.to_string();
    let case = "Retry-After: the seconds to the refill";
    assert_eq!(
        refused.header("retry-after"),
        Some(wait.as_str()),
        "{case}: {refused:?}"
    );
    let nginx = app
        .send(ask(&app, "dialect=nginx").bearer_auth(&daily.key))
        .await;
    assert_denied(
        &nginx,
        (403, "USAGE_EXCEEDED"),
        NO_CREDITS,
        None,
        "nginx, refill",
    );
    assert_eq!(
        nginx.header("retry-after"),
        Some(wait.as_str()),
        "{case}: {nginx:?}"
    );
}

#[tokio::test]
async fn with_the_union_on_every_verification_a_second_call_in_a_second_is_429_blocked() {
    let app = spawn_admin_app_with(|s| {
        s.rate_limiters.enabled = true;
        s.api_tokens.rate_limit_on_successful_request = true;
        trust_local_proxy(s);
    })
    .await;
    let token = issue(&app, 7, "svc", json!({})).await;
    let from = |ip: &str, query: &str| {
        let request = ask(&app, query).header("x-forwarded-for", ip.to_owned());
        app.send(request.bearer_auth(token.key.clone()))
    };
    assert_allowed(&from("203.0.113.7", "").await, &token, "the first call");
    let blocked = from("203.0.113.7", "").await;
    let case = "a second call in the same second";
    assert_denied(&blocked, (429, "BLOCKED"), TOO_MANY_FAILURES, None, case);
    assert_eq!(
        blocked.header("retry-after"),
        Some("900"),
        "{case}: {blocked:?}"
    );
    assert_allowed(&from("198.51.100.1", "").await, &token, "another client");
    app.clock.advance(Duration::from_secs(1));
    let next = from("198.51.100.1", "").await;
    assert_allowed(&next, &token, "another client, a second later");
    assert_eq!(uses(&app, &token).await, 3, "a blocked call is no use");
}

#[tokio::test]
async fn failures_past_the_abuse_limit_block_the_forwarded_client_ip_with_429_blocked() {
    let app = spawn_admin_app_with(|s| {
        s.rate_limiters.enabled = true;
        trust_local_proxy(s);
    })
    .await;
    let token = issue(&app, 7, "svc", json!({})).await;
    let from = |ip: &str, query: &str, key: &str| {
        let request = ask(&app, query).header("x-forwarded-for", ip.to_owned());
        app.send(request.bearer_auth(key.to_owned()))
    };
    for n in 1..=10 {
        let answer = from("203.0.113.7", "", &unknown_key()).await;
        let case = format!("failure {n}");
        assert_denied(&answer, (401, "NOT_FOUND"), NOT_VALID, None, &case);
    }
    let blocked = from("203.0.113.7", "", &unknown_key()).await;
    assert_denied(
        &blocked,
        (429, "BLOCKED"),
        TOO_MANY_FAILURES,
        None,
        "failure 11",
    );
    assert_eq!(blocked.header("retry-after"), Some("3600"), "{blocked:?}");

    let other = from("198.51.100.1", "", &unknown_key()).await;
    let case = "another client of the same gateway is not blocked";
    assert_denied(&other, (401, "NOT_FOUND"), NOT_VALID, None, case);
    let valid = from("203.0.113.7", "", &token.key).await;
    assert_allowed(&valid, &token, "a valid key is served during the block");

    let banned = from("203.0.113.7", "dialect=nginx", &unknown_key()).await;
    let case = "a failure during the block is its second strike: banned, as 403 for nginx";
    assert_denied(&banned, (403, "BLOCKED"), TOO_MANY_FAILURES, None, case);
    assert_eq!(
        banned.header("retry-after"),
        None,
        "a ban has no end: {banned:?}"
    );
    let keys: Vec<String> = app.ban_rows().await.into_iter().map(|row| row.1).collect();
    assert!(
        keys.contains(&"203.0.113.7".to_owned()),
        "the forwarded client is banned, not the gateway: {keys:?}"
    );
    assert!(!keys.contains(&"127.0.0.1".to_owned()), "{keys:?}");
    let missing = app
        .send(ask(&app, "").header("x-forwarded-for", "203.0.113.7"))
        .await;
    // Failures without a key are counted apart (`<ip>_verify`), as on the public route.
    let case = "without a key: the count of keyless failures, not the ban";
    assert_denied(&missing, (401, "MISSING_KEY"), MISSING, None, case);
    assert_eq!(uses(&app, &token).await, 1);
}

#[tokio::test]
async fn with_default_deny_a_request_no_rule_covers_is_403_no_route_and_spends_nothing() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.default = "deny".into();
        s.forward_auth.routes = vec![route("/v1/**")];
    })
    .await;
    let token = issue(&app, 7, "svc", json!({"credits": {"remaining": 10}})).await;
    let covered = forwarded(&app, "", "GET", "api.example.com", "/v1/items");
    let answer = app.send(covered.bearer_auth(&token.key)).await;
    assert_allowed(&answer, &token, "covered by a rule");
    for (case, query, uri) in [
        ("not covered", "", "/v2/items"),
        ("nginx: 403 as is", "dialect=nginx", "/v2/items"),
        ("the root", "", "/"),
    ] {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        assert_denied(&answer, (403, "NO_ROUTE"), NO_RULE, None, case);
    }
    let answer = app
        .send(forwarded(&app, "", "GET", "api.example.com", "/v2/x"))
        .await;
    let case = "no route is decided before the key is looked for";
    assert_denied(&answer, (403, "NO_ROUTE"), NO_RULE, None, case);
    let policy = forwarded(&app, "cost=2", "GET", "api.example.com", "/v2/items");
    let answer = app.send(policy.bearer_auth(&token.key)).await;
    assert_allowed(
        &answer,
        &token,
        "a trusted gateway's own policy needs no rule",
    );
    assert_eq!(uses(&app, &token).await, 2);
    assert_eq!(credits_left(&app, &token).await, 10 - 1 - 2);
}

#[tokio::test]
async fn the_nginx_dialect_sends_400_and_429_as_403_and_leaves_401_and_403_alone() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            permissions: Some("admin.*".into()),
            ..route("/admin/**")
        }];
    })
    .await;
    let token = issue(&app, 7, "svc", json!({"credits": {"remaining": 1}})).await;
    let call = |query: &str, uri: &str, key: Option<&str>| {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let request = match key {
            Some(key) => request.bearer_auth(key.to_owned()),
            None => request,
        };
        app.send(request)
    };
    let key = Some(token.key.as_str());
    let answer = call("dialect=nginx", "/", key).await;
    assert_allowed(&answer, &token, "nginx: the allow is the same");
    let bad = "cost is 0 to 1000000000";
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Option<&str>, (u16, &str), (u16, &str), &str, Option<&str>)> = vec![
        ("no key",             "/",         None,             (401, "MISSING_KEY"),              (401, "MISSING_KEY"),              MISSING, None),
        ("an unknown key",     "/",         Some("api_nope"), (401, "NOT_FOUND"),                (401, "NOT_FOUND"),                NOT_VALID, None),
        ("permissions",        "/admin/x",  key,              (403, "INSUFFICIENT_PERMISSIONS"), (403, "INSUFFICIENT_PERMISSIONS"), LACKS, None),
        ("no credits",         "/",         key,              (429, "USAGE_EXCEEDED"),           (403, "USAGE_EXCEEDED"),           NO_CREDITS, None),
        ("a bad cost",         "/?cost=-1", key,              (400, "BAD_REQUEST"),              (403, "BAD_REQUEST"),              bad, Some("cost")),
    ];
    for (case, uri, key, plain, nginx, detail, field) in cases {
        let (query, uri) = match uri.split_once('?') {
            Some((uri, query)) => (query.to_owned(), uri),
            None => (String::new(), uri),
        };
        let answer = call(&query, uri, key).await;
        assert_denied(&answer, plain, detail, field, case);
        let query = match query.as_str() {
            "" => "dialect=nginx".to_owned(),
            query => format!("{query}&dialect=nginx"),
        };
        let answer = call(&query, uri, key).await;
        assert_denied(&answer, nginx, detail, field, &format!("nginx, {case}"));
    }
    let unknown_dialect = call("dialect=apache", "/", key).await;
    let detail = "query parameter dialect: is nginx, caddy, traefik or envoy";
    assert_bad_request(
        &unknown_dialect,
        "dialect",
        detail,
        "an unknown dialect is a plain 400",
    );
    assert_eq!(uses(&app, &token).await, 1);
}

// ---- Rules ----

/// The rules of the matching tests, each with a cost of its own (0 for the health check).
fn rules() -> Vec<RouteSettings> {
    vec![
        costing(Some("post"), None, "/api/**", 2),
        costing(None, Some("*.example.com"), "/api/**", 3),
        costing(Some("GET"), Some("api.example.com"), "/reports/*", 4),
        costing(None, None, "/files/*.json", 5),
        costing(None, None, "/v*/search", 6),
        costing(None, None, "/api/**/keys", 7),
        costing(None, None, "/health", 0),
    ]
}

/// `(method, host, uri, cost of the first covering rule; None: no rule covers it)`.
#[rustfmt::skip]
fn rule_cases() -> Vec<(&'static str, &'static str, &'static str, Option<u64>)> {
    vec![
        ("POST",   "other.org",           "/api/x",            Some(2)),
        ("post",   "shop.example.com",    "/api/x",            Some(2)), // first match wins
        ("GET",    "shop.example.com",    "/api/x/y",          Some(3)),
        ("GET",    "API.Example.com:443", "/api",              Some(3)), // ** is zero segments too
        ("GET",    "a.b.example.com",     "/api/x",            Some(3)),
        ("GET",    "example.com",         "/api/x",            None),    // *. needs a subdomain
        ("GET",    "evilexample.com",     "/api/x",            None),
        ("GET",    "api.example.com",     "/reports/q1",       Some(4)),
        ("GET",    "api.example.com",     "/reports/q1?y=2",   Some(4)), // the query is not the path
        ("DELETE", "api.example.com",     "/reports/q1",       None),
        ("GET",    "api.example.com",     "/reports/q1/x",     None),    // * is one segment
        ("GET",    "www.example.com",     "/reports/q1",       None),
        ("GET",    "other.org",           "/files/a.json",     Some(5)),
        ("GET",    "other.org",           "/files/a.json.bak", None),
        ("GET",    "other.org",           "/files/d/a.json",   None),
        ("GET",    "other.org",           "/v2/search",        Some(6)),
        ("GET",    "other.org",           "/x2/search",        None),
        ("GET",    "other.org",           "/api/users/7/keys", Some(7)),
        ("GET",    "other.org",           "/api/keys",         Some(7)),
        ("GET",    "other.org",           "/api/users/7/key",  None),
        ("GET",    "other.org",           "/health",           Some(0)),
        ("GET",    "other.org",           "/healthz",          None),
        ("GET",    "other.org",           "/",                 None),
    ]
}

#[tokio::test]
async fn rules_match_method_host_and_path_globs_and_the_first_match_wins_else_cost_one() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = rules();
    })
    .await;
    let token = issue(&app, 7, "svc", json!({"credits": {"remaining": 1000}})).await;
    let mut left = 1000;
    for (n, (method, host, uri, cost)) in rule_cases().into_iter().enumerate() {
        let case = format!("{method} {host}{uri}");
        let request = forwarded(&app, "", method, host, uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        assert_allowed(&answer, &token, &case);
        left -= cost.unwrap_or(1);
        assert_eq!(
            credits_left(&app, &token).await,
            left,
            "{case}: spent {cost:?}"
        );
        assert_eq!(uses(&app, &token).await, n as u64 + 1, "{case}");
    }
}

#[tokio::test]
async fn with_default_deny_the_same_rules_refuse_what_none_covers() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = rules();
        s.forward_auth.default = "deny".into();
    })
    .await;
    let token = issue(&app, 7, "svc", json!({"credits": {"remaining": 1000}})).await;
    let mut left = 1000;
    for (method, host, uri, cost) in rule_cases() {
        let case = format!("{method} {host}{uri}");
        let request = forwarded(&app, "", method, host, uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        match cost {
            Some(cost) => {
                assert_allowed(&answer, &token, &case);
                left -= cost;
            }
            None => assert_denied(&answer, (403, "NO_ROUTE"), NO_RULE, None, &case),
        }
        assert_eq!(credits_left(&app, &token).await, left, "{case}");
    }
    let covered = rule_cases().iter().filter(|c| c.3.is_some()).count() as u64;
    assert_eq!(uses(&app, &token).await, covered);
}

// ---- Costs and named limits ----

#[tokio::test]
async fn an_allowed_call_spends_exactly_its_cost_and_named_limits_and_a_refused_one_nothing() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![
            costing(None, None, "/search/**", 4),
            RouteSettings {
                limits: Some("exports:2".into()),
                ..route("/export/**")
            },
            RouteSettings {
                cost: Some(5),
                permissions: Some("admin.*".into()),
                ..route("/admin/**")
            },
        ];
    })
    .await;
    align(&app.clock, MINUTE, 15_000);
    let quota = json!({
        "ratelimits": [
            {"name": "exports", "limit": 5, "duration": MINUTE, "autoApply": false},
            {"name": "requests", "limit": 100, "duration": MINUTE},
        ],
        "credits": {"remaining": 100},
    });
    let token = issue(&app, 7, "metered", quota).await;
    let limits = |exports: u64, requests: u64| {
        json!([
            crate::quotas::limit_view(&app, ("exports", "token", 5, MINUTE), false, exports),
            crate::quotas::limit_view(&app, ("requests", "token", 100, MINUTE), true, requests),
        ])
    };
    // (case, query, uri, allowed, credits left, exports left, requests left)
    #[rustfmt::skip]
    let steps: [(&str, &str, &str, bool, u64, u64, u64); 10] = [
        ("the default: cost 1",          "",                         "/x",           true,  99, 5, 99),
        ("the query's cost",             "cost=3",                   "/x",           true,  96, 5, 96),
        ("the query's cost 0",           "cost=0",                   "/x",           true,  96, 5, 96),
        ("a rule's cost",                "",                         "/search/q",    true,  92, 5, 92),
        ("the query replaces the rule",  "cost=2",                   "/search/q",    true,  90, 5, 90),
        ("a rule's named limit",         "",                         "/export/a",    true,  89, 3, 89),
        ("the query's named limit",      "limits=exports:3",         "/x",           true,  88, 0, 88),
        ("a full named limit refuses",   "limits=exports:1",         "/x",           false, 88, 0, 88),
        ("a refused permission",         "",                         "/admin/users", false, 88, 0, 88),
        ("cost and a named cost 0",      "cost=2&limits=exports:0",  "/x",           false, 88, 0, 88),
    ];
    let mut allowed = 0;
    for (case, query, uri, ok, credits, exports, requests) in steps {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        if ok {
            allowed += 1;
            assert_allowed(&answer, &token, case);
        } else if uri.starts_with("/admin") {
            assert_denied(
                &answer,
                (403, "INSUFFICIENT_PERMISSIONS"),
                LACKS,
                None,
                case,
            );
        } else {
            assert_denied(&answer, (429, "RATE_LIMITED"), LIMIT_USED_UP, None, case);
            assert_eq!(
                answer.header("retry-after"),
                Some("45"),
                "{case}: {answer:?}"
            );
        }
        let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
        let got = (&view.body["credits"]["remaining"], &view.body["ratelimits"]);
        let expected = (&json!(credits), &limits(exports, requests));
        assert_eq!(got, expected, "{case}");
        assert_eq!(uses(&app, &token).await, allowed, "{case}");
    }
    let unknown = forwarded(&app, "limits=nope:1", "GET", "api.example.com", "/x");
    let answer = app.send(unknown.bearer_auth(&token.key)).await;
    let detail = "no limit named \"nope\" on this key or its owner";
    assert_bad_request(&answer, "limits", detail, "a limit the key does not have");
    assert_eq!(credits_left(&app, &token).await, 88, "nothing spent");
    assert_eq!(uses(&app, &token).await, allowed);
}

#[tokio::test]
async fn the_querys_privilege_must_be_the_tokens_and_a_rules_must_too() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            privilege: Some("full".into()),
            ..route("/full/**")
        }];
    })
    .await;
    let full = issue(&app, 7, "full", json!({"privilege": "full"})).await;
    let demo = issue(&app, 8, "demo", json!({"privilege": "demo"})).await;
    #[rustfmt::skip]
    let cases: [(&str, &AdminToken, &str, &str, bool); 6] = [
        ("no privilege asked: any",      &demo, "",                   "/x",      true),
        ("the query's, matching",        &demo, "privilege=demo",     "/x",      true),
        ("the query's, another",         &demo, "privilege=full",     "/x",      false),
        ("the rule's, matching",         &full, "",                   "/full/a", true),
        ("the rule's, another",          &demo, "",                   "/full/a", false),
        ("the query's replaces the rule's", &demo, "privilege=demo",  "/full/a", true),
    ];
    for (case, token, query, uri, ok) in cases {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let answer = app.send(request.bearer_auth(&token.key)).await;
        match ok {
            true => drop(assert_allowed(&answer, token, case)),
            // A key of another privilege is no key here, as on the public route.
            false => assert_denied(&answer, (401, "NOT_FOUND"), NOT_VALID, None, case),
        }
    }
    assert_eq!((uses(&app, &full).await, uses(&app, &demo).await), (1, 3));
}

#[tokio::test]
async fn a_policy_in_the_query_from_an_untrusted_peer_is_ignored_and_the_rules_apply() {
    let app = spawn_admin_app_with(|s| {
        s.forward_auth.routes = vec![costing(None, None, "/api/forward-auth", 2)];
    })
    .await;
    let metadata = json!({"tenant": "t-1"});
    let quota = json!({"credits": {"remaining": 100}, "metadata": metadata});
    let token = issue(&app, 7, "svc", quota).await;
    let plain = principal_of(&token);
    #[rustfmt::skip]
    let queries = [
        "cost=0",
        "cost=50",
        "permissions=admin.*",
        "privilege=demo",
        "limits=nope:1",
        "expose_metadata=true",
        "cost=-1",
        "privilege=root&dialect=nginx",
    ];
    let mut left = 100;
    for (n, query) in queries.into_iter().enumerate() {
        let answer = app.send(ask(&app, query).bearer_auth(&token.key)).await;
        let seen = assert_allowed(&answer, &token, query);
        assert_eq!(seen, plain, "{query}: no metadata either");
        left -= 2;
        assert_eq!(
            credits_left(&app, &token).await,
            left,
            "{query}: the rule's cost"
        );
        assert_eq!(uses(&app, &token).await, n as u64 + 1, "{query}");
    }
    let answer = app
        .send(ask(&app, "dialect=apache").bearer_auth(&token.key))
        .await;
    let detail = "query parameter dialect: is nginx, caddy, traefik or envoy";
    assert_bad_request(
        &answer,
        "dialect",
        detail,
        "the dialect is read from anyone",
    );
    let answer = app
        .send(ask(&app, "cost=1&cost=2").bearer_auth(&token.key))
        .await;
    let detail = "query parameter cost: is given more than once";
    assert_bad_request(&answer, "cost", detail, "a repeated parameter from anyone");
    assert_eq!(credits_left(&app, &token).await, left);
}

// ---- Forwarded headers ----

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored_and_from_a_trusted_one_used() {
    let configure = |s: &mut Settings| {
        s.forward_auth.routes = vec![RouteSettings {
            permissions: Some("admin.*".into()),
            ..route("/admin/**")
        }];
    };
    let untrusted = spawn_admin_app_with(configure).await;
    let trusted = spawn_admin_app_with(|s| {
        configure(s);
        trust_local_proxy(s);
    })
    .await;
    for (app, trusted) in [(&untrusted, false), (&trusted, true)] {
        let open = issue(app, 7, "open", json!({})).await;
        let pinned = issue(app, 8, "pinned", json!({"ips": ["203.0.113.7"]})).await;
        let spoof = ask(app, "")
            .bearer_auth(&open.key)
            .header("x-forwarded-method", "DELETE")
            .header("x-forwarded-uri", "/admin/users")
            .header("x-forwarded-host", "victim.example.com");
        let answer = app.send(spoof).await;
        match trusted {
            false => drop(assert_allowed(
                &answer,
                &open,
                "untrusted: /admin is not the path",
            )),
            true => {
                let case = "trusted: the forwarded path is covered by the rule";
                assert_denied(
                    &answer,
                    (403, "INSUFFICIENT_PERMISSIONS"),
                    LACKS,
                    None,
                    case,
                );
            }
        }
        let from_afar = ask(app, "")
            .bearer_auth(&pinned.key)
            .header("x-forwarded-for", "203.0.113.7");
        let answer = app.send(from_afar).await;
        match trusted {
            false => {
                let case = "untrusted: the peer is the client";
                assert_denied(&answer, (403, "IP_NOT_ALLOWED"), NOT_FROM_HERE, None, case);
            }
            true => drop(assert_allowed(
                &answer,
                &pinned,
                "trusted: the forwarded client",
            )),
        }
        let nonsense = ask(app, "")
            .bearer_auth(&open.key)
            .header("x-forwarded-uri", "http://evil/")
            .header("x-forwarded-method", "G E T")
            .header("x-original-method", "POST")
            .header("x-real-ip", "not an address");
        let answer = app.send(nonsense).await;
        match trusted {
            false => drop(assert_allowed(&answer, &open, "untrusted: not even read")),
            true => {
                let detail = "x-forwarded-method is sent more than once, or disagrees with its \
                    other spelling";
                assert_bad_request(&answer, "x-forwarded-method", detail, "trusted: read");
            }
        }
        let counts = (uses(app, &open).await, uses(app, &pinned).await);
        let expected = if trusted { (0, 1) } else { (2, 0) };
        assert_eq!(counts, expected, "trusted: {trusted}");
    }
}

#[tokio::test]
async fn conflicting_or_malformed_forwarded_headers_are_400_naming_the_header() {
    let app = spawn_admin_app_with(trust_local_proxy).await;
    let token = issue(&app, 7, "svc", json!({"credits": {"remaining": 10}})).await;
    let conflict =
        |name: &str| format!("{name} is sent more than once, or disagrees with its other spelling");
    let invalid = |name: &str| format!("{name} is not valid");
    let long = format!("/{}", "a".repeat(8192));
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<(&str, &str)>, &str, String)> = vec![
        ("the two method spellings disagree",
            vec![("x-forwarded-method", "GET"), ("x-original-method", "POST")],
            "x-forwarded-method", conflict("x-forwarded-method")),
        ("the two URI spellings disagree",
            vec![("x-forwarded-uri", "/a"), ("x-original-uri", "/b")],
            "x-forwarded-uri", conflict("x-forwarded-uri")),
        ("the method twice",
            vec![("x-forwarded-method", "GET"), ("x-forwarded-method", "GET")],
            "x-forwarded-method", conflict("x-forwarded-method")),
        ("the URI twice",
            vec![("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")],
            "x-forwarded-uri", conflict("x-forwarded-uri")),
        ("the host twice",
            vec![("x-forwarded-host", "a.example.com"), ("x-forwarded-host", "b.example.com")],
            "x-forwarded-host", conflict("x-forwarded-host")),
        ("an absolute URI",       vec![("x-forwarded-uri", "http://evil/")], "x-forwarded-uri", invalid("x-forwarded-uri")),
        ("a scheme-relative URI", vec![("x-forwarded-uri", "//evil/x")],     "x-forwarded-uri", invalid("x-forwarded-uri")),
        ("a relative URI",        vec![("x-forwarded-uri", "admin")],        "x-forwarded-uri", invalid("x-forwarded-uri")),
        ("a URI over 8192",       vec![("x-forwarded-uri", long.as_str())],  "x-forwarded-uri", invalid("x-forwarded-uri")),
        ("an original URI, absolute", vec![("x-original-uri", "https://evil/")], "x-forwarded-uri", invalid("x-forwarded-uri")),
        ("a method with spaces",  vec![("x-forwarded-method", "G E T")],     "x-forwarded-method", invalid("x-forwarded-method")),
        ("an empty method",       vec![("x-forwarded-method", "")],          "x-forwarded-method", invalid("x-forwarded-method")),
        ("an original method of digits", vec![("x-original-method", "123")], "x-forwarded-method", invalid("x-forwarded-method")),
        ("a host with a space",   vec![("x-forwarded-host", "a b")],         "x-forwarded-host", invalid("x-forwarded-host")),
        ("a host with a slash",   vec![("x-forwarded-host", "evil.com/x")],  "x-forwarded-host", invalid("x-forwarded-host")),
        ("X-Real-IP not an address", vec![("x-real-ip", "not-an-ip")],       "x-real-ip", invalid("x-real-ip")),
        ("X-Real-IP twice",       vec![("x-real-ip", "10.0.0.1"), ("x-real-ip", "10.0.0.2")], "x-real-ip", conflict("x-real-ip")),
    ];
    for (case, headers, field, detail) in cases {
        let mut request = ask(&app, "").bearer_auth(&token.key);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = app.send(request).await;
        assert_bad_request(&answer, field, &detail, case);
    }
    #[rustfmt::skip]
    let agreeing = [
        ("the two method spellings agree", [("x-forwarded-method", "POST"), ("x-original-method", "POST")]),
        ("the two URI spellings agree",    [("x-forwarded-uri", "/a?b=1"), ("x-original-uri", "/a?b=1")]),
    ];
    for (case, headers) in agreeing {
        let mut request = ask(&app, "").bearer_auth(&token.key);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        assert_allowed(&app.send(request).await, &token, case);
    }
    assert_eq!(uses(&app, &token).await, 2, "a bad request is no use");
    assert_eq!(credits_left(&app, &token).await, 8, "and spends nothing");
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_each_and_nothing_is_spent() {
    let app = spawn_admin_app_with(trust_local_proxy).await;
    align(&app.clock, MINUTE, 15_000);
    let quota = json!({
        "ratelimits": [{"name": "requests", "limit": 10, "duration": MINUTE}],
        "credits": {"remaining": 10},
    });
    let token = issue(&app, 7, "metered", quota).await;
    let (_, before) = crate::metrics::scrape(&app).await;
    let cost = "cost is 0 to 1000000000";
    let limits = "limits is name:cost,… (at most 16 names, each once; costs of 0 to 1000000000)";
    let privilege = "privilege is demo, restricted, protected, full or custom";
    let twice = |name: &str| format!("query parameter {name}: is given more than once");
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, String)> = vec![
        ("dialect=apache",            "dialect",         "query parameter dialect: is nginx, caddy, traefik or envoy".into()),
        ("dialect=NGINX",             "dialect",         "query parameter dialect: is nginx, caddy, traefik or envoy".into()),
        ("dialect=nginx&dialect=nginx", "dialect",       twice("dialect")),
        ("cost=-1",                   "cost",            cost.into()),
        ("cost=1.5",                  "cost",            cost.into()),
        ("cost=abc",                  "cost",            cost.into()),
        ("cost=",                     "cost",            cost.into()),
        ("cost=1000000001",           "cost",            cost.into()),
        ("cost=1&cost=1",             "cost",            twice("cost")),
        ("privilege=root",            "privilege",       privilege.into()),
        ("privilege=FULL",            "privilege",       privilege.into()),
        ("privilege=full&privilege=full", "privilege",   twice("privilege")),
        ("limits=requests",           "limits",          limits.into()),
        ("limits=requests:x",         "limits",          limits.into()),
        ("limits=requests:-1",        "limits",          limits.into()),
        ("limits=requests:1,requests:2", "limits",       limits.into()),
        ("limits=two%20words:1",      "limits",          limits.into()),
        ("limits=nope:1",             "limits",          "no limit named \"nope\" on this key or its owner".into()),
        ("limits=a:1&limits=a:1",     "limits",          twice("limits")),
        ("permissions=",              "permissions",     "expected a permission name at 0".into()),
        ("permissions=reports.read%20AND", "permissions", "expected a permission name at 16".into()),
        ("permissions=(a%20OR%20b",   "permissions",     "expected AND, OR or ) at 7".into()),
        ("permissions=a&permissions=a", "permissions",   twice("permissions")),
        ("expose_metadata=maybe",     "expose_metadata", "query parameter expose_metadata: is true or false".into()),
        ("expose_metadata=1&expose_metadata=1", "expose_metadata", twice("expose_metadata")),
    ];
    for (query, field, detail) in cases {
        let answer = app.send(ask(&app, query).bearer_auth(&token.key)).await;
        assert_bad_request(&answer, field, &detail, query);
    }
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    let limit = ("requests", "token", 10, MINUTE);
    let got = (
        &view.body["usageCount"],
        &view.body["credits"]["remaining"],
        &view.body["ratelimits"],
    );
    let limits = json!([crate::quotas::limit_view(&app, limit, true, 10)]);
    assert_eq!(
        got,
        (&json!(0), &json!(10), &limits),
        "nothing counted or spent"
    );
    let (_, after) = crate::metrics::scrape(&app).await;
    let series = |outcome: &str| {
        format!("iam_verifications_total{{route=\"forward_auth\",outcome=\"{outcome}\"}}")
    };
    for outcome in ["valid", "invalid_key", "limit_exceeded", "usage_exceeded"] {
        let moved = crate::metrics::value(&after, &series(outcome))
            - crate::metrics::value(&before, &series(outcome));
        assert_eq!(moved, 0.0, "{outcome}: a bad request is no verification");
    }
    let answer = app
        .send(ask(&app, "other=1&x").bearer_auth(&token.key))
        .await;
    assert_allowed(&answer, &token, "parameters of other names are left alone");
}

// ---- Gateways, replayed from their exact header sets ----

#[tokio::test]
async fn an_envoy_ext_authz_request_is_answered_from_its_path_tail_method_and_host() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![
            costing(Some("POST"), Some("shop.example.com"), "/v1/items/**", 2),
            costing(None, None, "/", 0),
        ];
    })
    .await;
    let quota = json!({"credits": {"remaining": 100}, "ips": ["203.0.113.0/24"]});
    let token = issue(&app, 7, "envoy", quota).await;
    let spent = issue(&app, 8, "spent", json!({"credits": {"remaining": 0}})).await;
    // Envoy's HTTP ext_authz: the original method, path_prefix + the original path and query,
    // the original authority as Host, the allowed headers (authorization), content-length 0,
    // and the headers Envoy adds itself.
    let envoy = |method: Method, path: &str, host: &str, key: &str, client: &str| {
        let url = app.url(&format!("{FORWARD_AUTH}{path}"));
        app.client
            .request(method, url)
            .header("host", host.to_owned())
            .header("authorization", format!("Bearer {key}"))
            .header("content-length", "0")
            .header("x-forwarded-for", client.to_owned())
            .header("x-forwarded-proto", "https")
            .header("x-request-id", "6f1f6a2e-1c0e-4d4b-9a43-3c1f0f7d2b11")
            .header("x-envoy-expected-rq-timeout-ms", "200")
    };
    let client = "203.0.113.7";
    #[rustfmt::skip]
    let cases = [
        ("POST, the rule",                      Method::POST,   "/v1/items/42",                    "shop.example.com",      2),
        ("the client's query changes nothing",  Method::POST,   "/v1/items/42?cost=0&dialect=nginx", "shop.example.com",    2),
        ("a policy of ours in the query: none", Method::POST,   "/v1/items/42?privilege=demo&permissions=x&limits=a:1", "shop.example.com", 2),
        ("the authority with its port",         Method::POST,   "/v1/items/a/b",                   "shop.example.com:8443", 2),
        ("another method: the default",         Method::GET,    "/v1/items/42",                    "shop.example.com",      1),
        ("another host: the default",           Method::POST,   "/v1/items/42",                    "other.example.com",     1),
        ("the root, by its own rule",           Method::DELETE, "/",                               "shop.example.com",      0),
        ("an encoded path",                     Method::PUT,    "/v1/a%20b",                        "shop.example.com",     1),
    ];
    let mut left = 100;
    for (n, (case, method, path, host, cost)) in cases.into_iter().enumerate() {
        let answer = app
            .send(envoy(method, path, host, &token.key, client))
            .await;
        assert_allowed(&answer, &token, case);
        left -= cost;
        assert_eq!(credits_left(&app, &token).await, left, "{case}");
        assert_eq!(uses(&app, &token).await, n as u64 + 1, "{case}");
    }
    let elsewhere = envoy(
        Method::POST,
        "/v1/items/1",
        "shop.example.com",
        &token.key,
        "198.51.100.1",
    );
    let answer = app.send(elsewhere).await;
    let case = "the client address is Envoy's x-forwarded-for";
    assert_denied(&answer, (403, "IP_NOT_ALLOWED"), NOT_FROM_HERE, None, case);
    let nginx = envoy(
        Method::GET,
        "/v1/x?dialect=nginx",
        "shop.example.com",
        &spent.key,
        client,
    );
    let answer = app.send(nginx).await;
    let case = "the client's dialect=nginx is not ours: the 429 stays a 429";
    assert_denied(&answer, (429, "USAGE_EXCEEDED"), NO_CREDITS, None, case);
    let apache = envoy(
        Method::GET,
        "/v1/x?dialect=apache&cost=-1",
        "shop.example.com",
        &token.key,
        client,
    );
    let answer = app.send(apache).await;
    assert_allowed(&answer, &token, "the client's query is never a 400 of ours");
    assert_eq!(credits_left(&app, &token).await, left - 1);
}

#[tokio::test]
async fn a_traefik_forward_auth_request_is_answered_from_its_forwarded_headers() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![
            RouteSettings {
                method: Some("DELETE".into()),
                host: Some("api.example.com".into()),
                permissions: Some("keys.delete".into()),
                ..route("/v1/keys/*")
            },
            costing(None, Some("*.example.com"), "/v1/**", 2),
        ];
    })
    .await;
    let reader = issue(
        &app,
        7,
        "reader",
        json!({"permissions": ["keys.read"], "credits": {"remaining": 50}}),
    )
    .await;
    let admin = issue(
        &app,
        8,
        "admin",
        json!({"permissions": ["keys.*"], "credits": {"remaining": 50}}),
    )
    .await;
    // Traefik's forwardAuth: a GET to its address, X-Forwarded-{Method,Proto,Host,Uri,For}
    // and the client's own headers (here its x-api-key, user agent and accept).
    let traefik = |method: &str, uri: &str, key: &str| {
        app.client
            .get(app.url(&format!("{FORWARD_AUTH}?dialect=traefik")))
            .header("x-forwarded-method", method.to_owned())
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "api.example.com")
            .header("x-forwarded-uri", uri.to_owned())
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-port", "443")
            .header("x-forwarded-server", "traefik-7f9c")
            .header("x-real-ip", "203.0.113.7")
            .header("x-api-key", key.to_owned())
            .header("user-agent", "curl/8.5.0")
            .header("accept", "*/*")
    };
    let answer = app.send(traefik("DELETE", "/v1/keys/7", &reader.key)).await;
    let case = "DELETE /v1/keys/7 needs keys.delete";
    assert_denied(
        &answer,
        (403, "INSUFFICIENT_PERMISSIONS"),
        LACKS,
        None,
        case,
    );
    let answer = app.send(traefik("DELETE", "/v1/keys/7", &admin.key)).await;
    assert_allowed(
        &answer,
        &admin,
        "keys.* covers keys.delete; the rule's cost is 1",
    );
    let answer = app
        .send(traefik("GET", "/v1/keys/7?page=2", &reader.key))
        .await;
    assert_allowed(&answer, &reader, "GET: the second rule, cost 2");
    let answer = app.send(traefik("GET", "/health", &reader.key)).await;
    assert_allowed(&answer, &reader, "no rule: the key alone, cost 1");
    let left = (
        credits_left(&app, &reader).await,
        credits_left(&app, &admin).await,
    );
    assert_eq!(left, (50 - 2 - 1, 50 - 1));
    assert_eq!(
        (uses(&app, &reader).await, uses(&app, &admin).await),
        (2, 1)
    );
}

#[tokio::test]
async fn a_caddy_forward_auth_request_is_answered_from_its_forwarded_headers() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![
            costing(Some("PUT"), Some("app.example.com"), "/api/*/settings", 3),
            RouteSettings {
                expose_metadata: true,
                ..route("/api/**")
            },
        ];
    })
    .await;
    let metadata = json!({"plan": "pro"});
    let quota = json!({"credits": {"remaining": 20}, "metadata": metadata, "ips": ["203.0.113.7"]});
    let token = issue(&app, 7, "caddy", quota).await;
    // Caddy's forward_auth: a GET to `uri`, the original Host kept, X-Forwarded-Method and
    // X-Forwarded-Uri, reverse_proxy's X-Forwarded-{For,Proto,Host}, and the client's headers.
    let caddy = |method: &str, uri: &str| {
        app.client
            .get(app.url(&format!("{FORWARD_AUTH}?dialect=caddy")))
            .header("host", "app.example.com")
            .header("x-forwarded-method", method.to_owned())
            .header("x-forwarded-uri", uri.to_owned())
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("authorization", format!("Bearer {}", token.key))
            .header("user-agent", "Mozilla/5.0")
    };
    let answer = app.send(caddy("PUT", "/api/team/settings")).await;
    let seen = assert_allowed(&answer, &token, "PUT settings: the first rule");
    assert_eq!(
        seen,
        principal_of(&token),
        "the first rule does not expose metadata"
    );
    assert_eq!(credits_left(&app, &token).await, 17);
    let answer = app.send(caddy("GET", "/api/team/settings")).await;
    let seen = assert_allowed(&answer, &token, "GET: the second rule");
    let mut exposed = principal_of(&token);
    exposed["metadata"] = metadata;
    assert_eq!(seen, exposed, "the second rule exposes metadata");
    assert_eq!(credits_left(&app, &token).await, 16);
    let answer = app.send(caddy("GET", "/static/app.js")).await;
    let seen = assert_allowed(&answer, &token, "no rule");
    assert_eq!(seen, principal_of(&token));
    assert_eq!(credits_left(&app, &token).await, 15);
    assert_eq!(uses(&app, &token).await, 3);
}

#[tokio::test]
async fn an_nginx_auth_request_subrequest_is_answered_from_its_original_headers() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            method: Some("POST".into()),
            permissions: Some("orders.write".into()),
            cost: Some(2),
            ..route("/orders/**")
        }];
    })
    .await;
    let writer = issue(&app, 7, "writer", json!({"permissions": ["orders.write"], "credits": {"remaining": 3}, "ips": ["198.51.100.0/24"]})).await;
    let reader = issue(&app, 8, "reader", json!({"permissions": ["orders.read"]})).await;
    // The shipped snippet: proxy_pass .../api/forward-auth?dialect=nginx, no body, the original
    // request line in X-Original-Method/-URI, the client in X-Real-IP, the client's headers.
    let nginx = |method: &str, uri: &str, key: &str| {
        app.client
            .get(app.url(&format!("{FORWARD_AUTH}?dialect=nginx")))
            .header("host", "iam-tokens:8080")
            .header("x-original-method", method.to_owned())
            .header("x-original-uri", uri.to_owned())
            .header("x-real-ip", "198.51.100.9")
            .header("x-api-key", key.to_owned())
    };
    let answer = app
        .send(nginx("POST", "/orders/17/items?x=1", &writer.key))
        .await;
    assert_allowed(&answer, &writer, "POST /orders: the rule");
    assert_eq!(credits_left(&app, &writer).await, 1, "the rule's cost");
    let answer = app.send(nginx("POST", "/orders/17", &reader.key)).await;
    assert_denied(
        &answer,
        (403, "INSUFFICIENT_PERMISSIONS"),
        LACKS,
        None,
        "the reader",
    );
    let answer = app.send(nginx("GET", "/orders/17", &reader.key)).await;
    assert_allowed(&answer, &reader, "GET: no rule");
    let answer = app.send(nginx("POST", "/orders/18", &writer.key)).await;
    let case = "1 credit left, 2 needed: nginx gets 403 USAGE_EXCEEDED";
    assert_denied(&answer, (403, "USAGE_EXCEEDED"), NO_CREDITS, None, case);
    let answer = app.send(nginx("POST", "/orders/18", "")).await;
    assert_denied(
        &answer,
        (401, "MISSING_KEY"),
        MISSING,
        None,
        "no key: 401 for nginx too",
    );
    let elsewhere = nginx("GET", "/", &writer.key).header("x-real-ip", "192.0.2.1");
    let answer = app.send(elsewhere).await;
    let detail = "x-real-ip is sent more than once, or disagrees with its other spelling";
    let case = "two X-Real-IP lines: nginx gets the 400 as 403";
    assert_denied(
        &answer,
        (403, "BAD_REQUEST"),
        detail,
        Some("x-real-ip"),
        case,
    );
    assert_eq!(
        (uses(&app, &writer).await, uses(&app, &reader).await),
        (1, 1)
    );
}

// ---- A verification: usage, analytics, metrics ----

/// The codes of an analytics point, in the rollups' order.
const CODES: [&str; 9] = [
    "VALID",
    "NOT_FOUND",
    "DISABLED",
    "EXPIRED",
    "IP_NOT_ALLOWED",
    "INSUFFICIENT_PERMISSIONS",
    "RATE_LIMITED",
    "USAGE_EXCEEDED",
    "BLOCKED",
];

fn iso(unix: i64) -> String {
    iam_tokens::envelope::iso(&DateTime::from_timestamp(unix, 0).expect("time"))
}

fn rfc(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .expect("time")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A one-minute series of `group` at `t`: `counts` (every other code 0) and `credits` spent.
fn minute_series(group: Value, t: i64, counts: &[(&str, u64)], credits: u64) -> Value {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut point = json!({"t": iso(t), "total": total});
    for code in CODES {
        point[code] = json!(0);
    }
    for (code, n) in counts {
        point[*code] = json!(n);
    }
    point["creditsSpent"] = json!(credits);
    json!({"group": group, "total": total, "points": [point]})
}

#[tokio::test]
async fn calls_are_counted_and_analysed_with_the_rule_or_path_as_route_and_the_method() {
    let app = spawn_admin_app_with(|s| {
        batched(s);
        trust_local_proxy(s);
        s.forward_auth.routes = vec![route("/v1/items/*")];
    })
    .await;
    // 30 s into a minute: the calls all fall in it.
    let now_ms = app.clock.now().timestamp_millis();
    let target = (now_ms / 60_000 + 1) * 60_000 + 30_000;
    app.clock
        .advance(Duration::from_millis((target - now_ms) as u64));
    let minute = target / 1000 - 30;
    let token = issue(&app, 42, "gw", json!({"credits": {"remaining": 100}})).await;
    let call = |query: &str, method: &str, uri: &str, key: Option<&str>| {
        let request = forwarded(&app, query, method, "api.example.com", uri);
        let request = match key {
            Some(key) => request.bearer_auth(key.to_owned()),
            None => request,
        };
        app.send(request)
    };
    let key = Some(token.key.as_str());
    let unknown = unknown_key();
    #[rustfmt::skip]
    let calls: [(&str, &str, &str, Option<&str>, u16); 11] = [
        ("",       "GET",  "/v1/items/1", key,                   200),
        ("",       "GET",  "/v1/items/2", key,                   200),
        ("",       "POST", "/v1/items/3", key,                   200),
        ("",       "post", "/v1/items/4", key,                   200),
        ("",       "GET",  "/v1/items/9", Some(unknown.as_str()), 401),
        ("",       "GET",  "/other/x",    key,                   200),
        ("",       "GET",  "/other/x?a=1", key,                  200),
        ("cost=2", "PUT",  "/q/path",     key,                   200),
        ("cost=2", "PUT",  "/q/path",     key,                   200),
        ("cost=2", "PUT",  "/q/path",     key,                   200),
        ("",       "GET",  "/v1/items/1", None,                  401),
    ];
    for (query, method, uri, key, status) in calls {
        let answer = call(query, method, uri, key).await;
        assert_eq!(answer.status, status, "{method} {uri}: {answer:?}");
    }
    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(uses(&app, &token).await, 9, "one use per allowed call");
    assert_eq!(credits_left(&app, &token).await, 100 - 4 - 2 - 6);

    let range = format!(
        "start={}&end={}&granularity=minute",
        rfc(minute),
        rfc(minute + 60)
    );
    let s = |group: Value, counts: &[(&str, u64)], credits| {
        minute_series(group, minute, counts, credits)
    };
    #[rustfmt::skip]
    let cases = [
        ("groupBy=tag.route", vec![
            s(json!({"tag.route": "/v1/items/*"}), &[("VALID", 4), ("NOT_FOUND", 1)], 4),
            s(json!({"tag.route": "/q/path"}),     &[("VALID", 3)],                   6),
            s(json!({"tag.route": "/other/x"}),    &[("VALID", 2)],                   2),
            s(json!({"tag.route": null}),          &[("NOT_FOUND", 1)],               0),
        ]),
        ("groupBy=tag.method", vec![
            s(json!({"tag.method": "GET"}),  &[("VALID", 4), ("NOT_FOUND", 1)], 4),
            s(json!({"tag.method": "PUT"}),  &[("VALID", 3)],                   6),
            s(json!({"tag.method": "POST"}), &[("VALID", 2)],                   2),
            s(json!({"tag.method": null}),   &[("NOT_FOUND", 1)],               0),
        ]),
        ("groupBy=token", vec![
            s(json!({"tokenId": token.id}), &[("VALID", 9)],     12),
            s(json!({"tokenId": null}),     &[("NOT_FOUND", 2)], 0),
        ]),
    ];
    for (query, series) in cases {
        let path = format!("/analytics/verifications?{range}&{query}");
        let answer = app.admin_get(&path).await;
        let expected = json!({
            "granularity": "minute", "start": iso(minute), "end": iso(minute + 60),
            "series": series,
        });
        answer.assert_is(200, &expected, query);
    }
}

#[tokio::test]
async fn metrics_count_forward_auth_verifications_exactly_under_their_own_route() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.default = "deny".into();
        s.forward_auth.routes = vec![
            RouteSettings {
                permissions: Some("admin.*".into()),
                ..route("/admin/**")
            },
            route("/v1/**"),
        ];
    })
    .await;
    let token = issue(&app, 7, "svc", json!({})).await;
    let (_, before) = crate::metrics::scrape(&app).await;
    let call = |query: &str, uri: &str, key: Option<&str>| {
        let request = forwarded(&app, query, "GET", "api.example.com", uri);
        let request = match key {
            Some(key) => request.bearer_auth(key.to_owned()),
            None => request,
        };
        app.send(request)
    };
    let key = Some(token.key.as_str());
    let unknown = unknown_key();
    #[rustfmt::skip]
    let calls: [(&str, &str, Option<&str>, u16); 9] = [
        ("",        "/v1/a",     key,                    200),
        ("",        "/v1/b",     key,                    200),
        ("",        "/v1/c",     key,                    200),
        ("",        "/v1/a",     None,                   401),
        ("",        "/v1/a",     Some(unknown.as_str()), 401),
        ("",        "/admin/x",  key,                    403),
        ("",        "/elsewhere", key,                   403),
        ("cost=-1", "/v1/a",     key,                    400),
        ("dialect=nope", "/v1/a", key,                   400),
    ];
    for (query, uri, key, status) in calls {
        let answer = call(query, uri, key).await;
        assert_eq!(answer.status, status, "{query} {uri}: {answer:?}");
    }
    let (text, after) = crate::metrics::scrape(&app).await;
    let moved = |route: &str, outcome: &str| {
        let series = format!("iam_verifications_total{{route=\"{route}\",outcome=\"{outcome}\"}}");
        crate::metrics::value(&after, &series) - crate::metrics::value(&before, &series)
    };
    #[rustfmt::skip]
    let expected = [
        ("forward_auth", "valid",                    3.0),
        ("forward_auth", "invalid_key",              2.0),
        ("forward_auth", "insufficient_permissions", 1.0),
        ("forward_auth", "server_error",             0.0),
        ("forward_auth", "rate_limited",             0.0),
        ("public",       "valid",                    0.0),
        ("admin",        "valid",                    0.0),
    ];
    for (route, outcome, n) in expected {
        assert_eq!(moved(route, outcome), n, "{route} {outcome}:\n{text}");
    }
    let series = "iam_verifications_total{route=\"forward_auth\",outcome=\"valid\"}";
    assert!(text.contains(series), "{text}");
    assert_eq!(uses(&app, &token).await, 3);
}

// ---- Failure and the off switch ----

#[tokio::test]
async fn an_unreachable_store_is_503_unavailable_and_fails_closed() {
    let app = spawn_admin_app_with(|s| {
        s.database.migrate_on_start = false;
        s.database.url = Secret::new("mysql://root@127.0.0.1:1/nowhere");
    })
    .await;
    let (_, before) = crate::metrics::scrape(&app).await;
    let key = unknown_key();
    let answer = app.send(ask(&app, "").bearer_auth(&key)).await;
    assert_denied(
        &answer,
        (503, "UNAVAILABLE"),
        STORE_DOWN,
        None,
        "the store is down",
    );
    let answer = app.send(ask(&app, "dialect=nginx").bearer_auth(&key)).await;
    let case = "nginx: 503 as 403 with its code";
    assert_denied(&answer, (403, "UNAVAILABLE"), STORE_DOWN, None, case);
    let answer = app.send(ask(&app, "").bearer_auth("api_nope")).await;
    let case = "garbage needs no store";
    assert_denied(&answer, (401, "NOT_FOUND"), NOT_VALID, None, case);
    let answer = app.send(ask(&app, "")).await;
    assert_denied(
        &answer,
        (401, "MISSING_KEY"),
        MISSING,
        None,
        "no key needs no store",
    );
    let (text, after) = crate::metrics::scrape(&app).await;
    let series = "iam_verifications_total{route=\"forward_auth\",outcome=\"server_error\"}";
    let moved = crate::metrics::value(&after, series) - crate::metrics::value(&before, series);
    assert_eq!(moved, 2.0, "{text}");
}

#[tokio::test]
async fn a_store_that_fails_is_503_unavailable_for_a_key_not_in_the_cache() {
    let app = spawn_admin_app_with(|_| {}).await;
    let cached = issue(&app, 7, "cached", json!({})).await;
    let answer = app.send(ask(&app, "").bearer_auth(&cached.key)).await;
    assert_allowed(&answer, &cached, "before");
    // The store's tokens table disappears (on either store): every lookup fails.
    app.execute("ALTER TABLE api_tokens RENAME TO api_tokens_gone", ())
        .await;
    let key = unknown_key();
    let answer = app.send(ask(&app, "").bearer_auth(&key)).await;
    assert_denied(
        &answer,
        (503, "UNAVAILABLE"),
        STORE_DOWN,
        None,
        "an uncached key",
    );
    let answer = app.send(ask(&app, "dialect=nginx").bearer_auth(&key)).await;
    assert_denied(&answer, (403, "UNAVAILABLE"), STORE_DOWN, None, "nginx");
    app.execute("ALTER TABLE api_tokens_gone RENAME TO api_tokens", ())
        .await;
    let answer = app.send(ask(&app, "").bearer_auth(&key)).await;
    assert_denied(
        &answer,
        (401, "NOT_FOUND"),
        NOT_VALID,
        None,
        "the store is back",
    );
}

#[tokio::test]
async fn when_forward_auth_is_disabled_its_paths_are_404() {
    let app = spawn_admin_app_with(|s| {
        s.forward_auth.enabled = false;
        trust_local_proxy(s);
    })
    .await;
    let token = issue(&app, 7, "svc", json!({})).await;
    let (_, before) = crate::metrics::scrape(&app).await;
    let not_found = json!({"error": NOT_FOUND_PAGE});
    for (method, path) in [
        (Method::GET, FORWARD_AUTH.to_owned()),
        (Method::GET, format!("{FORWARD_AUTH}?dialect=nginx")),
        (Method::POST, format!("{FORWARD_AUTH}/v1/items")),
        (Method::DELETE, format!("{FORWARD_AUTH}/")),
    ] {
        let request = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&token.key);
        let answer = app.send(request).await;
        let case = format!("{method} {path}");
        answer.assert_is(404, &not_found, &case);
        assert_eq!(answer.header("x-auth-code"), None, "{case}");
    }
    let (_, after) = crate::metrics::scrape(&app).await;
    let series = "iam_verifications_total{route=\"forward_auth\",outcome=\"valid\"}";
    let moved = crate::metrics::value(&after, series) - crate::metrics::value(&before, series);
    assert_eq!(moved, 0.0);
    assert_eq!(uses(&app, &token).await, 0);
}

/// A rule on `/admin/**` must cover every spelling of `/admin/...` the upstream will serve as
/// such: a path with percent-encoded unreserved characters or dot segments (RFC 3986 6.2.2,
/// 5.2.4) either gets the rule's policy or is refused, never the default's.
#[tokio::test]
async fn a_path_spelled_with_escapes_or_dot_segments_does_not_escape_its_rule() {
    let app = spawn_admin_app_with(|s| {
        trust_local_proxy(s);
        s.forward_auth.routes = vec![RouteSettings {
            permissions: Some("admin.*".into()),
            ..route("/admin/**")
        }];
    })
    .await;
    let token = issue(&app, 7, "svc", json!({})).await;
    for uri in [
        "/admin/users",
        "/%61dmin/users",
        "/%61%64%6D%69%6E/users",
        "/public/../admin/users",
        "/./admin/users",
        "/admin/./users",
        "/x/y/../../admin/users",
    ] {
        for header in ["x-forwarded-uri", "x-original-uri"] {
            let request = ask(&app, "").header(header, uri).bearer_auth(&token.key);
            let answer = app.send(request).await;
            let case = format!("{header}: {uri}");
            match answer.header("x-auth-code") {
                Some("BAD_REQUEST") => {
                    let detail = "x-forwarded-uri is not valid";
                    assert_bad_request(&answer, "x-forwarded-uri", detail, &case);
                }
                _ => assert_denied(
                    &answer,
                    (403, "INSUFFICIENT_PERMISSIONS"),
                    LACKS,
                    None,
                    &case,
                ),
            }
        }
    }
    assert_eq!(uses(&app, &token).await, 0);
}
