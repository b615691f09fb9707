//! `GET /metrics` after known traffic: every counter moved by exactly that traffic, and no
//! label holds a key, a digest, a token id, a user id or an IP.

use std::collections::BTreeMap;

use iam_tokens::domain::Digest;
use serde_json::json;

use crate::helpers::{spawn_admin_app, spawn_admin_app_with, TestApp};

/// Every sample of the scrape, `name{labels}` → value.
pub async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
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

pub fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
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
    // One public verification in 8 is timed (per worker thread): 6 here, 0 or 1 of them.
    let timed = moved(r#"iam_verify_duration_seconds_count{route="public"}"#);
    assert!((0.0..=1.0).contains(&timed), "{timed} timed");
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

#[tokio::test]
async fn the_latency_histogram_times_one_verification_in_eight() {
    let app = spawn_admin_app().await;
    let token = app
        .admin_create(&json!({"userId": 5, "name": "timed", "privilege": "full"}))
        .await;
    let (_, before) = scrape(&app).await;
    for _ in 0..80 {
        assert_eq!(app.verify(&token.key, "full").await.status, 200);
    }
    let (_, after) = scrape(&app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved(r#"iam_verify_duration_seconds_count{route="public"}"#),
        10.0
    );
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="valid"}"#),
        80.0
    );
    let sum = moved(r#"iam_verify_duration_seconds_sum{route="public"}"#);
    assert!(sum > 0.0 && sum < 10.0, "{sum} s in all");
}

#[tokio::test]
async fn counts_are_exact_under_hundreds_of_parallel_verifications_on_two_workers() {
    let app = spawn_admin_app_with(|s| s.server.workers = 2).await;
    let token = app
        .admin_create(&json!({"userId": 6, "name": "parallel", "privilege": "full"}))
        .await;
    let (_, before) = scrape(&app).await;
    let calls = (0..400).map(|n| {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/api/public/verify?privilege=full"),
            token.key.clone(),
        );
        async move {
            let key = if n % 4 == 0 {
                "garbage".to_owned()
            } else {
                key
            };
            client
                .get(url)
                .header("x-api-key", key)
                .send()
                .await
                .expect("verify")
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 300);
    let (_, after) = scrape(&app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="valid"}"#),
        300.0
    );
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="invalid_key"}"#),
        100.0
    );
    assert_eq!(
        moved(r#"iam_http_requests_total{method="GET",route="/api/public/verify",status="200"}"#),
        300.0
    );
    assert_eq!(
        moved(r#"iam_http_requests_total{method="GET",route="/api/public/verify",status="401"}"#),
        100.0
    );
}

#[tokio::test]
async fn limiter_rejections_bans_and_usage_flushes_are_counted() {
    let app = spawn_admin_app_with(|s| {
        s.rate_limiters.enabled = true;
        s.usage.flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let token = app
        .admin_create(&json!({"userId": 8, "name": "flushed", "privilege": "full"}))
        .await;
    let (_, before) = scrape(&app).await;
    for _ in 0..4 {
        assert_eq!(app.verify(&token.key, "full").await.status, 200);
    }
    app.tokens.flush_usage().await.expect("flush");
    // consumption_rate_limiter: 10 failures a minute, per key and per IP; the 11th is a strike
    // on both, the 12th a second strike (ban_after_strikes = 2), the 13th meets the bans.
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..13 {
            statuses.push(app.verify("garbage", "full").await.status);
        }
        statuses
    };
    assert_eq!(statuses[..10], [401; 10]);
    assert_eq!(statuses[10..], [429; 3]);
    let (_, after) = scrape(&app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    let limiter = r#"{limiter="consumption_rate_limiter"}"#;
    assert_eq!(
        moved(&format!("iam_rate_limit_rejections_total{limiter}")),
        6.0
    );
    assert_eq!(moved(&format!("iam_bans_total{limiter}")), 2.0);
    assert_eq!(
        moved(r#"iam_verifications_total{route="public",outcome="rate_limited"}"#),
        3.0
    );
    assert_eq!(moved(r#"iam_usage_flushes_total{result="ok"}"#), 1.0);
    assert_eq!(moved("iam_usage_flushed_uses_total"), 4.0);
    assert_eq!(moved("iam_usage_flush_duration_seconds_count"), 1.0);
    assert_eq!(value(&after, "iam_usage_pending"), 0.0);
}

#[tokio::test]
async fn a_fresh_scrape_has_every_store_error_series_at_zero() {
    let app = crate::helpers::spawn_app().await;
    let (_, samples) = scrape(&app).await;
    for operation in [
        "verify",
        "usage-flush",
        "create",
        "admin-create",
        "admin-verify",
    ] {
        let series = format!("iam_store_errors_total{{operation=\"{operation}\"}}");
        assert_eq!(samples.get(&series), Some(&0.0), "{series} is there, at 0");
    }
}
