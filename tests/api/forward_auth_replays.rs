//! Forward-auth as gateways call it: replays, counting, analytics, metrics, outages, off switch.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use iam_tokens::config::RouteSettings;
use iam_tokens::secret::Secret;
use iam_tokens::Clock as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::forward_auth::{
    ask, assert_allowed, assert_denied, batched, costing, credits_left, forwarded, issue,
    principal_of, route, unknown_key, uses, FORWARD_AUTH, LACKS, MISSING, NOT_FOUND_PAGE,
    NOT_FROM_HERE, NOT_VALID, NO_CREDITS, STORE_DOWN,
};
use crate::helpers::{spawn_admin_app_with, trust_local_proxy};

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
