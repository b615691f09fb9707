//! Several instances act as one (SPEC B6): three `Application`s in this process share one
//! database and one Redis (a single server, then a local Redis Cluster), each test under a key
//! prefix of its own. Limits are enforced as by one instance, bans everywhere, a change made on
//! one is seen at once by the others, a replayed signed request is refused by another instance;
//! and when Redis goes away (a TCP proxy cut or silent) every instance keeps serving, on its own
//! state, and returns to the shared state when Redis is back.

use std::time::{Duration, Instant};

use iam_tokens::domain::Privilege;
use iam_tokens::secret::Secret;
use iam_tokens::Clock as _;
use iam_tokens::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_banned, assert_blocked, spawn_with_clock, test_settings, Answer, TestApp,
};
use crate::proxy::Proxy;
use crate::routes_public::{with_hmac, Signing};

/// Which Redis the instances share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// 127.0.0.1:6379.
    Single,
    /// Three masters on 127.0.0.1:7101–7103 (`scripts/services.sh`).
    Cluster,
}

const CLUSTER: &str = "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103";

impl Shared {
    fn url(self) -> String {
        match self {
            Self::Single => "redis://127.0.0.1:6379".to_owned(),
            Self::Cluster => {
                std::env::var("IAM_TEST_REDIS_CLUSTER").unwrap_or_else(|_| CLUSTER.to_owned())
            }
        }
    }

    fn nodes(self) -> Vec<String> {
        self.url().split(',').map(str::to_owned).collect()
    }
}

/// Instances sharing one database and one Redis prefix; the prefix's keys are deleted at the
/// end (the database is dropped by each app).
pub struct Instances {
    pub apps: Vec<TestApp>,
    prefix: String,
    shared: Shared,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for node in self.shared.nodes() {
            let Ok(client) = redis::Client::open(node.as_str()) else {
                continue;
            };
            let Ok(mut connection) = client.get_connection() else {
                continue;
            };
            let pattern = format!("{}*", self.prefix);
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query(&mut connection)
                .unwrap_or_default();
            for key in keys {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut connection);
            }
        }
    }
}

/// `n` instances on one fresh database and `redis` (at `redis_url` when given: a proxy), with
/// Redis checked every 100 ms, each changed by `configure`. They read one clock: limits in
/// Redis are decided on the instances' wall time, which hosts keep in step with NTP.
pub async fn instances_at(
    n: usize,
    shared: Shared,
    redis_url: Option<String>,
    configure: impl Fn(&mut Settings),
) -> Instances {
    let db_name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("iam_test_{}:", uuid::Uuid::new_v4().simple());
    let mut apps = Vec::with_capacity(n);
    let clock = std::sync::Arc::new(iam_tokens::ManualClock::starting_now());
    for _ in 0..n {
        let mut settings = test_settings(&db_name);
        settings.redis.url = Secret::new(redis_url.clone().unwrap_or_else(|| shared.url()));
        settings.redis.cluster = shared == Shared::Cluster;
        settings.redis.key_prefix = prefix.clone();
        settings.redis.check_interval = Duration::from_millis(100);
        settings.redis.connect_timeout = Duration::from_millis(500);
        // The cache would serve a changed token for an hour: only invalidation can refuse it.
        settings.verify.cache_ttl = Duration::from_secs(3600);
        configure(&mut settings);
        apps.push(spawn_with_clock(settings, db_name.clone(), clock.clone()).await);
    }
    Instances {
        apps,
        prefix,
        shared,
    }
}

impl Instances {
    /// One more instance of the deployment, with the first one's settings.
    async fn another(&self) -> TestApp {
        let first = &self.apps[0];
        let (settings, db) = (first.settings.clone(), first.db_name.clone());
        spawn_with_clock(settings, db, first.clock.clone()).await
    }

    /// Deletes every key of the deployment in Redis, as a `FLUSHALL` would.
    fn flush_redis(&self) {
        for node in self.shared.nodes() {
            let client = redis::Client::open(node.as_str()).expect("url");
            let mut connection = client.get_connection().expect("Redis answers");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut connection)
                .expect("KEYS");
            for key in keys {
                let _: i64 = redis::cmd("DEL")
                    .arg(key)
                    .query(&mut connection)
                    .expect("DEL");
            }
        }
    }
}

pub async fn instances(n: usize, shared: Shared, configure: impl Fn(&mut Settings)) -> Instances {
    instances_at(n, shared, None, configure).await
}

fn limited(settings: &mut Settings) {
    settings.rate_limiters.enabled = true;
}

/// A management call that passes the union and then fails body validation (400).
async fn failing_call(app: &TestApp) -> Answer {
    let request = app.manage_request(Method::POST, "metadata", 7);
    app.send(request.json(&json!({}))).await
}

/// Polls `check` every 2 ms until it holds, for at most `within`; the time it took.
pub(crate) async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

pub(crate) async fn metrics_text(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await;
    response.expect("metrics").text().await.expect("text")
}

/// The value of an unlabelled series in a Prometheus scrape (0 when absent).
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Runs each test against the single Redis and against the Redis Cluster.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Shared::Single).await
            })*
        }
        mod cluster {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Shared::Cluster).await
            })*
        }
    };
}

on_both!(
    a_burst_spread_over_three_instances_is_blocked_and_banned_as_on_one,
    failed_verifications_spread_over_instances_count_as_one_and_ban_on_all,
    a_change_made_on_one_instance_is_refused_by_the_others_at_once,
    a_signed_request_replayed_to_another_instance_is_refused,
    a_lifted_ban_is_lifted_on_every_instance,
    three_hundred_parallel_failures_over_three_instances_admit_exactly_the_limit,
    a_success_on_one_instance_resets_the_failures_counted_on_another,
    a_role_change_and_an_access_change_on_one_instance_are_seen_by_the_others,
    a_flood_from_a_banned_ip_costs_no_redis_call,
    a_ban_survives_a_flush_of_redis,
);

async fn a_burst_spread_over_three_instances_is_blocked_and_banned_as_on_one(shared: Shared) {
    let fleet = instances(3, shared, limited).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    assert_eq!(
        failing_call(a).await.status,
        400,
        "the first call passes the union"
    );
    assert_blocked(&failing_call(b).await, 900, "burst 1/1 s: the second, on B");
    assert_banned(&failing_call(c).await, "the strike during the block, on C");
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        assert_banned(&failing_call(app).await, name);
    }
    let rows = a.ban_rows().await;
    assert_eq!(rows.len(), 1, "stored once: {rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("burst_limiter", "127.0.0.1")
    );
}

async fn failed_verifications_spread_over_instances_count_as_one_and_ban_on_all(shared: Shared) {
    let fleet = instances(3, shared, limited).await;
    let apps = &fleet.apps;
    let good = apps[0].create_token(9, Privilege::Full, "good").await;
    // consumption_rate_limiter: 10 / 60 s per IP (and per presented key), block 1 h.
    for failure in 0..10 {
        let app = &apps[failure % 3];
        let answer = app.verify("not-a-key", "full").await;
        assert_eq!(answer.status, 401, "failure {failure}: {answer:?}");
    }
    assert_blocked(&apps[1].verify("not-a-key", "full").await, 3600, "the 11th");
    for app in apps {
        let answer = app.verify(&good.raw_api_key, "full").await;
        assert_eq!(answer.status, 200, "a valid key is served during the block");
    }
    assert_banned(&apps[2].verify("not-a-key", "full").await, "the strike");
    for app in apps {
        assert_banned(
            &app.verify("other-bad-key", "full").await,
            "the IP, everywhere",
        );
    }
}

async fn three_hundred_parallel_failures_over_three_instances_admit_exactly_the_limit(
    shared: Shared,
) {
    let fleet = instances(3, shared, limited).await;
    let calls = (0..300).map(|n| {
        let app = &fleet.apps[n % 3];
        async move { app.verify(&format!("bad-key-{n}"), "full").await.status }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let admitted = statuses.iter().filter(|status| **status == 401).count();
    let refused = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(
        (admitted, refused),
        (10, 290),
        "consumption_rate_limiter: 10 per IP"
    );
}

async fn may_write(app: &TestApp, key: &str) -> u16 {
    let path = "/api/public/verify?privilege=full&permissions=projects.write";
    let request = app.client.get(app.url(path)).header("x-api-key", key);
    app.send(request).await.status
}

async fn a_role_change_and_an_access_change_on_one_instance_are_seen_by_the_others(shared: Shared) {
    use iam_tokens::domain::access::TokenAccess;
    use iam_tokens::domain::access::{AccessChange, Grant, NewRole, RoleChange, RoleName};
    use iam_tokens::domain::TokenName;
    use iam_tokens::service::CreateToken;

    let fleet = instances(3, shared, |_| {}).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let pro = RoleName::parse("pro").expect("role name");
    let grant = |text| Grant::parse(text).expect("grant");
    let role = NewRole {
        name: pro.clone(),
        description: None,
        permissions: [grant("projects.read")].into(),
    };
    a.tokens.create_role(role).await.expect("role created");
    let access = TokenAccess::new([pro.clone()].into(), Default::default());
    let name = TokenName::parse("plan").expect("name");
    let request = CreateToken::new(crate::helpers::uid(15), Privilege::Full, name).access(access);
    let created = a.tokens.create(request).await.outcome.expect("created");
    let key = &created.raw_api_key;
    for app in [b, c] {
        assert_eq!(
            may_write(app, key).await,
            403,
            "cached without projects.write"
        );
    }
    let change = RoleChange {
        add: [grant("projects.write")].into(),
        ..Default::default()
    };
    a.tokens
        .update_role(&pro, change)
        .await
        .expect("role updated");
    for (name, app) in [("B", b), ("C", c)] {
        let seen = eventually(Duration::from_secs(5), || async {
            may_write(app, key).await == 200
        })
        .await;
        assert!(seen.is_some(), "{name} saw the role change");
    }
    let id = a.token_id(&created.raw_public_id).await;
    let change = AccessChange {
        remove_roles: [pro].into(),
        ..Default::default()
    };
    a.tokens
        .change_access(id, change)
        .await
        .expect("access changed");
    for (name, app) in [("B", b), ("C", c)] {
        let seen = eventually(Duration::from_secs(5), || async {
            may_write(app, key).await == 403
        })
        .await;
        assert!(seen.is_some(), "{name} saw the key lose its role");
    }
}

/// Reads one field of a Redis hash (through the cluster when there is one).
async fn hash_field(shared: Shared, key: &str, field: &str) -> Option<String> {
    let get = redis::cmd("HGET").arg(key).arg(field).clone();
    match shared {
        Shared::Single => {
            let client = redis::Client::open(shared.url()).expect("url");
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            get.query_async(&mut connection).await.ok()?
        }
        Shared::Cluster => {
            let client = redis::cluster::ClusterClient::new(shared.nodes()).expect("nodes");
            let mut connection = client.get_async_connection().await.ok()?;
            get.query_async(&mut connection).await.ok()?
        }
    }
}

async fn a_success_on_one_instance_resets_the_failures_counted_on_another(shared: Shared) {
    let fleet = instances(3, shared, limited).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let good = a.create_token(14, Privilege::Full, "good").await;
    for failure in 0..9 {
        let answer = a.verify(&format!("bad-{failure}"), "full").await;
        assert_eq!(answer.status, 401, "failure {failure} on A");
    }
    let ip_state = format!("{}rl:{{127.0.0.1}}:consumption_rate_limiter", fleet.prefix);
    assert!(
        hash_field(shared, &ip_state, "tat").await.is_some(),
        "9 of 10 points spent"
    );
    // B hears of A's failures (the IP's first one is told), then serves a success.
    let told = eventually(Duration::from_secs(5), || async {
        metric(&metrics_text(b).await, "iam_redis_notices_received_total") >= 2.0
    })
    .await;
    assert!(told.is_some(), "B heard of the failures");
    assert_eq!(b.verify(&good.raw_api_key, "full").await.status, 200);
    let reset = eventually(Duration::from_secs(5), || async {
        hash_field(shared, &ip_state, "tat").await.is_none()
    })
    .await;
    assert!(reset.is_some(), "B's success reset the IP's count in Redis");
    for failure in 0..10 {
        let answer = c.verify(&format!("again-{failure}"), "full").await;
        assert_eq!(
            answer.status, 401,
            "a full allowance again: failure {failure} on C"
        );
    }
    assert_blocked(&c.verify("again-10", "full").await, 3600, "the 11th");
}

async fn a_change_made_on_one_instance_is_refused_by_the_others_at_once(shared: Shared) {
    let fleet = instances(3, shared, |_| {}).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let revoked = a.create_token(11, Privilege::Full, "revoked").await;
    let demoted = a.create_token(12, Privilege::Full, "demoted").await;
    for app in [b, c] {
        for key in [&revoked.raw_api_key, &demoted.raw_api_key] {
            assert_eq!(
                app.verify(key, "full").await.status,
                200,
                "cached on B and C"
            );
        }
    }
    let answer = a.tokens.revoke(&revoked.raw_api_key, Privilege::Full).await;
    assert!(answer.outcome.is_ok(), "revoked on A");
    let user = crate::helpers::uid(12);
    let answer = a
        .tokens
        .update_privilege(user, &demoted.raw_api_key, Privilege::Demo)
        .await;
    assert!(answer.outcome.is_ok(), "demoted on A");
    for (name, app) in [("B", b), ("C", c)] {
        let refused = eventually(Duration::from_secs(5), || async {
            app.verify(&revoked.raw_api_key, "full").await.status == 401
        })
        .await;
        assert!(
            refused.is_some(),
            "{name} refuses the revoked key (TTL is 1 h)"
        );
        let demoted_seen = eventually(Duration::from_secs(5), || async {
            app.verify(&demoted.raw_api_key, "full").await.status != 200
        })
        .await;
        assert!(demoted_seen.is_some(), "{name} sees the new privilege");
        let answer = app.verify(&demoted.raw_api_key, "demo").await;
        assert_eq!(answer.status, 200, "{name}: demo still verifies");
    }
}

async fn a_signed_request_replayed_to_another_instance_is_refused(shared: Shared) {
    let fleet = instances(3, shared, with_hmac).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    let token = a.create_token(13, Privilege::Full, "signed").await;
    let now = a.clock.now().timestamp_millis();
    let signing = Signing::new(now, "request-once");
    let first = a.send(signing.request(a, &token.raw_api_key)).await;
    assert_eq!(first.status, 200, "{first:?}");
    for (name, app) in [("B", b), ("C", c), ("A", a)] {
        let replay = app.send(signing.request(app, &token.raw_api_key)).await;
        assert_eq!(replay.status, 401, "{name}: {replay:?}");
        assert_eq!(replay.reason(), "Request id already used", "{name}");
    }
    let other = Signing::new(now, "request-twice");
    assert_eq!(
        c.send(other.request(c, &token.raw_api_key)).await.status,
        200
    );
}

async fn a_flood_from_a_banned_ip_costs_no_redis_call(shared: Shared) {
    // The health probe (a Redis call every `redis.check_interval`) would fall into the flood
    // when the machine is slow: it runs once an hour here.
    let fleet = instances(2, shared, |settings| {
        limited(settings);
        settings.redis.check_interval = Duration::from_secs(3600);
    })
    .await;
    let [a, b] = &fleet.apps[..] else {
        unreachable!()
    };
    failing_call(a).await;
    assert_blocked(&failing_call(a).await, 900, "blocked");
    assert_banned(&failing_call(a).await, "banned on A");
    let burst = b.limits.limiter("burst_limiter").expect("burst limiter");
    let told = eventually(Duration::from_secs(5), || async {
        burst.is_banned("127.0.0.1")
    })
    .await;
    assert!(told.is_some(), "B heard of the ban");
    let calls = metric(&metrics_text(b).await, "iam_redis_calls_total");
    for call in 0..50 {
        assert_banned(&failing_call(b).await, &format!("call {call} on B"));
    }
    assert_eq!(
        metric(&metrics_text(b).await, "iam_redis_calls_total"),
        calls,
        "answered from the local cache of bans"
    );
}

async fn a_ban_survives_a_flush_of_redis(shared: Shared) {
    let fleet = instances(2, shared, limited).await;
    let [a, b] = &fleet.apps[..] else {
        unreachable!()
    };
    failing_call(a).await;
    failing_call(b).await;
    assert_banned(&failing_call(a).await, "banned");
    let burst = b.limits.limiter("burst_limiter").expect("burst limiter");
    let told = eventually(Duration::from_secs(5), || async {
        burst.is_banned("127.0.0.1")
    })
    .await;
    assert!(told.is_some(), "B heard of the ban");
    fleet.flush_redis();
    assert_banned(&failing_call(b).await, "B keeps the ban it knows");
    let c = fleet.another().await;
    assert_banned(
        &failing_call(&c).await,
        "a new instance loads it from the store",
    );
    assert_eq!(c.ban_rows().await.len(), 1);
}

async fn a_lifted_ban_is_lifted_on_every_instance(shared: Shared) {
    let fleet = instances(3, shared, limited).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    failing_call(a).await;
    failing_call(b).await;
    assert_banned(&failing_call(c).await, "banned");
    assert_banned(&failing_call(b).await, "known on B");
    let actor = iam_tokens::domain::Actor::cli(None);
    let lifted = a.limits.lift("burst_limiter", "127.0.0.1", actor).await;
    assert!(lifted.expect("lift"));
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        let burst = app.limits.limiter("burst_limiter").expect("burst limiter");
        let lifted = eventually(Duration::from_secs(5), || async {
            !burst.is_banned("127.0.0.1")
        })
        .await;
        assert!(lifted.is_some(), "{name}: the lift reached it");
    }
    assert_eq!(
        failing_call(b).await.status,
        400,
        "a fresh start in Redis too"
    );
    assert_blocked(&failing_call(c).await, 900, "and counted as one again");
    assert!(a.ban_rows().await.is_empty());
}

// ---- Redis goes away (single server behind a proxy) ----

pub(crate) async fn behind_proxy(configure: impl Fn(&mut Settings)) -> (Instances, Proxy) {
    let proxy = Proxy::start(6379).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let fleet = instances_at(3, Shared::Single, Some(url), configure).await;
    (fleet, proxy)
}

pub(crate) async fn redis_state(app: &TestApp) -> Value {
    ready(app).await.1["redis"].clone()
}

#[tokio::test]
async fn with_redis_down_every_instance_serves_on_its_own_then_rejoins_and_drops_its_cache() {
    let (fleet, proxy) = behind_proxy(limited).await;
    let [a, b, c] = &fleet.apps[..] else {
        unreachable!()
    };
    for app in [a, b, c] {
        assert_eq!(
            ready(app).await,
            (
                200,
                json!({"status": "ready", "database": "up", "redis": "up"})
            )
        );
    }
    let kept = a.create_token(21, Privilege::Full, "kept").await;
    let revoked = a.create_token(22, Privilege::Full, "revoked").await;
    for key in [&kept.raw_api_key, &revoked.raw_api_key] {
        assert_eq!(b.verify(key, "full").await.status, 200, "cached on B");
    }

    proxy.down().await;
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        let down = eventually(Duration::from_secs(5), || async {
            redis_state(app).await == json!("down")
        })
        .await;
        assert!(down.is_some(), "{name} reports Redis down");
        assert_eq!(
            ready(app).await,
            (
                200,
                json!({"status": "ready", "database": "up", "redis": "down"})
            ),
            "{name}: still ready (redis.required_for_ready is false)"
        );
        assert_eq!(
            metric(&metrics_text(app).await, "iam_redis_up"),
            0.0,
            "{name}"
        );
    }
    // Verification goes on: cached keys, and keys read from the store.
    assert_eq!(b.verify(&kept.raw_api_key, "full").await.status, 200);
    let fresh = c.create_token(23, Privilege::Full, "fresh").await;
    assert_eq!(c.verify(&fresh.raw_api_key, "full").await.status, 200);
    // The limiters fall back to each instance's own state: one call passes on each.
    for (name, app) in [("A", a), ("B", b)] {
        let started = Instant::now();
        assert_eq!(failing_call(app).await.status, 400, "{name}: its own burst");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: no wait on Redis"
        );
        assert_blocked(&failing_call(app).await, 900, name);
    }
    assert!(metric(&metrics_text(a).await, "iam_redis_fallbacks_total") >= 1.0);
    // A revocation while Redis is down cannot be published yet.
    let answer = a.tokens.revoke(&revoked.raw_api_key, Privilege::Full).await;
    assert!(answer.outcome.is_ok());
    assert_eq!(
        b.verify(&revoked.raw_api_key, "full").await.status,
        200,
        "B cannot know yet"
    );

    proxy.up();
    for (name, app) in [("A", a), ("B", b), ("C", c)] {
        let back = eventually(Duration::from_secs(10), || async {
            redis_state(app).await == json!("up")
        })
        .await;
        assert!(back.is_some(), "{name} reports Redis up again");
    }
    let refused = eventually(Duration::from_secs(5), || async {
        b.verify(&revoked.raw_api_key, "full").await.status == 401
    })
    .await;
    assert!(refused.is_some(), "B dropped its cache on rejoining");
    assert_eq!(b.verify(&kept.raw_api_key, "full").await.status, 200);
    // Shared again: C's first call passes, its second is blocked by the shared union... which
    // A and B never touched in Redis while it was down.
    assert_eq!(failing_call(c).await.status, 400);
    assert_blocked(&failing_call(a).await, 900, "A, shared again");
}

#[tokio::test]
async fn a_silent_redis_costs_a_request_at_most_the_timeout_and_readiness_can_require_it() {
    let (fleet, proxy) = behind_proxy(|settings| {
        limited(settings);
        settings.redis.required_for_ready = true;
        settings.redis.timeout = Duration::from_millis(200);
    })
    .await;
    let a = &fleet.apps[0];
    assert_eq!(ready(a).await.0, 200);
    proxy.silent();
    let started = Instant::now();
    let answer = failing_call(a).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 400, "decided on the instance's own state");
    assert!(
        took < Duration::from_secs(2),
        "bounded by redis.timeout, took {took:?}"
    );
    let down = eventually(Duration::from_secs(5), || async { ready(a).await.0 == 503 }).await;
    assert!(down.is_some());
    assert_eq!(
        ready(a).await,
        (
            503,
            json!({"status": "unavailable", "database": "up", "redis": "down"})
        )
    );
    proxy.up();
    let back = eventually(Duration::from_secs(10), || async {
        ready(a).await.0 == 200
    })
    .await;
    assert!(back.is_some(), "ready again once Redis answers");
}

#[tokio::test]
async fn without_redis_ready_says_nothing_of_it_and_no_redis_series_exist() {
    let app = crate::helpers::spawn_app().await;
    assert_eq!(
        ready(&app).await,
        (200, json!({"status": "ready", "database": "up"}))
    );
    assert!(!metrics_text(&app).await.contains("iam_redis"));
}

// ---- One rule, two engines ----

/// The script in Redis and `Limiter::check` in memory, fed the same calls at the same times
/// (an injected clock moved by pseudo-random steps), answer the same decision every time:
/// allowed, blocked with the same time left, banned at the same strike.
#[tokio::test]
async fn the_script_in_redis_decides_as_the_limiter_in_memory_does() {
    use iam_tokens::limits::{Decision, SharedState};
    use iam_tokens::limits::{GovernorClock, Limiter, LimiterConfig, NewBans, SharedAnswer};
    use std::num::NonZeroU32;

    for shared in [Shared::Single, Shared::Cluster] {
        let clock = std::sync::Arc::new(iam_tokens::ManualClock::starting_now());
        let settings = iam_tokens::config::RedisSettings {
            url: Secret::new(shared.url()),
            cluster: shared == Shared::Cluster,
            key_prefix: format!("iam_test_{}:", uuid::Uuid::new_v4().simple()),
            ..Default::default()
        };
        let redis = iam_tokens::shared::Redis::open(
            &settings,
            Default::default(),
            std::sync::Arc::new(iam_tokens::SystemClock),
        )
        .expect("url");
        redis.probe().await.expect("Redis answers");
        redis.health().recovered();
        let state = SharedState::new(redis.clone());
        let config = LimiterConfig {
            points: NonZeroU32::new(4).unwrap(),
            duration: Duration::from_secs(1),
            block_duration: Duration::from_millis(1500),
        };
        let governor_clock = GovernorClock(clock.clone());
        let hasher = std::collections::hash_map::RandomState::new();
        let limiter = Limiter::new(
            "parity",
            config,
            3,
            governor_clock,
            hasher,
            NewBans::default(),
        );
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut blocked, mut banned) = (0, 0);
        for step in 0..1_500 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            clock.advance(Duration::from_millis(seed % 120));
            let key = ["k1", "k2"][(seed >> 32) as usize % 2];
            let local = limiter.check(key);
            let now_ms = iam_tokens::Clock::now(&*clock).timestamp_millis();
            let answers = state.decide(&[&limiter], key, now_ms, 3).await;
            let in_redis = match answers.expect("decided in Redis")[0] {
                SharedAnswer::Allowed => Decision::Allowed,
                SharedAnswer::Blocked { left_ms } => Decision::Limited {
                    retry_after: Duration::from_millis(left_ms),
                },
                SharedAnswer::Banned | SharedAnswer::BannedNow => Decision::Banned,
            };
            assert_eq!(local, in_redis, "{shared:?}, step {step}, key {key}");
            match local {
                Decision::Limited { .. } => blocked += 1,
                Decision::Banned => {
                    banned += 1;
                    limiter.lift(key);
                    state.lift("parity", key).await.expect("lifted");
                }
                Decision::Allowed => {}
            }
        }
        assert!(
            blocked > 50 && banned > 10,
            "{shared:?}: {blocked} blocked, {banned} banned"
        );
        drop(Instances {
            apps: Vec::new(),
            prefix: settings.key_prefix.clone(),
            shared,
        });
    }
}

// ---- The command line, with Redis ----

#[tokio::test]
async fn a_revocation_and_a_lift_made_with_the_command_line_reach_the_running_instances() {
    let fleet = instances(2, Shared::Single, limited).await;
    let [a, b] = &fleet.apps[..] else {
        unreachable!()
    };
    let env = [
        ("IAM__DATABASE__URL", a.database_url()),
        ("IAM__REDIS__URL", Shared::Single.url()),
        ("IAM__REDIS__KEY_PREFIX", fleet.prefix.clone()),
    ];
    let token = a.create_token(31, Privilege::Full, "cli").await;
    assert_eq!(
        b.verify(&token.raw_api_key, "full").await.status,
        200,
        "cached on B"
    );
    let output = crate::cli::run(&["token", "revoke", &token.raw_api_key], &env).await;
    assert!(output.status.success(), "{output:?}");
    let refused = eventually(Duration::from_secs(5), || async {
        b.verify(&token.raw_api_key, "full").await.status == 401
    })
    .await;
    assert!(refused.is_some(), "B heard the command line's revocation");

    failing_call(a).await;
    assert_blocked(&failing_call(b).await, 900, "shared burst");
    assert_banned(&failing_call(a).await, "banned");
    let output = crate::cli::run(&["bans", "lift", "burst_limiter", "127.0.0.1"], &env).await;
    assert!(output.status.success(), "{output:?}");
    for (name, app) in [("A", a), ("B", b)] {
        let burst = app.limits.limiter("burst_limiter").expect("burst limiter");
        let lifted = eventually(Duration::from_secs(5), || async {
            !burst.is_banned("127.0.0.1")
        })
        .await;
        assert!(lifted.is_some(), "{name}: the lift reached it");
    }
    assert_eq!(failing_call(b).await.status, 400, "lifted in Redis too");
}

#[tokio::test]
async fn with_redis_down_replay_ids_are_remembered_by_each_instance_alone() {
    let (fleet, proxy) = behind_proxy(with_hmac).await;
    let [a, b, _] = &fleet.apps[..] else {
        unreachable!()
    };
    let token = a.create_token(41, Privilege::Full, "signed").await;
    proxy.down().await;
    let down = eventually(Duration::from_secs(5), || async {
        redis_state(a).await == json!("down") && redis_state(b).await == json!("down")
    })
    .await;
    assert!(down.is_some());
    let now = a.clock.now().timestamp_millis();
    let signing = Signing::new(now, "during-the-outage");
    assert_eq!(
        a.send(signing.request(a, &token.raw_api_key)).await.status,
        200
    );
    let replay = a.send(signing.request(a, &token.raw_api_key)).await;
    assert_eq!(replay.reason(), "Request id already used", "A's own window");
    let elsewhere = b.send(signing.request(b, &token.raw_api_key)).await;
    assert_eq!(
        elsewhere.status, 200,
        "degraded: B cannot know what A saw while Redis is down"
    );
    proxy.up();
    let back = eventually(Duration::from_secs(10), || async {
        redis_state(a).await == json!("up") && redis_state(b).await == json!("up")
    })
    .await;
    assert!(back.is_some());
    let shared_again = Signing::new(now, "after-the-outage");
    assert_eq!(
        b.send(shared_again.request(b, &token.raw_api_key))
            .await
            .status,
        200
    );
    let replay = a.send(shared_again.request(a, &token.raw_api_key)).await;
    assert_eq!(replay.reason(), "Request id already used", "shared again");
}
