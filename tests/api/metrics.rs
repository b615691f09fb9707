//! `GET /metrics` after known traffic: every counter moved by exactly that traffic, and no
//! label holds a key, a digest, a token id, a user id or an IP.

use std::collections::BTreeMap;

use iam_tokens::domain::Digest;
use serde_json::json;

use crate::helpers::{spawn_admin_app, spawn_admin_app_with, TestApp};

/// Every sample of the scrape, `name{labels}` → value.
async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect();
    (text, samples)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_by_exactly_the_traffic_and_no_label_names_a_secret() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 424242, "name": "metered", "privilege": "full"}))
        .await;
    let revoked = app
        .admin_create(&json!({"userId": 424242, "name": "gone", "privilege": "full"}))
        .await;
    let path = format!("/tokens/{}/revoke", revoked.id);
    let answer = app
        .admin_json(reqwest::Method::POST, &path, &json!({}))
        .await;
    assert_eq!(answer.status, 200);
    let (_, before) = scrape(&app).await;

    // 3 valid verifications: one cache miss, then two hits.
    for _ in 0..3 {
        assert_eq!(app.verify(&token.key, "full").await.status, 200);
    }
    // A well-formed key that is no longer valid: a miss, then a negative hit.
    for _ in 0..2 {
        assert_eq!(app.verify(&revoked.key, "full").await.status, 401);
    }
    // Garbage: refused before any lookup.
    assert_eq!(app.verify("garbage", "full").await.status, 401);
    // One admin verification and one unknown route.
    let admin = app
        .admin_json(
            reqwest::Method::POST,
            "/verify",
            &json!({"key": token.key, "count": false}),
        )
        .await;
    assert_eq!(admin.status, 200);
    let missing = app.send(app.client.get(app.url("/nowhere"))).await;
    assert_eq!(missing.status, 404);

    let (text, after) = scrape(&app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="valid"}"#),
        3.0
    );
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="invalid_key"}"#),
        3.0
    );
    assert_eq!(
        moved(r#"iam_verifications_total{route="admin",outcome="valid"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"iam_verify_duration_seconds_count{route="public"}"#),
        6.0
    );
    // The admin verification finds the key cached: one more hit.
    assert_eq!(moved(r#"iam_cache_lookups_total{result="hit"}"#), 3.0);
    assert_eq!(moved(r#"iam_cache_lookups_total{result="miss"}"#), 2.0);
    assert_eq!(
        moved(r#"iam_cache_lookups_total{result="negative_hit"}"#),
        1.0
    );
    assert_eq!(moved(r#"iam_cache_lookups_total{result="stale"}"#), 0.0);
    let verify_route = |status| {
        format!(
            r#"iam_http_requests_total{{method="GET",route="/api/public/verify",status="{status}"}}"#
        )
    };
    assert_eq!(moved(&verify_route(200)), 3.0);
    assert_eq!(moved(&verify_route(401)), 3.0);
    assert_eq!(
        moved(r#"iam_http_requests_total{method="POST",route="/api/admin/verify",status="200"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"iam_http_requests_total{method="*",route="unmatched",status="404"}"#),
        1.0
    );
    // The first scrape is counted by the time of the second.
    assert_eq!(
        moved(r#"iam_http_requests_total{method="GET",route="/metrics",status="200"}"#),
        1.0
    );
    assert_eq!(value(&after, "iam_build_info{version=\"0.1.0\"}"), 1.0);
    assert!(value(&after, "iam_process_start_time_seconds") > 1.7e9);

    let digest = Digest::of(&token.key);
    for secret in [
        token.key.as_str(),
        &token.key[..20],
        digest.as_str(),
        &token.public_id,
        "424242",
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "the scrape holds {secret:?}");
    }
    // Token ids are small numbers: no label but a bucket bound (`le`) or a status holds one.
    let id_label = format!("=\"{}\"", token.id);
    for line in text.lines().filter(|line| line.contains(&id_label)) {
        let named =
            line.contains(&format!("le{id_label}")) || line.contains(&format!("status{id_label}"));
        assert!(named, "a token id as a label: {line}");
    }
}

#[tokio::test]
async fn metrics_address_moves_the_scrape_off_the_public_listener() {
    let app = spawn_admin_app_with(|s| s.metrics.address = "127.0.0.1:0".into()).await;
    let public = app.send(app.client.get(app.url("/metrics"))).await;
    assert_eq!(public.status, 404);
    assert_eq!(
        public.body,
        json!({"error": "The page you are looking for doesn't exists"})
    );
    let port = app.metrics_port.expect("a metrics listener");
    let private = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(private.status(), 200);
    let text = private.text().await.expect("text");
    assert!(text.contains("iam_build_info"), "{text}");
}
