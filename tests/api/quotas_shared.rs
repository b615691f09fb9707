//! Customer limits and credits over several instances (SPEC B5, B6): three `Application`s on
//! one database and one Redis spend credits and fill windows as one instance would, honour an
//! operator's change made on another at once, and fail closed for metered tokens when Redis is
//! cut (while tokens without limits or credits keep verifying).

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{ops_admin, Answer, TestApp};
use crate::quotas::{align, assert_headers, metered, verified, MINUTE};
use crate::shared_instances::{behind_proxy, eventually, instances, redis_state, Shared};

/// `calls` public verifications of `key`, spread round-robin over `apps`, 64 at a time;
/// answers `(200s, 429s)`, asserting every 429 says `reason`.
async fn spread(apps: &[TestApp], key: &str, calls: usize, reason: &str) -> (usize, usize) {
    let requests = (0..calls).map(|n| apps[n % apps.len()].verify(key, "full"));
    let answers: Vec<Answer> = futures_util::stream::iter(requests)
        .buffer_unordered(64)
        .collect()
        .await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    for answer in &refused {
        assert_eq!(answer.reason(), reason, "{answer:?}");
    }
    (ok, refused.len())
}

async fn credits_left(app: &TestApp, id: u64) -> Value {
    let view = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(view.status, 200, "{view:?}");
    view.body["credits"]["remaining"].clone()
}

async fn patch_credits(app: &TestApp, id: u64, body: Value) -> Answer {
    let path = format!("/tokens/{id}/credits");
    app.admin_json(Method::PATCH, &path, &body).await
}

/// Sequential verifications of `key` over `apps` in turn, `rounds` times: the statuses.
async fn in_turn(apps: &[&TestApp], key: &str, rounds: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..rounds {
        for app in apps {
            statuses.push(app.verify(key, "full").await.status);
        }
    }
    statuses
}

async fn sixty_credits_spread_over_three_instances_admit_exactly_sixty(shared: Shared) {
    let fleet = instances(3, shared, ops_admin).await;
    let apps = &fleet.apps;
    let quota = json!({"credits": {"remaining": 60}});
    let token = metered(&apps[0], 7, "prepaid", quota).await;
    let counted = spread(apps, &token.key, 180, "Usage exceeded").await;
    assert_eq!(counted, (60, 120), "{shared:?}: k credits, k successes");
    assert_eq!(apps[0].usage_and_valid(token.id).await, (60, true));
    for app in apps {
        assert_eq!(credits_left(app, token.id).await, json!(0), "{shared:?}");
    }
}

#[tokio::test]
async fn sixty_credits_spread_over_three_instances_on_one_redis_admit_exactly_sixty() {
    sixty_credits_spread_over_three_instances_admit_exactly_sixty(Shared::Single).await;
}

#[tokio::test]
async fn sixty_credits_spread_over_three_instances_on_a_redis_cluster_admit_exactly_sixty() {
    sixty_credits_spread_over_three_instances_admit_exactly_sixty(Shared::Cluster).await;
}

#[tokio::test]
async fn a_limit_of_ten_per_minute_admits_exactly_ten_across_three_instances() {
    let fleet = instances(3, Shared::Single, ops_admin).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    align(&a.clock, MINUTE, 15_000);
    let quota = json!({"ratelimits": [{"name": "requests", "limit": 10, "duration": MINUTE}]});
    let token = metered(a, 7, "limited", quota).await;
    let counted = spread(&fleet.apps, &token.key, 30, "Rate limit exceeded").await;
    assert_eq!(counted, (10, 20), "one window, as on one instance");
    let policy = "\"requests\";q=10;w=60";
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        let refused = app.verify(&token.key, "full").await;
        assert_eq!(refused.status, 429, "{name}: {refused:?}");
        assert_eq!(refused.header("retry-after"), Some("45"), "{name}");
        assert_headers(&refused, policy, "\"requests\";r=0;t=45", name);
    }
    assert_eq!(a.usage_and_valid(token.id).await, (10, true));

    a.clock.advance(Duration::from_secs(45));
    for (n, (name, app)) in [("A", a), ("B", b), ("C", c)].into_iter().enumerate() {
        let answer = app.verify(&token.key, "full").await;
        answer.assert_is(200, &verified(app, &token, 11 + n as u64), name);
        let state = format!("\"requests\";r={};t=60", 9 - n);
        assert_headers(&answer, policy, &state, &format!("{name}, the next window"));
    }
    let view = c.admin_get(&format!("/tokens/{}", token.id)).await.body;
    assert_eq!(view["ratelimits"][0]["remaining"], json!(7), "{view}");
}

#[tokio::test]
async fn a_change_of_credits_made_on_one_instance_is_honoured_by_the_others_at_once() {
    let fleet = instances(3, Shared::Single, ops_admin).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let token = metered(a, 7, "prepaid", json!({"credits": {"remaining": 100}})).await;
    assert_eq!(
        b.verify(&token.key, "full").await.status,
        200,
        "credits leased"
    );
    let answer = patch_credits(a, token.id, json!({"remaining": 3})).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["credits"]["remaining"], json!(3), "{answer:?}");
    let statuses = in_turn(&[b, c, a], &token.key, 2).await;
    let case = "set to 3: what B leased before is void";
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "{case}");

    let answer = patch_credits(a, token.id, json!({"increment": 2})).await;
    assert_eq!(answer.body["credits"]["remaining"], json!(2), "{answer:?}");
    let statuses = in_turn(&[c, b, a], &token.key, 1).await;
    assert_eq!(statuses, [200, 200, 429], "two more, at once, on C and B");

    let answer = patch_credits(a, token.id, json!({"remaining": 100})).await;
    assert_eq!(
        answer.body["credits"]["remaining"],
        json!(100),
        "{answer:?}"
    );
    assert_eq!(c.verify(&token.key, "full").await.status, 200, "C leases");
    let answer = patch_credits(b, token.id, json!({"decrement": 95})).await;
    let case = "99 - 95: taken from the store and from what C leased";
    assert_eq!(
        answer.body["credits"]["remaining"],
        json!(4),
        "{case}: {answer:?}"
    );
    let statuses = in_turn(&[a, b, c], &token.key, 2).await;
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "{case}");
    for app in [a, b, c] {
        assert_eq!(credits_left(app, token.id).await, json!(0));
    }
}

#[tokio::test]
async fn with_redis_cut_metered_tokens_fail_closed_and_plain_tokens_still_verify() {
    let (fleet, proxy) = behind_proxy(|settings| {
        ops_admin(settings);
        settings.redis.timeout = Duration::from_millis(200);
    })
    .await;
    let [a, b, _] = &fleet.apps[..] else {
        unreachable!()
    };
    let prepaid = metered(a, 7, "prepaid", json!({"credits": {"remaining": 10}})).await;
    let limits = json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": MINUTE}]});
    let limited = metered(a, 7, "limited", limits).await;
    let plain = metered(a, 8, "plain", json!({})).await;
    for token in [&prepaid, &limited, &plain] {
        let answer = b.verify(&token.key, "full").await;
        answer.assert_is(200, &verified(b, token, 1), "before the cut");
    }

    proxy.down().await;
    let down = eventually(Duration::from_secs(5), || async {
        redis_state(b).await == json!("down")
    })
    .await;
    assert!(down.is_some(), "B sees Redis down");
    for (case, token) in [("credits", &prepaid), ("limits", &limited)] {
        let started = Instant::now();
        let answer = b.verify(&token.key, "full").await;
        let failure = b.failure_now("Server error validating token.");
        answer.assert_is(401, &failure, &format!("{case}: fails closed"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: no wait"
        );
    }
    let answer = b.verify(&plain.key, "full").await;
    answer.assert_is(
        200,
        &verified(b, &plain, 2),
        "no limits, no credits: served",
    );
    let body = json!({"key": prepaid.key});
    let answer = a.admin_json(Method::POST, "/verify", &body).await;
    assert_eq!(answer.status, 503, "admin verify: {answer:?}");
    assert_eq!(
        a.usage_and_valid(prepaid.id).await,
        (1, true),
        "no use counted"
    );

    proxy.up();
    let back = eventually(Duration::from_secs(10), || async {
        b.verify(&prepaid.key, "full").await.status == 200
    })
    .await;
    assert!(back.is_some(), "metered again once Redis is back");
}
