//! `GET /openapi.json` describes exactly the routes the application registers, with the
//! security each needs and the riavzon reasons word for word. (That it is valid OpenAPI 3.1,
//! and that the live service keeps to it, is checked by `scripts/fuzz.sh` with
//! openapi-spec-validator and schemathesis.)

use std::collections::BTreeSet;

use iam_tokens::http::{route_table, Access};
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

/// The seven BFF actions of SPEC A7 and their methods.
const ACTIONS: [(&str, &str); 7] = [
    ("new-token", "POST"),
    ("list-metadata", "GET"),
    ("revoke", "POST"),
    ("metadata", "POST"),
    ("rotate", "POST"),
    ("ip-restriction-update", "POST"),
    ("privilege-update", "POST"),
];

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            found.insert((method.to_uppercase(), path.clone()));
        }
    }
    found
}

fn security_of(document: &Value, method: &str, path: &str) -> Option<String> {
    let operation = &document["paths"][path][method.to_lowercase()];
    let requirement = operation["security"].as_array()?.first()?.as_object()?;
    requirement.keys().next().cloned()
}

#[tokio::test]
async fn the_document_lists_exactly_the_registered_routes_with_their_security() {
    let app = spawn_app_with(|s| s.api_tokens.limit_tokens_per_user = 7).await;
    let answer = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"],
        "application/json; charset=utf-8"
    );
    let document = answer.body;
    assert_eq!(document["openapi"], "3.1.0");

    let mut expected = BTreeSet::new();
    let mut access_of = Vec::new();
    for route in route_table() {
        match route.method {
            Some(method) => {
                expected.insert((method.to_owned(), route.path.to_owned()));
                access_of.push((method.to_owned(), route.path.to_owned(), route.access));
            }
            // Forward-auth takes any method (a gateway sends the original one); documented
            // as GET, its tail without actix's pattern.
            None if route.path.starts_with("/api/forward-auth") => {
                let path = route.path.replace(":.*", "");
                expected.insert(("GET".to_owned(), path.clone()));
                access_of.push(("GET".to_owned(), path, route.access));
            }
            None => {
                assert_eq!(route.path, "/api/manage/{action}");
                for (action, method) in ACTIONS {
                    let path = format!("/api/manage/{action}");
                    expected.insert((method.to_owned(), path.clone()));
                    access_of.push((method.to_owned(), path, route.access));
                }
            }
        }
    }
    assert_eq!(operations(&document), expected);
    for (method, path, access) in access_of {
        let expected = match access {
            Access::Public
                if path == "/api/public/verify" || path.starts_with("/api/forward-auth") =>
            {
                Some("api_key".to_owned())
            }
            Access::Public => {
                let security = &document["paths"][&path][method.to_lowercase()]["security"];
                assert_eq!(
                    security,
                    &serde_json::json!([]),
                    "{method} {path}: open, said so"
                );
                None
            }
            Access::User => Some("bff_jwt".to_owned()),
            Access::Admin => Some("admin_bearer".to_owned()),
        };
        assert_eq!(
            security_of(&document, &method, &path),
            expected,
            "{method} {path}"
        );
    }
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["bff_jwt"]["scheme"], "bearer");
    assert_eq!(schemes["bff_jwt"]["bearerFormat"], "JWT");
    assert_eq!(schemes["admin_bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "x-api-key");
}

fn reasons(document: &Value, method: &str, path: &str, status: &str) -> BTreeSet<String> {
    let content = &document["paths"][path][method]["responses"][status]["content"];
    let schema = &content["application/json"]["schema"];
    let mut found = BTreeSet::new();
    let alternatives = match schema["anyOf"].as_array() {
        Some(all) => all.clone(),
        None => vec![schema.clone()],
    };
    for alternative in alternatives {
        for reason in alternative["properties"]["reason"]["enum"]
            .as_array()
            .into_iter()
            .flatten()
        {
            found.insert(reason.as_str().expect("reason").to_owned());
        }
    }
    found
}

#[tokio::test]
async fn the_reasons_are_riavzons_word_for_word_with_the_configured_limit() {
    let app = spawn_app_with(|s| s.api_tokens.limit_tokens_per_user = 7).await;
    let document = app
        .send(app.client.get(app.url("/openapi.json")))
        .await
        .body;

    let verify = reasons(&document, "get", "/api/public/verify", "401");
    for reason in [
        "No api key provided",
        "Invalid key",
        "Invalid Host",
        "Token expired",
        "Server error validating token.",
        "Request id already used",
    ] {
        assert!(verify.contains(reason), "{reason:?} in {verify:?}");
    }
    assert_eq!(
        reasons(&document, "post", "/api/manage/new-token", "400"),
        BTreeSet::from(
            [
                "Bad Request",
                "\"_\" is a reserved character, please exclude it from your prefixes",
                "You cannot have more then 7 valid tokens at a time",
                "Server error",
            ]
            .map(str::to_owned)
        )
    );
    assert_eq!(
        reasons(&document, "get", "/api/manage/list-metadata", "500"),
        BTreeSet::from(["Server error".to_owned()])
    );
    let retry_after =
        &document["paths"]["/api/public/verify"]["get"]["responses"]["429"]["headers"];
    assert!(retry_after["Retry-After"].is_object(), "{retry_after}");
}

/// The document as the service serves it.
async fn served(app: &crate::helpers::TestApp) -> Value {
    let response = app.client.get(app.url("/openapi.json")).send().await;
    response.expect("document").json().await.expect("JSON")
}

#[tokio::test]
async fn every_operation_has_a_camel_case_verb_id_a_description_and_links_that_resolve() {
    let app = spawn_app().await;
    let document = served(&app).await;
    let operations: Vec<&Value> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .collect();
    let ids: BTreeSet<&str> = operations
        .iter()
        .map(|op| op["operationId"].as_str().expect("an operationId"))
        .collect();
    assert_eq!(ids.len(), operations.len(), "ids are unique");
    let verbs = [
        "get", "head", "list", "create", "verify", "patch", "replace", "revoke",
    ];
    let more = [
        "change", "set", "update", "delete", "lift", "manage", "rotate", "send", "retry",
    ];
    for op in &operations {
        let id = op["operationId"].as_str().unwrap_or_default();
        let camel = id.chars().all(|c| c.is_ascii_alphanumeric())
            && id.starts_with(|c: char| c.is_ascii_lowercase());
        assert!(camel, "{id}: camelCase");
        let verb = verbs.iter().chain(&more).any(|verb| id.starts_with(verb));
        assert!(verb, "{id}: starts with a verb");
        let description = op["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{id}: a description");
        assert!(
            !op["summary"].as_str().unwrap_or_default().is_empty(),
            "{id}: a summary"
        );
        for response in op["responses"].as_object().expect("responses").values() {
            let Some(links) = response["links"].as_object() else {
                continue;
            };
            for (name, link) in links {
                let target = link["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.contains(target),
                    "{id}: link {name} to {target}, which is no operation"
                );
            }
        }
    }
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|tag| tag["name"].as_str())
        .collect();
    assert_eq!(tags, ["public", "manage", "admin"]);
}

#[tokio::test]
async fn every_admin_route_declares_a_scope_of_the_catalogue_and_the_document_shows_it() {
    use iam_tokens::domain::access::scope::CATALOGUE;
    let app = spawn_app().await;
    let document = served(&app).await;
    for route in route_table() {
        let method = route.method.unwrap_or("*");
        match route.access {
            Access::Admin => {
                let scope = route.scope.expect("an admin route declares its scope");
                assert!(
                    scope.split('|').all(|one| CATALOGUE.contains(&one)),
                    "{method} {}: {scope}",
                    route.path
                );
                let op = &document["paths"][route.path][method.to_lowercase()];
                assert_eq!(op["x-required-scope"], scope, "{method} {}", route.path);
                let description = op["description"].as_str().unwrap_or_default();
                assert!(
                    scope.split('|').all(|one| description.contains(one)),
                    "{method} {}",
                    route.path
                );
            }
            _ => assert_eq!(route.scope, None, "{method} {}: no scope", route.path),
        }
    }
}
