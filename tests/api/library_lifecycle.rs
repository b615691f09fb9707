//! The library as a new user of the crate finds it: one constructor from `Settings` (and one for
//! the embedded store), a service that writes its own batched counts and flushes them on
//! `shutdown`, a loud warning when dropped with counts unwritten, and riavzon's string-taking
//! `privateActionManager`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iam_tokens::domain::{Privilege, TokenName};
use iam_tokens::service::{CreateToken, ManagerAction, ServiceOptions, VerifyOptions};
use iam_tokens::{Settings, TokenService};

use crate::helpers::{envelope_json, failure_json, spawn_app, uid, TestApp};

/// The test app's settings, with batched counting every `flush` (its own app never flushes).
fn library_settings(app: &TestApp, flush: Duration) -> Settings {
    let mut settings = app.settings.clone();
    settings.usage.flush_interval = flush;
    settings
}

/// A `full` token for user 7 made through `service`: its raw key and id.
async fn token_of(service: &TokenService) -> (String, u64) {
    let name = TokenName::parse("lib").expect("name");
    let created = service
        .create(CreateToken::new(uid(7), Privilege::Full, name))
        .await;
    let created = created.outcome.expect("created");
    (created.raw_api_key, created.token_id)
}

async fn verify_times(service: &TokenService, key: &str, times: u64) {
    for n in 1..=times {
        let answer = service
            .verify(key, VerifyOptions::new(Privilege::Full, None))
            .await;
        assert_eq!(answer.data().map(|t| t.usage_count), Some(n), "{answer:?}");
    }
}

#[tokio::test]
async fn a_service_from_settings_writes_its_batched_counts_by_itself() {
    let app = spawn_app().await;
    let settings = library_settings(&app, Duration::from_millis(50));
    let service = TokenService::from_settings(&settings).await.expect("built");
    let (key, id) = token_of(&service).await;
    verify_times(&service, &key, 3).await;
    // Its own background task writes them; nobody calls flush_usage.
    let deadline = Instant::now() + Duration::from_secs(10);
    // The flush commits, then marks its uses written: wait for both (the row can show them a
    // moment before the service has noted that it does).
    while (app.usage_and_valid(id).await.0 < 3 || service.unwritten_uses() > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.usage_and_valid(id).await, (3, true));
    assert_eq!(service.unwritten_uses(), 0);
    service.shutdown().await;
}

#[tokio::test]
async fn shutdown_writes_every_counted_use() {
    let app = spawn_app().await;
    let settings = library_settings(&app, Duration::from_secs(3600));
    let service = TokenService::from_settings(&settings).await.expect("built");
    let (key, id) = token_of(&service).await;
    verify_times(&service, &key, 5).await;
    assert_eq!(
        app.usage_and_valid(id).await,
        (0, true),
        "batched, not yet written"
    );
    service.shutdown().await;
    assert_eq!(
        app.usage_and_valid(id).await,
        (5, true),
        "written by shutdown"
    );
    assert_eq!(service.unwritten_uses(), 0);
}

#[tokio::test]
async fn the_embedded_constructor_needs_only_a_path() {
    let dir = std::env::temp_dir().join(format!("iam_lib_{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("nested").join("tokens.db");
    let service = TokenService::embedded(&path).await.expect("built");
    let (key, id) = token_of(&service).await;
    verify_times(&service, &key, 2).await;
    service.shutdown().await;
    drop(service);
    let reopened = TokenService::embedded(&path).await.expect("reopened");
    let row = reopened.token_by_id(id).await.expect("read").expect("row");
    assert_eq!(row.usage_count, 2, "the counts reached the file");
    reopened.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_service_dropped_with_unwritten_uses_says_so_loudly() {
    let app = spawn_app().await;
    let store =
        iam_tokens::store::open(&app.database_url(), iam_tokens::store::OpenOptions::new(2))
            .await
            .expect("store");
    let options = ServiceOptions {
        limit_tokens_per_user: 20,
        cache: None,
        batch_usage: true,
        flush_every: None,
        analytics: None,
        webhooks: Default::default(),
    };
    let service = TokenService::with_options(store, app.clock.clone(), options);
    let (key, _) = token_of(&service).await;
    verify_times(&service, &key, 2).await;
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || drop(service));
    let text = String::from_utf8(log.0.lock().expect("log").clone()).expect("UTF-8");
    assert!(
        text.contains("ERROR")
            && text.contains("uses=2")
            && text.contains("call TokenService::shutdown().await"),
        "{text}"
    );
}

#[tokio::test]
async fn the_private_action_manager_takes_any_text_and_answers_invalid_identity() {
    let app = spawn_app().await;
    let (_, id) = token_of(&app.tokens).await;
    let date = || app.clock_iso();
    for (case, public_id) in [
        ("empty", String::new()),
        ("too short", "abc_12345678".to_owned()),
        ("too long", "a".repeat(200)),
        ("right length, no checksum", "a".repeat(137)),
    ] {
        let answer = app
            .tokens
            .private_action_manager(uid(7), id, public_id.as_str(), "lib", ManagerAction::Revoke)
            .await;
        assert_eq!(
            envelope_json(&answer),
            failure_json(&date(), "Invalid identity"),
            "{case}"
        );
    }
    let (_, valid) = app.usage_and_valid(id).await;
    assert!(valid, "nothing was revoked");
}

/// Every riavzon operation also answers as a typed decision (or a store error), for trusted
/// code that branches on the outcome instead of on reason strings.
#[tokio::test]
async fn operations_answer_typed_decisions() {
    use iam_tokens::domain::Digest;
    use iam_tokens::service::{
        Creation, ManagerAction, ManagerDecision, Revocation, RotateToken, RotationDecision,
        SnapshotDecision, Update,
    };

    let app = spawn_app().await;
    let service = &app.tokens;
    let name = || TokenName::parse("typed").expect("name");
    let limited = TokenService::new(app.own_store().await, service.clock().clone(), 0);
    assert!(matches!(
        limited
            .create_outcome(CreateToken::new(uid(7), Privilege::Full, name()))
            .await,
        Ok(Creation::LimitReached { limit: 0 })
    ));
    let (key, id) = token_of(service).await;
    let other_owner = service
        .update_privilege_outcome(uid(8), &key, Privilege::Demo)
        .await;
    assert_eq!(other_owner.ok(), Some(Update::NotFound));
    let updated = service
        .update_privilege_outcome(uid(7), &key, Privilege::Demo)
        .await;
    assert_eq!(
        updated.ok(),
        Some(Update::Updated("Privileges updated successfully"))
    );
    let snapshot = service
        .metadata_snapshot_outcome(&key, Privilege::Demo)
        .await;
    assert!(
        matches!(&snapshot, Ok(SnapshotDecision::Found(found)) if found.token_meta.token_id == id),
        "{snapshot:?}"
    );
    let wrong = service
        .metadata_snapshot_outcome(&key, Privilege::Full)
        .await;
    assert!(
        matches!(wrong, Ok(SnapshotDecision::InvalidKey)),
        "{wrong:?}"
    );
    let digest = Digest::of_presented(&key);
    let revoked = service.revoke_outcome(&digest, Some(Privilege::Demo)).await;
    assert_eq!(
        revoked.ok(),
        Some(Revocation::Revoked {
            token_id: id,
            user_id: uid(7)
        })
    );
    let again = service.revoke_outcome(&digest, Some(Privilege::Demo)).await;
    assert_eq!(again.ok(), Some(Revocation::NothingToRevoke));
    let rotation = RotateToken::new(key.as_str(), Privilege::Demo, name());
    assert!(matches!(
        service.rotate_outcome(rotation).await,
        Ok(RotationDecision::OldInvalid)
    ));

    // The private action manager: the address refused, then the sub-operation's decision.
    let created = service
        .create(CreateToken::new(uid(7), Privilege::Full, name()))
        .await
        .outcome
        .expect("created");
    let (live_id, public_id) = (created.token_id, created.raw_public_id);
    let manage = |public_id: String, name: &'static str, action| async move {
        service
            .private_action_manager_outcome(uid(7), live_id, public_id, name, action)
            .await
    };
    let short = public_id[..public_id.len() - 1].to_owned();
    assert!(matches!(
        manage(short, "typed", ManagerAction::Revoke).await,
        Ok(ManagerDecision::InvalidIdentity)
    ));
    assert!(matches!(
        manage(public_id.clone(), "Typed", ManagerAction::Revoke).await,
        Ok(ManagerDecision::NoMatch)
    ));
    let update = ManagerAction::PrivilegeUpdate {
        new_privileges: Privilege::Demo,
    };
    assert!(matches!(
        manage(public_id.clone(), "typed", update).await,
        Ok(ManagerDecision::Updated(Update::Updated(_)))
    ));
    let rotated = manage(public_id, "typed", ManagerAction::Rotate).await;
    assert!(
        matches!(
            &rotated,
            Ok(ManagerDecision::Rotate(RotationDecision::Rotated(new)))
                if new.new_raw_token.starts_with("api_")
        ),
        "{rotated:?}"
    );

    // The reads: the list and the counts as plain values.
    let list = service
        .list_valid_tokens_outcome(uid(7))
        .await
        .expect("list");
    assert_eq!((list.total_valid_tokens, list.total_invalid_tokens), (1, 2));
    let counts = service
        .total_user_tokens_count_outcome(uid(7))
        .await
        .expect("counts");
    assert_eq!((counts.total, counts.user_id), (3, uid(7)));
}
