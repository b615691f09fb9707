//! `create` (SPEC A2, A3, A5): the key format, what is stored, prefixes, lifetimes and the
//! per-user limit.

use std::time::Duration;

use iam_tokens::domain::{checksum_of, Digest, IpRestriction, Privilege, TokenName};
use iam_tokens::service::CreateToken;
use mysql_async::Row;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::helpers::{
    envelope_json, failure_json, spawn_app, spawn_app_with, success_json, TestApp,
};
use crate::helpers::{ms, prefix, uid};

const HOUR_MS: u64 = 3_600_000;

fn request(user_id: u64, name: &str) -> CreateToken {
    CreateToken::new(
        uid(user_id),
        Privilege::Full,
        TokenName::parse(name).expect("name"),
    )
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Creates `count` tokens for `user_id`, failing the test if one is refused.
async fn create_many(app: &TestApp, user_id: u64, count: usize) {
    for n in 0..count {
        let created = app
            .lib_create(request(user_id, &format!("token {n}")))
            .await;
        assert!(created.is_ok(), "token {n} refused: {created:?}");
    }
}

#[tokio::test]
async fn create_answers_the_raw_key_the_public_id_and_the_expiry() {
    let app = spawn_app().await;
    let created = app.lib_create(request(7, "ci").lifetime(ms(HOUR_MS))).await;
    let data = created.data().expect("created").clone();
    assert_eq!(
        envelope_json(&created),
        success_json(
            &app.clock_iso(),
            json!({
                "rawApiKey": data.raw_api_key,
                "rawPublicId": data.raw_public_id,
                "expiresAt": app.clock_iso_after(Duration::from_millis(HOUR_MS)),
            })
        )
    );
}

#[tokio::test]
async fn the_raw_key_is_prefix_random_and_checksum_of_the_random_part() {
    let app = spawn_app().await;
    let key = app.create_token(7, Privilege::Full, "ci").await.raw_api_key;
    let parts: Vec<&str> = key.split('_').collect();
    assert_eq!(parts.len(), 3, "{key}");
    let (prefix, random, checksum) = (parts[0], parts[1], parts[2]);
    assert_eq!(prefix, "api", "the default prefix");
    assert_eq!(random.len(), 128);
    assert!(
        is_lower_hex(random),
        "random part is lower-case hex: {random}"
    );
    let sha = hex::encode(Sha256::digest(random.as_bytes()));
    assert_eq!(checksum, &sha[..8]);
    assert_eq!(checksum, checksum_of(random));
}

#[tokio::test]
async fn the_public_identifier_is_137_chars_with_its_own_checksum() {
    let app = spawn_app().await;
    let public_id = app
        .create_token(7, Privilege::Full, "ci")
        .await
        .raw_public_id;
    assert_eq!(public_id.len(), 137);
    let (random, checksum) = public_id.split_once('_').expect("two parts");
    assert_eq!(random.len(), 128);
    assert!(is_lower_hex(random) && is_lower_hex(checksum));
    assert_eq!(checksum, checksum_of(random));
}

#[tokio::test]
async fn the_row_stores_the_sha256_digest_and_never_the_raw_key() {
    let app = spawn_app().await;
    let created = app.create_token(7, Privilege::Full, "ci").await;
    let id = app.token_id(&created.raw_public_id).await;
    let stored: String = app
        .query_one("SELECT api_token FROM api_tokens WHERE id = ?", (id,))
        .await;
    let expected = hex::encode(Sha256::digest(created.raw_api_key.as_bytes()));
    assert_eq!(stored, expected);
    assert_eq!(stored, Digest::of(&created.raw_api_key).as_str());

    let row: Row = app
        .query_one("SELECT * FROM api_tokens WHERE id = ?", (id,))
        .await;
    let whole_row: Vec<String> = row.unwrap().iter().map(|v| v.as_sql(false)).collect();
    let random = created.raw_api_key.split('_').nth(1).expect("random part");
    for column in &whole_row {
        assert!(
            !column.contains(random),
            "a column holds the raw key: {column}"
        );
    }
}

#[tokio::test]
async fn a_custom_prefix_starts_the_key_and_is_stored() {
    let app = spawn_app().await;
    let created = app
        .lib_create(request(7, "live").prefix(prefix("live")))
        .await;
    let key = &created.data().expect("created").raw_api_key;
    assert!(key.starts_with("live_"), "{key}");
    assert_eq!(key.len(), "live_".len() + 128 + 1 + 8);
    let stored: String = app
        .query_one(
            "SELECT prefix FROM api_tokens WHERE api_token = ?",
            (Digest::of(key).as_str(),),
        )
        .await;
    assert_eq!(stored, "live");
}

/// A library caller cannot build a request with a reserved prefix; the parse error is
/// riavzon's reason, word for word (the BFF route answers it in the envelope).
#[test]
fn a_prefix_with_an_underscore_cannot_be_built_and_says_riavzons_reason() {
    use iam_tokens::domain::{Prefix, PrefixError};
    for text in ["_", "my_app", "api_", "_api"] {
        let err = Prefix::parse(text).expect_err(text);
        assert_eq!(err, PrefixError::ReservedUnderscore, "prefix {text:?}");
        assert_eq!(
            err.to_string(),
            "\"_\" is a reserved character, please exclude it from your prefixes"
        );
    }
}

#[tokio::test]
async fn the_21st_valid_token_is_refused_by_the_default_limit() {
    let app = spawn_app().await;
    create_many(&app, 7, 20).await;
    let refused = app.lib_create(request(7, "one too many")).await;
    assert_eq!(
        envelope_json(&refused),
        failure_json(
            &app.clock_iso(),
            "You cannot have more then 20 valid tokens at a time"
        )
    );
    assert_eq!(app.valid_token_rows(7).await, 20);
    assert!(
        app.lib_create(request(8, "another user")).await.is_ok(),
        "the limit is per user"
    );
}

#[tokio::test]
async fn the_limit_reason_names_the_configured_limit() {
    let app = spawn_app_with(|s| s.api_tokens.limit_tokens_per_user = 3).await;
    create_many(&app, 7, 3).await;
    let refused = app.lib_create(request(7, "fourth")).await;
    assert_eq!(
        envelope_json(&refused),
        failure_json(
            &app.clock_iso(),
            "You cannot have more then 3 valid tokens at a time"
        )
    );
    assert_eq!(app.valid_token_rows(7).await, 3);
}

#[tokio::test]
async fn revoked_and_expired_tokens_do_not_count_toward_the_limit() {
    let app = spawn_app_with(|s| s.api_tokens.limit_tokens_per_user = 3).await;
    let revoked = app.create_token(7, Privilege::Full, "revoked").await;
    let short = app
        .lib_create(request(7, "short").lifetime(ms(60_000)))
        .await;
    assert!(short.is_ok(), "{short:?}");
    app.create_token(7, Privilege::Full, "kept").await;

    let full = app.lib_create(request(7, "refused")).await;
    assert!(full.reason().is_some(), "3 valid tokens: {full:?}");

    let revoke = app
        .tokens
        .revoke(&revoked.raw_api_key, Privilege::Full)
        .await;
    assert!(revoke.is_ok(), "{revoke:?}");
    let after_revoke = app.lib_create(request(7, "after revoke")).await;
    assert!(
        after_revoke.is_ok(),
        "a revoked token freed a slot: {after_revoke:?}"
    );

    app.clock.advance(Duration::from_secs(61));
    let after_expiry = app.lib_create(request(7, "after expiry")).await;
    assert!(
        after_expiry.is_ok(),
        "an expired token freed a slot: {after_expiry:?}"
    );
    assert_eq!(app.valid_token_rows(7).await, 3);

    let refused = app.lib_create(request(7, "refused again")).await;
    assert_eq!(
        envelope_json(&refused),
        failure_json(
            &app.clock_iso(),
            "You cannot have more then 3 valid tokens at a time"
        )
    );
}

#[tokio::test]
async fn expires_at_is_the_creation_time_plus_the_lifetime() {
    let app = spawn_app().await;
    let cases = [
        (Some(1_000), Some(Duration::from_secs(1)), "one second"),
        (
            Some(HOUR_MS),
            Some(Duration::from_millis(HOUR_MS)),
            "one hour",
        ),
        (
            Some(1_234),
            Some(Duration::from_millis(1_234)),
            "milliseconds kept",
        ),
        (None, None, "no lifetime: never expires"),
    ];
    for (n, (expires_ms, lifetime, case)) in cases.into_iter().enumerate() {
        let created = app
            .lib_create(request(7, &format!("t{n}")).lifetime(expires_ms.map(ms)))
            .await;
        let data = created
            .data()
            .unwrap_or_else(|| panic!("{case}: {created:?}"));
        let expected = lifetime.map(|after| app.clock_iso_after(after));
        assert_eq!(
            json!(data.expires_at.map(|t| iam_tokens::envelope::iso(&t))),
            json!(expected),
            "{case}"
        );
        let stored: Option<chrono::NaiveDateTime> = app
            .query_one(
                "SELECT expires_at FROM api_tokens WHERE public_identifier = ?",
                (data.raw_public_id.as_str(),),
            )
            .await;
        let stored = stored.map(|t| iam_tokens::envelope::iso(&t.and_utc()));
        assert_eq!(stored, expected, "{case}: stored expires_at");
        app.clock.advance(Duration::from_millis(7));
    }
}

#[tokio::test]
async fn the_ip_list_is_stored_as_a_json_array_and_no_list_as_null() {
    let app = spawn_app().await;
    let cases: [(&[&str], Option<serde_json::Value>, &str); 3] = [
        (
            &["10.0.0.0/8", "203.0.113.7"],
            Some(json!(["10.0.0.0/8", "203.0.113.7"])),
            "a range and an address",
        ),
        (
            &["2001:db8::/32"],
            Some(json!(["2001:db8::/32"])),
            "an IPv6 range",
        ),
        (&[], None, "an empty list means anywhere"),
    ];
    for (n, (ips, expected, case)) in cases.into_iter().enumerate() {
        let ips = IpRestriction::parse(ips).expect("test IPs");
        let created = app.lib_create(request(7, &format!("t{n}")).ips(ips)).await;
        let public_id = &created
            .data()
            .unwrap_or_else(|| panic!("{case}"))
            .raw_public_id;
        let stored: Option<String> = app
            .query_one(
                "SELECT restricted_to_ip_address FROM api_tokens WHERE public_identifier = ?",
                (public_id.as_str(),),
            )
            .await;
        let stored = stored.map(|text| serde_json::from_str(&text).expect("stored JSON"));
        assert_eq!(stored, expected, "{case}");
    }
}
