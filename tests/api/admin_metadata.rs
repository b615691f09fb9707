//! Admin-only metadata (SPEC B1): every rule at create, merge-patch and replace-all, limits,
//! concurrency, the command line, and that no end-user answer ever shows it.

use iam_tokens::domain::Privilege;
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::helpers::{admin_error, run_cli, spawn_admin_app, Answer, TestApp};

const RULE_KEY: &str = "keys must be 1 to 40 characters of A-Z, a-z, 0-9 and _";
const RULE_STRING: &str = "string values are at most 500 characters";
const RULE_TYPE: &str = "values must be a string, number, boolean or null (no objects or arrays)";
const RULE_TOO_MANY: &str = "a token has at most 50 metadata keys";
const RULE_NOT_OBJECT: &str = "metadata must be a JSON object";

/// The 422 of a rule broken by `key`.
fn invalid(key: &str, rule: &str) -> Value {
    let field = format!("metadata.{key}");
    admin_error("invalid_metadata", &format!("{key}: {rule}"), Some(&field))
}

/// The 422 of a rule about the whole object.
fn invalid_whole(rule: &str) -> Value {
    admin_error("invalid_metadata", rule, Some("metadata"))
}

/// `{"metadata": metadata}`, the answer of a successful change.
fn answer(metadata: Value) -> Value {
    json!({ "metadata": metadata })
}

/// `object` without `key`.
fn without(mut object: Value, key: &str) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove(key);
    }
    object
}

/// `object` with the fields of `extra` added.
fn merged(mut object: Value, extra: Value) -> Value {
    if let (Some(map), Value::Object(extra)) = (object.as_object_mut(), extra) {
        map.extend(extra);
    }
    object
}

/// `count` keys `k0…` with number values.
fn keys(count: usize) -> Value {
    let keys: Map<_, _> = (0..count).map(|i| (format!("k{i}"), json!(i))).collect();
    Value::Object(keys)
}

async fn create(app: &TestApp, metadata: &Value) -> Answer {
    let body = json!({"userId": 1, "name": "meta", "metadata": metadata});
    app.admin_json(Method::POST, "/tokens", &body).await
}

async fn patch(app: &TestApp, id: u64, body: &Value) -> Answer {
    let path = format!("/tokens/{id}/metadata");
    app.admin_json(Method::PATCH, &path, body).await
}

async fn put(app: &TestApp, id: u64, body: &Value) -> Answer {
    let path = format!("/tokens/{id}/metadata");
    app.admin_json(Method::PUT, &path, body).await
}

/// A token of user 1 with `metadata`; its id.
async fn token_with(app: &TestApp, metadata: Value) -> u64 {
    let body = json!({"userId": 1, "name": "meta", "metadata": metadata});
    app.admin_create(&body).await.id
}

/// Sends `metadata` to create, PATCH and PUT and expects the 422 `expected` from all three.
async fn refused_everywhere(app: &TestApp, id: u64, body: &Value, expected: &Value, case: &str) {
    let created = create(app, body).await;
    created.assert_is(422, expected, &format!("create: {case}"));
    let patched = patch(app, id, body).await;
    patched.assert_is(422, expected, &format!("PATCH: {case}"));
    let replaced = put(app, id, body).await;
    replaced.assert_is(422, expected, &format!("PUT: {case}"));
}

#[tokio::test]
async fn every_broken_rule_is_a_422_naming_the_key_and_the_rule_at_create_patch_and_put() {
    let app = spawn_admin_app().await;
    let id = token_with(&app, json!({"kept": "as is"})).await;
    let long = "k".repeat(41);
    #[rustfmt::skip]
    let cases = [
        ("AuthPI: a hyphen",        json!({"billing-account": "a"}),        "billing-account", RULE_KEY),
        ("AuthPI: a space",         json!({"crm id": "C-1"}),               "crm id",          RULE_KEY),
        ("AuthPI: a dot",           json!({"salesforce.id": "S-1"}),        "salesforce.id",   RULE_KEY),
        ("AuthPI: an at sign",      json!({"user@reference": "u"}),         "user@reference",  RULE_KEY),
        ("AuthPI: a nested object", json!({"config": {"nested": "object"}}), "config",         RULE_TYPE),
        ("AuthPI: an array",        json!({"tags": ["a"]}),                 "tags",            RULE_TYPE),
        ("an empty array",          json!({"tags": []}),                    "tags",            RULE_TYPE),
        ("a 41-character key",      json!({ long.clone(): 1 }),             &long,             RULE_KEY),
        ("a non-ASCII letter",      json!({"clé": 1}),                      "clé",             RULE_KEY),
        ("a 501-character string",  json!({"note": "x".repeat(501)}),       "note",            RULE_STRING),
        ("501 two-byte characters", json!({"note": "é".repeat(501)}),       "note",            RULE_STRING),
    ];
    for (case, metadata, key, rule) in cases {
        refused_everywhere(&app, id, &metadata, &invalid(key, rule), case).await;
    }
    // An empty key has no name to give: the answer points at the object.
    let empty_key = admin_error("invalid_metadata", RULE_KEY, Some("metadata"));
    refused_everywhere(&app, id, &json!({"": 1}), &empty_key, "an empty key").await;
    assert_eq!(app.stored_metadata(id).await, json!({"kept": "as is"}));
    let rows = app.token_row_count().await;
    assert_eq!(rows, 1, "no refused create made a token");
}

#[tokio::test]
async fn metadata_that_is_not_an_object_is_a_422_on_the_metadata_field() {
    let app = spawn_admin_app().await;
    let id = token_with(&app, json!({})).await;
    let expected = invalid_whole(RULE_NOT_OBJECT);
    for body in [json!(["a"]), json!("billing"), json!(5), json!(true)] {
        refused_everywhere(&app, id, &body, &expected, &format!("{body}")).await;
    }
    let reply = patch(&app, id, &Value::Null).await;
    reply.assert_is(422, &expected, "PATCH null");
    let no_metadata = create(&app, &Value::Null).await;
    assert_eq!(no_metadata.status, 201, "null at create means none");
}

#[tokio::test]
async fn the_authpi_keys_and_every_scalar_type_within_limits_are_accepted_as_given() {
    let app = spawn_admin_app().await;
    let metadata = json!({
        "billing_account": "acct_1", "isLegacyUser": true, "migration_batch_3": 3,
        "k".repeat(40): "forty", "note": "x".repeat(500), "accents": "é".repeat(500),
        "ratio": -1.25, "big": u64::MAX, "flag": false, "cleared": null, "empty": "",
    });
    let created = create(&app, &metadata).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["token"]["metadata"], metadata, "as answered");
    let id = created.body["token"]["id"].as_u64().unwrap_or_default();
    assert_eq!(app.stored_metadata(id).await, metadata, "stored unchanged");
    let id = token_with(&app, json!({})).await;
    let patched = without(metadata.clone(), "cleared");
    let answered = patch(&app, id, &metadata).await;
    answered.assert_is(200, &answer(patched), "PATCH, where null removes");
    let replaced = put(&app, id, &metadata).await;
    replaced.assert_is(200, &answer(metadata.clone()), "PUT keeps null values");
    let got = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(got.body["metadata"], metadata, "as GET answers it");
}

#[tokio::test]
async fn a_token_has_at_most_50_keys_at_create_and_by_patching() {
    let app = spawn_admin_app().await;
    let too_many = invalid_whole(RULE_TOO_MANY);
    let reply = create(&app, &keys(51)).await;
    reply.assert_is(422, &too_many, "create with 51");
    let id = token_with(&app, keys(50)).await;
    assert_eq!(app.stored_metadata(id).await, keys(50), "50 keys at create");
    let the_51st = json!({"k50": 50});
    let reply = patch(&app, id, &the_51st).await;
    reply.assert_is(422, &too_many, "the 51st key");
    let reply = put(&app, id, &keys(51)).await;
    reply.assert_is(422, &too_many, "PUT 51 keys");
    let reply = patch(&app, id, &keys(51)).await;
    reply.assert_is(422, &too_many, "PATCH 51 keys");
    let stored = app.stored_metadata(id).await;
    assert_eq!(stored, keys(50), "refusals changed nothing");
    let swapped = without(keys(51), "k0");
    let swap = patch(&app, id, &json!({"k0": null, "k50": 50})).await;
    swap.assert_is(200, &answer(swapped), "remove one, add one");
    let fewer = token_with(&app, keys(49)).await;
    let the_50th = patch(&app, fewer, &json!({"k49": 49})).await;
    the_50th.assert_is(200, &answer(keys(50)), "the 50th key by patch");
}

#[tokio::test]
async fn merge_patch_sets_present_keys_removes_null_ones_and_leaves_absent_ones() {
    let app = spawn_admin_app().await;
    let id = token_with(&app, json!({"a": 1, "b": "x"})).await;
    let merged = patch(&app, id, &json!({"b": "y", "c": true})).await;
    merged.assert_is(200, &answer(json!({"a": 1, "b": "y", "c": true})), "merge");
    let rest = json!({"b": "y", "c": true});
    let deleted = patch(&app, id, &json!({"a": null, "never_set": null})).await;
    deleted.assert_is(200, &answer(rest.clone()), "delete");
    let reply = patch(&app, id, &json!({})).await;
    reply.assert_is(200, &answer(rest.clone()), "{}");
    assert_eq!(app.stored_metadata(id).await, rest);
    let got = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(got.body["metadata"], rest);
    let emptied = patch(&app, id, &json!({"b": null, "c": null})).await;
    emptied.assert_is(200, &answer(json!({})), "the last keys removed");
    assert_eq!(app.stored_metadata(id).await, Value::Null, "none is NULL");
}

#[tokio::test]
async fn put_replaces_all_the_metadata() {
    let app = spawn_admin_app().await;
    let id = token_with(&app, json!({"a": 1, "b": "x"})).await;
    let replaced = put(&app, id, &json!({"d": 2})).await;
    replaced.assert_is(200, &answer(json!({"d": 2})), "replace");
    assert_eq!(app.stored_metadata(id).await, json!({"d": 2}));
    let emptied = put(&app, id, &json!({})).await;
    emptied.assert_is(200, &answer(json!({})), "replace with nothing");
    assert_eq!(app.stored_metadata(id).await, Value::Null);
}

#[tokio::test]
async fn a_refused_or_misaddressed_change_leaves_the_stored_metadata_and_the_log_alone() {
    let app = spawn_admin_app().await;
    let id = token_with(&app, json!({"a": 1})).await;
    let bad = patch(&app, id, &json!({"a": 2, "crm-id": 1})).await;
    let expected = invalid("crm-id", RULE_KEY);
    bad.assert_is(422, &expected, "one bad key refuses it all");
    let not_found = admin_error("not_found", "no token with id 999", None);
    let change = json!({"a": 2});
    let reply = patch(&app, 999, &change).await;
    reply.assert_is(404, &not_found, "PATCH unknown id");
    let reply = put(&app, 999, &change).await;
    reply.assert_is(404, &not_found, "PUT unknown id");
    let path = format!("/tokens/{id}/metadata");
    let send = |content_type: &'static str, body: &'static str| {
        let request = app.admin_request(Method::PATCH, &path);
        app.send(request.header("content-type", content_type).body(body))
    };
    let malformed = admin_error("bad_request", "malformed JSON at line 1 column 5", None);
    let answer = send("application/json", r#"{"a":"#).await;
    answer.assert_is(400, &malformed, "malformed JSON");
    let message = "send Content-Type: application/json";
    let media = admin_error("unsupported_media_type", message, None);
    let reply = send("text/plain", r#"{"a":2}"#).await;
    reply.assert_is(415, &media, "not JSON");
    let message = "bodies are at most 16384 bytes";
    let too_large = admin_error("payload_too_large", message, None);
    let oversized = json!({"note": "x".repeat(16 * 1024)});
    let reply = patch(&app, id, &oversized).await;
    reply.assert_is(413, &too_large, "over 16 KiB");
    assert_eq!(app.stored_metadata(id).await, json!({"a": 1}));
    let events: Vec<String> = app
        .audit_rows(Some(id))
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(events, ["created"], "no refused change is in the log");
}

#[tokio::test]
async fn concurrent_patches_of_different_keys_lose_nothing() {
    let app = spawn_admin_app().await;
    let id = token_with(&app, json!({})).await;
    let mut patches = tokio::task::JoinSet::new();
    for n in 0..200_u64 {
        let request = app.admin_request(Method::PATCH, &format!("/tokens/{id}/metadata"));
        let request = request.json(&json!({ format!("key_{}", n % 40): n }));
        patches.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    }
    while let Some(status) = patches.join_next().await {
        assert_eq!(status.expect("task").expect("request"), 200);
    }
    let stored = app.stored_metadata(id).await;
    let stored = stored.as_object().expect("an object");
    assert_eq!(stored.len(), 40, "every key is present: {stored:?}");
    for (key, value) in stored {
        let own = value.as_u64().map(|v| format!("key_{}", v % 40));
        assert_eq!(own.as_ref(), Some(key), "{key} holds one of its values");
    }
    let events = app.audit_rows(Some(id)).await.into_iter();
    let updates = events.filter(|e| e.0 == "metadata_updated").count();
    assert_eq!(updates, 200, "one event per patch");
}

#[tokio::test]
async fn token_create_on_the_command_line_stores_typed_metadata() {
    let app = spawn_admin_app().await;
    let create = ["token", "create", "--user", "3", "--name", "cli"];
    let metas = [
        "--meta", "a=1", "--meta", "b=x", "--meta", "c=true", "--meta", "d=null",
    ];
    let output = run_cli(&app, &[&create[..], &metas[..]].concat()).await;
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let public_id = printed["data"]["rawPublicId"].as_str().unwrap_or_default();
    let id = app.token_id(public_id).await;
    let typed = json!({"a": 1, "b": "x", "c": true, "d": null});
    assert_eq!(app.stored_metadata(id).await, typed);
    let got = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(got.body["metadata"], typed);
    let long = format!("note={}", "x".repeat(501));
    #[rustfmt::skip]
    let refused = [("a bad key", "crm id=1"), ("no '='", "flag"), ("501 chars", long.as_str())];
    for (case, meta) in refused {
        let output = run_cli(&app, &[&create[..], &["--meta", meta]].concat()).await;
        assert!(!output.status.success(), "{case}: {output:?}");
    }
    let rows = app.token_row_count().await;
    assert_eq!(rows, 1, "refused commands created nothing");
}

/// Metadata keys and values no end-user answer may contain.
const SECRETS: [&str; 4] = [
    "billing_account_ref",
    "acct_9f8e7d",
    "tenantTier",
    "zeta-tenant-42",
];

fn assert_no_metadata(answer: &Answer, case: &str) {
    assert!(answer.status < 300, "{case}: {answer:?}");
    let text = format!("{} {:?}", answer.body, answer.headers);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{case} shows {secret:?}: {text}");
    }
}

#[tokio::test]
async fn no_end_user_route_nor_public_verify_shows_metadata() {
    let app = spawn_admin_app().await;
    let metadata = json!({"billing_account_ref": "acct_9f8e7d", "tenantTier": "zeta-tenant-42"});
    let body = json!({"userId": 7, "name": "leaky", "privilege": "full", "metadata": metadata});
    let token = app.admin_create(&body).await;
    let points = json!({"tokenId": token.id, "publicIdentifier": token.public_id, "name": "leaky"});
    let with = |extra: Value| merged(points.clone(), extra);
    assert_no_metadata(&app.verify(&token.key, "full").await, "public verify");
    assert_no_metadata(&app.manage_get("list-metadata", 7).await, "list-metadata");
    assert_no_metadata(&app.manage_post("metadata", 7, &points).await, "metadata");
    let ips = with(json!({"ipv4": ["127.0.0.1"]}));
    let answer = app.manage_post("ip-restriction-update", 7, &ips).await;
    assert_no_metadata(&answer, "ip-restriction-update");
    let privilege = with(json!({"newPrivilege": "protected"}));
    let answer = app.manage_post("privilege-update", 7, &privilege).await;
    assert_no_metadata(&answer, "privilege-update");
    assert_no_metadata(&app.verify(&token.key, "protected").await, "verify again");
    let another = json!({"privilege": "demo", "name": "another"});
    let answer = app.manage_post("new-token", 7, &another).await;
    assert_no_metadata(&answer, "new-token");
    let rotated = app.manage_post("rotate", 7, &points).await;
    assert_no_metadata(&rotated, "rotate");
    let new_key = rotated.data()["newRawToken"].as_str().unwrap_or_default();
    assert_no_metadata(&app.verify(new_key, "protected").await, "the new key");
    let sql = "SELECT id, public_identifier FROM api_tokens WHERE valid = 1 AND name = 'leaky'";
    let (id, public_id): (u64, String) = app.query_one(sql, ()).await;
    let points = json!({"tokenId": id, "publicIdentifier": public_id, "name": "leaky"});
    let answer = app.manage_post("metadata", 7, &points).await;
    assert_no_metadata(&answer, "metadata of the new token");
    let answer = app.manage_get("list-metadata", 7).await;
    assert_no_metadata(&answer, "list-metadata after rotate");
    assert_no_metadata(&app.manage_post("revoke", 7, &points).await, "revoke");
}

#[tokio::test]
async fn in_process_verify_carries_the_metadata_without_serializing_it() {
    let app = spawn_admin_app().await;
    let body = json!({"userId": 7, "name": "lib", "metadata": {"tenant": "t-1", "seats": 5}});
    let token = app.admin_create(&body).await;
    let verified = app
        .lib_verify(&token.key, Privilege::Restricted, None)
        .await;
    let verified = verified.outcome.expect("valid");
    let metadata = serde_json::to_value(&verified.metadata).expect("serializes");
    assert_eq!(metadata, json!({"tenant": "t-1", "seats": 5}));
    let printed = serde_json::to_value(&verified)
        .expect("serializes")
        .to_string();
    assert!(!printed.contains("t-1"), "{printed}");
    patch(&app, token.id, &json!({"tenant": null, "plan": "pro"})).await;
    let after = app
        .lib_verify(&token.key, Privilege::Restricted, None)
        .await;
    let after = after.outcome.expect("valid");
    let metadata = serde_json::to_value(&after.metadata).expect("serializes");
    let expected = json!({"seats": 5, "plan": "pro"});
    assert_eq!(metadata, expected, "the next verify sees the patch");
}

#[tokio::test]
async fn metadata_survives_a_rotation() {
    let app = spawn_admin_app().await;
    let metadata = json!({"billing_account": "acct_1", "seats": 5});
    let body = json!({"userId": 7, "name": "rot", "metadata": metadata});
    let token = app.admin_create(&body).await;
    let points = json!({"tokenId": token.id, "publicIdentifier": token.public_id, "name": "rot"});
    let rotated = app.manage_post("rotate", 7, &points).await;
    let new_key = rotated.data()["newRawToken"].as_str().unwrap_or_default();
    let verified = app.lib_verify(new_key, Privilege::Restricted, None).await;
    let verified = verified.outcome.expect("the new key verifies");
    assert_ne!(verified.token_id, token.id);
    let got = app
        .admin_get(&format!("/tokens/{}", verified.token_id))
        .await;
    assert_eq!(got.body["metadata"], metadata, "the new token has it");
    let carried = serde_json::to_value(&verified.metadata).expect("serializes");
    assert_eq!(carried, metadata, "and verification carries it");
}
