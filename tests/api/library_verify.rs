//! `verify` (SPEC A6), step by step and in order: shape and checksum, lookup, IP restriction,
//! expiry, counting.

use std::time::Duration;

use iam_tokens::domain::{Digest, GeneratedKey, IpRestriction, Prefix, Privilege, TokenName};
use iam_tokens::service::{CreateToken, VerifyOptions};
use serde_json::{json, Value};

use crate::helpers::{envelope_json, failure_json, spawn_app, success_json, TestApp};
use crate::helpers::{ms, uid};

/// A token for user 7 named `name` with `privilege`, optional IP list and lifetime; returns
/// the raw key and the token id.
async fn token(
    app: &TestApp,
    name: &str,
    privilege: Privilege,
    ips: &[&str],
    expires_ms: Option<u64>,
) -> (String, u64) {
    let request = CreateToken::new(uid(7), privilege, TokenName::parse(name).expect("name"))
        .ips(IpRestriction::parse(ips).expect("test IPs"))
        .lifetime(expires_ms.map(ms));
    let created = app.lib_create(request).await;
    let created = created.data().expect("token created");
    let id = app.token_id(&created.raw_public_id).await;
    (created.raw_api_key.clone(), id)
}

/// The verify data the contract promises, as JSON.
fn verified(id: u64, created_at: &str, last_used: Value, usage_count: u64) -> Value {
    json!({
        "name": "ci",
        "tokenId": id,
        "userId": 7,
        "createdAt": created_at,
        "expiresAt": null,
        "lastUsed": last_used,
        "usageCount": usage_count,
        "providedPrivilege": "full",
    })
}

async fn verify_with(app: &TestApp, key: &str, options: VerifyOptions<'_>) -> Value {
    envelope_json(&app.tokens.verify(key, options).await)
}

async fn reason_of(app: &TestApp, key: &str, privilege: Privilege, ip: Option<&str>) -> String {
    let verified = app.lib_verify(key, privilege, ip).await;
    match verified.reason() {
        Some(reason) => reason.as_str().into_owned(),
        None => format!("ok: {verified:?}"),
    }
}

#[tokio::test]
async fn malformed_keys_and_bad_checksums_are_invalid_keys() {
    let app = spawn_app().await;
    let (key, id) = token(&app, "ci", Privilege::Full, &[], None).await;
    let mut bad_checksum = key.clone();
    let last = bad_checksum.pop().expect("non-empty key");
    bad_checksum.push(if last == '0' { '1' } else { '0' });
    let random = key.split('_').nth(1).expect("random part");
    let cases = [
        (String::new(), "empty"),
        ("api".to_owned(), "prefix only"),
        (format!("api_{random}"), "no checksum"),
        (
            format!("_{random}_{}", &key[key.len() - 8..]),
            "empty prefix",
        ),
        (
            format!("api_{}_{}", &random[1..], &key[key.len() - 8..]),
            "short random part",
        ),
        (format!("{key}_extra"), "a fourth part"),
        (key.to_uppercase(), "upper-case key"),
        (bad_checksum, "checksum of an existing token flipped"),
    ];
    for (presented, case) in cases {
        let answer = app.lib_verify(&presented, Privilege::Full, None).await;
        assert_eq!(
            envelope_json(&answer),
            failure_json(&app.clock_iso(), "Invalid key"),
            "{case}"
        );
    }
    assert_eq!(app.usage_and_valid(id).await, (0, true), "nothing counted");
}

#[tokio::test]
async fn an_unknown_well_formed_key_is_an_invalid_key() {
    let app = spawn_app().await;
    let unknown = GeneratedKey::generate(&Prefix::default());
    let answer = app
        .lib_verify(unknown.raw.expose(), Privilege::Full, None)
        .await;
    assert_eq!(
        envelope_json(&answer),
        failure_json(&app.clock_iso(), "Invalid key")
    );
}

#[tokio::test]
async fn another_privilege_is_an_invalid_key_and_counts_nothing() {
    let app = spawn_app().await;
    let (key, id) = token(&app, "ci", Privilege::Full, &[], None).await;
    for privilege in [
        Privilege::Demo,
        Privilege::Restricted,
        Privilege::Protected,
        Privilege::Custom,
    ] {
        assert_eq!(
            reason_of(&app, &key, privilege, None).await,
            "Invalid key",
            "{privilege}"
        );
    }
    assert_eq!(app.usage_and_valid(id).await, (0, true));
}

#[tokio::test]
async fn a_revoked_token_is_an_invalid_key() {
    let app = spawn_app().await;
    let (key, _) = token(&app, "ci", Privilege::Full, &[], None).await;
    assert!(app.tokens.revoke(&key, Privilege::Full).await.is_ok());
    assert_eq!(
        reason_of(&app, &key, Privilege::Full, None).await,
        "Invalid key"
    );
}

/// `(token's IP list, caller address, expected reason or None for success, case)`.
type IpCase = (
    &'static [&'static str],
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

#[tokio::test]
async fn the_ip_restriction_admits_listed_addresses_and_ranges_only() {
    let app = spawn_app().await;
    let cases: [IpCase; 12] = [
        (
            &["203.0.113.7"],
            Some("203.0.113.7"),
            None,
            "the exact address",
        ),
        (
            &["203.0.113.7"],
            Some("203.0.113.8"),
            Some("Invalid Host"),
            "a neighbour",
        ),
        (
            &["10.0.0.0/8"],
            Some("10.200.3.4"),
            None,
            "inside an IPv4 range",
        ),
        (
            &["10.0.0.0/8"],
            Some("11.0.0.1"),
            Some("Invalid Host"),
            "outside an IPv4 range",
        ),
        (
            &["2001:db8::/32"],
            Some("2001:db8:1::5"),
            None,
            "inside an IPv6 range",
        ),
        (
            &["2001:db8::/32"],
            Some("2001:db9::1"),
            Some("Invalid Host"),
            "outside an IPv6 range",
        ),
        (
            &["1.2.3.4"],
            Some("::ffff:1.2.3.4"),
            None,
            "an IPv4-mapped IPv6 client",
        ),
        (
            &["1.2.3.4"],
            Some("::ffff:1.2.3.5"),
            Some("Invalid Host"),
            "another mapped client",
        ),
        (
            &["1.2.3.4", "10.0.0.0/8"],
            Some("10.0.0.9"),
            None,
            "any entry of the list",
        ),
        (
            &["1.2.3.4"],
            None,
            Some("Invalid Host"),
            "no caller address",
        ),
        (&[], None, None, "no restriction, no caller address"),
        (&[], Some("198.51.100.1"), None, "no restriction"),
    ];
    for (n, (ips, client, expected, case)) in cases.into_iter().enumerate() {
        let (key, id) = token(&app, &format!("t{n}"), Privilege::Full, ips, None).await;
        let answer = app.lib_verify(&key, Privilege::Full, client).await;
        assert_eq!(
            answer.reason().map(|r| r.as_str()),
            expected.map(Into::into),
            "{case}"
        );
        let counted = u64::from(expected.is_none());
        assert_eq!(
            app.usage_and_valid(id).await,
            (counted, true),
            "{case}: count"
        );
    }
}

#[tokio::test]
async fn bypass_ip_check_ignores_the_restriction() {
    let app = spawn_app().await;
    let (key, _) = token(&app, "ci", Privilege::Full, &["10.0.0.0/8"], None).await;
    for client in [None, Some("192.0.2.1".parse().expect("ip"))] {
        let mut options = VerifyOptions::new(Privilege::Full, client);
        options.bypass_ip_check = true;
        let answer = app.tokens.verify(&key, options).await;
        assert!(answer.is_ok(), "from {client:?}: {answer:?}");
    }
}

#[tokio::test]
async fn the_privilege_is_checked_before_the_ip_and_the_ip_before_the_expiry() {
    let app = spawn_app().await;
    let (key, id) = token(&app, "ci", Privilege::Full, &["10.0.0.0/8"], Some(1_000)).await;
    app.clock.advance(Duration::from_secs(2));
    let outside = Some("192.0.2.1");
    assert_eq!(
        reason_of(&app, &key, Privilege::Demo, outside).await,
        "Invalid key"
    );
    assert_eq!(
        reason_of(&app, &key, Privilege::Full, outside).await,
        "Invalid Host"
    );
    assert_eq!(
        app.usage_and_valid(id).await,
        (0, true),
        "rejected before the expiry step"
    );
    assert_eq!(
        reason_of(&app, &key, Privilege::Full, Some("10.0.0.1")).await,
        "Token expired"
    );
}

#[tokio::test]
async fn an_expired_token_answers_token_expired_once_then_invalid_key() {
    let app = spawn_app().await;
    let (key, id) = token(&app, "ci", Privilege::Full, &[], Some(60_000)).await;
    app.clock.advance(Duration::from_secs(59));
    assert!(app.lib_verify(&key, Privilege::Full, None).await.is_ok());

    app.clock.advance(Duration::from_secs(2));
    let expired = app.lib_verify(&key, Privilege::Full, None).await;
    assert_eq!(
        envelope_json(&expired),
        failure_json(&app.clock_iso(), "Token expired")
    );
    assert_eq!(app.usage_and_valid(id).await, (1, false), "marked invalid");
    assert_eq!(
        reason_of(&app, &key, Privilege::Full, None).await,
        "Invalid key"
    );
}

#[tokio::test]
async fn a_counting_verification_includes_this_use_and_stamps_now() {
    let app = spawn_app().await;
    let created_at = app.clock_iso();
    let (key, id) = token(&app, "ci", Privilege::Full, &[], None).await;
    for use_number in 1..=3 {
        app.clock.advance(Duration::from_millis(1_500));
        let answer = app
            .lib_verify(&key, Privilege::Full, Some("192.0.2.1"))
            .await;
        let now = app.clock_iso();
        assert_eq!(
            envelope_json(&answer),
            success_json(&now, verified(id, &created_at, json!(now), use_number)),
            "use {use_number}"
        );
        assert_eq!(app.usage_and_valid(id).await, (use_number, true));
    }
}

#[tokio::test]
async fn skip_count_updates_leaves_the_row_unchanged() {
    let app = spawn_app().await;
    let created_at = app.clock_iso();
    let (key, id) = token(&app, "ci", Privilege::Full, &[], None).await;
    let mut options = VerifyOptions::new(Privilege::Full, None);
    options.skip_count_updates = true;
    app.clock.advance(Duration::from_secs(5));
    assert_eq!(
        verify_with(&app, &key, options).await,
        success_json(&app.clock_iso(), verified(id, &created_at, Value::Null, 0))
    );
    let last_used: Option<String> = app
        .query_one(
            "SELECT CAST(last_used AS CHAR) FROM api_tokens WHERE id = ?",
            (id,),
        )
        .await;
    assert_eq!(
        (app.usage_and_valid(id).await, last_used),
        ((0, true), None)
    );

    // A skipped check after counted uses reports the stored values as they are.
    app.lib_verify(&key, Privilege::Full, None).await;
    let counted_at = app.clock_iso();
    app.clock.advance(Duration::from_secs(5));
    assert_eq!(
        verify_with(&app, &key, options).await,
        success_json(
            &app.clock_iso(),
            verified(id, &created_at, json!(counted_at), 1)
        )
    );
}

#[tokio::test]
async fn is_internal_hash_accepts_the_64_hex_digest_and_only_it() {
    let app = spawn_app().await;
    let (key, id) = token(&app, "ci", Privilege::Full, &[], None).await;
    let digest = Digest::of(&key);
    let mut internal = VerifyOptions::new(Privilege::Full, None);
    internal.is_internal_hash = true;

    let answer = app.tokens.verify(digest.as_str(), internal).await;
    assert_eq!(
        answer.data().map(|t| (t.token_id, t.usage_count)),
        Some((id, 1))
    );

    let cases = [
        (
            app.tokens.verify(&key, internal).await,
            "a raw key given as a digest",
        ),
        (
            app.lib_verify(digest.as_str(), Privilege::Full, None).await,
            "a digest given as a raw key",
        ),
        (
            app.tokens.verify(&digest.as_str()[1..], internal).await,
            "63 hex characters",
        ),
    ];
    for (answer, case) in cases {
        assert_eq!(
            envelope_json(&answer),
            failure_json(&app.clock_iso(), "Invalid key"),
            "{case}"
        );
    }
}
