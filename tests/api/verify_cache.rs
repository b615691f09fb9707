//! The verification cache seen from the store's side: garbage never reaches it, an unknown key
//! reaches it once per negative TTL, a known key once per TTL, every change made through the
//! service is seen by the very next verification, and changes made elsewhere within the TTL.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iam_tokens::store::{
    Audit, AuditEvent, CreateOutcome, MetadataChange, MetadataOutcome, MySqlStore, NewToken,
    RotateOutcome, Rotation, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStore,
    UsageDelta,
};
use iam_tokens::token::TokenName;
use iam_tokens::token::{Digest, GeneratedKey, IpRestriction, Prefix, Privilege, PublicIdentifier};
use iam_tokens::tokens::{
    CacheConfig, CreateToken, ManagerAction, ServiceOptions, TokenService, VerifyOptions,
};
use mysql_async::prelude::*;
use serde_json::Value;

use crate::helpers::{envelope_json, failure_json, spawn_app, TestApp, SERVER_URL};

/// The store methods, each with its own counter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call {
    CreateToken,
    FindByDigest,
    FindForOwner,
    Invalidate,
    RecordUsage,
    ApplyUsage,
    Revoke,
    Rotate,
    UpdateIpRestriction,
    UpdatePrivilege,
    Counts,
    ListValid,
    Ping,
    /// Admin-only capabilities (by id, metadata, listings, events).
    Other,
}

/// How `apply_usage` fails, to test flushes whose outcome is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApplyFailure {
    Never = 0,
    /// The batch never reaches the database.
    BeforeWriting = 1,
    /// The batch is committed, then the answer is lost.
    AfterWriting = 2,
}

/// The MySQL store, counting every call and failing `apply_usage` on demand.
pub(crate) struct CountingStore {
    inner: Arc<MySqlStore>,
    calls: [AtomicUsize; 14],
    apply_failure: AtomicU8,
}

impl CountingStore {
    fn hit(&self, call: Call) {
        self.calls[call as usize].fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn calls(&self, call: Call) -> usize {
        self.calls[call as usize].load(Ordering::SeqCst)
    }

    pub(crate) fn total_calls(&self) -> usize {
        self.calls.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    pub(crate) fn fail_apply(&self, failure: ApplyFailure) {
        self.apply_failure.store(failure as u8, Ordering::SeqCst);
    }
}

fn lost_connection() -> StoreError {
    StoreError::Database(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
}

#[async_trait]
impl TokenStore for CountingStore {
    async fn create_token(
        &self,
        new: &NewToken,
        limit: u32,
        audit: &Audit,
    ) -> Result<CreateOutcome, StoreError> {
        self.hit(Call::CreateToken);
        self.inner.create_token(new, limit, audit).await
    }
    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError> {
        self.hit(Call::FindByDigest);
        self.inner.find_by_digest(digest).await
    }
    async fn find_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError> {
        self.hit(Call::Other);
        self.inner.find_by_id(token_id).await
    }
    async fn find_for_owner(
        &self,
        user_id: u64,
        token_id: u64,
        public_identifier: &str,
        name: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.hit(Call::FindForOwner);
        let found = self
            .inner
            .find_for_owner(user_id, token_id, public_identifier, name);
        found.await
    }
    async fn expire(&self, token_id: u64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.hit(Call::Invalidate);
        self.inner.expire(token_id, at).await
    }
    async fn record_usage(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        self.hit(Call::RecordUsage);
        self.inner.record_usage(token_id, uses, at).await
    }
    async fn apply_usage(&self, batch_id: &str, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        self.hit(Call::ApplyUsage);
        match self.apply_failure.load(Ordering::SeqCst) {
            1 => Err(lost_connection()),
            2 => {
                self.inner.apply_usage(batch_id, deltas).await?;
                Err(lost_connection())
            }
            _ => self.inner.apply_usage(batch_id, deltas).await,
        }
    }
    async fn revoke(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
        audit: &Audit,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.hit(Call::Revoke);
        self.inner.revoke(digest, privilege, audit).await
    }
    async fn revoke_by_id(
        &self,
        token_id: u64,
        audit: &Audit,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError> {
        self.hit(Call::Other);
        self.inner.revoke_by_id(token_id, audit).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.hit(Call::Rotate);
        self.inner.rotate(rotation).await
    }
    async fn update_ip_restriction(
        &self,
        user_id: u64,
        digest: &Digest,
        ips: &IpRestriction,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        self.hit(Call::UpdateIpRestriction);
        let updated = self.inner.update_ip_restriction(user_id, digest, ips, audit);
        updated.await
    }
    async fn update_privilege(
        &self,
        user_id: u64,
        digest: &Digest,
        privilege: Privilege,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        self.hit(Call::UpdatePrivilege);
        let updated = self.inner.update_privilege(user_id, digest, privilege, audit);
        updated.await
    }
    async fn update_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError> {
        self.hit(Call::Other);
        self.inner.update_metadata(token_id, change, audit).await
    }
    async fn counts(&self, user_id: u64, now: DateTime<Utc>) -> Result<TokenCounts, StoreError> {
        self.hit(Call::Counts);
        self.inner.counts(user_id, now).await
    }
    async fn list_valid(
        &self,
        user_id: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.hit(Call::ListValid);
        self.inner.list_valid(user_id, now).await
    }
    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        self.hit(Call::Other);
        self.inner.list_tokens(query).await
    }
    async fn events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.hit(Call::Other);
        self.inner.events(token_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.hit(Call::Ping);
        self.inner.ping().await
    }
}

/// A test app's database behind a counting store, and a service of its own over it.
pub(crate) struct Counted {
    pub app: TestApp,
    pub store: Arc<CountingStore>,
    pub service: TokenService,
}

pub(crate) async fn counted_service(cache: Option<CacheConfig>, batch_usage: bool) -> Counted {
    let app = spawn_app().await;
    let url = format!("{SERVER_URL}/{}", app.db_name);
    let store = Arc::new(CountingStore {
        inner: Arc::new(MySqlStore::connect_lazy(&url, 4).expect("store")),
        calls: Default::default(),
        apply_failure: AtomicU8::new(ApplyFailure::Never as u8),
    });
    let options = ServiceOptions {
        limit_tokens_per_user: 20,
        cache,
        batch_usage,
    };
    let service = TokenService::with_options(store.clone(), app.clock.clone(), options);
    Counted {
        app,
        store,
        service,
    }
}

pub(crate) fn cache(ttl: Duration, negative_ttl: Duration, max_entries: usize) -> CacheConfig {
    CacheConfig {
        ttl,
        negative_ttl,
        max_entries,
        max_stale: Some(Duration::from_secs(300)),
    }
}

impl Counted {
    /// A token for `user_id` named `ci`: its raw key, public identifier and id.
    pub(crate) async fn token(
        &self,
        user_id: u64,
        request: Option<CreateToken>,
    ) -> (String, String, u64) {
        let name = TokenName::parse("ci").expect("name");
        let request = request.unwrap_or_else(|| CreateToken::new(user_id, Privilege::Full, name));
        let created = self.service.create(request).await;
        let created = created.data().expect("token created").clone();
        let id = self.app.token_id(&created.raw_public_id).await;
        (created.raw_api_key, created.raw_public_id, id)
    }

    /// A counting, IP-checked verification from 127.0.0.1, as its envelope.
    pub(crate) async fn verify(&self, key: &str, privilege: Privilege) -> Value {
        let options = VerifyOptions::new(privilege, Some([127, 0, 0, 1].into()));
        envelope_json(&self.service.verify(key, options).await)
    }

    pub(crate) fn failure(&self, reason: &str) -> Value {
        failure_json(&self.app.clock_iso(), reason)
    }

    fn finds(&self) -> usize {
        self.store.calls(Call::FindByDigest)
    }
}

fn unknown_key() -> String {
    GeneratedKey::generate(&Prefix::default())
        .raw
        .expose()
        .to_owned()
}

const HOUR: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

#[tokio::test]
async fn malformed_keys_and_bad_checksums_never_reach_the_store() {
    let c = counted_service(Some(cache(HOUR, HOUR, 1000)), false).await;
    let key = unknown_key();
    let random = key.split('_').nth(1).expect("random part").to_owned();
    let mut bad_checksum = key.clone();
    let last = bad_checksum.pop().expect("non-empty key");
    bad_checksum.push(if last == '0' { '1' } else { '0' });
    let cases = [
        (String::new(), "empty"),
        ("garbage".to_owned(), "one part"),
        (format!("api_{random}"), "no checksum"),
        (
            format!("api_{}_{}", &random[1..], &key[key.len() - 8..]),
            "short random part",
        ),
        (format!("{key}_extra"), "a fourth part"),
        (format!("api_{random}_zzzzzzzz"), "checksum not hex"),
        (bad_checksum, "checksum flipped"),
        ("x".repeat(100_000), "huge"),
        ("api_é_12345678".to_owned(), "not ASCII"),
    ];
    for (presented, case) in cases {
        for _ in 0..3 {
            let answer = c.verify(&presented, Privilege::Full).await;
            assert_eq!(answer, c.failure("Invalid key"), "{case}");
        }
    }
    let mut as_digest = VerifyOptions::new(Privilege::Full, None);
    as_digest.is_internal_hash = true;
    let answer = c.service.verify("not-a-64-hex-digest", as_digest).await;
    assert_eq!(
        envelope_json(&answer),
        c.failure("Invalid key"),
        "bad digest"
    );
    assert_eq!(c.store.total_calls(), 0, "no store call for garbage");
}

#[tokio::test]
async fn an_unknown_key_reaches_the_store_once_per_negative_ttl() {
    let negative_ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(HOUR, negative_ttl, 1000)), false).await;
    let key = unknown_key();
    for _ in 0..100 {
        assert_eq!(
            c.verify(&key, Privilege::Full).await,
            c.failure("Invalid key")
        );
    }
    assert_eq!(c.finds(), 1, "100 attempts, one lookup");
    c.app.clock.advance(negative_ttl - MS);
    assert_eq!(
        c.verify(&key, Privilege::Full).await,
        c.failure("Invalid key")
    );
    assert_eq!(
        c.finds(),
        1,
        "still remembered just before the negative TTL"
    );
    c.app.clock.advance(MS);
    for _ in 0..100 {
        assert_eq!(
            c.verify(&key, Privilege::Full).await,
            c.failure("Invalid key")
        );
    }
    assert_eq!(
        c.finds(),
        2,
        "one more lookup once the negative TTL has passed"
    );
    assert_eq!(c.store.total_calls(), 2, "nothing but the two lookups");
}

#[tokio::test]
async fn a_known_key_reaches_the_store_once_per_ttl() {
    let ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(ttl, HOUR, 1000)), true).await;
    let (key, _, id) = c.token(7, None).await;
    for n in 1..=1000u64 {
        let answer = c.verify(&key, Privilege::Full).await;
        assert_eq!(answer["data"]["usageCount"], n, "{answer}");
    }
    assert_eq!(c.finds(), 1, "1000 verifications, one lookup");
    assert_eq!(
        c.store.calls(Call::RecordUsage) + c.store.calls(Call::ApplyUsage),
        0
    );
    c.app.clock.advance(ttl - MS);
    c.verify(&key, Privilege::Full).await;
    assert_eq!(c.finds(), 1, "still fresh just before the TTL");
    c.app.clock.advance(MS);
    let answer = c.verify(&key, Privilege::Full).await;
    assert_eq!(answer["data"]["usageCount"], 1002, "{answer}");
    assert_eq!(c.finds(), 2, "read again once the TTL has passed");
    c.service.flush_usage().await.expect("flush");
    assert_eq!(c.app.usage_and_valid(id).await, (1002, true));
    assert_eq!(c.store.calls(Call::ApplyUsage), 1, "one batched write");
}

/// A change made through the service to a cached token.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    Revoke,
    ManagerRevoke,
    Rotate,
    ManagerRotate,
    IpUpdate,
    ManagerIpUpdate,
    PrivilegeUpdate,
    ManagerPrivilegeUpdate,
}

/// Applies `mutation` to the token; answers the operation's envelope.
async fn mutate(
    c: &Counted,
    mutation: Mutation,
    user_id: u64,
    key: &str,
    public_id: &str,
) -> Value {
    let s = &c.service;
    let elsewhere = || IpRestriction::parse(&["10.0.0.1"]).expect("IP");
    let manager = |action| async move {
        let id = c.app.token_id(public_id).await;
        let public_id = PublicIdentifier::parse_shape(public_id).expect("public id");
        let done = s
            .private_action_manager(user_id, id, &public_id, "ci", action)
            .await;
        envelope_json(&done)
    };
    match mutation {
        Mutation::Revoke => envelope_json(&s.revoke(key, Privilege::Full).await),
        Mutation::ManagerRevoke => manager(ManagerAction::Revoke).await,
        Mutation::Rotate => {
            let name = TokenName::parse("ci").expect("name");
            let request = iam_tokens::tokens::RotateToken::new(key, Privilege::Full, name);
            envelope_json(&s.rotate(request).await)
        }
        Mutation::ManagerRotate => manager(ManagerAction::Rotate).await,
        Mutation::IpUpdate => {
            envelope_json(&s.update_ip_restriction(user_id, key, elsewhere()).await)
        }
        Mutation::ManagerIpUpdate => {
            let new_ip_address = elsewhere();
            manager(ManagerAction::IpRestrictionUpdate { new_ip_address }).await
        }
        Mutation::PrivilegeUpdate => {
            envelope_json(&s.update_privilege(user_id, key, Privilege::Demo).await)
        }
        Mutation::ManagerPrivilegeUpdate => {
            let new_privileges = Privilege::Demo;
            manager(ManagerAction::PrivilegeUpdate { new_privileges }).await
        }
    }
}

#[tokio::test]
async fn every_change_made_through_the_service_is_seen_by_the_very_next_verification() {
    use Mutation::*;
    let c = counted_service(Some(cache(HOUR, HOUR, 1000)), false).await;
    let mutations = [
        Revoke,
        ManagerRevoke,
        Rotate,
        ManagerRotate,
        IpUpdate,
        ManagerIpUpdate,
        PrivilegeUpdate,
        ManagerPrivilegeUpdate,
    ];
    for (user_id, mutation) in (100..).zip(mutations) {
        let (key, public_id, _) = c.token(user_id, None).await;
        let finds = c.finds();
        for _ in 0..2 {
            assert_eq!(
                c.verify(&key, Privilege::Full).await["ok"],
                true,
                "{mutation:?}"
            );
        }
        assert_eq!(c.finds(), finds + 1, "{mutation:?}: the token is cached");
        let done = mutate(&c, mutation, user_id, &key, &public_id).await;
        assert_eq!(done["ok"], true, "{mutation:?}: {done}");
        let expected = match mutation {
            IpUpdate | ManagerIpUpdate => "Invalid Host",
            _ => "Invalid key",
        };
        let next = c.verify(&key, Privilege::Full).await;
        assert_eq!(next, c.failure(expected), "{mutation:?}");
        match mutation {
            Rotate | ManagerRotate => {
                let new_key = done["data"]["newRawToken"].as_str().expect("new key");
                let answer = c.verify(new_key, Privilege::Full).await;
                assert_eq!(answer["ok"], true, "{mutation:?}: the new key verifies");
            }
            PrivilegeUpdate | ManagerPrivilegeUpdate => {
                let answer = c.verify(&key, Privilege::Demo).await;
                assert_eq!(answer["data"]["providedPrivilege"], "demo", "{mutation:?}");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn expiry_is_seen_by_the_very_next_verification_of_a_cached_token() {
    let c = counted_service(Some(cache(HOUR, HOUR, 1000)), false).await;
    let name = TokenName::parse("ci").expect("name");
    let request = CreateToken::new(7, Privilege::Full, name).expires_ms(Some(60_000));
    let (key, _, id) = c.token(7, Some(request)).await;
    assert_eq!(c.verify(&key, Privilege::Full).await["ok"], true);
    c.app.clock.advance(Duration::from_secs(60) - MS);
    assert_eq!(c.verify(&key, Privilege::Full).await["ok"], true);
    assert_eq!(c.finds(), 1, "the token is cached");
    c.app.clock.advance(MS);
    assert_eq!(
        c.verify(&key, Privilege::Full).await,
        c.failure("Token expired")
    );
    assert_eq!(
        c.app.usage_and_valid(id).await,
        (2, false),
        "marked invalid once"
    );
    assert_eq!(
        c.verify(&key, Privilege::Full).await,
        c.failure("Invalid key")
    );
}

#[tokio::test]
async fn a_change_made_behind_the_services_back_is_seen_once_the_ttl_has_passed() {
    let ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(ttl, HOUR, 1000)), false).await;
    let (key, _, id) = c.token(7, None).await;
    assert_eq!(c.verify(&key, Privilege::Full).await["ok"], true);
    let mut conn = c.app.pool.get_conn().await.expect("test connection");
    conn.exec_drop("UPDATE api_tokens SET valid = 0 WHERE id = ?", (id,))
        .await
        .expect("revoked by another instance");
    c.app.clock.advance(ttl - MS);
    assert_eq!(
        c.verify(&key, Privilege::Full).await["ok"],
        true,
        "within the TTL"
    );
    c.app.clock.advance(MS);
    assert_eq!(
        c.verify(&key, Privilege::Full).await,
        c.failure("Invalid key")
    );
}

#[tokio::test]
async fn cache_max_entries_bounds_the_cached_tokens() {
    let max_entries = 16;
    let c = counted_service(Some(cache(HOUR, HOUR, max_entries)), false).await;
    for attempt in 0..200 {
        assert_eq!(
            c.verify(&unknown_key(), Privilege::Full).await,
            c.failure("Invalid key")
        );
        let cached = c.service.cached_tokens();
        assert!(
            cached <= max_entries,
            "{cached} cached digests after {} unknown keys, bound {max_entries}",
            attempt + 1
        );
    }
}
