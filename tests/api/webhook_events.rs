//! The events webhooks carry (SPEC B12), seen from a real receiver: `token.expiring_soon` once
//! per offset as a token's remaining lifetime crosses it (none for a token created inside it),
//! `token.expired` from the sweep without any verification (and once only, whoever expires it),
//! `credits.low` and `credits.exhausted` once per crossing and re-armed by a top-up or a refill,
//! `ratelimit.exceeded` once per limit and window; each exactly once although three instances
//! share the database (with and without Redis); a dispatcher killed mid-delivery loses nothing
//! and its redelivery keeps the `webhook-id`; and delivery with Redis configured.
//!
//! The endpoint API, signatures, the retry schedule and address checks are in `webhooks.rs`.
//! Every request received here is verified with the reference Standard Webhooks library.
//! Time is the injected manual clock (the sweep sleeps `sweep_interval` in real time and reads
//! that clock for "now"), except in the killed-process test, where real processes use the
//! system clock.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use iam_tokens::clock::ManualClock;
use iam_tokens::Clock as _;
use iam_tokens::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    on_sqlite, ops_admin, spawn_admin_app_with, spawn_with_clock, test_settings, AdminToken,
    TestApp,
};
use crate::quotas::{align, metered, MINUTE};
use crate::shared_instances::{instances, Shared};
use crate::webhook_receiver::{allow_local_receiver, Received, Receiver, Scripted};

const DAY: Duration = Duration::from_secs(86_400);
/// Long enough for a dispatcher polling every 20 ms (and a sweep every 50 ms) to have sent
/// whatever it had: no request for this long means none is coming.
const QUIET: Duration = Duration::from_millis(400);

// ---- The receiver's side ----

/// An endpoint registered with the app and the receiver behind it.
struct Hook {
    receiver: Receiver,
    secret: String,
}

impl Hook {
    /// A receiver, registered through `app`'s admin API for `events`.
    async fn on(app: &TestApp, events: &[&str]) -> Self {
        let receiver = Receiver::start().await;
        let body = json!({"url": receiver.url("/hook"), "events": events});
        let created = app.admin_json(Method::POST, "/webhooks", &body).await;
        assert_eq!(created.status, 201, "endpoint created: {created:?}");
        let secret = created.body["secret"].as_str().expect("secret").to_owned();
        Self { receiver, secret }
    }

    /// Every request once none arrived for `QUIET`, each verified by the reference library and
    /// carrying its body's id as `webhook-id`.
    async fn settled(&self) -> Vec<Received> {
        let received = self.receiver.settle(QUIET).await;
        for request in &received {
            request
                .verify(&self.secret)
                .unwrap_or_else(|err| panic!("{err}: {request:#?}"));
            assert_eq!(
                request.json()["id"].as_str(),
                Some(request.webhook_id()),
                "the body's id is the webhook-id"
            );
        }
        received
    }

    /// The bodies of every request of type `kind` once settled, in arrival order.
    async fn settled_of(&self, kind: &str) -> Vec<Value> {
        of_type(&self.settled().await, kind)
    }

    /// Waits until `n` requests of type `kind` arrived (at most 10 s); their bodies.
    async fn wait_for_type(&self, kind: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let bodies = of_type(&self.receiver.received(), kind);
            if bodies.len() >= n {
                return bodies;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} {kind}, got {}: {:#?}",
                bodies.len(),
                self.receiver.received()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn of_type(received: &[Received], kind: &str) -> Vec<Value> {
    received
        .iter()
        .map(Received::json)
        .filter(|body| body["type"] == kind)
        .collect()
}

/// An RFC 3339 instant of an event (events write times as chrono serializes them).
fn instant(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("{text}: {err}"))
        .with_timezone(&Utc)
}

/// `data` of an event with its time field `field` checked to be `at` and then removed (its
/// text's precision is chrono's, not the envelope's: compared as instants).
fn data_at(body: &Value, field: &str, at: DateTime<Utc>) -> Value {
    let mut data = body["data"].clone();
    assert_eq!(instant(&data[field]), at, "data.{field} of {body}");
    data.as_object_mut().expect("data").remove(field);
    data
}

fn system(job: &str) -> Value {
    json!({"type": "system", "id": null, "name": job})
}

// ---- Apps ----

/// One app with the `ops` admin, webhooks to this machine and a sweep every 50 ms.
async fn hooked_app() -> TestApp {
    spawn_admin_app_with(hooked).await
}

fn hooked(settings: &mut Settings) {
    ops_admin(settings);
    allow_local_receiver(settings);
    settings.webhooks.sweep_interval = Duration::from_millis(50);
}

async fn admin_token(app: &TestApp, user: u64, name: &str, extra: Value) -> AdminToken {
    let mut body = json!({"userId": user, "name": name, "privilege": "full"});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    app.admin_create(&body).await
}

fn expires_at(token: &AdminToken) -> DateTime<Utc> {
    instant(&token.body["token"]["expiresAt"])
}

async fn token_view(app: &TestApp, id: u64) -> Value {
    let view = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(view.status, 200, "{view:?}");
    view.body
}

/// Moves the clock to the next 12:00 UTC (far from a daily refill's midnight).
fn to_noon(clock: &ManualClock) {
    let now = clock.now();
    let noon = now
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc();
    let target = if noon > now {
        noon
    } else {
        noon + chrono::Duration::days(1)
    };
    clock.advance((target - now).to_std().expect("forward"));
}

/// Moves the clock to the next 00:00 UTC.
fn to_midnight(clock: &ManualClock) {
    let now = clock.now();
    let tomorrow = now.date_naive().succ_opt().expect("tomorrow");
    let midnight = tomorrow.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    clock.advance((midnight - now).to_std().expect("forward"));
}

// ---- token.expiring_soon ----

#[tokio::test]
async fn a_ten_day_token_is_warned_once_seven_days_and_once_one_day_before_it_expires() {
    let app = hooked_app().await;
    let hook = Hook::on(&app, &["token.expiring_soon"]).await;
    let ten_days = admin_token(
        &app,
        7,
        "ten days",
        json!({"expires": 10 * DAY.as_millis()}),
    )
    .await;
    let half_day = json!({"expires": DAY.as_millis() / 2});
    let twelve_hours = admin_token(&app, 7, "twelve hours", half_day).await;
    let expiry = expires_at(&ten_days);
    let warning = |offset: u64| {
        json!({
            "tokenId": ten_days.id, "userId": 7, "name": "ten days",
            "actor": system("expiry"), "offsetSeconds": offset,
        })
    };
    assert!(hook.settled().await.is_empty(), "nothing crossed yet");

    app.clock.advance(3 * DAY + Duration::from_secs(1));
    let first = hook.wait_for_type("token.expiring_soon", 1).await;
    assert_eq!(data_at(&first[0], "expiresAt", expiry), warning(604_800));
    let seven = hook.settled_of("token.expiring_soon").await;
    assert_eq!(seven.len(), 1, "one warning at 7 days: {seven:#?}");

    app.clock.advance(6 * DAY);
    hook.wait_for_type("token.expiring_soon", 2).await;
    let warnings = hook.settled_of("token.expiring_soon").await;
    assert_eq!(warnings.len(), 2, "one more at 1 day: {warnings:#?}");
    assert_eq!(data_at(&warnings[1], "expiresAt", expiry), warning(86_400));

    // Later sweeps (each 50 ms of real time, the clock moving an hour at a time) add none.
    for _ in 0..5 {
        app.clock.advance(Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let warnings = hook.settled_of("token.expiring_soon").await;
    assert_eq!(warnings.len(), 2, "no duplicates: {warnings:#?}");
    let about: Vec<&Value> = warnings.iter().map(|w| &w["data"]["tokenId"]).collect();
    assert_eq!(
        about,
        [&json!(ten_days.id), &json!(ten_days.id)],
        "a token created already inside both offsets (12 h) is never warned (token {})",
        twelve_hours.id
    );
    let received = hook.receiver.received();
    let ids: std::collections::HashSet<&str> = received.iter().map(Received::webhook_id).collect();
    assert_eq!(ids.len(), 2, "two events, two webhook-ids");
}

/// More tokens than the sweep reads in one page (500) expiring in the same millisecond (created
/// at one instant with one lifetime: an import, or a burst) are each warned.
#[tokio::test]
async fn every_token_of_a_crowded_expiry_instant_is_warned() {
    let app = spawn_admin_app_with(|settings| {
        hooked(settings);
        settings.api_tokens.limit_tokens_per_user = 1_000;
    })
    .await;
    let hook = Hook::on(&app, &["token.expiring_soon"]).await;
    let mut created = Vec::new();
    for n in 0..520 {
        let request = iam_tokens::service::CreateToken::new(
            crate::helpers::uid(7),
            iam_tokens::domain::Privilege::Full,
            iam_tokens::domain::TokenName::parse(&format!("bulk {n}")).expect("name"),
        )
        .lifetime(Some(crate::helpers::ms(10 * DAY.as_millis() as u64)));
        let token = app.lib_create(request).await.outcome.expect("created");
        created.push(token);
    }
    app.clock.advance(3 * DAY + Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warned = hook.settled_of("token.expiring_soon").await;
    let rows: u64 = app
        .query_one(
            "SELECT COUNT(*) FROM webhook_events WHERE type = 'token.expiring_soon'",
            (),
        )
        .await;
    assert_eq!((rows, warned.len()), (520, 520), "one warning per token");
}

// ---- token.expired ----

#[tokio::test]
async fn a_token_past_its_expiry_is_expired_by_the_sweep_with_one_event_and_no_verification() {
    let app = spawn_admin_app_with(|settings| {
        hooked(settings);
        settings.verify.cache_ttl = Duration::from_secs(3600);
    })
    .await;
    let hook = Hook::on(&app, &["token.expired"]).await;
    let minute = json!({"expires": 60_000});
    let unused = admin_token(&app, 7, "one minute", minute.clone()).await;
    // Verified once: the verification cache holds it, so a verification after the sweep still
    // reaches the expiry check (which expires tokens too) instead of missing the key.
    let cached = admin_token(&app, 7, "cached", minute).await;
    assert_eq!(app.verify(&cached.key, "full").await.status, 200);

    app.clock.advance(Duration::from_secs(61));
    let expired = hook.wait_for_type("token.expired", 2).await;
    let mut about: Vec<&Value> = expired.iter().map(|e| &e["data"]["tokenId"]).collect();
    about.sort_by_key(|id| id.as_u64());
    assert_eq!(
        about,
        [&json!(unused.id), &json!(cached.id)],
        "{expired:#?}"
    );
    let event = expired
        .iter()
        .find(|e| e["data"]["tokenId"] == unused.id)
        .expect("the unused token's");
    let data = json!({
        "tokenId": unused.id, "userId": 7, "name": "one minute", "actor": system("expiry"),
    });
    assert_eq!(event["data"], data, "{event:#?}");
    assert_eq!(instant(&event["timestamp"]), app.clock.now());
    let view = token_view(&app, unused.id).await;
    let seen = (&view["valid"], &view["usageCount"], &view["lastUsed"]);
    let case = "expired by the sweep: never verified";
    // Shown invalid (past its expiry); the sweep only tells: the token is marked expired by
    // its next verification, which answers "Token expired" once, as riavzon does.
    let never = (&json!(false), &json!(0), &Value::Null);
    assert_eq!(seen, never, "{case}: {view}");

    // The verification that finds them expired writes no second event.
    for token in [&cached, &unused] {
        let answer = app.verify(&token.key, "full").await;
        let case = "the first verification after the expiry";
        assert_eq!(
            (answer.status, answer.reason()),
            (401, "Token expired"),
            "{case}"
        );
    }
    for token in [&unused, &cached] {
        let body = json!({"key": token.key});
        let admin = app.admin_json(Method::POST, "/verify", &body).await;
        assert_eq!(admin.body["valid"], json!(false), "{admin:?}");
    }
    app.clock.advance(Duration::from_secs(60));
    let expired = hook.settled_of("token.expired").await;
    assert_eq!(
        expired.len(),
        2,
        "exactly one token.expired each: {expired:#?}"
    );
}

/// The first verification of a key past its expiry answers `Token expired`
/// (`routes_public::verify_answers_token_expired_once_then_invalid_key`), even after the sweep
/// sent its `token.expired`: the sweep tells, the verification marks.
#[tokio::test]
async fn a_key_the_sweep_expired_still_answers_token_expired_on_its_next_verification() {
    let app = hooked_app().await;
    let hook = Hook::on(&app, &["token.expired"]).await;
    let token = admin_token(&app, 7, "one minute", json!({"expires": 60_000})).await;
    app.clock.advance(Duration::from_secs(61));
    hook.wait_for_type("token.expired", 1).await;
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(401, &app.failure_now("Token expired"), "the first sighting");
    let answer = app.verify(&token.key, "full").await;
    answer.assert_is(401, &app.failure_now("Invalid key"), "after it");
    let expired = hook.settled_of("token.expired").await;
    assert_eq!(expired.len(), 1, "one event: {expired:#?}");
}

// ---- credits.low and credits.exhausted ----

/// `n` public verifications of `key`: how many were admitted; every refusal is `Usage exceeded`.
async fn spend(app: &TestApp, key: &str, n: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        let answer = app.verify(key, "full").await;
        match answer.status {
            200 => admitted += 1,
            _ => assert_eq!(
                (answer.status, answer.reason()),
                (429, "Usage exceeded"),
                "{answer:?}"
            ),
        }
    }
    admitted
}

async fn credits_left(app: &TestApp, id: u64) -> Value {
    token_view(app, id).await["credits"]["remaining"].clone()
}

/// A token's credits of 100 refilled daily to 100 (`credits.low` below 10 %) crossing down.
///
/// The store leases credits out in chunks (`Credits::lease`: an eighth of what it holds, one at
/// a time below 16), and the events fire when the store's own balance crosses: with 100 credits
/// the leases leave 88, 77, 68, … 11, 10, then 9 when the 91st verification leases its credit,
/// so `credits.low` says `remaining: 9` just as the caller's balance goes from 10 to 9, and
/// `credits.exhausted` comes with the 100th (the last credit's own lease).
#[tokio::test]
async fn credits_low_and_exhausted_fire_once_per_crossing_and_a_top_up_or_refill_rearms_them() {
    let app = hooked_app().await;
    to_noon(&app.clock);
    let hook = Hook::on(&app, &["credits.*"]).await;
    let quota = json!({"credits": {"remaining": 100,
        "refill": {"interval": "daily", "amount": 100}}});
    let token = metered(&app, 7, "prepaid", quota).await;
    let event = |remaining: u64, low: bool| {
        let mut data = json!({
            "tokenId": token.id, "userId": 7, "name": "prepaid", "actor": system("credits"),
            "scope": "token", "remaining": remaining, "refillAmount": 100,
        });
        if low {
            data["threshold"] = json!(10);
        }
        data
    };

    assert_eq!(spend(&app, &token.key, 90).await, 90);
    assert_eq!(credits_left(&app, token.id).await, json!(10));
    assert!(hook.settled().await.is_empty(), "10 left: not below 10 %");
    assert_eq!(spend(&app, &token.key, 1).await, 1);
    let low = hook.wait_for_type("credits.low", 1).await;
    assert_eq!(low[0]["data"], event(9, true), "{low:#?}");
    assert_eq!(credits_left(&app, token.id).await, json!(9));

    assert_eq!(spend(&app, &token.key, 8).await, 8);
    assert!(
        of_type(&hook.settled().await, "credits.exhausted").is_empty(),
        "one left"
    );
    assert_eq!(spend(&app, &token.key, 1).await, 1, "the last credit");
    let exhausted = hook.wait_for_type("credits.exhausted", 1).await;
    assert_eq!(exhausted[0]["data"], event(0, false), "{exhausted:#?}");
    assert_eq!(spend(&app, &token.key, 5).await, 0, "refused past zero");
    let received = hook.settled().await;
    let counts = (
        of_type(&received, "credits.low").len(),
        of_type(&received, "credits.exhausted").len(),
    );
    assert_eq!(counts, (1, 1), "each once: {received:#?}");

    // A top-up above the threshold re-arms both (a second later, as a person would do it).
    app.clock.advance(Duration::from_secs(1));
    let path = format!("/tokens/{}/credits", token.id);
    let topped = app
        .admin_json(Method::PATCH, &path, &json!({"increment": 50}))
        .await;
    assert_eq!(topped.status, 200, "{topped:?}");
    assert_eq!(spend(&app, &token.key, 40).await, 40);
    assert_eq!(hook.settled().await.len(), 2, "10 left again: nothing yet");
    assert_eq!(spend(&app, &token.key, 1).await, 1);
    let low = hook.wait_for_type("credits.low", 2).await;
    assert_eq!(low[1]["data"], event(9, true), "{low:#?}");
    assert_eq!(spend(&app, &token.key, 12).await, 9);
    let exhausted = hook.wait_for_type("credits.exhausted", 2).await;
    assert_eq!(exhausted[1]["data"], event(0, false), "{exhausted:#?}");

    // So does the daily refill.
    to_midnight(&app.clock);
    assert_eq!(spend(&app, &token.key, 91).await, 91);
    let low = hook.wait_for_type("credits.low", 3).await;
    assert_eq!(low[2]["data"], event(9, true), "{low:#?}");
    let received = hook.settled().await;
    let counts = (
        of_type(&received, "credits.low").len(),
        of_type(&received, "credits.exhausted").len(),
    );
    assert_eq!(counts, (3, 2), "once per crossing: {received:#?}");
}

/// A clean stop gives unspent leased credits back to the store (`Quotas::give_back`), which
/// lifts the stored balance back above the threshold although the caller's never moved: that
/// is no top-up, so the next lease sends no second `credits.low`.
#[tokio::test]
async fn a_clean_restart_does_not_send_credits_low_again() {
    let app = hooked_app().await;
    to_noon(&app.clock);
    let hook = Hook::on(&app, &["credits.low"]).await;
    let quota = json!({"credits": {"remaining": 1000,
        "refill": {"interval": "daily", "amount": 1000}}});
    let token = metered(&app, 7, "prepaid", quota).await;
    // 895 verifications: the lease that brings the store from 106 to 93 (leases are an eighth
    // of what remains).
    assert_eq!(spend(&app, &token.key, 895).await, 895);
    hook.wait_for_type("credits.low", 1).await;
    app.tokens.shutdown().await;
    let (settings, db) = (app.settings.clone(), app.db_name.clone());
    let restarted = spawn_with_clock(settings, db, app.clock.clone()).await;
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(credits_left(&restarted, token.id).await, json!(105));
    assert_eq!(spend(&restarted, &token.key, 1).await, 1);
    assert_eq!(credits_left(&restarted, token.id).await, json!(104));
    let lows = hook.settled_of("credits.low").await;
    assert_eq!(lows.len(), 1, "one crossing, one event: {lows:#?}");
}

/// A token created with credits already below the threshold did not cross it: nothing until
/// its balance runs out.
#[tokio::test]
async fn a_pool_created_below_its_threshold_sends_only_credits_exhausted() {
    let app = hooked_app().await;
    to_noon(&app.clock);
    let hook = Hook::on(&app, &["credits.*"]).await;
    let quota = json!({"credits": {"remaining": 3,
        "refill": {"interval": "daily", "amount": 100}}});
    let token = metered(&app, 7, "nearly spent", quota).await;
    assert_eq!(spend(&app, &token.key, 3).await, 3);
    let sent = hook.wait_for_type("credits.exhausted", 1).await;
    assert_eq!(sent[0]["data"]["remaining"], json!(0));
    let all = hook.settled_of("credits.low").await;
    assert!(all.is_empty(), "created low: no credits.low: {all:#?}");
}

// ---- ratelimit.exceeded ----

#[tokio::test]
async fn the_first_refusal_of_a_limit_in_each_window_sends_one_ratelimit_exceeded() {
    let app = hooked_app().await;
    align(&app.clock, MINUTE, 15_000);
    let hook = Hook::on(&app, &["ratelimit.exceeded"]).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": MINUTE}]});
    let token = metered(&app, 7, "limited", limits).await;
    let window_end = |app: &TestApp| {
        let now = app.clock.now().timestamp_millis();
        let minute = MINUTE as i64;
        DateTime::from_timestamp_millis((now / minute + 1) * minute).expect("time")
    };
    let exceeded = |resets: DateTime<Utc>, body: &Value| {
        let mut data = data_at(body, "resetsAt", resets);
        // `scope` has a test of its own.
        data.as_object_mut().expect("data").remove("scope");
        let expected = json!({
            "tokenId": token.id, "userId": 7, "name": "limited", "actor": system("limiter"),
            "limit": "requests", "max": 2, "durationMs": MINUTE,
        });
        assert_eq!(data, expected, "{body}");
    };

    let statuses = verify_times(&app, &token.key, 5).await;
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    let first = hook.wait_for_type("ratelimit.exceeded", 1).await;
    exceeded(window_end(&app), &first[0]);
    assert_eq!(hook.settled().await.len(), 1, "one for three refusals");

    app.clock.advance(Duration::from_secs(60));
    let statuses = verify_times(&app, &token.key, 5).await;
    assert_eq!(statuses, [200, 200, 429, 429, 429], "the next window");
    let events = hook.wait_for_type("ratelimit.exceeded", 2).await;
    exceeded(window_end(&app), &events[1]);
    let events = hook.settled_of("ratelimit.exceeded").await;
    assert_eq!(events.len(), 2, "one per window: {events:#?}");
}

/// A limit given a longer window under the same name is a new limit: its first refusal is
/// reported although its window's index is smaller than the old one's.
#[tokio::test]
async fn a_limit_changed_to_a_longer_window_reports_its_first_refusal() {
    let app = hooked_app().await;
    align(&app.clock, MINUTE, 15_000);
    let hook = Hook::on(&app, &["ratelimit.exceeded"]).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": MINUTE}]});
    let token = metered(&app, 7, "limited", limits).await;
    assert_eq!(verify_times(&app, &token.key, 3).await, [200, 200, 429]);
    hook.wait_for_type("ratelimit.exceeded", 1).await;

    let hourly = json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": 3_600_000}]});
    let path = format!("/tokens/{}/ratelimits", token.id);
    let changed = app.admin_json(Method::PUT, &path, &hourly).await;
    assert_eq!(changed.status, 200, "{changed:?}");
    app.clock.advance(Duration::from_secs(60));
    let statuses = verify_times(&app, &token.key, 3).await;
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let events = hook.settled_of("ratelimit.exceeded").await;
    let durations: Vec<&Value> = events.iter().map(|e| &e["data"]["durationMs"]).collect();
    assert_eq!(
        durations,
        [&json!(MINUTE), &json!(3_600_000)],
        "{events:#?}"
    );
}

#[tokio::test]
async fn ratelimit_exceeded_names_the_limits_scope_as_the_api_and_credits_events_do() {
    let app = hooked_app().await;
    align(&app.clock, MINUTE, 15_000);
    let hook = Hook::on(&app, &["ratelimit.exceeded", "credits.exhausted"]).await;
    let quota = json!({
        "ratelimits": [{"name": "requests", "limit": 1, "duration": MINUTE}],
        "credits": {"remaining": 1},
    });
    let token = metered(&app, 7, "limited", quota).await;
    let view = token_view(&app, token.id).await;
    assert_eq!(view["ratelimits"][0]["scope"], "token", "the API's word");
    assert_eq!(verify_times(&app, &token.key, 2).await, [200, 429]);
    let exhausted = hook.wait_for_type("credits.exhausted", 1).await;
    assert_eq!(exhausted[0]["data"]["scope"], "token", "credits.exhausted");
    let exceeded = hook.wait_for_type("ratelimit.exceeded", 1).await;
    assert_eq!(exceeded[0]["data"]["scope"], "token", "{exceeded:#?}");
}

async fn verify_times(app: &TestApp, key: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        statuses.push(app.verify(key, "full").await.status);
    }
    statuses
}

// ---- Exactly once across instances ----

/// Three instances on one database and one clock, each dispatching and sweeping: every event is
/// delivered once (one row, one delivery, one attempt, one request). The clock moves only once
/// the receiver is quiet: a delivery in flight while a shared clock jumps days ahead would have
/// its lease run out under it.
async fn each_event_reaches_the_receiver_once_from_three_instances(apps: &[TestApp], shared: bool) {
    let hook = Hook::on(
        &apps[0],
        &[
            "token.created",
            "token.expiring_soon",
            "credits.exhausted",
            "ratelimit.exceeded",
        ],
    )
    .await;
    align(&apps[0].clock, MINUTE, 15_000);

    // token.created: written by all three, polled for by three dispatchers.
    let mut created = Vec::new();
    for (n, app) in apps.iter().enumerate() {
        for m in 0..3 {
            let name = format!("plain {n}.{m}");
            created.push(admin_token(app, 7, &name, json!({})).await.id);
        }
    }
    let ten_days = json!({"expires": 10 * DAY.as_millis()});
    let expiring = admin_token(&apps[1], 7, "ten days", ten_days).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": MINUTE}]});
    let limited = metered(&apps[2], 7, "limited", limits).await;
    let prepaid = metered(&apps[0], 7, "prepaid", json!({"credits": {"remaining": 6}})).await;
    created.extend([expiring.id, limited.id, prepaid.id]);
    let bodies = hook.wait_for_type("token.created", created.len()).await;
    let mut ids: Vec<u64> = bodies
        .iter()
        .map(|b| b["data"]["tokenId"].as_u64().expect("tokenId"))
        .collect();
    ids.sort_unstable();
    created.sort_unstable();
    assert_eq!(ids, created, "every token.created, once");

    // ratelimit.exceeded: every instance refuses in the same window.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        for app in apps {
            statuses.push(app.verify(&limited.key, "full").await.status);
        }
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    // With Redis the limit is one count for the deployment; without, each instance counts its
    // own (and each refuses its third).
    assert_eq!(admitted, if shared { 2 } else { 6 }, "{statuses:?}");
    hook.wait_for_type("ratelimit.exceeded", 1).await;

    // credits.exhausted: six credits spent through all three.
    let mut admitted = 0;
    for _ in 0..3 {
        for app in apps {
            admitted += usize::from(app.verify(&prepaid.key, "full").await.status == 200);
        }
    }
    assert_eq!(admitted, 6, "k credits, k successes");
    hook.wait_for_type("credits.exhausted", 1).await;
    hook.settled().await;

    // token.expiring_soon: three sweeps see the crossing.
    apps[0].clock.advance(3 * DAY + Duration::from_secs(1));
    hook.wait_for_type("token.expiring_soon", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let received = hook.settled().await;
    let kinds = |kind: &str| of_type(&received, kind).len();
    let counts = [
        kinds("token.created"),
        kinds("ratelimit.exceeded"),
        kinds("credits.exhausted"),
        kinds("token.expiring_soon"),
    ];
    assert_eq!(counts, [created.len(), 1, 1, 1], "each once: {received:#?}");
    let mut webhook_ids: Vec<&str> = received.iter().map(Received::webhook_id).collect();
    webhook_ids.sort_unstable();
    webhook_ids.dedup();
    assert_eq!(webhook_ids.len(), received.len(), "no request twice");
    let attempts: Vec<(u64, u64)> = apps[0]
        .query_all(
            "SELECT event_id, attempts FROM webhook_deliveries ORDER BY event_id",
            (),
        )
        .await;
    assert_eq!(attempts.len(), received.len(), "one delivery per event");
    assert!(
        attempts.iter().all(|(_, n)| *n == 1),
        "one attempt each (never claimed twice): {attempts:?}"
    );
}

/// Three instances on one database without Redis, reading one manual clock.
async fn three_without_redis() -> Vec<TestApp> {
    let db_name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let clock = Arc::new(ManualClock::starting_now());
    let mut apps = Vec::new();
    for _ in 0..3 {
        let mut settings = test_settings(&db_name);
        hooked(&mut settings);
        apps.push(spawn_with_clock(settings, db_name.clone(), clock.clone()).await);
    }
    apps
}

#[tokio::test]
async fn three_instances_without_redis_deliver_every_event_exactly_once() {
    if on_sqlite() {
        return; // One database shared by processes: MySQL.
    }
    let apps = three_without_redis().await;
    each_event_reaches_the_receiver_once_from_three_instances(&apps, false).await;
}

#[tokio::test]
async fn three_instances_sharing_limits_in_redis_deliver_every_event_exactly_once() {
    if on_sqlite() {
        return; // One database shared by processes: MySQL.
    }
    let fleet = instances(3, Shared::Single, hooked).await;
    each_event_reaches_the_receiver_once_from_three_instances(&fleet.apps, true).await;
}

// ---- Redis configured ----

#[tokio::test]
async fn token_created_is_delivered_by_an_instance_with_redis_configured() {
    let fleet = instances(1, Shared::Single, hooked).await;
    let app = &fleet.apps[0];
    let hook = Hook::on(app, &["token.*"]).await;
    let token = admin_token(app, 7, "with redis", json!({})).await;
    let created = hook.wait_for_type("token.created", 1).await;
    let data = &created[0]["data"];
    let seen = (&data["tokenId"], &data["userId"], &data["name"]);
    assert_eq!(seen, (&json!(token.id), &json!(7), &json!("with redis")));
    assert_eq!(data["actor"]["type"], "config", "{data}");
    assert_eq!(data["actor"]["id"], "ops", "{data}");
    assert_eq!(hook.settled().await.len(), 1, "once");
}

// ---- A killed dispatcher ----

/// `iam-tokens serve` on `app`'s database delivering webhooks to this machine, with a lease of
/// 3 s (attempts time out after 2 s): stderr goes to a log file, shown when a test fails.
struct Process {
    child: Child,
    log: std::path::PathBuf,
}

impl Process {
    async fn start(app: &TestApp, name: &str) -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("address").port()
        };
        let tmp = env!("CARGO_TARGET_TMPDIR");
        let log = std::path::PathBuf::from(tmp).join(format!("{}-{name}.log", app.db_name));
        let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
        command.arg("serve").current_dir(tmp);
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("IAM") {
                command.env_remove(var);
            }
        }
        command
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("IAM__DATABASE__URL", app.database_url())
            .env("IAM__SERVER__PORT", port.to_string())
            .env("IAM__RATE_LIMITERS__ENABLED", "false")
            .env("IAM__WEBHOOKS__ALLOW_HTTP", "true")
            .env("IAM__WEBHOOKS__ALLOW_CIDRS", "127.0.0.1/32")
            .env("IAM__WEBHOOKS__POLL_INTERVAL", "50ms")
            .env("IAM__WEBHOOKS__LEASE", "3s")
            .env("IAM__WEBHOOKS__TIMEOUT", "2s")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut process = Self {
            child: command.spawn().expect("the binary starts"),
            log,
        };
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = app.client.get(&health).send().await;
            if up.is_ok_and(|r| r.status() == 200) {
                return process;
            }
            if let Some(status) = process.child.try_wait().expect("child status") {
                panic!("exited early ({status}):\n{}", process.log());
            }
            assert!(Instant::now() < deadline, "not up:\n{}", process.log());
            // Bounded poll: a real process is binding its port.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: nothing of the process runs after this.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

#[tokio::test]
async fn a_dispatcher_killed_mid_delivery_loses_nothing_and_redelivers_with_the_same_webhook_id() {
    // This app writes the events and reads the database; it dispatches nothing.
    let app = spawn_admin_app_with(|settings| {
        hooked(settings);
        settings.webhooks.enabled = false;
    })
    .await;
    let hook = Hook::on(&app, &["token.created"]).await;
    // The first process's attempts hang until it is killed.
    hook.receiver
        .answer_by_default(Scripted::status(200).delay(Duration::from_secs(30)));
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(
            admin_token(&app, 7, &format!("token {n}"), json!({}))
                .await
                .id,
        );
    }

    let mut first = Process::start(&app, "first").await;
    let sent = hook.receiver.wait_for(5).await;
    first.kill();
    let log = first.log();
    let rows: Vec<(String, u64)> = app
        .query_all("SELECT status, attempts FROM webhook_deliveries", ())
        .await;
    let case = "killed while every attempt was in flight: none ended";
    assert_eq!(rows, vec![("pending".to_owned(), 0); 5], "{case}:\n{log}");

    hook.receiver.answer_by_default(Scripted::status(200));
    let _second = Process::start(&app, "second").await;
    hook.receiver.wait_for(10).await;
    let received = hook.settled().await;
    let mut delivered: Vec<u64> = of_type(&received, "token.created")
        .iter()
        .map(|b| b["data"]["tokenId"].as_u64().expect("tokenId"))
        .collect();
    delivered.sort_unstable();
    delivered.dedup();
    assert_eq!(delivered, events, "every event delivered");
    for request in &received {
        let first_attempt = sent
            .iter()
            .find(|s| s.body == request.body)
            .unwrap_or_else(|| panic!("redelivered what was first sent: {request:#?}"));
        assert_eq!(
            request.webhook_id(),
            first_attempt.webhook_id(),
            "a redelivery keeps its webhook-id"
        );
    }
    let rows: Vec<(String, u64)> = app
        .query_all("SELECT status, attempts FROM webhook_deliveries", ())
        .await;
    assert_eq!(rows, vec![("delivered".to_owned(), 1); 5], "{received:#?}");
}
