//! Forward-auth through real gateways (SPEC B13): Debian's nginx and Caddy, with the configs in
//! `deploy/` as shipped, in front of an upstream that echoes what it receives. What a client
//! sees through each: 401 without a key or with a bad one, 403 for an IP or a permission, 429
//! with `Retry-After` over a limit (through nginx too, which would make it a 500 unless mapped),
//! credits spent once per proxied request, 503 with the store down; what the upstream sees: the
//! caller's identity from iam-tokens, never a client's forged one nor the key. Two instances
//! sharing Redis behind one nginx enforce one limit.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::gateway_harness::{client_from, port_of, Gateway, Kind, Seen, Upstream};
use crate::helpers::{ops_admin, spawn_admin_app_with, spawn_app_with, AdminToken, TestApp};
use crate::quotas::{align, MINUTE};
use crate::shared_instances::{instances, Shared};
use iam_tokens::config::{RouteSettings, Settings};

const KINDS: [Kind; 2] = [Kind::Nginx, Kind::Caddy];

/// The tests' client: from 127.0.0.2, while the gateways and iam-tokens talk over 127.0.0.1
/// (the trusted proxy).
fn client_ip() -> IpAddr {
    "127.0.0.2".parse().expect("IP")
}

fn trust_gateways(settings: &mut Settings) {
    settings.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("CIDR")];
}

/// An app that trusts the gateways, with `configure` applied, and both gateways before it.
async fn deployment(configure: impl FnOnce(&mut Settings)) -> (TestApp, Upstream, Vec<Gateway>) {
    let app = spawn_admin_app_with(|settings| {
        trust_gateways(settings);
        configure(settings);
    })
    .await;
    let upstream = Upstream::start().await;
    let mut gateways = Vec::new();
    for kind in KINDS {
        gateways.push(Gateway::start(kind, &[port_of(&app.address)], &upstream).await);
    }
    (app, upstream, gateways)
}

async fn get(gateway: &Gateway, path: &str, headers: &[(&str, &str)]) -> Seen {
    let mut request = client_from(client_ip()).get(gateway.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Seen::from(request.send().await.expect("request through the gateway")).await
}

async fn token(app: &TestApp, body: Value) -> AdminToken {
    let mut full = json!({"userId": 7, "name": "gateway", "privilege": "full"});
    for (key, value) in body.as_object().expect("object") {
        full[key] = value.clone();
    }
    app.admin_create(&full).await
}

/// The principal the upstream received, decoded.
fn principal(seen: &Seen) -> Value {
    use base64::Engine as _;
    let encoded = seen.upstream_header("x-auth-principal").expect("principal");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .expect("base64url");
    serde_json::from_slice(&json).expect("JSON")
}

#[tokio::test]
async fn a_key_passes_both_gateways_and_the_upstream_sees_the_caller_never_forged_headers_nor_the_key(
) {
    let (app, _upstream, gateways) = deployment(|_| {}).await;
    let token = token(&app, json!({"permissions": ["reports.read"]})).await;
    let bearer = format!("Bearer {}", token.key);
    for gateway in &gateways {
        for (name, value) in [
            ("authorization", bearer.as_str()),
            ("x-api-key", &token.key),
        ] {
            let seen = get(
                gateway,
                "/v1/reports?year=2026",
                &[
                    (name, value),
                    ("x-auth-token-id", "999"),
                    ("x-auth-user-id", "1"),
                    ("x-auth-principal", "forged"),
                ],
            )
            .await;
            let case = format!("{:?} with {name}", gateway.kind);
            assert_eq!(seen.status, 200, "{case}: {seen:?}");
            assert_eq!(seen.body["uri"], "/v1/reports?year=2026", "{case}");
            let id = token.id.to_string();
            assert_eq!(seen.upstream_header("x-auth-token-id"), Some(id.as_str()));
            assert_eq!(seen.upstream_header("x-auth-user-id"), Some("7"), "{case}");
            assert_eq!(
                principal(&seen),
                json!({"tokenId": token.id, "userId": 7, "name": "gateway", "roles": [],
                       "permissions": ["reports.read"]}),
                "{case}"
            );
            for credential in ["authorization", "x-api-key"] {
                assert_eq!(
                    seen.upstream_header(credential),
                    None,
                    "{case}: {credential}"
                );
            }
        }
    }
    assert_eq!(app.usage_and_valid(token.id).await, (4, true), "four uses");
}

#[tokio::test]
async fn no_key_and_a_bad_key_are_401_through_both_gateways() {
    let (_app, _upstream, gateways) = deployment(|_| {}).await;
    for gateway in &gateways {
        let bad = "api_0000000000000000000000000000000000000000000000000000000000000000_00000000";
        for (headers, code) in [
            (&[][..], "MISSING_KEY"),
            (&[("x-api-key", bad)][..], "NOT_FOUND"),
        ] {
            let seen = get(gateway, "/v1/items", headers).await;
            let case = format!("{:?}: {code}", gateway.kind);
            assert_eq!(seen.status, 401, "{case}: {seen:?}");
            assert_eq!(seen.header("x-auth-code"), Some(code), "{case}");
            assert_eq!(
                seen.header("www-authenticate"),
                Some("Bearer realm=\"iam-tokens\""),
                "{case}"
            );
            assert_eq!(seen.body["code"], code, "{case}");
            assert!(
                seen.body.get("headers").is_none(),
                "{case}: reached upstream"
            );
        }
    }
}

#[tokio::test]
async fn an_ip_or_a_permission_refusal_is_403_through_both_and_a_forged_client_ip_changes_nothing()
{
    let (app, _upstream, gateways) = deployment(|settings| {
        settings.forward_auth.routes = vec![RouteSettings {
            path: "/admin/**".into(),
            permissions: Some("admin.write".into()),
            ..RouteSettings::default()
        }];
    })
    .await;
    // Only from 10.9.9.9, which the client pretends to be.
    let elsewhere = token(&app, json!({"ips": ["10.9.9.9"]})).await;
    let here = token(&app, json!({"ips": ["127.0.0.2"]})).await;
    let forged = [("x-forwarded-for", "10.9.9.9"), ("x-real-ip", "10.9.9.9")];
    for gateway in &gateways {
        let kind = gateway.kind;
        let mut headers = vec![("x-api-key", elsewhere.key.as_str())];
        headers.extend(forged);
        let seen = get(gateway, "/v1/items", &headers).await;
        assert_eq!(seen.status, 403, "{kind:?}: {seen:?}");
        assert_eq!(
            seen.header("x-auth-code"),
            Some("IP_NOT_ALLOWED"),
            "{kind:?}"
        );

        let mut headers = vec![("x-api-key", here.key.as_str())];
        headers.extend(forged);
        let seen = get(gateway, "/v1/items", &headers).await;
        assert_eq!(
            seen.status, 200,
            "{kind:?}: the client's real address: {seen:?}"
        );

        let seen = get(gateway, "/admin/users", &[("x-api-key", &here.key)]).await;
        assert_eq!(seen.status, 403, "{kind:?}: {seen:?}");
        assert_eq!(
            seen.header("x-auth-code"),
            Some("INSUFFICIENT_PERMISSIONS"),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_client_cannot_forge_the_original_request_through_either_gateway() {
    let (app, _upstream, gateways) = deployment(|settings| {
        settings.forward_auth.default = "deny".into();
        settings.forward_auth.routes = vec![RouteSettings {
            path: "/public/**".into(),
            ..RouteSettings::default()
        }];
    })
    .await;
    let token = token(&app, json!({})).await;
    for gateway in &gateways {
        let kind = gateway.kind;
        let seen = get(gateway, "/public/page", &[("x-api-key", &token.key)]).await;
        assert_eq!(seen.status, 200, "{kind:?}: {seen:?}");
        let forged = [
            ("x-api-key", token.key.as_str()),
            ("x-forwarded-uri", "/public/page"),
            ("x-original-uri", "/public/page"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-host", "elsewhere.example"),
        ];
        let seen = get(gateway, "/private/data", &forged).await;
        assert_eq!(seen.status, 403, "{kind:?}: {seen:?}");
        assert_eq!(seen.header("x-auth-code"), Some("NO_ROUTE"), "{kind:?}");
    }
}

#[tokio::test]
async fn over_a_rate_limit_the_client_sees_429_with_retry_after_through_both_gateways() {
    let (app, _upstream, gateways) = deployment(|_| {}).await;
    align(&app.clock, MINUTE, 0);
    for gateway in &gateways {
        let limits = json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": MINUTE}]});
        let token = token(&app, limits).await;
        let kind = gateway.kind;
        for n in 1..=2 {
            let seen = get(gateway, "/v1/items", &[("x-api-key", &token.key)]).await;
            assert_eq!(seen.status, 200, "{kind:?} call {n}: {seen:?}");
        }
        let seen = get(gateway, "/v1/items", &[("x-api-key", &token.key)]).await;
        assert_eq!(seen.status, 429, "{kind:?}: {seen:?}");
        assert_eq!(seen.header("x-auth-code"), Some("RATE_LIMITED"), "{kind:?}");
        assert_eq!(seen.header("retry-after"), Some("60"), "{kind:?}");
        assert_eq!(
            seen.header("ratelimit"),
            Some("\"requests\";r=0;t=60"),
            "{kind:?}"
        );
        assert_eq!(seen.body["code"], "RATE_LIMITED", "{kind:?}");
        assert_eq!(app.usage_and_valid(token.id).await, (2, true), "{kind:?}");
    }
}

#[tokio::test]
async fn credits_are_spent_exactly_once_per_proxied_request_at_the_rule_s_cost() {
    let (app, _upstream, gateways) = deployment(|settings| {
        settings.forward_auth.routes = vec![RouteSettings {
            path: "/v1/search".into(),
            cost: Some(3),
            ..RouteSettings::default()
        }];
    })
    .await;
    let token = token(&app, json!({"credits": {"remaining": 20}})).await;
    let mut calls = 0;
    for gateway in &gateways {
        for _ in 0..3 {
            let seen = get(gateway, "/v1/search", &[("x-api-key", &token.key)]).await;
            assert_eq!(seen.status, 200, "{:?}: {seen:?}", gateway.kind);
            calls += 1;
        }
    }
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(view.body["credits"]["remaining"], json!(20 - 3 * calls));
    // 2 credits left: a search (3) is refused, spends nothing, and the client sees 429.
    for gateway in &gateways {
        let seen = get(gateway, "/v1/search", &[("x-api-key", &token.key)]).await;
        assert_eq!(seen.status, 429, "{:?}: {seen:?}", gateway.kind);
        assert_eq!(seen.header("x-auth-code"), Some("USAGE_EXCEEDED"));
    }
    // Any other path costs 1 (the default): two more pass.
    for gateway in &gateways {
        let seen = get(gateway, "/v1/items", &[("x-api-key", &token.key)]).await;
        assert_eq!(seen.status, 200, "{:?}: {seen:?}", gateway.kind);
    }
    let view = app.admin_get(&format!("/tokens/{}", token.id)).await;
    assert_eq!(view.body["credits"]["remaining"], json!(0));
    assert_eq!(app.usage_and_valid(token.id).await, (8, true));
}

#[tokio::test]
async fn with_the_store_down_both_gateways_answer_503() {
    let app = spawn_app_with(|settings| {
        trust_gateways(settings);
        ops_admin(settings);
        settings.database.migrate_on_start = false;
        settings.database.url = iam_tokens::secret::Secret::new("mysql://root@127.0.0.1:1/nowhere");
    })
    .await;
    let upstream = Upstream::start().await;
    let key = iam_tokens::domain::GeneratedKey::generate(&iam_tokens::domain::Prefix::default())
        .raw
        .expose()
        .to_owned();
    for kind in KINDS {
        let gateway = Gateway::start(kind, &[port_of(&app.address)], &upstream).await;
        let seen = get(&gateway, "/v1/items", &[("x-api-key", &key)]).await;
        assert_eq!(seen.status, 503, "{kind:?}: {seen:?}");
        assert_eq!(seen.header("x-auth-code"), Some("UNAVAILABLE"), "{kind:?}");
        assert_eq!(seen.body["code"], "UNAVAILABLE", "{kind:?}");
    }
}

#[tokio::test]
async fn two_instances_sharing_redis_behind_one_nginx_enforce_one_limit() {
    let fleet = instances(2, Shared::Single, |settings| {
        ops_admin(settings);
        trust_gateways(settings);
    })
    .await;
    let [first, second] = &fleet.apps[..] else {
        panic!("two instances");
    };
    align(&first.clock, MINUTE, 0);
    let upstream = Upstream::start().await;
    let ports = [port_of(&first.address), port_of(&second.address)];
    let nginx = Gateway::start(Kind::Nginx, &ports, &upstream).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 5, "duration": MINUTE}]});
    let token = token(first, limits).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let seen = get(&nginx, "/v1/items", &[("x-api-key", &token.key)]).await;
        statuses.push(seen.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    // nginx spread them: each instance answered some (its own metrics say so).
    for app in [first, second] {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        let valid = text
            .lines()
            .find(|line| {
                line.starts_with(
                    "iam_verifications_total{route=\"forward_auth\",outcome=\"valid\"}",
                )
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(valid > 0, "both instances verified: {valid}");
    }
}
