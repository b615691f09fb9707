//! Forward-auth denials: 401, 403, 429, `BLOCKED`, `NO_ROUTE`, and the nginx dialect's statuses.

use std::time::Duration;

use iam_tokens::config::RouteSettings;
use iam_tokens::Clock as _;
use reqwest::Method;
use serde_json::json;

use crate::forward_auth::{
    ask, assert_allowed, assert_bad_request, assert_denied, assert_no_quota_headers, credits_left,
    forwarded, issue, role, route, unknown_key, uses, DISABLED, EXPIRED, LACKS, LIMIT_USED_UP,
    MISSING, NOT_FROM_HERE, NOT_VALID, NO_CREDITS, NO_RULE, TOO_MANY_FAILURES,
};
use crate::helpers::{spawn_admin_app_with, trust_local_proxy, AdminToken, TestApp};
use crate::quotas::{align, assert_headers, MINUTE};

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
    // `(case, uri, key, plain answer, nginx answer, detail, field)`.
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        (u16, &'a str),
        (u16, &'a str),
        &'a str,
        Option<&'a str>,
    );
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
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
