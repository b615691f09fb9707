//! Permanent bans (SPEC A8): stored in `rate_limit_bans`, loaded at startup, picked up by running
//! instances within `rate_limiters.ban_refresh`, listed and lifted with `iam-tokens bans`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use iam_tokens::domain::Privilege;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::helpers::{
    assert_banned, assert_blocked, spawn_limited_app, spawn_on, trust_local_proxy, Answer, TestApp,
};

const USER: u64 = 42;
const REASON: &str = "rejected again while blocked";

type BanRow = (String, String, String, String);

/// Another instance on `app`'s database, with the same settings.
async fn instance_beside(app: &TestApp) -> TestApp {
    spawn_on(app.settings.clone(), app.db_name.clone()).await
}

/// A management call that passes the union and then fails body validation (400).
async fn failing_call(app: &TestApp) -> Answer {
    app.manage_post("metadata", USER, &json!({})).await
}

/// Bans 127.0.0.1 in the burst limiter (a failure, a block, a strike during the block) and
/// returns the service's time of the ban.
async fn ban_the_ip(app: &TestApp) -> String {
    assert_eq!(failing_call(app).await.status, 400, "first call");
    assert_blocked(&failing_call(app).await, 900, "second call");
    let banned_at = app.clock_iso();
    assert_banned(&failing_call(app).await, "third call");
    banned_at
}

fn row(limiter: &str, key: &str, at: &str) -> BanRow {
    (limiter.into(), key.into(), REASON.into(), at.into())
}

/// Makes a failing call to `app` until `done` holds for the answer. The ban refresh runs on
/// real time, so this is the one place these tests wait: at most 5 s, polling every 50 ms.
/// Each poll first moves `app`'s clock a minute so that its own limiters never refuse a poll.
async fn poll_until(app: &TestApp, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        app.clock.advance(Duration::from_secs(60));
        let answer = failing_call(app).await;
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `iam-tokens <args>` on `app`'s database, with no inherited `IAM_*` or `RUST_LOG`
/// variables and from a directory without a `config.toml`.
async fn cli(app: &TestApp, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
    command.args(args).current_dir(env!("CARGO_TARGET_TMPDIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IAM") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command.env("IAM__DATABASE__URL", app.database_url());
    let output = tokio::task::spawn_blocking(move || command.output());
    output
        .await
        .expect("blocking task")
        .expect("the binary runs")
}

/// The standard output of a command that must have succeeded.
fn stdout_of(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

async fn bans_list(app: &TestApp) -> Value {
    let stdout = stdout_of(&cli(app, &["bans", "list", "--json"]).await);
    serde_json::from_str(&stdout).expect("a JSON array")
}

async fn lift(app: &TestApp, limiter: &str, key: &str) -> Output {
    cli(app, &["bans", "lift", limiter, key]).await
}

#[tokio::test]
async fn a_ban_is_stored_with_its_limiter_key_reason_and_time() {
    let app = spawn_limited_app(|_| {}).await;
    // The stored time is the service's clock, not the wall clock.
    app.clock.advance(Duration::from_secs(3 * 86_400));
    let banned_at = ban_the_ip(&app).await;
    let expected = row("burst_limiter", "127.0.0.1", &banned_at);
    assert_eq!(app.ban_rows().await, [expected]);
}

/// `bans list` prints a table for people; `--json` keeps scripts working.
#[tokio::test]
async fn bans_list_prints_a_table_unless_asked_for_json() {
    let app = spawn_limited_app(|_| {}).await;
    let empty = stdout_of(&cli(&app, &["bans", "list"]).await);
    assert_eq!(empty, "LIMITER  KEY  REASON  CREATED\n");
    let banned_at = ban_the_ip(&app).await;
    let table = stdout_of(&cli(&app, &["bans", "list"]).await);
    let expected = format!(
        "LIMITER        KEY        REASON                        CREATED\n\
         burst_limiter  127.0.0.1  {REASON}  {banned_at}\n"
    );
    assert_eq!(table, expected);
    assert_eq!(bans_list(&app).await[0]["key"], "127.0.0.1");
}

#[tokio::test]
async fn an_operation_ban_is_keyed_by_the_forwarded_client_ip_and_the_user() {
    let app = spawn_limited_app(trust_local_proxy).await;
    let created = app.create_token(USER, Privilege::Full, "meta").await;
    let id = app.token_id(&created.raw_public_id).await;
    let public_id = created.raw_public_id;
    let body = json!({"tokenId": id, "publicIdentifier": public_id, "name": "meta"});
    let metadata = || {
        let request = app.manage_request(Method::POST, "metadata", USER);
        app.send(request.header("x-forwarded-for", "203.0.113.7").json(&body))
    };
    for call in 1..=20 {
        assert_eq!(metadata().await.status, 200, "call {call}");
    }
    assert_blocked(&metadata().await, 1800, "call 21");
    app.clock.advance(Duration::from_secs(1));
    let banned_at = app.clock_iso();
    assert_banned(&metadata().await, "a strike during the block");
    let expected = row("get_metadata_token_limiter", "203.0.113.7_42", &banned_at);
    assert_eq!(app.ban_rows().await, [expected]);
}

#[tokio::test]
async fn a_consumption_ban_stores_a_digest_of_the_presented_key_never_the_key() {
    let app = spawn_limited_app(|_| {}).await;
    let created = app.create_token(USER, Privilege::Full, "machine").await;
    let key = created.raw_api_key;
    for failure in 1..=10 {
        let answer = app.verify(&key, "demo").await;
        assert_eq!(answer.status, 401, "failure {failure}");
    }
    assert_blocked(&app.verify(&key, "demo").await, 3600, "failure 11");
    let banned_at = app.clock_iso();
    assert_banned(
        &app.verify(&key, "demo").await,
        "a failure during the block",
    );
    let digest = format!("key:{}", hex::encode(&Sha256::digest(&key)[..8]));
    let rows = app.ban_rows().await;
    let expected = [
        row("consumption_rate_limiter", "127.0.0.1", &banned_at),
        row("consumption_rate_limiter", &digest, &banned_at),
    ];
    assert_eq!(rows, expected);
    let random_part = &key[4..20];
    assert!(rows.iter().all(|r| !r.1.contains(random_part)), "{rows:?}");
}

#[tokio::test]
async fn a_ban_survives_a_restart() {
    let first = spawn_limited_app(|_| {}).await;
    ban_the_ip(&first).await;
    let restarted = instance_beside(&first).await;
    assert_banned(
        &failing_call(&restarted).await,
        "first call after the restart",
    );
    let listed = restarted.manage_get("list-metadata", USER).await;
    assert_eq!(
        listed.status, 200,
        "only the banned key is refused: {listed:?}"
    );
}

#[tokio::test]
async fn a_ban_made_by_one_instance_reaches_a_running_other_within_ban_refresh() {
    let first =
        spawn_limited_app(|s| s.rate_limiters.ban_refresh = Duration::from_millis(200)).await;
    let second = instance_beside(&first).await;
    assert_eq!(failing_call(&second).await.status, 400, "not banned yet");
    ban_the_ip(&first).await;
    let seen = poll_until(&second, |answer| answer.status == 429).await;
    assert_banned(&seen, "the second instance after its refresh");
}

#[tokio::test]
async fn bans_list_prints_every_stored_ban_as_json() {
    let app = spawn_limited_app(|_| {}).await;
    assert_eq!(bans_list(&app).await, json!([]));
    let banned_at = ban_the_ip(&app).await;
    let expected = json!([{
        "limiter": "burst_limiter",
        "key": "127.0.0.1",
        "reason": REASON,
        "createdAt": banned_at,
    }]);
    assert_eq!(bans_list(&app).await, expected);
}

#[tokio::test]
async fn bans_lift_removes_the_ban_so_a_fresh_instance_lets_the_key_through() {
    let app = spawn_limited_app(|_| {}).await;
    ban_the_ip(&app).await;
    let lifted = stdout_of(&lift(&app, "burst_limiter", "127.0.0.1").await);
    assert_eq!(lifted, "lifted burst_limiter 127.0.0.1\n");
    assert!(app.ban_rows().await.is_empty());
    assert_eq!(bans_list(&app).await, json!([]));
    let fresh = instance_beside(&app).await;
    let answer = failing_call(&fresh).await;
    assert_eq!(
        answer.status, 400,
        "the key is let through again: {answer:?}"
    );
}

#[tokio::test]
async fn a_lift_reaches_the_running_instance_within_ban_refresh() {
    let app = spawn_limited_app(|s| s.rate_limiters.ban_refresh = Duration::from_millis(200)).await;
    ban_the_ip(&app).await;
    stdout_of(&lift(&app, "burst_limiter", "127.0.0.1").await);
    let answer = poll_until(&app, |answer| answer.status != 429).await;
    assert_eq!(
        answer.status, 400,
        "the lifted key is let through: {answer:?}"
    );
}

#[tokio::test]
async fn lifting_a_ban_that_does_not_exist_fails_and_changes_nothing() {
    let app = spawn_limited_app(|_| {}).await;
    let banned_at = ban_the_ip(&app).await;
    let output = lift(&app, "slow_limiter", "127.0.0.1").await;
    assert!(
        !output.status.success(),
        "another limiter's ban cannot be lifted"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = "no ban of 127.0.0.1 by slow_limiter";
    assert!(stderr.contains(message), "{stderr}");
    let expected = row("burst_limiter", "127.0.0.1", &banned_at);
    assert_eq!(app.ban_rows().await, [expected]);
    assert_banned(&failing_call(&app).await, "still banned");
}
