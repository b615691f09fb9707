//! Forward-auth policy: rules, costs, whose policy counts, forwarded headers, 400s, path spellings.

use iam_tokens::config::RouteSettings;
use iam_tokens::Settings;
use serde_json::json;

use crate::forward_auth::{
    ask, assert_allowed, assert_bad_request, assert_denied, costing, credits_left, forwarded,
    issue, principal_of, route, uses, LACKS, LIMIT_USED_UP, NOT_FROM_HERE, NOT_VALID, NO_RULE,
};
use crate::helpers::{spawn_admin_app_with, trust_local_proxy, AdminToken};
use crate::quotas::{align, MINUTE};

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
    // `(case, headers, field, detail)`.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, String);
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
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
