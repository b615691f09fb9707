//! Batched counting (SPEC A6 step 6): uses are counted in memory and written in batches, and
//! still exactly: none lost or doubled under concurrency, none doubled when a flush fails or
//! its answer is lost, none lost on a clean shutdown (SIGTERM).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use iam_tokens::domain::Privilege;
use serde_json::{json, Value};

use crate::helpers::{envelope_json, spawn_app, spawn_app_with, uid, Answer, TestApp};
use crate::verify_cache::{cache, counted_service, ApplyFailure};

/// Batched counting whose timer never fires during a test: tests flush when they mean to.
async fn spawn_batching_app() -> TestApp {
    spawn_app_with(|s| s.usage.flush_interval = Duration::from_secs(3600)).await
}

/// A `full` token of user 7 named `ci`: its raw key, id and creation time.
async fn token(app: &TestApp) -> (String, u64, String) {
    let created = app.create_token(7, Privilege::Full, "ci").await;
    let id = app.token_id(&created.raw_public_id).await;
    (created.raw_api_key, id, app.clock_iso())
}

/// The verify data the contract promises, as JSON.
fn verified(id: u64, created_at: &str, last_used: &str, usage_count: u64) -> Value {
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

/// `(usage_count, last_used as ISO)` of the stored row.
async fn stored_usage(app: &TestApp, id: u64) -> (u64, Option<String>) {
    let (count, last_used): (u64, Option<chrono::NaiveDateTime>) = app
        .query_one(
            "SELECT usage_count, last_used FROM api_tokens WHERE id = ?",
            (id,),
        )
        .await;
    let iso = |at: chrono::NaiveDateTime| iam_tokens::envelope::iso(&at.and_utc());
    (count, last_used.map(iso))
}

#[tokio::test]
async fn ten_thousand_verifications_from_64_clients_are_each_counted_exactly_once() {
    const TOTAL: usize = 10_000;
    const CLIENTS: usize = 64;
    let app = spawn_batching_app().await;
    let (key, id, _) = token(&app).await;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let uses = TOTAL / CLIENTS + usize::from(client < TOTAL % CLIENTS);
        let http = app.client.clone();
        let url = app.url("/api/public/verify?privilege=full");
        let key = key.clone();
        clients.spawn(async move {
            let mut counts = Vec::with_capacity(uses);
            for _ in 0..uses {
                let sent = http.get(&url).header("x-api-key", &key).send().await;
                let answer = Answer::from(sent.expect("request")).await;
                assert_eq!(answer.status, 200, "{answer:?}");
                counts.push(answer.data()["usageCount"].as_u64().expect("usageCount"));
            }
            counts
        });
    }
    let mut counts: Vec<u64> = clients.join_all().await.into_iter().flatten().collect();
    counts.sort_unstable();
    let misplaced = counts.iter().zip(1..).filter(|(n, i)| **n != *i).count();
    assert!(
        counts.len() == TOTAL && misplaced == 0,
        "answered counts are not exactly 1..={TOTAL}: {} answers, {misplaced} misplaced",
        counts.len()
    );
    assert_eq!(app.usage_and_valid(id).await, (0, true), "not written yet");
    assert_eq!(app.tokens.unwritten_uses(), TOTAL as u64);

    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(app.usage_and_valid(id).await, (TOTAL as u64, true));
    assert_eq!(app.tokens.unwritten_uses(), 0);
}

#[tokio::test]
async fn answers_and_metadata_include_uses_not_yet_written() {
    let app = spawn_batching_app().await;
    let (key, id, created_at) = token(&app).await;
    for n in 1..=3 {
        let answer = app.verify(&key, "full").await;
        let expected = verified(id, &created_at, &app.clock_iso(), n);
        assert_eq!(answer.body, app.success_now(expected), "use {n}");
    }
    app.clock.advance(Duration::from_secs(1));
    let answer = app.verify(&key, "full").await;
    let fourth = verified(id, &created_at, &app.clock_iso(), 4);
    assert_eq!(answer.body, app.success_now(fourth.clone()));
    let snapshot = app.tokens.metadata_snapshot(&key, Privilege::Full).await;
    assert_eq!(envelope_json(&snapshot)["data"]["tokenMeta"], fourth);
    assert_eq!(
        stored_usage(&app, id).await,
        (0, None),
        "nothing written yet"
    );

    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(stored_usage(&app, id).await, (4, Some(app.clock_iso())));
    let answer = app.verify(&key, "full").await;
    assert_eq!(
        answer.data()["usageCount"],
        5,
        "a written use is not counted again"
    );
    // Past the cache TTL the row is read again: 4 written, 1 pending, this one.
    app.clock.advance(Duration::from_secs(6));
    let answer = app.verify(&key, "full").await;
    let sixth = verified(id, &created_at, &app.clock_iso(), 6);
    assert_eq!(answer.body, app.success_now(sixth));
    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(stored_usage(&app, id).await, (6, Some(app.clock_iso())));
}

#[tokio::test]
async fn a_count_answered_after_an_idle_flush_includes_every_earlier_use() {
    let app = spawn_batching_app().await;
    let (key, id, _) = token(&app).await;
    assert_eq!(app.verify(&key, "full").await.data()["usageCount"], 1);
    // Past the 5 s TTL a non-counting read reloads the row (still 0: the use is pending).
    app.clock.advance(Duration::from_secs(6));
    let snapshot = app.tokens.metadata_snapshot(&key, Privilege::Full).await;
    assert_eq!(
        envelope_json(&snapshot)["data"]["tokenMeta"]["usageCount"],
        1
    );
    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(app.usage_and_valid(id).await, (1, true));

    app.clock.advance(Duration::from_secs(1));
    let answer = app.verify(&key, "full").await;
    assert_eq!(answer.data()["usageCount"], 2, "the second use: {answer:?}");
    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(app.usage_and_valid(id).await, (2, true));
}

/// Seven uses, two flushes failing with `failure`, three more uses, one flush that works:
/// the row must read `written_by_failures` after the failures and exactly 10 at the end.
async fn flushes_fail_then_recover(failure: ApplyFailure, written_by_failures: u64) {
    let c = counted_service(
        Some(cache(Duration::from_secs(3600), Duration::ZERO, 100)),
        true,
    )
    .await;
    let (key, _, id) = c.token(uid(7), None).await;
    for _ in 0..7 {
        assert_eq!(c.verify(&key, Privilege::Full).await["ok"], true);
    }
    c.store.fail_apply(failure);
    for attempt in 1..=2 {
        assert!(
            c.service.flush_usage().await.is_err(),
            "flush {attempt} fails"
        );
        let row = c.app.usage_and_valid(id).await;
        assert_eq!(
            row,
            (written_by_failures, true),
            "after failed flush {attempt}"
        );
        assert_eq!(
            c.service.unwritten_uses(),
            7,
            "not confirmed, so still unwritten"
        );
    }
    for n in 8..=10 {
        let answer = c.verify(&key, Privilege::Full).await;
        assert_eq!(
            answer["data"]["usageCount"], n,
            "answers count unconfirmed uses"
        );
    }
    c.store.fail_apply(ApplyFailure::Never);
    c.service.flush_usage().await.expect("flush after recovery");
    assert_eq!(
        c.app.usage_and_valid(id).await,
        (10, true),
        "exact, never doubled"
    );
    assert_eq!(c.service.unwritten_uses(), 0);
    c.service.flush_usage().await.expect("an empty flush");
    assert_eq!(c.app.usage_and_valid(id).await, (10, true));
    let writes = c.store.calls.apply_usage.load(Ordering::SeqCst);
    assert_eq!(
        writes, 4,
        "two failed attempts, then the retried batch and the new one"
    );
}

#[tokio::test]
async fn a_flush_whose_answer_was_lost_is_retried_and_never_counted_twice() {
    flushes_fail_then_recover(ApplyFailure::AfterWriting, 7).await;
}

#[tokio::test]
async fn a_flush_that_never_reached_the_database_is_retried_by_the_next_one() {
    flushes_fail_then_recover(ApplyFailure::BeforeWriting, 0).await;
}

/// `iam-tokens serve`, started as an operator would, logging to a file.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) address: String,
    log: PathBuf,
}

impl Served {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log without its INFO lines.
    fn warnings(&self) -> String {
        let log = self.log();
        let kept: Vec<&str> = log.lines().filter(|l| !l.contains(" INFO")).collect();
        kept.join("\n")
    }

    /// Waits (bounded) for the process to exit; panics with its log if it does not.
    async fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            // Bounded poll: a real process is shutting down.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The log explains a failure; after a pass it is litter.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Starts the binary on a free port over `app`'s database, batching counts and writing them
/// every `flush` (`1h`: only its shutdown does), and waits (bounded) until `/health` answers.
pub(crate) async fn serve(app: &TestApp, flush: &str) -> Served {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address").port()
    };
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", app.db_name));
    let mut command = Command::new(env!("CARGO_BIN_EXE_iam-tokens"));
    command
        .arg("serve")
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IAM") {
            command.env_remove(name);
        }
    }
    command
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("IAM__DATABASE__URL", app.database_url())
        .env("IAM__SERVER__PORT", port.to_string())
        .env("IAM__USAGE__FLUSH_INTERVAL", flush)
        .env("IAM__RATE_LIMITERS__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut served = Served {
        child: command.spawn().expect("the binary starts"),
        address: format!("http://127.0.0.1:{port}"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = app.client.get(format!("{}/health", served.address)).send();
        if health.await.is_ok_and(|r| r.status() == 200) {
            return served;
        }
        if let Some(status) = served.child.try_wait().expect("child status") {
            panic!("exited early ({status}):\n{}", served.log());
        }
        assert!(
            Instant::now() < deadline,
            "not up after 10 s:\n{}",
            served.log()
        );
        // Bounded poll: a real process is binding its port.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigterm_writes_every_counted_use_before_the_process_exits() {
    let app = spawn_app().await;
    let (key, id, _) = token(&app).await;
    let mut served = serve(&app, "1h").await;
    let url = format!("{}/api/public/verify?privilege=full", served.address);
    for n in 1..=50 {
        let sent = app.client.get(&url).header("x-api-key", &key).send().await;
        let answer = Answer::from(sent.expect("request")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.data()["usageCount"], n);
    }
    assert_eq!(
        app.usage_and_valid(id).await,
        (0, true),
        "batched, not written yet"
    );

    let pid = served.child.id().to_string();
    let kill = Command::new("kill").arg("-TERM").arg(&pid).status();
    assert!(kill.expect("kill runs").success(), "SIGTERM sent");
    let status = served.exit_status().await;
    assert!(
        status.success(),
        "clean exit, got {status}:\n{}",
        served.log()
    );
    let row = app.usage_and_valid(id).await;
    assert_eq!(
        row,
        (50, true),
        "flushed on shutdown:\n{}",
        served.warnings()
    );
}

/// Every read shows the uses counted but not yet written, as verify answers do: the BFF's
/// list, the snapshot, the admin read and the admin listing agree right after the uses.
#[tokio::test]
async fn every_read_shows_uses_not_yet_written() {
    let app = spawn_app_with(|s| {
        s.usage.flush_interval = Duration::from_secs(3600);
        crate::helpers::ops_admin(s);
    })
    .await;
    let (key, id, created_at) = token(&app).await;
    app.clock.advance(Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(app.verify(&key, "full").await.status, 200);
    }
    let used_at = app.clock_iso();
    assert_eq!(
        stored_usage(&app, id).await,
        (0, None),
        "nothing written yet"
    );

    let listed = app.manage_get("list-metadata", 7).await;
    let row = &listed.data()["tokenList"][0];
    assert_eq!(
        (&row["usage_count"], &row["last_used"]),
        (&json!(3), &json!(used_at)),
        "list-metadata: {listed:?}"
    );
    let public_id: String = app
        .query_one(
            "SELECT public_identifier FROM api_tokens WHERE id = ?",
            (id,),
        )
        .await;
    let body = json!({"tokenId": id, "publicIdentifier": public_id, "name": "ci"});
    let snapshot = app.manage_post("metadata", 7, &body).await;
    assert_eq!(
        snapshot.data()["tokenMeta"],
        verified(id, &created_at, &used_at, 3),
        "metadata: {snapshot:?}"
    );
    let admin = app.admin_get(&format!("/tokens/{id}")).await;
    assert_eq!(
        (&admin.body["usageCount"], &admin.body["lastUsed"]),
        (&json!(3), &json!(used_at)),
        "admin read: {admin:?}"
    );
    let page = app.admin_get("/users/7/tokens").await;
    assert_eq!(
        (
            &page.body["tokens"][0]["usageCount"],
            &page.body["tokens"][0]["lastUsed"]
        ),
        (&json!(3), &json!(used_at)),
        "admin list: {page:?}"
    );

    app.tokens.flush_usage().await.expect("flush");
    assert_eq!(stored_usage(&app, id).await, (3, Some(used_at.clone())));
    let listed = app.manage_get("list-metadata", 7).await;
    assert_eq!(
        listed.data()["tokenList"][0]["usage_count"],
        3,
        "not counted twice once written"
    );
}
