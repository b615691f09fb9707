//! Webhook deliveries (SPEC B12) as a receiver and an operator see them: signed Standard
//! Webhooks requests the reference library verifies, exact event data, the retry schedule on
//! the manual clock, endpoints disabled by a 410 or five days of failures, manual retries and
//! test sends, redirects not followed, addresses checked again at connection, and events
//! written only with the change they describe.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{admin_error, spawn_with_clock, test_settings};
use crate::webhook_receiver::{Receiver, Scripted};
use crate::webhooks::{
    add_endpoint, assert_verifies, at, deliveries, delivery_when, endpoint, ops_actor,
    patch_endpoint, post, round, spawn_driven, spawn_driven_with, spawn_local, subscribe, types,
};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// `next - last` of a delivery, in milliseconds.
fn wait_ms(delivery: &Value) -> i64 {
    (at(&delivery["nextAttemptAt"]) - at(&delivery["lastAttemptAt"])).num_milliseconds()
}

/// The `webhook.endpoint.disabled` data naming `endpoint` at `url`, subscribed to `events`.
fn disabled_data(endpoint: u64, url: &str, events: Value, reason: &str, actor: Value) -> Value {
    json!({
        "actor": actor, "endpointId": endpoint, "url": url, "events": events,
        "includeMetadata": false, "enabled": false, "reason": reason,
    })
}

fn dispatcher_actor() -> Value {
    json!({"type": "system", "id": null, "name": "webhooks"})
}

// ---- What is sent ----

#[tokio::test]
async fn a_token_event_reaches_its_subscribers_signed_with_exact_data_and_no_secret() {
    let app = spawn_local().await;
    let (plain, with_meta, roles) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let plain_endpoint = subscribe(&app, &plain, &["token.*"]).await;
    let body =
        json!({"url": with_meta.url("/m"), "events": ["token.created"], "includeMetadata": true});
    let meta_endpoint = add_endpoint(&app, &body).await;
    let roles_endpoint = subscribe(&app, &roles, &["role.*"]).await;

    let metadata = json!({"team": "billing", "tier": 3});
    let token = app
        .admin_create(&json!({"userId": 7, "name": "ci", "metadata": metadata}))
        .await;
    let got = plain.wait_for(1).await;
    let data = json!({
        "tokenId": token.id, "userId": 7, "name": "ci", "actor": ops_actor(),
        "privilege": "restricted", "prefix": "api", "metadataKeys": ["team", "tier"],
    });
    let sent = got[0].json();
    assert_eq!(sent["type"], json!("token.created"), "{sent}");
    assert_eq!(sent["data"], data, "token.created data, without metadata");
    assert_eq!(
        sent["id"].as_str(),
        Some(got[0].webhook_id()),
        "body id = webhook-id"
    );
    assert!(
        at(&sent["timestamp"]) == at(&json!(app.clock_iso())),
        "{sent}"
    );
    assert_eq!(
        got[0].header("webhook-timestamp"),
        Some(at(&json!(app.clock_iso())).timestamp().to_string().as_str()),
        "webhook-timestamp is the clock's seconds"
    );
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_verifies(&got[0], &plain_endpoint.secret, "token.created");
    assert!(
        got[0].verify(&meta_endpoint.secret).is_err(),
        "another endpoint's secret"
    );
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&token.key));
    for leak in [
        token.key.as_str(),
        "api_",
        digest.as_str(),
        "digest",
        "whsec_",
    ] {
        assert!(
            !got[0].body.contains(leak),
            "the body holds {leak:?}: {}",
            got[0].body
        );
    }

    let got_meta = with_meta.wait_for(1).await;
    let mut with_metadata = data.clone();
    with_metadata["metadata"] = metadata;
    assert_eq!(got_meta[0].json()["data"], with_metadata, "includeMetadata");
    assert_verifies(&got_meta[0], &meta_endpoint.secret, "with metadata");
    let log = deliveries(&app, &format!("?endpoint={}", roles_endpoint.id)).await;
    assert!(log.is_empty(), "role.* was given a token event: {log:#?}");

    let revoke = format!("/tokens/{}/revoke", token.id);
    let revoked = app.send(app.admin_request(Method::POST, &revoke)).await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    let got = plain.wait_for(2).await;
    assert_eq!(types(&got), ["token.created", "token.revoked"]);
    let data = json!({"tokenId": token.id, "userId": 7, "name": "ci", "actor": ops_actor()});
    assert_eq!(got[1].json()["data"], data, "token.revoked data");
    assert_ne!(
        got[1].webhook_id(),
        got[0].webhook_id(),
        "each event has its own id"
    );
    assert_verifies(&got[1], &plain_endpoint.secret, "token.revoked");

    let role = json!({"name": "reader", "permissions": ["read:docs"]});
    let made = app.admin_json(Method::POST, "/roles", &role).await;
    assert_eq!(made.status, 201, "{made:?}");
    let got_roles = roles.wait_for(1).await;
    assert_eq!(types(&got_roles), ["role.created"]);
    let data = json!({
        "actor": ops_actor(), "role": "reader", "description": null,
        "permissions": ["read:docs"],
    });
    assert_eq!(got_roles[0].json()["data"], data, "role.created data");
    assert_verifies(&got_roles[0], &roles_endpoint.secret, "role.created");
    assert_eq!(
        types(&with_meta.received()),
        ["token.created"],
        "token.created only"
    );
    assert_eq!(plain.received().len(), 2, "token.* is given no role event");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_24_hours_then_alone() {
    let app = spawn_local().await;
    let receiver = Receiver::start().await;
    let old = subscribe(&app, &receiver, &["token.created"]).await;
    let rotated = post(&app, &format!("/{}/rotate-secret", old.id)).await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert!(
        new.starts_with("whsec_") && new != old.secret,
        "{rotated:?}"
    );
    let until = app.clock_iso_after(DAY);
    assert_eq!(
        rotated.body["previousSecretExpiresAt"],
        json!(until),
        "{rotated:?}"
    );
    let read = endpoint(&app, old.id).await;
    assert_eq!(
        read.body["previousSecretExpiresAt"],
        json!(until),
        "{read:?}"
    );
    assert!(!read.body.to_string().contains("whsec_"), "{read:?}");

    app.admin_create(&json!({"userId": 1, "name": "during"}))
        .await;
    let got = receiver.wait_for(1).await;
    let signatures = got[0].header("webhook-signature").expect("signature");
    assert_eq!(
        signatures.split(' ').count(),
        2,
        "two signatures: {signatures}"
    );
    assert!(
        signatures.split(' ').all(|s| s.starts_with("v1,")),
        "{signatures}"
    );
    assert_verifies(&got[0], &old.secret, "during the overlap, the old secret");
    assert_verifies(&got[0], &new, "during the overlap, the new secret");

    app.clock.advance(DAY + SECOND);
    app.admin_create(&json!({"userId": 1, "name": "after"}))
        .await;
    let got = receiver.wait_for(2).await;
    let signatures = got[1].header("webhook-signature").expect("signature");
    assert_eq!(
        signatures.split(' ').count(),
        1,
        "one signature: {signatures}"
    );
    assert_verifies(&got[1], &new, "after the overlap, the new secret");
    assert!(
        got[1].verify(&old.secret).is_err(),
        "after the overlap, the old secret fails"
    );
    let read = endpoint(&app, old.id).await;
    assert_eq!(
        read.body["previousSecretExpiresAt"],
        Value::Null,
        "{read:?}"
    );
}

// ---- The retry schedule ----

#[tokio::test]
async fn a_receiver_that_refuses_then_fails_then_accepts_gets_the_event_on_schedule() {
    let app = spawn_local().await;
    let receiver = Receiver::reserved().await;
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;

    let first = delivery_when(&app, hook.id, "refused", |d| d["attempts"] == 1).await;
    assert_eq!(first["status"], json!("pending"), "{first:#}");
    assert_eq!(first["responseStatus"], Value::Null, "{first:#}");
    assert_eq!(first["responseBody"], Value::Null, "{first:#}");
    assert!(
        first["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{first:#}"
    );
    assert_eq!(first["lastAttemptAt"], json!(app.clock_iso()), "{first:#}");
    assert!(
        (4_000..=6_000).contains(&wait_ms(&first)),
        "5 s ± 20 %: {first:#}"
    );

    receiver.up().await;
    receiver.script([Scripted::status(500).body("try later")]);
    app.clock.advance(6 * SECOND);
    let second = delivery_when(&app, hook.id, "500", |d| d["attempts"] == 2).await;
    assert_eq!(second["status"], json!("pending"), "{second:#}");
    assert_eq!(second["responseStatus"], json!(500), "{second:#}");
    assert_eq!(second["responseBody"], json!("try later"), "{second:#}");
    assert_eq!(second["error"], Value::Null, "{second:#}");
    assert_eq!(
        second["lastAttemptAt"],
        json!(app.clock_iso()),
        "{second:#}"
    );
    assert!(
        (240_000..=360_000).contains(&wait_ms(&second)),
        "5 min ± 20 %: {second:#}"
    );

    app.clock.advance(6 * MINUTE);
    let third = delivery_when(&app, hook.id, "200", |d| d["status"] == "delivered").await;
    assert_eq!(third["attempts"], json!(3), "{third:#}");
    assert_eq!(third["responseStatus"], json!(200), "{third:#}");
    assert_eq!(third["nextAttemptAt"], Value::Null, "{third:#}");
    assert_eq!(third["deliveredAt"], json!(app.clock_iso()), "{third:#}");
    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2, "a refused connection brings no request");
    assert_eq!(
        got[0].webhook_id(),
        got[1].webhook_id(),
        "one webhook-id across attempts"
    );
    assert_eq!(
        got[0].webhook_id(),
        third["eventId"].as_str().unwrap(),
        "the log's eventId"
    );
    assert_eq!(got[0].body, got[1].body, "the same body each attempt");
    for request in &got {
        assert_verifies(request, &hook.secret, "a retry");
    }
    let read = endpoint(&app, hook.id).await;
    assert_eq!(
        read.body["failingSince"],
        Value::Null,
        "a success ends the streak: {read:?}"
    );
}

#[tokio::test]
async fn a_longer_retry_after_replaces_the_step_and_2_kib_of_the_answer_is_kept() {
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    let long: String = ('a'..='z').cycle().take(5000).collect();
    receiver.script([Scripted::status(503)
        .header("Retry-After", "3600")
        .body(&long)]);
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    assert_eq!(round(&app).await, 1);
    let first = delivery_when(&app, hook.id, "503", |d| d["attempts"] == 1).await;
    assert_eq!(first["responseStatus"], json!(503), "{first:#}");
    assert_eq!(first["lastAttemptAt"], json!(app.clock_iso()), "{first:#}");
    assert_eq!(wait_ms(&first), 3_600_000, "Retry-After: 3600: {first:#}");
    let kept = first["responseBody"].as_str().expect("responseBody");
    assert_eq!(kept.len(), 2048, "2 KiB kept");
    assert_eq!(kept, &long[..2048], "the first 2 KiB");

    app.clock.advance(HOUR - SECOND);
    assert_eq!(
        round(&app).await,
        0,
        "not retried at the 5 s step nor before the hour"
    );
    app.clock.advance(SECOND);
    assert_eq!(round(&app).await, 1, "retried after the hour asked for");
    let done = delivery_when(&app, hook.id, "200", |_| true).await;
    assert_eq!(done["status"], json!("delivered"), "{done:#}");
    assert_eq!(done["responseBody"], json!(""), "{done:#}");
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_a_day_is_capped_at_24_hours() {
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    receiver.script([Scripted::status(429).header("Retry-After", "604800")]);
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    assert_eq!(round(&app).await, 1);
    let first = delivery_when(&app, hook.id, "429", |d| d["attempts"] == 1).await;
    assert_eq!(
        wait_ms(&first),
        86_400_000,
        "a week asked, a day waited: {first:#}"
    );

    use iam_tokens::Clock as _;
    app.clock.advance(DAY);
    let in_two_hours = app.clock.now() + chrono::Duration::hours(2);
    let date = in_two_hours.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    receiver.script([Scripted::status(503).header("Retry-After", &date)]);
    assert_eq!(round(&app).await, 1);
    let second = delivery_when(&app, hook.id, "503", |d| d["attempts"] == 2).await;
    let whole_second = chrono::Timelike::with_nanosecond(&in_two_hours, 0).unwrap();
    let expected = iam_tokens::envelope::iso(&whole_second);
    assert_eq!(
        second["nextAttemptAt"],
        json!(expected),
        "an HTTP date: {second:#}"
    );
}

#[tokio::test]
async fn every_step_of_the_schedule_is_waited_then_the_delivery_has_failed() {
    use iam_tokens::Clock as _;
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Scripted::status(500));
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let first_attempt = app.clock_iso();
    let steps_s: [i64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];
    for (n, step) in steps_s.into_iter().enumerate() {
        assert_eq!(round(&app).await, 1, "attempt {}", n + 1);
        let log = delivery_when(&app, hook.id, "attempted", |_| true).await;
        assert_eq!(log["attempts"], json!(n + 1), "{log:#}");
        assert_eq!(log["status"], json!("pending"), "{log:#}");
        let (low, high) = (step * 800, step * 1_200);
        let wait = wait_ms(&log);
        assert!(
            (low..=high).contains(&wait),
            "step {} ({step} s ± 20 %): {wait} ms",
            n + 1
        );
        let early = at(&log["nextAttemptAt"]) - app.clock.now() - chrono::Duration::seconds(1);
        app.clock.advance(early.to_std().expect("ahead"));
        assert_eq!(round(&app).await, 0, "not before its time (step {})", n + 1);
        app.clock.advance(SECOND);
    }
    assert_eq!(round(&app).await, 1, "the tenth attempt");
    let failed = delivery_when(&app, hook.id, "failed", |_| true).await;
    assert_eq!(failed["status"], json!("failed"), "{failed:#}");
    assert_eq!(failed["attempts"], json!(10), "{failed:#}");
    assert_eq!(failed["nextAttemptAt"], Value::Null, "{failed:#}");
    app.clock.advance(2 * DAY);
    assert_eq!(
        round(&app).await,
        0,
        "a failed delivery is not attempted again"
    );
    assert_eq!(receiver.received().len(), 10);
    let read = endpoint(&app, hook.id).await;
    assert_eq!(read.body["failingSince"], json!(first_attempt), "{read:?}");
    assert_eq!(
        read.body["enabled"],
        json!(true),
        "under 5 days of failures: {read:?}"
    );
    let failed_log = deliveries(&app, "?status=failed").await;
    assert_eq!(failed_log, vec![failed.clone()], "?status=failed");
    let id = failed["id"].as_u64().expect("id");
    receiver.answer_by_default(Scripted::status(204));
    let retried = post(&app, &format!("/deliveries/{id}/retry")).await;
    assert_eq!(
        retried.status, 202,
        "a failed delivery is retried by hand: {retried:?}"
    );
    assert_eq!(round(&app).await, 1);
    let done = delivery_when(&app, hook.id, "delivered", |_| true).await;
    assert_eq!(
        (done["status"].clone(), done["attempts"].clone()),
        (json!("delivered"), json!(11))
    );
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_failed_attempt() {
    let app = spawn_driven_with(|settings| {
        settings.webhooks.timeout = Duration::from_millis(300);
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script([Scripted::status(200).delay(3 * SECOND)]);
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let started = std::time::Instant::now();
    assert_eq!(round(&app).await, 1);
    assert!(
        started.elapsed() < 2 * SECOND,
        "the attempt waited {:?}",
        started.elapsed()
    );
    let log = delivery_when(&app, hook.id, "timed out", |_| true).await;
    assert_eq!(log["status"], json!("pending"), "{log:#}");
    assert_eq!(log["responseStatus"], Value::Null, "{log:#}");
    let error = log["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("timed out"), "{log:#}");
}

#[tokio::test]
async fn a_long_answer_cut_inside_a_character_is_kept_to_2_kib_of_whole_characters() {
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    let long = format!("a{}", "é".repeat(2000));
    receiver.script([Scripted::status(500).body(&long)]);
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    assert_eq!(round(&app).await, 1);
    let log = delivery_when(&app, hook.id, "500", |_| true).await;
    let kept = log["responseBody"].as_str().expect("responseBody");
    assert!(kept.len() <= 2048, "{} bytes kept", kept.len());
    assert!(
        long.starts_with(kept),
        "not a prefix of the answer: …{:?}",
        &kept[kept.len() - 6..]
    );
}

// ---- Disabling ----

#[tokio::test]
async fn a_410_disables_the_endpoint_at_once_and_tells_the_others() {
    let app = spawn_driven().await;
    let (gone, watcher) = (Receiver::start().await, Receiver::start().await);
    gone.script([Scripted::status(410)]);
    let hook = subscribe(&app, &gone, &["token.*"]).await;
    let watch = subscribe(&app, &watcher, &["webhook.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    assert_eq!(round(&app).await, 1, "the token.created attempt");
    assert_eq!(gone.received().len(), 1);
    let read = endpoint(&app, hook.id).await;
    assert_eq!(read.body["enabled"], json!(false), "{read:?}");
    assert_eq!(read.body["disabledReason"], json!("gone"), "{read:?}");

    assert_eq!(
        round(&app).await,
        1,
        "the webhook.endpoint.disabled attempt"
    );
    let told = watcher.received();
    assert_eq!(types(&told), ["webhook.endpoint.disabled"]);
    let url = gone.url("/hook");
    let data = disabled_data(
        hook.id,
        &url,
        json!(["token.*"]),
        "gone",
        dispatcher_actor(),
    );
    assert_eq!(
        told[0].json()["data"],
        data,
        "it names the endpoint and why"
    );
    assert_verifies(&told[0], &watch.secret, "webhook.endpoint.disabled");

    app.clock.advance(10 * SECOND);
    app.admin_create(&json!({"userId": 3, "name": "while disabled"}))
        .await;
    assert_eq!(
        round(&app).await,
        0,
        "nothing is attempted to a disabled endpoint"
    );
    assert_eq!(gone.received().len(), 1, "no further attempt");
    let pending = delivery_when(&app, hook.id, "kept", |d| d["status"] == "pending").await;
    assert_eq!(pending["attempts"], json!(1), "{pending:#}");

    let enabled = patch_endpoint(&app, hook.id, &json!({"enabled": true})).await;
    assert_eq!(enabled.status, 200, "{enabled:?}");
    assert_eq!(enabled.body["enabled"], json!(true), "{enabled:?}");
    assert!(enabled.body.get("disabledReason").is_none(), "{enabled:?}");
    assert_eq!(enabled.body["failingSince"], Value::Null, "{enabled:?}");
    assert_eq!(round(&app).await, 1, "its pending delivery goes out");
    let got = gone.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].webhook_id(), got[0].webhook_id(), "the same event");
    let done = delivery_when(&app, hook.id, "delivered", |_| true).await;
    assert_eq!(
        (done["status"].clone(), done["attempts"].clone()),
        (json!("delivered"), json!(2))
    );

    let off = patch_endpoint(&app, hook.id, &json!({"enabled": false})).await;
    assert_eq!(off.body["disabledReason"], json!("manual"), "{off:?}");
    assert_eq!(
        round(&app).await,
        1,
        "disabling by hand tells the others too"
    );
    let told = watcher.received();
    assert_eq!(
        types(&told),
        ["webhook.endpoint.disabled", "webhook.endpoint.disabled"]
    );
    let data = disabled_data(hook.id, &url, json!(["token.*"]), "manual", ops_actor());
    assert_eq!(told[1].json()["data"], data, "disabled by ops");
}

#[tokio::test]
async fn five_days_of_failures_disable_the_endpoint_and_tell_the_others() {
    let app = spawn_driven().await;
    let (failing, watcher) = (Receiver::start().await, Receiver::start().await);
    failing.answer_by_default(Scripted::status(500));
    let hook = subscribe(&app, &failing, &["token.*"]).await;
    subscribe(&app, &watcher, &["webhook.endpoint.disabled"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let started = app.clock_iso();
    assert_eq!(round(&app).await, 1);
    let read = endpoint(&app, hook.id).await;
    assert_eq!(read.body["failingSince"], json!(started), "{read:?}");
    assert_eq!(read.body["enabled"], json!(true), "{read:?}");

    app.clock.advance(5 * DAY - 10 * MINUTE);
    assert_eq!(round(&app).await, 1, "the second attempt");
    let read = endpoint(&app, hook.id).await;
    assert_eq!(
        read.body["enabled"],
        json!(true),
        "4 days 23 h 50 min: {read:?}"
    );
    assert_eq!(read.body["failingSince"], json!(started), "{read:?}");
    assert_eq!(round(&app).await, 0, "nothing is told");

    app.clock.advance(10 * MINUTE);
    assert_eq!(
        round(&app).await,
        1,
        "the third attempt, 5 days after the first"
    );
    let read = endpoint(&app, hook.id).await;
    assert_eq!(read.body["enabled"], json!(false), "{read:?}");
    assert_eq!(read.body["disabledReason"], json!("failing"), "{read:?}");
    assert_eq!(round(&app).await, 1, "the others are told");
    let told = watcher.received();
    assert_eq!(types(&told), ["webhook.endpoint.disabled"]);
    let url = failing.url("/hook");
    let data = disabled_data(
        hook.id,
        &url,
        json!(["token.*"]),
        "failing",
        dispatcher_actor(),
    );
    assert_eq!(told[0].json()["data"], data);
    assert_eq!(failing.received().len(), 3, "{:#?}", failing.received());
}

// ---- Manual retries, test sends, the log ----

#[tokio::test]
async fn a_delivered_delivery_is_sent_again_by_hand_with_the_same_webhook_id() {
    let app = spawn_local().await;
    let (receiver, refusing) = (Receiver::start().await, Receiver::reserved().await);
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let done = delivery_when(&app, hook.id, "delivered", |d| d["status"] == "delivered").await;
    let id = done["id"].as_u64().expect("id");

    let retried = post(&app, &format!("/deliveries/{id}/retry")).await;
    assert_eq!(retried.status, 202, "{retried:?}");
    let mut expected = done.clone();
    expected["status"] = json!("pending");
    expected["nextAttemptAt"] = json!(app.clock_iso());
    assert_eq!(retried.body, expected, "the delivery, pending and due now");
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[1].webhook_id(),
        got[0].webhook_id(),
        "the same webhook-id"
    );
    assert_eq!(got[1].body, got[0].body, "the same body");
    assert_verifies(&got[1], &hook.secret, "a manual retry");
    let again = delivery_when(&app, hook.id, "again", |d| d["attempts"] == 2).await;
    assert_eq!(again["status"], json!("delivered"), "{again:#}");

    let stuck = subscribe(&app, &refusing, &["role.*"]).await;
    let queued = post(&app, &format!("/{}/test", stuck.id)).await;
    assert_eq!(queued.status, 202, "{queued:?}");
    let pending = queued.body["id"].as_u64().expect("id");
    let answer = post(&app, &format!("/deliveries/{pending}/retry")).await;
    let message = "the delivery is pending: its next attempt is scheduled";
    let conflict = json!({
        "type": "urn:iam-tokens:problem:delivery_pending", "title": "Conflict",
        "status": 409, "detail": message, "code": "delivery_pending",
    });
    answer.assert_is(409, &conflict, "a pending delivery");
    for raw in ["999", "x"] {
        let answer = post(&app, &format!("/deliveries/{raw}/retry")).await;
        let missing = admin_error("not_found", &format!("no delivery with id \"{raw}\""), None);
        answer.assert_is(404, &missing, &format!("retry {raw}"));
    }

    let path = format!("/webhooks/{}", hook.id);
    let deleted = app.send(app.admin_request(Method::DELETE, &path)).await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let log = deliveries(&app, &format!("?endpoint={}", hook.id)).await;
    assert!(log.is_empty(), "its delivery log goes with it: {log:#?}");
    let answer = post(&app, &format!("/deliveries/{id}/retry")).await;
    let missing = admin_error("not_found", &format!("no delivery with id \"{id}\""), None);
    answer.assert_is(404, &missing, "a delivery of a deleted endpoint");
}

#[tokio::test]
async fn a_test_send_is_signed_and_the_log_filters_by_type_status_and_endpoint() {
    let app = spawn_local().await;
    let (receiver, other) = (Receiver::start().await, Receiver::start().await);
    let hook = subscribe(&app, &receiver, &["role.*"]).await;
    let other_hook = subscribe(&app, &other, &["token.*"]).await;
    let queued = post(&app, &format!("/{}/test", hook.id)).await;
    let now = app.clock_iso();
    let expected = json!({
        "id": 1, "eventId": "evt_1", "endpointId": hook.id, "type": "webhook.test",
        "status": "pending", "attempts": 0, "nextAttemptAt": now, "lastAttemptAt": null,
        "responseStatus": null, "responseBody": null, "error": null,
        "createdAt": now, "deliveredAt": null,
    });
    queued.assert_is(202, &expected, "a test send");
    let got = receiver.wait_for(1).await;
    let sent = got[0].json();
    assert_eq!(sent["type"], json!("webhook.test"), "{sent}");
    assert_eq!(sent["id"], json!("evt_1"), "{sent}");
    let data = json!({"endpointId": hook.id, "actor": ops_actor()});
    assert_eq!(sent["data"], data, "{sent}");
    assert_verifies(&got[0], &hook.secret, "webhook.test");

    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    other.wait_for(1).await;
    let test = delivery_when(&app, hook.id, "test", |d| d["status"] == "delivered").await;
    let created = delivery_when(&app, other_hook.id, "token", |d| d["status"] == "delivered").await;
    assert!(
        receiver.received().len() == 1,
        "a test goes to its endpoint alone"
    );
    #[rustfmt::skip]
    let filters = [
        ("?type=webhook.test", vec![test.clone()]),
        ("?type=token.created", vec![created.clone()]),
        ("?type=role.created", vec![]),
        ("?status=delivered", vec![created.clone(), test.clone()]),
        ("?status=pending", vec![]),
        (&*format!("?endpoint={}", hook.id), vec![test.clone()]),
        (&*format!("?endpoint={}&type=webhook.test", other_hook.id), vec![]),
        ("?limit=1", vec![created.clone()]),
        (&*format!("?since={}", app.clock_iso_after(SECOND)), vec![]),
        (&*format!("?since={}", app.clock_iso()), vec![created.clone(), test.clone()]),
    ];
    for (query, expected) in filters {
        assert_eq!(deliveries(&app, query).await, expected, "{query}");
    }
    let page = app.admin_get("/webhooks/deliveries?limit=1").await;
    assert_eq!(page.body["nextCursor"], created["id"], "{page:?}");
    let cursor = format!("/webhooks/deliveries?limit=1&cursor={}", created["id"]);
    let next = app.admin_get(&cursor).await;
    next.assert_is(
        200,
        &json!({"deliveries": [test], "nextCursor": null}),
        "page 2",
    );
    #[rustfmt::skip]
    let bad = [
        ("?status=nope", "status", "status is one of pending, delivered, failed"),
        ("?type=token.nope", "type", "\"token.nope\" is not an event type"),
        ("?endpoint=x", "endpoint", "endpoint is a webhook id"),
        ("?limit=0", "limit", "limit is 1 to 200"),
        ("?color=red", "color", "unknown query parameter \"color\""),
    ];
    for (query, field, message) in bad {
        let answer = app.admin_get(&format!("/webhooks/deliveries{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
        assert_eq!(answer.body["field"], json!(field), "{query}: {answer:?}");
        assert_eq!(answer.body["detail"], json!(message), "{query}: {answer:?}");
    }
}

// ---- Where requests may go ----

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let app = spawn_local().await;
    let (redirecting, target) = (Receiver::start().await, Receiver::start().await);
    redirecting.answer_by_default(Scripted::status(302).header("Location", &target.url("/in")));
    let hook = subscribe(&app, &redirecting, &["token.*"]).await;
    app.admin_create(&json!({"userId": 3, "name": "ci"})).await;
    let first = delivery_when(&app, hook.id, "302", |d| d["attempts"] == 1).await;
    assert_eq!(first["responseStatus"], json!(302), "{first:#}");
    assert_eq!(
        first["status"],
        json!("pending"),
        "a 3xx is a failure: {first:#}"
    );
    assert_eq!(redirecting.received().len(), 1);
    assert!(target.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn an_address_allowed_at_creation_is_checked_again_at_connection() {
    let allowed = spawn_driven_with(|settings| {
        settings
            .webhooks
            .allow_cidrs
            .push("::1/128".parse().unwrap());
    })
    .await;
    let receiver = Receiver::start().await;
    let literal = subscribe(&allowed, &receiver, &["token.*"]).await;
    let by_name = format!("http://localhost:{}/named", receiver.port);
    let named = add_endpoint(&allowed, &json!({"url": by_name, "events": ["token.*"]})).await;
    allowed
        .admin_create(&json!({"userId": 3, "name": "ci"}))
        .await;

    let mut settings = test_settings(&allowed.db_name);
    settings.auth = allowed.settings.auth.clone();
    settings.webhooks.enabled = false;
    settings.webhooks.allow_http = true;
    let strict = spawn_with_clock(settings, allowed.db_name.clone(), allowed.clock.clone()).await;
    assert_eq!(round(&strict).await, 2, "both attempts are made");
    assert!(
        receiver.received().is_empty(),
        "a connection was made: {:#?}",
        receiver.received()
    );
    let refused = delivery_when(&strict, literal.id, "literal", |d| d["attempts"] == 1).await;
    let expected = json!("127.0.0.1 is not an allowed address");
    assert_eq!(refused["error"], expected, "{refused:#}");
    assert_eq!(refused["responseStatus"], Value::Null, "{refused:#}");
    assert_eq!(refused["status"], json!("pending"), "{refused:#}");
    let refused = delivery_when(&strict, named.id, "name", |d| d["attempts"] == 1).await;
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("resolves to no allowed address"),
        "{refused:#}"
    );
    assert_eq!(refused["responseStatus"], Value::Null, "{refused:#}");

    allowed.clock.advance(10 * SECOND);
    assert_eq!(
        round(&allowed).await,
        2,
        "the allowing instance delivers them"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_verifies(&got[0], &literal.secret, "delivered by the other");
}

#[tokio::test]
async fn two_instances_on_one_database_deliver_each_event_once() {
    let first = spawn_local().await;
    let second = spawn_with_clock(
        first.settings.clone(),
        first.db_name.clone(),
        first.clock.clone(),
    )
    .await;
    let receiver = Receiver::start().await;
    let hook = subscribe(&first, &receiver, &["token.created"]).await;
    for n in 0..30 {
        let app = if n % 2 == 0 { &first } else { &second };
        app.admin_create(&json!({"userId": 100 + n, "name": "ci"}))
            .await;
    }
    receiver.wait_for(30).await;
    let got = receiver.settle(Duration::from_millis(300)).await;
    let mut ids: Vec<&str> = got.iter().map(|r| r.webhook_id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (30, 30), "one request per event");
    let log = deliveries(&first, &format!("?endpoint={}&status=delivered", hook.id)).await;
    assert_eq!(log.len(), 30, "{log:#?}");
    assert!(log.iter().all(|d| d["attempts"] == 1), "{log:#?}");
}

// ---- The outbox ----

#[tokio::test]
async fn a_refused_change_sends_no_event() {
    let app = spawn_driven_with(|settings| settings.api_tokens.limit_tokens_per_user = 1).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, &["*"]).await;
    let first = app.admin_create(&json!({"userId": 7, "name": "one"})).await;
    let refused = app
        .admin_json(
            Method::POST,
            "/tokens",
            &json!({"userId": 7, "name": "two"}),
        )
        .await;
    assert_eq!(refused.status, 409, "{refused:?}");
    let role = json!({"name": "r", "permissions": ["read:x"]});
    let role_missing = json!({"userId": 8, "name": "three", "roles": ["nope"]});
    let unknown_role = app.admin_json(Method::POST, "/tokens", &role_missing).await;
    assert_eq!(unknown_role.status, 422, "{unknown_role:?}");
    let made = app.admin_json(Method::POST, "/roles", &role).await;
    assert_eq!(made.status, 201, "{made:?}");
    let twice = app.admin_json(Method::POST, "/roles", &role).await;
    assert_eq!(twice.status, 409, "{twice:?}");
    while round(&app).await > 0 {}
    let got = receiver.received();
    // Attempts of one round run side by side: events arrive in no set order.
    let mut kinds = types(&got);
    kinds.sort();
    assert_eq!(kinds, ["role.created", "token.created"], "{got:#?}");
    let created = got
        .iter()
        .find(|r| r.json()["type"] == "token.created")
        .expect("token.created");
    assert_eq!(created.json()["data"]["tokenId"], json!(first.id));
    assert_eq!(
        deliveries(&app, "").await.len(),
        2,
        "one delivery per committed change"
    );
}

#[tokio::test]
async fn an_endpoint_created_after_an_event_does_not_receive_it() {
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    app.admin_create(&json!({"userId": 3, "name": "before"}))
        .await;
    app.clock.advance(SECOND);
    subscribe(&app, &receiver, &["token.*"]).await;
    assert_eq!(
        round(&app).await,
        0,
        "no endpoint was there for the first event"
    );
    app.admin_create(&json!({"userId": 3, "name": "after"}))
        .await;
    assert_eq!(round(&app).await, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].json()["data"]["name"], json!("after"));
}

#[tokio::test]
async fn an_endpoint_created_in_the_millisecond_of_an_earlier_event_does_not_receive_it() {
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    app.admin_create(&json!({"userId": 3, "name": "before"}))
        .await;
    subscribe(&app, &receiver, &["token.*"]).await;
    assert_eq!(
        round(&app).await,
        0,
        "the endpoint was made after the event was committed"
    );
    assert!(receiver.received().is_empty(), "{:#?}", receiver.received());
}

// ---- Metrics ----

/// `/metrics` counts each attempt by event type (a fixed catalogue: bounded labels): failed,
/// delivered, their latency, and the deliveries pending; no URL, secret or id in a label.
#[tokio::test]
async fn attempts_are_counted_by_event_type_and_the_pending_gauge_reads_the_log() {
    use crate::metrics::{scrape, value};
    let app = spawn_driven().await;
    let receiver = Receiver::start().await;
    receiver.script([Scripted::status(500)]);
    let hook = subscribe(&app, &receiver, &["token.*"]).await;
    app.admin_create(&json!({"userId": 7, "name": "ci"})).await;
    assert_eq!(round(&app).await, 1, "the first attempt fails");
    app.tokens.events().upkeep_once().await;
    let (_, failed) = scrape(&app).await;
    let series = |name: &str| format!("{name}{{type=\"token.created\"}}");
    let pending = series("iam_webhook_deliveries_pending");
    assert_eq!(
        value(&failed, &pending),
        1.0,
        "one delivery waits for its retry"
    );
    app.clock.advance(6 * SECOND);
    assert_eq!(round(&app).await, 1, "the retry is delivered");
    app.tokens.events().upkeep_once().await;
    let (text, samples) = scrape(&app).await;
    let seen = [
        value(&samples, &series("iam_webhook_attempts_failed_total")),
        value(&samples, &series("iam_webhook_deliveries_delivered_total")),
        value(
            &samples,
            &series("iam_webhook_attempt_duration_seconds_count"),
        ),
        value(&samples, &pending),
        value(
            &samples,
            "iam_webhook_deliveries_pending{type=\"role.created\"}",
        ),
    ];
    assert_eq!(
        seen,
        [1.0, 1.0, 2.0, 0.0, 0.0],
        "failed, delivered, timed, pending"
    );
    for secret in [hook.secret.as_str(), "127.0.0.1", "/hook"] {
        assert!(!text.contains(secret), "{secret:?} in the scrape");
    }
}
