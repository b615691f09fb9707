//! One store conformance suite, run against both backends: every scenario below runs once on
//! MySQL (a fresh database) and once on SQLite (a fresh file), through the same traits.

use std::sync::Arc;

use chrono::Utc;
use iam_tokens::clock::ManualClock;
use iam_tokens::domain::metadata::MetadataPatch;
use iam_tokens::domain::{Actor, Digest, IpRestriction, Metadata, Privilege, TokenName};
use iam_tokens::service::{CreateToken, RotateToken, TokenService, VerifyOptions};
use iam_tokens::store::{
    self, Audit, BanRecord, MetadataChange, MetadataOutcome, Store, TokenQuery, TokenStatus,
    UsageBatch, UsageDelta,
};
use serde_json::json;

use crate::helpers::{drop_database, SERVER_URL};
use crate::helpers::{ms, uid};

/// A fresh store of one backend, removed at the end.
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    MySql(String),
    Sqlite(std::path::PathBuf),
}

impl Drop for Backend {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::MySql(name) => drop_database(name),
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

async fn mysql() -> Backend {
    let name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let store = store::open(&format!("{SERVER_URL}/{name}"), store::OpenOptions::new(8))
        .await
        .expect("MariaDB store");
    Backend {
        store,
        cleanup: Cleanup::MySql(name),
    }
}

async fn sqlite() -> Backend {
    let dir = std::env::temp_dir().join(format!("iam_test_{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", dir.join("tokens.db").display());
    let store = store::open(&url, store::OpenOptions::new(1))
        .await
        .expect("SQLite store");
    Backend {
        store,
        cleanup: Cleanup::Sqlite(dir),
    }
}

/// The service as the library would build it, with no cache: every call reaches the store.
fn service(backend: &Backend, limit: u32) -> (TokenService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let service = TokenService::new(backend.store.clone(), clock.clone(), limit);
    (service, clock)
}

pub(crate) fn audit() -> Audit {
    Audit {
        actor: Actor::config("conformance"),
        at: Utc::now(),
    }
}

async fn create(service: &TokenService, user: u64, name: &str) -> (String, u64) {
    let request = CreateToken::new(uid(user), Privilege::Full, TokenName::parse(name).unwrap());
    let created = service.create(request).await.outcome.expect("created");
    (created.raw_api_key, created.token_id)
}

/// Declares each scenario once per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod on_mysql {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::mysql().await).await })*
        }
        mod on_sqlite {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::sqlite().await).await })*
        }
    };
}

on_both_backends!(
    creation_respects_the_limit_atomically,
    verification_counts_exactly_under_concurrency,
    revocation_is_idempotent_and_keeps_the_row,
    rotation_is_atomic_and_keeps_metadata,
    updates_and_metadata_are_audited,
    concurrent_metadata_patches_lose_nothing,
    listing_filters_and_pages,
    usage_batches_apply_once,
    bans_round_trip,
    a_refused_creation_changes_nothing_not_even_the_expiry_sweep,
    only_an_identifier_collision_is_a_collision,
    rotation_carries_roles_and_permissions,
    a_role_change_reaches_every_holder_and_a_deleted_token_holds_nothing,
    quotas_round_trip_and_leases_are_exact,
    rotation_carries_limits_and_what_remains_of_the_credits,
    credits_are_exact_under_concurrency_and_survive_a_restart,
    credits_refill_at_the_utc_boundary,
    a_busy_pool_leases_ahead_and_a_clean_stop_gives_everything_back,
);

use crate::store_quotas::{
    a_busy_pool_leases_ahead_and_a_clean_stop_gives_everything_back,
    credits_are_exact_under_concurrency_and_survive_a_restart, credits_refill_at_the_utc_boundary,
    quotas_round_trip_and_leases_are_exact,
    rotation_carries_limits_and_what_remains_of_the_credits,
};

fn grant(text: &str) -> iam_tokens::domain::access::Grant {
    iam_tokens::domain::access::Grant::parse(text).unwrap()
}

fn role_name(text: &str) -> iam_tokens::domain::access::RoleName {
    iam_tokens::domain::access::RoleName::parse(text).unwrap()
}

/// Creates a role with these grants.
async fn new_role(service: &TokenService, name: &str, grants: &[&str]) {
    let role = iam_tokens::domain::access::NewRole {
        name: role_name(name),
        description: None,
        permissions: grants.iter().map(|g| grant(g)).collect(),
    };
    let created = service.create_role(role).await.unwrap();
    assert!(
        matches!(created, store::RoleCreation::Created(_)),
        "{created:?}"
    );
}

/// A `full` token of `user` holding `roles` and direct `grants`.
async fn create_holding(
    service: &TokenService,
    user: u64,
    roles: &[&str],
    grants: &[&str],
) -> (String, u64) {
    let access = iam_tokens::domain::access::TokenAccess::new(
        roles.iter().map(|r| role_name(r)).collect(),
        grants.iter().map(|g| grant(g)).collect(),
    );
    let request = CreateToken::new(
        uid(user),
        Privilege::Full,
        TokenName::parse("holder").unwrap(),
    )
    .access(access);
    let created = service.create(request).await.outcome.expect("created");
    (created.raw_api_key, created.token_id)
}

fn texts(record: &store::TokenRecord) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        record.access.role_texts(),
        record.access.permission_texts(),
        record.access.effective().texts(),
    )
}

async fn rotation_carries_roles_and_permissions(backend: Backend) {
    let (service, _) = service(&backend, 20);
    new_role(&service, "pro", &["projects.*"]).await;
    for delete_old in [false, true] {
        let (key, old_id) = create_holding(&service, 2, &["pro"], &["billing.read"]).await;
        let name = TokenName::parse("holder").unwrap();
        let rotated = service
            .rotate(RotateToken::new(key, Privilege::Full, name).delete_old(delete_old))
            .await
            .outcome
            .expect("rotated");
        let new = backend
            .store
            .find_by_digest(&Digest::of(&rotated.new_raw_token))
            .await
            .unwrap()
            .unwrap();
        let expected = (
            vec!["pro".to_owned()],
            vec!["billing.read".to_owned()],
            vec!["billing.read".to_owned(), "projects.*".to_owned()],
        );
        assert_eq!(texts(&new), expected, "delete_old: {delete_old}");
        let old = backend.store.find_by_id(old_id).await.unwrap();
        match old {
            Some(old) => assert_eq!(texts(&old).0, ["pro"], "a kept old row keeps its access"),
            None => assert!(delete_old),
        }
    }
}

async fn a_role_change_reaches_every_holder_and_a_deleted_token_holds_nothing(backend: Backend) {
    let (service, _) = service(&backend, 200);
    new_role(&service, "plan", &["a.read"]).await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(create_holding(&service, 9, &["plan"], &[]).await.1);
    }
    let change = iam_tokens::domain::access::RoleChange {
        add: [grant("a.write")].into(),
        remove: [grant("a.read")].into(),
        ..Default::default()
    };
    let updated = service
        .update_role(&role_name("plan"), change)
        .await
        .unwrap();
    let store::RoleUpdate::Updated(role) = updated else {
        panic!("{updated:?}")
    };
    assert_eq!(role.tokens, 50);
    for id in &ids {
        let record = backend.store.find_by_id(*id).await.unwrap().unwrap();
        assert_eq!(texts(&record).2, ["a.write"]);
    }
    let deleted = service
        .delete_role(&role_name("plan"), false)
        .await
        .unwrap();
    assert_eq!(deleted, store::RoleDeletion::InUse { tokens: 50 });
    let deleted = service.delete_role(&role_name("plan"), true).await.unwrap();
    assert_eq!(deleted, store::RoleDeletion::Deleted { tokens: 50 });
    let record = backend.store.find_by_id(ids[0]).await.unwrap().unwrap();
    assert_eq!(texts(&record), (vec![], vec![], vec![]));
    assert!(service.roles().await.unwrap().is_empty());
}

async fn creation_respects_the_limit_atomically(backend: Backend) {
    let (service, _) = service(&backend, 5);
    for n in 0..4 {
        create(&service, 1, &format!("t{n}")).await;
    }
    let attempts = (0..20).map(|n| {
        let service = service.clone();
        async move {
            let name = TokenName::parse(&format!("race{n}")).unwrap();
            service
                .create(CreateToken::new(uid(1), Privilege::Full, name))
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let counts = backend.store.counts(uid(1), Utc::now()).await.unwrap();
    assert_eq!((counts.valid, counts.invalid), (5, 0));
}

async fn verification_counts_exactly_under_concurrency(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let (key, id) = create(&service, 2, "busy").await;
    let uses = (0..100).map(|_| {
        let (service, key) = (service.clone(), key.clone());
        async move {
            let options = VerifyOptions::new(Privilege::Full, None);
            service
                .verify(&key, options)
                .await
                .outcome
                .expect("valid")
                .usage_count
        }
    });
    let mut counts = futures_util::future::join_all(uses).await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=100).collect::<Vec<u64>>());
    let stored = backend.store.find_by_id(id).await.unwrap().unwrap();
    assert_eq!(stored.usage_count, 100);
}

async fn revocation_is_idempotent_and_keeps_the_row(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let (key, id) = create(&service, 3, "gone").await;
    assert!(service.revoke(&key, Privilege::Demo).await.is_ok());
    assert!(
        backend.store.find_by_id(id).await.unwrap().unwrap().valid,
        "other privilege"
    );
    let first = serde_json::to_value(service.revoke(&key, Privilege::Full).await).unwrap();
    assert_eq!(first["data"]["invalidedTokenId"], json!(id));
    let again = serde_json::to_value(service.revoke(&key, Privilege::Full).await).unwrap();
    assert_eq!(again["data"], json!("Token invalided successfully"));
    let row = backend.store.find_by_id(id).await.unwrap().unwrap();
    assert!(!row.valid);
    let events: Vec<String> = backend
        .store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["created", "revoked"]);
}

async fn rotation_is_atomic_and_keeps_metadata(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let (key, id) = create(&service, 4, "rotor").await;
    let patch = MetadataPatch::parse(&json!({"tier": 3})).unwrap();
    service
        .change_metadata(id, MetadataChange::Patch(patch))
        .await
        .unwrap();
    // A service with a lower limit cannot create the replacement: nothing changes.
    create(&service, 4, "second").await;
    let strict = TokenService::new(backend.store.clone(), service.clock().clone(), 1);
    let name = TokenName::parse("rotor").unwrap();
    let refused = strict
        .rotate(RotateToken::new(key.clone(), Privilege::Full, name.clone()))
        .await;
    assert!(!refused.is_ok());
    assert!(backend.store.find_by_id(id).await.unwrap().unwrap().valid);
    let rotated = service
        .rotate(RotateToken::new(key, Privilege::Full, name))
        .await;
    let new_key = rotated.outcome.expect("rotated").new_raw_token;
    let new = backend
        .store
        .find_by_digest(&Digest::of(&new_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&new.metadata).unwrap(),
        json!({"tier": 3})
    );
    assert!(!backend.store.find_by_id(id).await.unwrap().unwrap().valid);
    let old_events = backend.store.events(id).await.unwrap();
    assert_eq!(
        old_events.last().unwrap().detail["newTokenId"],
        json!(new.id)
    );
}

async fn updates_and_metadata_are_audited(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let service = service.acting_as(Actor::user(uid(5)));
    let (key, id) = create(&service, 5, "audited").await;
    let ips = IpRestriction::parse(&["10.0.0.0/8"]).unwrap();
    assert!(service
        .update_ip_restriction(uid(5), &key, ips)
        .await
        .is_ok());
    assert!(service
        .update_privilege(uid(5), &key, Privilege::Demo)
        .await
        .is_ok());
    assert!(
        !service
            .update_privilege(uid(6), &key, Privilege::Full)
            .await
            .is_ok(),
        "foreign"
    );
    let events = backend.store.events(id).await.unwrap();
    let seen: Vec<(&str, String)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.actor.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("created", "user:5".to_owned()),
            ("ip_restriction_updated", "user:5".to_owned()),
            ("privilege_updated", "user:5".to_owned())
        ]
    );
    assert_eq!(events[2].detail, json!({"old": "full", "new": "demo"}));
    let replaced = Metadata::parse(&json!({"a": 1})).unwrap();
    let outcome = backend
        .store
        .update_metadata(id, &MetadataChange::Replace(replaced), &audit())
        .await
        .unwrap();
    assert!(matches!(outcome, MetadataOutcome::Updated(_)));
}

async fn concurrent_metadata_patches_lose_nothing(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let (_, id) = create(&service, 7, "meta").await;
    let patches = (0..40).map(|n| {
        let store = backend.store.clone();
        async move {
            let patch = MetadataPatch::parse(&json!({ format!("k{n}"): n })).unwrap();
            store
                .update_metadata(id, &MetadataChange::Patch(patch), &audit())
                .await
                .unwrap()
        }
    });
    futures_util::future::join_all(patches).await;
    let stored = backend.store.find_by_id(id).await.unwrap().unwrap();
    assert_eq!(stored.metadata.len(), 40);
}

async fn listing_filters_and_pages(backend: Backend) {
    let (service, clock) = service(&backend, 20);
    for n in 0..5 {
        let (_, id) = create(&service, 8, &format!("l{n}")).await;
        let patch =
            MetadataPatch::parse(&json!({"region": if n % 2 == 0 { "eu" } else { "us" }, "n": n}))
                .unwrap();
        service
            .change_metadata(id, MetadataChange::Patch(patch))
            .await
            .unwrap();
    }
    let query = |metadata: Option<(&str, &str)>, status, before_id| TokenQuery {
        user_id: Some(uid(8)),
        name: None,
        public_identifier: None,
        status,
        metadata: metadata.map(|(k, v)| (k.to_owned(), v.to_owned())),
        limit: 2,
        before_id,
        now: iam_tokens::Clock::now(clock.as_ref()),
    };
    let eu = backend
        .store
        .list_tokens(&query(Some(("region", "eu")), TokenStatus::All, None))
        .await
        .unwrap();
    assert_eq!(eu.len(), 2);
    assert!(eu[0].id > eu[1].id, "newest first");
    let rest = backend
        .store
        .list_tokens(&query(
            Some(("region", "eu")),
            TokenStatus::All,
            Some(eu[1].id),
        ))
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    let number = backend
        .store
        .list_tokens(&query(Some(("n", "3")), TokenStatus::Valid, None))
        .await
        .unwrap();
    assert_eq!(number.len(), 1);
    let invalid = backend
        .store
        .list_tokens(&query(None, TokenStatus::Invalid, None))
        .await
        .unwrap();
    assert!(invalid.is_empty());
}

async fn usage_batches_apply_once(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let (_, id) = create(&service, 9, "batched").await;
    let delta = UsageDelta {
        token_id: id,
        uses: 7,
        last_used: Utc::now(),
    };
    let batch = UsageBatch {
        id: "batch-one".into(),
        at: Utc::now(),
        deltas: vec![delta],
        rollups: Vec::new(),
    };
    backend.store.apply_usage(&batch).await.unwrap();
    backend.store.apply_usage(&batch).await.unwrap();
    assert_eq!(
        backend
            .store
            .find_by_id(id)
            .await
            .unwrap()
            .unwrap()
            .usage_count,
        7
    );
}

async fn bans_round_trip(backend: Backend) {
    let ban = BanRecord {
        limiter: "burst_limiter".into(),
        key: "203.0.113.7".into(),
        reason: "rejected again while blocked".into(),
        created_at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
    };
    backend.store.insert_ban(&ban).await.unwrap();
    backend.store.insert_ban(&ban).await.unwrap();
    assert_eq!(backend.store.list_bans().await.unwrap(), vec![ban.clone()]);
    assert!(backend
        .store
        .delete_ban(&ban.limiter, &ban.key, &audit())
        .await
        .unwrap());
    assert!(!backend
        .store
        .delete_ban(&ban.limiter, &ban.key, &audit())
        .await
        .unwrap());
    assert!(backend.store.list_bans().await.unwrap().is_empty());
}

/// The whole HTTP flow of the walkthrough on the embedded store.
#[tokio::test]
async fn the_service_runs_end_to_end_on_the_embedded_store() {
    let dir = std::env::temp_dir().join(format!("iam_test_{}", uuid::Uuid::new_v4().simple()));
    let mut settings = iam_tokens::Settings::defaults().unwrap();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.rate_limiters.enabled = false;
    settings.database.url =
        iam_tokens::secret::Secret::new(format!("sqlite://{}", dir.join("t.db").display()));
    let app = crate::helpers::spawn_on(settings, "unused_sqlite_run".into()).await;
    let created = app
        .manage_post("new-token", 7, &json!({"privilege": "full", "name": "ci"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let key = created.data()["rawApiKey"].as_str().unwrap().to_owned();
    let verified = app.verify(&key, "full").await;
    assert_eq!(verified.status, 200, "{verified:?}");
    let listed = app.manage_get("list-metadata", 7).await;
    let row = &listed.data()["tokenList"][0];
    let body =
        json!({"tokenId": row["id"], "publicIdentifier": row["public_identifier"], "name": "ci"});
    let rotated = app.manage_post("rotate", 7, &body).await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_eq!(app.verify(&key, "full").await.reason(), "Invalid key");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let _ = std::fs::remove_dir_all(dir);
}

/// `copy` moves every token, metadata, event and ban, both ways, and refuses a full target.
#[tokio::test]
async fn copy_moves_everything_from_sqlite_to_mysql_and_back() {
    use iam_tokens::store::CopyOutcome;
    let (from, to) = (sqlite().await, mysql().await);
    let (source, _) = service(&from, 20);
    let (key, id) = create(&source, 11, "moving").await;
    let patch = MetadataPatch::parse(&json!({"billing_account": "acct_1"})).unwrap();
    source
        .change_metadata(id, MetadataChange::Patch(patch))
        .await
        .unwrap();
    let ban = BanRecord {
        limiter: "burst_limiter".into(),
        key: "198.51.100.4".into(),
        reason: "rejected again while blocked".into(),
        created_at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
    };
    from.store.insert_ban(&ban).await.unwrap();
    new_role(&source, "pro", &["projects.*", "billing.read"]).await;
    let (holder_key, _) = create_holding(&source, 12, &["pro"], &["x.y"]).await;
    let owner = iam_tokens::domain::quota::Subject::Owner(uid(11));
    let limit = iam_tokens::domain::quota::RateLimit::new(
        iam_tokens::domain::quota::LimitName::parse("requests").unwrap(),
        100,
        60_000,
        true,
    )
    .unwrap();
    let limits = iam_tokens::domain::quota::RateLimits::new(vec![limit]).unwrap();
    let change = iam_tokens::domain::quota::CreditChange::new(
        Some(iam_tokens::domain::quota::Remaining::Set(500)),
        None,
    )
    .unwrap();
    from.store
        .set_limits(owner, &limits, &audit())
        .await
        .unwrap();
    from.store
        .change_credits(owner, &change, &audit())
        .await
        .unwrap();

    let copied = store::copy(from.store.as_ref(), to.store.as_ref(), false)
        .await
        .unwrap();
    let CopyOutcome::Copied(rows) = copied else {
        panic!("{copied:?}")
    };
    // Events: created, metadata_updated, banned, role_created, created, ratelimits_updated,
    // credits_updated.
    assert_eq!(
        (rows.tokens, rows.events, rows.bans, rows.roles),
        (2, 7, 1, 1)
    );
    assert_eq!(
        to.store.quota(owner).await.unwrap(),
        from.store.quota(owner).await.unwrap(),
        "an owner's limits and credits move too"
    );
    let (moved, _) = service(&to, 20);
    let verified = moved
        .verify(&key, VerifyOptions::new(Privilege::Full, None))
        .await;
    let token = verified.outcome.expect("the key verifies on the target");
    assert_eq!(token.token_id, id);
    assert_eq!(
        serde_json::to_value(&token.metadata).unwrap(),
        json!({"billing_account": "acct_1"})
    );
    assert_eq!(to.store.list_bans().await.unwrap(), vec![ban]);
    assert_eq!(
        to.store.roles().await.unwrap(),
        from.store.roles().await.unwrap()
    );
    let holder = to
        .store
        .find_by_digest(&Digest::of(&holder_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        texts(&holder),
        (
            vec!["pro".to_owned()],
            vec!["x.y".to_owned()],
            vec![
                "billing.read".to_owned(),
                "projects.*".to_owned(),
                "x.y".to_owned()
            ],
        )
    );
    assert_eq!(
        from.store.events(id).await.unwrap().len(),
        to.store.events(id).await.unwrap().len()
    );

    let refused = store::copy(from.store.as_ref(), to.store.as_ref(), false)
        .await
        .unwrap();
    assert!(
        matches!(refused, CopyOutcome::TargetNotEmpty(_)),
        "{refused:?}"
    );
    let back = sqlite().await;
    let copied_back = store::copy(to.store.as_ref(), back.store.as_ref(), false)
        .await
        .unwrap();
    assert!(matches!(copied_back, CopyOutcome::Copied(_)));
    let forced = store::copy(from.store.as_ref(), to.store.as_ref(), true)
        .await
        .unwrap();
    assert!(matches!(forced, CopyOutcome::Copied(_)));
}

impl Backend {
    /// Runs raw SQL on the backend's database (test set-up only).
    async fn execute_raw(&self, sql: &str) {
        match &self.cleanup {
            Cleanup::MySql(name) => {
                let pool = mysql_async::Pool::new(format!("{SERVER_URL}/{name}").as_str());
                let mut conn = pool.get_conn().await.expect("connection");
                mysql_async::prelude::Queryable::query_drop(&mut conn, sql)
                    .await
                    .expect("raw SQL");
                drop(conn);
                pool.disconnect().await.expect("disconnect");
            }
            Cleanup::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.join("tokens.db")).expect("open");
                conn.execute_batch(sql).expect("raw SQL");
            }
        }
    }

    fn is_mysql(&self) -> bool {
        matches!(self.cleanup, Cleanup::MySql(_))
    }
}

/// At the limit, the sweep that marks the owner's expired tokens invalid belongs to the refused
/// creation's transaction: it is rolled back with it, rows and audit log untouched (it used to
/// be committed on SQLite and rolled back on MySQL).
async fn a_refused_creation_changes_nothing_not_even_the_expiry_sweep(backend: Backend) {
    let (roomy, clock) = service(&backend, 3);
    let soon = CreateToken::new(uid(4), Privilege::Full, TokenName::parse("soon").unwrap())
        .lifetime(ms(60_000));
    let expiring = roomy.create(soon).await.outcome.expect("created").token_id;
    create(&roomy, 4, "b").await;
    create(&roomy, 4, "c").await;
    clock.advance(std::time::Duration::from_secs(120));
    let strict = TokenService::new(backend.store.clone(), clock.clone(), 2);
    let refused = strict
        .create(CreateToken::new(
            uid(4),
            Privilege::Full,
            TokenName::parse("d").unwrap(),
        ))
        .await;
    assert_eq!(
        refused.reason().map(|r| r.as_str().into_owned()),
        Some("You cannot have more then 2 valid tokens at a time".to_owned())
    );
    let row = backend.store.find_by_id(expiring).await.unwrap().unwrap();
    assert!(row.valid, "the sweep was rolled back with the refusal");
    let events: Vec<String> = backend
        .store
        .events(expiring)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["created"], "no `expired` event was kept");
    // A creation that goes through commits the sweep with its insert.
    let admitted = roomy
        .create(CreateToken::new(
            uid(4),
            Privilege::Full,
            TokenName::parse("e").unwrap(),
        ))
        .await;
    assert!(admitted.is_ok(), "{admitted:?}");
    assert!(
        !backend
            .store
            .find_by_id(expiring)
            .await
            .unwrap()
            .unwrap()
            .valid
    );
}

/// A rotation whose insert fails for any reason but an identifier collision is a store failure
/// (`Server error rotating a token.`), not `Cant create new tokens in this rotation`, and leaves
/// the old key valid. The failure here is a trigger refusing every insert.
async fn only_an_identifier_collision_is_a_collision(backend: Backend) {
    let (service, _) = service(&backend, 20);
    let (key, id) = create(&service, 9, "old").await;
    let trigger = if backend.is_mysql() {
        "CREATE TRIGGER refuse_inserts BEFORE INSERT ON api_tokens FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'"
    } else {
        "CREATE TRIGGER refuse_inserts BEFORE INSERT ON api_tokens \
         BEGIN SELECT RAISE(ABORT, 'refused'); END"
    };
    backend.execute_raw(trigger).await;
    let rotated = service
        .rotate(RotateToken::new(
            key.as_str(),
            Privilege::Full,
            TokenName::parse("new").unwrap(),
        ))
        .await;
    assert_eq!(
        rotated.reason().map(|r| r.as_str().into_owned()),
        Some("Server error rotating a token.".to_owned())
    );
    assert!(backend.store.find_by_id(id).await.unwrap().unwrap().valid);
    let created = service
        .create(CreateToken::new(
            uid(9),
            Privilege::Full,
            TokenName::parse("x").unwrap(),
        ))
        .await;
    assert_eq!(
        created.reason().map(|r| r.as_str().into_owned()),
        Some("Server error".to_owned()),
        "a failed insert on creation is a store failure too"
    );
}

/// `copy` moves what issues 26 and 27 added too: stored admin credentials, the typed actors and
/// owners of audit events, and the states of tokens and owners, both ways.
#[tokio::test]
async fn copy_moves_credentials_actors_and_states() {
    use iam_tokens::domain::access::scope::ScopeList;
    use iam_tokens::domain::credential::{AdminSecret, CredentialName, NewCredential};
    use iam_tokens::domain::state::StateReason;
    use iam_tokens::store::StateChange;
    let (from, to) = (sqlite().await, mysql().await);
    let (source, _) = service(&from, 20);
    let (_, paused) = create(&source, 11, "paused").await;
    let change = StateChange {
        enabled: false,
        reason: Some(StateReason::parse("review").unwrap()),
    };
    let by_ops = source.acting_as(Actor::config("ops"));
    assert_eq!(
        by_ops.set_token_state(paused, &change).await.unwrap(),
        Some(true)
    );
    let by_cli = source.acting_as(Actor::cli(Some("root".into())));
    assert!(by_cli.set_owner_state(uid(12), &change).await.unwrap());
    let secret = AdminSecret::generate();
    let credential = NewCredential {
        digest: secret.digest(),
        name: CredentialName::parse("billing job").unwrap(),
        scopes: ScopeList::preset("billing").unwrap(),
        created_at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
        created_by: Actor::config("ops"),
        expires_at: None,
    };
    from.store
        .create_credential(&credential, &audit())
        .await
        .unwrap()
        .expect("created");

    let copied = store::copy(from.store.as_ref(), to.store.as_ref(), false)
        .await
        .unwrap();
    assert!(matches!(copied, iam_tokens::store::CopyOutcome::Copied(_)));
    let (before, after) = (
        from.store.export().await.unwrap(),
        to.store.export().await.unwrap(),
    );
    assert_eq!(
        after.events, before.events,
        "events with their actors and owners"
    );
    assert_eq!(after.owner_states, before.owner_states, "disabled owners");
    assert_eq!(after.owner_states.len(), 1);
    let states = |snapshot: &iam_tokens::store::Snapshot| -> Vec<_> {
        snapshot
            .tokens
            .iter()
            .map(|t| (t.id, t.state.clone()))
            .collect()
    };
    assert_eq!(states(&after), states(&before), "token states");
    assert!(
        before.tokens[0].state.token.is_some(),
        "the paused token's own state"
    );
    let credentials = |snapshot: &iam_tokens::store::Snapshot| -> Vec<_> {
        snapshot
            .credentials
            .iter()
            .map(|c| {
                let texts = c.scopes.texts().to_vec();
                (
                    c.id,
                    c.digest.clone(),
                    c.name.clone(),
                    texts,
                    c.created_by.clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        credentials(&after),
        credentials(&before),
        "stored credentials"
    );
    assert_eq!(after.credentials.len(), 1);
    let back = sqlite().await;
    let copied_back = store::copy(to.store.as_ref(), back.store.as_ref(), false)
        .await
        .unwrap();
    assert!(matches!(
        copied_back,
        iam_tokens::store::CopyOutcome::Copied(_)
    ));
    let round = back.store.export().await.unwrap();
    assert_eq!(round.events, before.events, "and back");
    assert_eq!(round.owner_states, before.owner_states);
}

/// `iam-tokens copy` moves webhook endpoints as they are, secrets included, the outbox and the
/// delivery log, ids kept (SPEC B12); a forced copy clears the target's first.
#[tokio::test]
async fn copy_moves_webhook_endpoints_with_their_secrets() {
    use iam_tokens::domain::webhook::{
        EndpointRecord, EndpointSecret, EndpointUrl, EventFilter, NewEndpoint,
    };
    let (from, to) = (sqlite().await, mysql().await);
    let endpoint = NewEndpoint {
        url: EndpointUrl::parse("https://hooks.example.com/iam").unwrap(),
        description: None,
        events: EventFilter::parse(&["token.*", "credits.low"]).unwrap(),
        include_metadata: true,
        secret: EndpointSecret::generate(),
    };
    let created = from
        .store
        .create_endpoint(&endpoint, &audit())
        .await
        .unwrap();
    let stale = to.store.create_endpoint(&endpoint, &audit()).await.unwrap();
    // An event with its delivery (fanned out), and one not fanned out yet.
    let (source, _) = service(&from, 20);
    create(&source, 11, "announced").await;
    assert_eq!(from.store.fan_out(100, Utc::now()).await.unwrap(), 1);
    create(&source, 11, "not yet").await;
    let copied = store::copy(from.store.as_ref(), to.store.as_ref(), true)
        .await
        .unwrap();
    assert!(matches!(copied, iam_tokens::store::CopyOutcome::Copied(_)));
    let seen = |endpoints: Vec<EndpointRecord>| -> Vec<_> {
        endpoints
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    e.url,
                    e.events.patterns().to_vec(),
                    e.include_metadata,
                    e.secret.expose().to_owned(),
                    e.enabled,
                    e.created_at,
                )
            })
            .collect()
    };
    let after = seen(to.store.endpoints().await.unwrap());
    assert_eq!(after, seen(from.store.endpoints().await.unwrap()));
    assert_eq!(
        after.len(),
        1,
        "the target's own endpoint {} is gone",
        stale.id
    );
    assert_eq!(
        after[0].4,
        created.secret.expose(),
        "the secret still signs"
    );
    let (before, copied) = (
        from.store.export().await.unwrap(),
        to.store.export().await.unwrap(),
    );
    assert_eq!(
        copied.webhook_events, before.webhook_events,
        "the outbox, ids kept"
    );
    assert_eq!(copied.webhook_events.len(), 2);
    assert_eq!(
        copied.webhook_deliveries, before.webhook_deliveries,
        "the log"
    );
    assert_eq!(copied.webhook_deliveries.len(), 1);
    // The target fans out what the source had not, and its next event follows the source's
    // ids (a receiver deduplicating on webhook-id sees no id twice).
    assert_eq!(to.store.fan_out(100, Utc::now()).await.unwrap(), 1);
    let (target, _) = service(&to, 20);
    create(&target, 12, "after the move").await;
    let events = to.store.export().await.unwrap().webhook_events;
    let last = events.last().expect("an event").event.id;
    assert!(
        last > before.webhook_events[1].event.id,
        "ids go on: {last}"
    );
}
