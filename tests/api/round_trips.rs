//! Round trips to MySQL per verification, counted on the wire (issue 24): the service reaches
//! its database through the test proxy, which counts the commands the client sends (one per
//! round trip: a statement, a prepare, a `SET`, a reset…). A cache miss of a key that holds
//! nothing is one statement, of a key with roles or limits two; a synchronous verification
//! (no cache, counted before answering) two; and no statement is prepared again.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ops_admin, TestApp};
use crate::outage::spawn_behind_proxy;
use crate::proxy::Proxy;

/// Round trips per public verification of `key`, after a warm-up (the first uses of a
/// connection prepare its statements): the fewest over five batches of `n`, so that a
/// background call of the service's own (a pool's keep-alive ping, a sweep) falling into one
/// batch does not count as the verification's.
async fn trips(app: &TestApp, proxy: &Proxy, key: &str, n: usize) -> f64 {
    for _ in 0..3 {
        assert_eq!(app.verify(key, "full").await.status, 200, "warm-up");
    }
    let mut fewest = f64::MAX;
    for _ in 0..5 {
        let before = proxy.requests();
        for _ in 0..n {
            let answer = app.verify(key, "full").await;
            assert_eq!(answer.status, 200, "{answer:?}");
        }
        fewest = fewest.min((proxy.requests() - before) as f64 / n as f64);
    }
    fewest
}

async fn keys(app: &TestApp) -> [String; 3] {
    let body = json!({"userId": 7, "name": "plain", "privilege": "full"});
    let plain = app.admin_create(&body).await.key;
    let role = json!({"name": "reader", "permissions": ["projects.read"]});
    let created = app.admin_json(Method::POST, "/roles", &role).await;
    assert_eq!(created.status, 201, "{created:?}");
    let body = json!({"userId": 8, "name": "role", "privilege": "full", "roles": ["reader"]});
    let with_role = app.admin_create(&body).await.key;
    let limits = json!({"name": "requests", "limit": 1_000_000, "duration": 60_000});
    let body = json!({"userId": 9, "name": "limited", "privilege": "full", "ratelimits": [limits]});
    let limited = app.admin_create(&body).await.key;
    [plain, with_role, limited]
}

#[tokio::test]
async fn a_cache_miss_is_one_statement_for_a_plain_key_and_two_for_a_key_that_holds_more() {
    crate::mysql_only!();
    let (app, proxy) = spawn_behind_proxy(|settings| {
        ops_admin(settings);
        settings.verify.cache_ttl = Duration::ZERO;
        // Off the request path, but polling: see below.
        settings.analytics.enabled = false;
        settings.webhooks.enabled = false;
    })
    .await;
    let [plain, with_role, limited] = keys(&app).await;
    assert_eq!(trips(&app, &proxy, &plain, 20).await, 1.0, "a plain key");
    assert_eq!(
        trips(&app, &proxy, &with_role, 20).await,
        2.0,
        "a key with a role"
    );
    assert_eq!(
        trips(&app, &proxy, &limited, 20).await,
        2.0,
        "a key with a limit"
    );
}

#[tokio::test]
async fn a_synchronous_verification_is_two_round_trips() {
    crate::mysql_only!();
    let (app, proxy) = spawn_behind_proxy(|settings| {
        ops_admin(settings);
        settings.verify.cache_ttl = Duration::ZERO;
        settings.usage.flush_interval = Duration::ZERO;
        // Analytics are written by a background flush every second, and the webhook dispatcher
        // polls for due deliveries, both off the request path: under load a batch spans a
        // second, and their statements would be counted as the verifications' trips.
        settings.analytics.enabled = false;
        settings.webhooks.enabled = false;
    })
    .await;
    let [plain, with_role, _] = keys(&app).await;
    assert_eq!(
        trips(&app, &proxy, &plain, 20).await,
        2.0,
        "read, then count"
    );
    assert_eq!(
        trips(&app, &proxy, &with_role, 20).await,
        3.0,
        "with what it holds"
    );
    let answer = app.verify(&plain, "full").await;
    assert_eq!(answer.body["data"]["usageCount"], json!(104), "{answer:?}");
}
