//! The client IP of `GET /api/public/verify` (SPEC A7): the socket peer, or behind a trusted
//! proxy the first untrusted `X-Forwarded-For` hop from the right. Every test connects from
//! 127.0.0.1 and asks tokens restricted to various networks whether they may be used.

use iam_tokens::Settings;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, HttpToken, TestApp};

/// What `verify_via` reports for a 200.
const OK: &str = "OK";
const HOST: &str = "Invalid Host";

fn trust_loopback(settings: &mut Settings) {
    settings.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

async fn token_for(app: &TestApp, ipv4: &[&str]) -> HttpToken {
    let body = json!({"privilege": "full", "name": "ci", "ipv4": ipv4});
    app.http_token(7, &body).await
}

/// Verifies `token` with one `X-Forwarded-For` line per entry of `forwarded`: `OK` on a 200,
/// else the reason of the (exactly checked) 401 envelope.
async fn verify_via(app: &TestApp, token: &HttpToken, forwarded: &[&str]) -> String {
    let mut request = app.verify_request(&token.key, "full");
    for line in forwarded {
        request = request.header("x-forwarded-for", *line);
    }
    let answer = app.send(request).await;
    if answer.status == 200 {
        return OK.to_owned();
    }
    let reason = answer.reason().to_owned();
    answer.assert_is(401, &app.failure_now(&reason), "a refused verification");
    reason
}

#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_are_ignored() {
    let app = spawn_app().await;
    let remote = token_for(&app, &["203.0.113.7"]).await;
    let local = token_for(&app, &["127.0.0.1"]).await;
    #[rustfmt::skip]
    let spoofs = [
        ("X-Forwarded-For",                "x-forwarded-for", "203.0.113.7"),
        ("X-Forwarded-For with the proxy", "x-forwarded-for", "203.0.113.7, 127.0.0.1"),
        ("X-Real-IP",                      "x-real-ip",       "203.0.113.7"),
        ("Forwarded",                      "forwarded",       "for=203.0.113.7"),
    ];
    for (case, header, value) in spoofs {
        let spoofed = app
            .verify_request(&remote.key, "full")
            .header(header, value);
        let answer = app.send(spoofed).await;
        answer.assert_is(401, &app.failure_now(HOST), case);

        let honest = app.verify_request(&local.key, "full").header(header, value);
        let answer = app.send(honest).await;
        assert_eq!(answer.status, 200, "{case}: the peer is the client");
    }
    assert_eq!(app.usage_and_valid(remote.id).await, (0, true));
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_first_untrusted_hop_from_the_right_is_the_client() {
    let app = spawn_app_with(trust_loopback).await;
    let t203 = token_for(&app, &["203.0.113.7"]).await;
    let t198 = token_for(&app, &["198.51.100.1"]).await;
    let local = token_for(&app, &["127.0.0.1"]).await;
    let spoofed: &[&str] = &["198.51.100.1, 203.0.113.7"];
    let two_lines: &[&str] = &["198.51.100.1", "203.0.113.7"];
    let garbled: &[&str] = &["203.0.113.7, unknown"];
    #[rustfmt::skip]
    let cases: [(&str, &[&str], &HttpToken, &str); 11] = [
        ("one hop",                           &["203.0.113.7"],            &t203,  OK),
        ("the proxy listed itself",           &["203.0.113.7, 127.0.0.1"], &t203,  OK),
        ("a spoofed leftmost hop is ignored", spoofed,                     &t203,  OK),
        ("the spoofed hop gains nothing",     spoofed,                     &t198,  HOST),
        ("two header lines are one list",     two_lines,                   &t203,  OK),
        ("two header lines, spoofed hop",     two_lines,                   &t198,  HOST),
        ("no header: the proxy is the client", &[],                        &local, OK),
        ("no header: nobody else",            &[],                         &t203,  HOST),
        ("only trusted hops",                 &["127.0.0.1, 127.0.0.1"],   &local, OK),
        ("an unparsable hop ends the chain",  garbled,                     &t203,  HOST),
        ("hops left of it are not believed",  garbled,                     &local, OK),
    ];
    for (case, forwarded, token, expected) in cases {
        assert_eq!(verify_via(&app, token, forwarded).await, expected, "{case}");
    }
}

#[tokio::test]
async fn every_trusted_range_is_skipped_from_the_right() {
    let app = spawn_app_with(|s| {
        let trusted = ["127.0.0.1/32", "10.0.0.0/8"];
        s.server.trusted_proxies = trusted.iter().map(|net| net.parse().unwrap()).collect();
    })
    .await;
    let remote = token_for(&app, &["203.0.113.7"]).await;
    let internal = token_for(&app, &["10.0.0.0/8"]).await;
    let (via_two, from_inside): (&[&str], &[&str]) =
        (&["203.0.113.7, 10.1.2.3"], &["10.9.9.9, 10.1.2.3"]);
    #[rustfmt::skip]
    let cases: [(&str, &[&str], &HttpToken, &str); 4] = [
        ("two proxies",                                   via_two,     &remote,   OK),
        ("two proxies, the inner one is not the client",  via_two,     &internal, HOST),
        ("an internal client behind the proxies",         from_inside, &internal, OK),
        ("an internal client is not the remote one",      from_inside, &remote,   HOST),
    ];
    for (case, forwarded, token, expected) in cases {
        assert_eq!(verify_via(&app, token, forwarded).await, expected, "{case}");
    }
}

#[tokio::test]
async fn ipv6_ranges_match_clients_forwarded_by_a_trusted_proxy() {
    let app = spawn_app_with(trust_loopback).await;
    let token = token_for(&app, &["2001:db8::/32"]).await;
    #[rustfmt::skip]
    let cases = [
        ("inside the range",          "2001:db8::1",                            OK),
        ("last address of the range", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", OK),
        ("next range",                "2001:db9::1",                            HOST),
        ("an IPv4 client",            "203.0.113.7",                            HOST),
    ];
    for (case, forwarded, expected) in cases {
        assert_eq!(
            verify_via(&app, &token, &[forwarded]).await,
            expected,
            "{case}"
        );
    }
}

#[tokio::test]
async fn ipv4_mapped_ipv6_addresses_match_their_ipv4_entries() {
    let app = spawn_app_with(trust_loopback).await;
    let exact = token_for(&app, &["203.0.113.7"]).await;
    let mapped = token_for(&app, &["::ffff:203.0.113.0/120"]).await;
    #[rustfmt::skip]
    let cases = [
        ("mapped client, IPv4 entry",        "::ffff:203.0.113.7",   &exact,  OK),
        ("mapped client, another address",   "::ffff:203.0.113.8",   &exact,  HOST),
        ("IPv4 client, mapped range",        "203.0.113.9",          &mapped, OK),
        ("mapped client, mapped range",      "::ffff:203.0.113.200", &mapped, OK),
        ("outside the mapped range",         "203.0.114.1",          &mapped, HOST),
    ];
    for (case, forwarded, token, expected) in cases {
        assert_eq!(
            verify_via(&app, token, &[forwarded]).await,
            expected,
            "{case}"
        );
    }
    let listed = app.manage_get("list-metadata", 7).await;
    let rows = listed.data()["tokenList"].as_array().unwrap();
    let ips: Vec<_> = rows
        .iter()
        .map(|row| &row["restricted_to_ip_address"])
        .collect();
    let stored = [json!(["203.0.113.0/24"]), json!(["203.0.113.7"])];
    assert_eq!(ips, stored.iter().collect::<Vec<_>>(), "stored as IPv4");
}
