//! Hostile input on every route: each case answers its documented 4xx (never a 500) and
//! leaves the database as it was.

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Answer, TestApp};

/// `MAX_LIFETIME_MS`: 100 years.
const LONGEST_LIFETIME_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// `[[[…]]]` nested `depth` times.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// POSTs a raw JSON text as user 7.
async fn post_text(app: &TestApp, action: &str, body: String) -> Answer {
    let request = app.manage_request(Method::POST, action, 7);
    let request = request
        .header("content-type", "application/json")
        .body(body);
    app.send(request).await
}

#[tokio::test]
async fn hostile_new_token_bodies_answer_400_bad_request_and_write_nothing() {
    let app = spawn_app().await;
    let (full, ci) = (r#""full""#, r#""ci""#);
    let (long_ascii, long_umlauts) = (json!("a".repeat(51)), json!("ü".repeat(51)));
    let (long_ascii, long_umlauts) = (long_ascii.to_string(), long_umlauts.to_string());
    // `{"privilege": <privilege>, "name": <name>}`, both raw JSON.
    #[rustfmt::skip]
    let fields = [
        ("privilege as a number",   "1",                    ci),
        ("privilege as a list",     r#"["full"]"#,          ci),
        ("privilege in upper case", r#""FULL""#,            ci),
        ("privilege padded",        r#"" full""#,           ci),
        ("privilege null",          "null",                 ci),
        ("name as an object",       full,                   r#"{"first":"ci"}"#),
        ("name as a number",        full,                   "5"),
        ("name empty",              full,                   r#""""#),
        ("name of 51 chars",        full,                   &long_ascii),
        ("name of 51 ü",            full,                   &long_umlauts),
        ("name with a newline",     full,                   r#""a\nb""#),
        ("name with a NUL",         full,                   r#""a\u0000b""#),
        ("name with a tab",         full,                   r#""a\tb""#),
        ("name with DEL",           full,                   r#""a\u007fb""#),
        ("name with a C1 control",  full,                   r#""a\u0085b""#),
    ];
    let over_longest = (LONGEST_LIFETIME_MS + 1).to_string();
    let (u64_max, many_ips) = (
        u64::MAX.to_string(),
        format!("[{}]", ["\"::1\""; 101].join(",")),
    );
    let deep = nested(400);
    // `{"privilege": "full", "name": "ci", <field>: <value>}`, the value raw JSON.
    #[rustfmt::skip]
    let extras = [
        ("expires 0",               "expires", "0"),
        ("expires -1",              "expires", "-1"),
        ("expires 1.5",             "expires", "1.5"),
        ("expires as a string",     "expires", r#""1000""#),
        ("expires 1e30",            "expires", "1e30"),
        ("expires over 100 years",  "expires", &over_longest),
        ("expires u64::MAX",        "expires", &u64_max),
        ("expires past u64",        "expires", "18446744073709551616"),
        ("expires true",            "expires", "true"),
        ("ipv4 truncated address",  "ipv4",    r#"["1.2.3"]"#),
        ("ipv4 host name",          "ipv4",    r#"["example.com"]"#),
        ("ipv4 prefix too long",    "ipv4",    r#"["10.0.0.0/33"]"#),
        ("ipv4 one bad among good", "ipv4",    r#"["1.2.3.4","bad"]"#),
        ("ipv4 entry as a number",  "ipv4",    "[1234]"),
        ("ipv4 entry null",         "ipv4",    "[null]"),
        ("ipv4 entry empty",        "ipv4",    r#"[""]"#),
        ("ipv4 bare bad string",    "ipv4",    r#""not-an-ip""#),
        ("ipv4 as an object",       "ipv4",    r#"{"ip":"1.2.3.4"}"#),
        ("ipv4 with SQL",           "ipv4",    r#"["1.2.3.4'); DROP TABLE api_tokens; --"]"#),
        ("ipv4 with 101 entries",   "ipv4",    &many_ips),
        ("prefix of 1 char",        "prefix",  r#""a""#),
        ("prefix of 11 chars",      "prefix",  r#""abcdefghijk""#),
        ("prefix empty",            "prefix",  r#""""#),
        ("prefix with a space",     "prefix",  r#""a b""#),
        ("prefix with punctuation", "prefix",  r#""ab!""#),
        ("prefix not ASCII",        "prefix",  r#""é€""#),
        ("prefix with a NUL",       "prefix",  r#""ab\u0000""#),
        ("prefix as a number",      "prefix",  "12"),
        ("deeply nested field",     "x",       &deep),
    ];
    let mut cases: Vec<(&str, String)> = fields
        .iter()
        .map(|(case, p, n)| (*case, format!(r#"{{"privilege":{p},"name":{n}}}"#)))
        .collect();
    cases.extend(extras.iter().map(|(case, field, value)| {
        (
            *case,
            format!(r#"{{"privilege":"full","name":"ci","{field}":{value}}}"#),
        )
    }));
    cases.push(("deeply nested document", nested(500)));
    for (case, body) in cases {
        assert!(
            body.len() <= 1024,
            "{case}: the case must fit the body limit"
        );
        let answer = post_text(&app, "new-token", body).await;
        answer.assert_is(400, &app.failure_now("Bad Request"), case);
        assert_eq!(app.token_row_count().await, 0, "{case} wrote a row");
    }
}

#[tokio::test]
async fn boundary_values_just_inside_the_rules_are_accepted() {
    let app = spawn_app().await;
    let ips: Vec<String> = (1..=100).map(|n| format!("::{n:x}")).collect();
    let in_100_years = json!(app.clock_iso_after(Duration::from_millis(LONGEST_LIFETIME_MS)));
    let body = |name: &str, extra: Value| {
        let mut body = json!({"privilege": "full", "name": name});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    #[rustfmt::skip]
    let cases = [
        ("50 ü",           body(&"ü".repeat(50), json!({})),                        Value::Null),
        ("100 years",      body("long", json!({"expires": LONGEST_LIFETIME_MS})), in_100_years),
        ("100 ip entries", body("ips", json!({"ipv4": ips})),                       Value::Null),
    ];
    for (case, body, expires_at) in cases {
        let answer = app.manage_post("new-token", 7, &body).await;
        assert_eq!(answer.status, 201, "{case}: {answer:?}");
        assert_eq!(answer.data()["expiresAt"], expires_at, "{case}");
    }
}

#[tokio::test]
async fn names_that_look_dangerous_but_are_valid_are_stored_verbatim() {
    let app = spawn_app().await;
    let names = [
        "'; DROP TABLE api_tokens; --",
        "Robert\"); DROP TABLE api_tokens;--",
        "%_\\ LIKE wildcards",
        "<script>alert(1)</script>",
        "🔑 four-byte UTF-8 🔑",
        "  padded  ",
        &"ü".repeat(50),
    ];
    for name in names {
        let token = app
            .http_token(7, &json!({"privilege": "full", "name": name}))
            .await;
        let sql = "SELECT name FROM api_tokens WHERE id = ?";
        let stored: String = app.query_one(sql, (token.id,)).await;
        assert_eq!(stored, name);
        let address = json!({"tokenId": token.id, "publicIdentifier": token.public_id,
            "name": name});
        let answer = app.manage_post("metadata", 7, &address).await;
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        assert_eq!(answer.data()["tokenMeta"]["name"], name);
    }
    assert_eq!(
        app.token_row_count().await,
        names.len() as u64,
        "the table survived"
    );
}

#[tokio::test]
async fn hostile_token_addresses_answer_their_documented_status_and_revoke_nothing() {
    let app = spawn_app().await;
    let token = app
        .http_token(7, &json!({"privilege": "full", "name": "ci"}))
        .await;
    let (id, pid) = (token.id.to_string(), json!(token.public_id).to_string());
    let (random, _) = token.public_id.split_once('_').unwrap();
    let first = if random.starts_with('0') { "1" } else { "0" };
    let as_json = |text: String| json!(text).to_string();
    // The whole identifier: a checksum of digits alone has no case to change.
    let upper = as_json(token.public_id.to_uppercase());
    let flipped = as_json(format!("{first}{}", &token.public_id[1..]));
    let short = as_json(token.public_id[..136].to_owned());
    let long = as_json(format!("{}0", token.public_id));
    let (garbage, umlauts) = (as_json("z".repeat(137)), as_json("ü".repeat(137)));
    let injection = as_json(format!("' OR '1'='1{}", "x".repeat(126)));
    let (long_name, in_list) = (as_json("c".repeat(51)), format!("[{id}]"));
    let (padded, max) = (format!(r#"" {id}""#), u64::MAX.to_string());
    let huge = "99999999999999999999999";
    let huge_text = format!(r#""{huge}""#);
    let (ci, bad, identity) = (r#""ci""#, "Bad Request", "Invalid identity");
    // Each row changes one of tokenId, publicIdentifier and name (raw JSON) of the real token.
    #[rustfmt::skip]
    let cases: [(&str, &str, &str, &str, u16, &str); 26] = [
        ("tokenId 1.5",             "1.5",      &pid,       ci,                   400, bad),
        ("tokenId -1",              "-1",       &pid,       ci,                   400, bad),
        ("tokenId true",            "true",     &pid,       ci,                   400, bad),
        ("tokenId null",            "null",     &pid,       ci,                   400, bad),
        ("tokenId in a list",       &in_list,   &pid,       ci,                   400, bad),
        ("tokenId \"12a\"",         r#""12a""#, &pid,       ci,                   400, bad),
        ("tokenId empty string",    r#""""#,    &pid,       ci,                   400, bad),
        ("tokenId padded string",   &padded,    &pid,       ci,                   400, bad),
        ("tokenId 1e30",            "1e30",     &pid,       ci,                   400, bad),
        ("tokenId huge number",     huge,       &pid,       ci,                   400, bad),
        ("tokenId huge string",     &huge_text, &pid,       ci,                   400, bad),
        ("tokenId 0",               "0",        &pid,       ci,                   401, bad),
        ("tokenId u64::MAX",        &max,       &pid,       ci,                   401, bad),
        ("identifier of 136",       &id,        &short,     ci,                   400, bad),
        ("identifier of 138",       &id,        &long,      ci,                   400, bad),
        ("identifier as a number",  &id,        "7",        ci,                   400, bad),
        ("137 chars of garbage",    &id,        &garbage,   ci,                   401, identity),
        ("137 ü",                   &id,        &umlauts,   ci,                   401, identity),
        ("SQL in the identifier",   &id,        &injection, ci,                   401, identity),
        ("upper-case identifier",   &id,        &upper,     ci,                   401, identity),
        ("one random char changed", &id,        &flipped,   ci,                   401, identity),
        ("name of 51 chars",        &id,        &pid,       &long_name,           400, bad),
        ("name empty",              &id,        &pid,       r#""""#,              400, bad),
        ("name with a NUL",         &id,        &pid,       r#""c\u0000i""#,      400, bad),
        ("SQL in the name",         &id,        &pid,       r#""ci' OR '1'='1""#, 401, bad),
        ("name differs in case",    &id,        &pid,       r#""CI""#,            401, bad),
    ];
    for (case, token_id, public_id, name, status, reason) in cases {
        let body =
            format!(r#"{{"tokenId":{token_id},"publicIdentifier":{public_id},"name":{name}}}"#);
        let answer = post_text(&app, "revoke", body).await;
        answer.assert_is(status, &app.failure_now(reason), case);
        assert_eq!(
            app.usage_and_valid(token.id).await,
            (0, true),
            "{case} revoked the token"
        );
    }
    let deep = post_text(&app, "revoke", format!(r#"{{"tokenId":{}}}"#, nested(400))).await;
    deep.assert_is(400, &app.failure_now(bad), "deeply nested");
    assert_eq!(app.token_row_count().await, 1);
}

#[tokio::test]
async fn hostile_api_keys_answer_401_invalid_key_and_count_nothing() {
    let app = spawn_app().await;
    let token = app
        .http_token(7, &json!({"privilege": "full", "name": "ci"}))
        .await;
    let digest = {
        use sha2::{Digest as _, Sha256};
        hex::encode(Sha256::digest(token.key.as_bytes()))
    };
    let text = |s: &str| HeaderValue::from_str(s).unwrap();
    let latin1 = HeaderValue::from_bytes(&[token.key.as_bytes(), b"\xe9"].concat()).unwrap();
    let long_prefix = format!("{}{}", "p".repeat(600), &token.key[3..]);
    #[rustfmt::skip]
    let cases = [
        ("4 KiB of letters",               text(&"k".repeat(4096))),
        ("a 600-char prefix",              text(&long_prefix)),
        ("non-UTF-8 bytes",                HeaderValue::from_bytes(b"api_\xff\xfe_\x80").unwrap()),
        ("a real key plus a Latin-1 byte", latin1),
        ("SQL",                            text("' OR 1=1 --")),
        ("the stored digest",              text(&digest)),
        ("the key in upper case",          text(&token.key.to_uppercase())),
        ("the key with a fourth part",     text(&format!("{}_x", token.key))),
        ("only separators",                text("__")),
        ("the public identifier",          text(&token.public_id)),
    ];
    for (case, key) in cases {
        let url = app.url("/api/public/verify?privilege=full");
        let answer = app.send(app.client.get(url).header("x-api-key", key)).await;
        answer.assert_is(401, &app.failure_now("Invalid key"), case);
    }
    assert_eq!(app.usage_and_valid(token.id).await, (0, true));
    assert_eq!(
        app.verify(&token.key, "full").await.status,
        200,
        "the real key still works"
    );
}

#[tokio::test]
async fn hostile_query_strings_on_verify_answer_400_bad_request() {
    let app = spawn_app().await;
    let token = app
        .http_token(7, &json!({"privilege": "full", "name": "ci"}))
        .await;
    let long = format!("privilege={}", "f".repeat(4096));
    #[rustfmt::skip]
    let cases = [
        ("NUL",                      "privilege=full%00"),
        ("SQL",                      "privilege=full'%20OR%20'1'='1"),
        ("invalid percent encoding", "privilege=%ZZ"),
        ("privilege as a list",      "privilege[]=full"),
        ("a 4 KiB privilege",        &long),
    ];
    for (case, query) in cases {
        let url = app.url(&format!("/api/public/verify?{query}"));
        let answer = app
            .send(app.client.get(url).header("x-api-key", &token.key))
            .await;
        answer.assert_is(400, &app.failure_now("Bad Request"), case);
    }
    assert_eq!(app.usage_and_valid(token.id).await, (0, true));
}

#[tokio::test]
async fn a_hostile_body_on_list_metadata_is_ignored() {
    let app = spawn_app().await;
    let request = app.manage_request(Method::GET, "list-metadata", 7);
    let request = request
        .header("content-type", "application/json")
        .body(r#"{"userId": 8, "x": "#);
    let answer = app.send(request).await;
    let data = json!({"total": 0, "totalInvalidTokens": 0, "totalValidTokens": 0});
    answer.assert_is(200, &app.success_now(data), "unreadable body on a GET");
}
