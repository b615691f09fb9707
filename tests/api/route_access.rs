//! Authentication is a property of the route table: this walks the real table and proves that
//! every route that is not public refuses a call without a credential, or with a wrong one,
//! before anything else happens (no body is read, nothing changes).

use iam_tokens::http::{route_table, Access};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{admin_error, spawn_admin_app, TestApp};

/// The path with every `{parameter}` filled in with a plausible value.
fn concrete(path: &str) -> String {
    path.replace("{action}", "list-metadata")
        .replace("{id}", "1")
        .replace("{user_id}", "7")
        .replace("{limiter}", "burst_limiter")
        .replace("{key}", "127.0.0.1")
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    credential: Option<&str>,
) -> crate::helpers::Answer {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body(r#"{"userId": 7, "name": "x", "key": "x", "tokenId": 1}"#);
    if let Some(credential) = credential {
        request = request.header("authorization", credential);
    }
    app.send(request).await
}

#[tokio::test]
async fn every_route_that_is_not_public_refuses_a_missing_or_wrong_credential() {
    let app = spawn_admin_app().await;
    let table = route_table();
    let admin_refusal = admin_error(
        "unauthorized",
        "a valid admin credential is required (Authorization: Bearer <secret>)",
        None,
    );
    let mut checked = 0;
    for route in table.iter().filter(|route| route.access != Access::Public) {
        let methods = match route.method {
            Some(method) => vec![method],
            None => vec!["GET", "POST", "PUT", "DELETE"],
        };
        let path = concrete(route.path);
        for method in methods {
            for credential in [
                None,
                Some("Bearer not-a-credential"),
                Some("Basic b3BzOm9wcw=="),
            ] {
                let answer = call(&app, method, &path, credential).await;
                let case = format!("{method} {path} with {credential:?}");
                match route.access {
                    Access::Admin => answer.assert_is(401, &admin_refusal, &case),
                    Access::User => {
                        assert_eq!(answer.status, 401, "{case}: {answer:?}");
                        let expected = match credential {
                            Some(bearer) if bearer.starts_with("Bearer ") => {
                                json!({"error": "jwt malformed"})
                            }
                            _ => json!({"ok": false, "error": "Missing Bearer token"}),
                        };
                        assert_eq!(answer.body, expected, "{case}");
                    }
                    Access::Public => unreachable!(),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "walked {checked} calls");
    assert_eq!(app.token_row_count().await, 0, "nothing was created");
    assert!(
        app.ban_rows().await.is_empty(),
        "nothing was lifted or banned"
    );
}

/// Making a route public is a decision this test records. The contract and the metrics are
/// public: neither holds a secret (`/metrics` can move to `metrics.address`).
#[tokio::test]
async fn the_public_routes_are_health_readiness_verification_forward_auth_the_contract_and_metrics()
{
    let public: Vec<(Option<&str>, &str)> = route_table()
        .into_iter()
        .filter(|route| route.access == Access::Public)
        .map(|route| (route.method, route.path))
        .collect();
    assert_eq!(
        public,
        [
            (Some("GET"), "/api/public/verify"),
            (None, "/api/forward-auth"),
            (None, "/api/forward-auth/{tail:.*}"),
            (Some("GET"), "/health"),
            (Some("HEAD"), "/health"),
            (Some("GET"), "/ready"),
            (Some("HEAD"), "/ready"),
            (Some("GET"), "/openapi.json"),
            (Some("GET"), "/metrics"),
        ]
    );
}
