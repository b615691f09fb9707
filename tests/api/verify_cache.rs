//! The verification cache seen from the store's side: garbage never reaches it, an unknown key
//! reaches it once per negative TTL, a known key once per TTL, every change made through the
//! service is seen by the very next verification, and changes made elsewhere within the TTL.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iam_tokens::domain::access::{AccessChange, NewRole, RoleChange, RoleName, RoleRecord};
use iam_tokens::domain::analytics::Granularity;
use iam_tokens::domain::quota::{Changed, CreditChange, Quota, RateLimits, Subject};
use iam_tokens::domain::rollup::{Dimension, RollupFilter, RollupSum};
use iam_tokens::domain::state::StateReason;
use iam_tokens::domain::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DisabledReason, EndpointChange,
    EndpointRecord, EndpointSecret, NewEndpoint, OutboxEvent,
};
use iam_tokens::domain::{
    Digest, GeneratedKey, IpRestriction, Prefix, Privilege, PublicIdentifier, TokenName, UserId,
};
use iam_tokens::service::{
    CacheConfig, CreateToken, ManagerAction, RotateToken, ServiceOptions, TokenService,
    VerifyOptions,
};
use iam_tokens::store::{AccessOutcome, AccessStore, RoleCreation, RoleDeletion, RoleUpdate};
use iam_tokens::store::{AnalyticsStore, Lease, QuotaChange, QuotaStore, UsageBatch};
use iam_tokens::store::{
    Audit, AuditEvent, AuditQuery, BulkOp, CreateOutcome, GraceOutcome, GraceRotation,
    MetadataChange, MetadataOutcome, NewToken, RotateOutcome, Rotation, StateChange, StateChanged,
    Store, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStore,
};
use iam_tokens::store::{RetryOutcome, WebhookStore};
use serde_json::Value;

use crate::helpers::{envelope_json, failure_json, ms, spawn_app, uid, TestApp};

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
    inner: Arc<dyn Store>,
    pub(crate) calls: Calls,
    apply_failure: AtomicU8,
}

impl CountingStore {
    pub(crate) fn fail_apply(&self, failure: ApplyFailure) {
        self.apply_failure.store(failure as u8, Ordering::SeqCst);
    }

    /// A lost connection, when `method` is `apply_usage` and `failure` is the one asked for.
    fn fail_if(&self, method: &str, failure: ApplyFailure) -> Result<(), StoreError> {
        if method == "apply_usage" && self.apply_failure.load(Ordering::SeqCst) == failure as u8 {
            let lost = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            return Err(StoreError::Database(lost.into()));
        }
        Ok(())
    }
}

/// `Calls` (one counter per method) and `TokenStore` and `AccessStore` for `CountingStore` by
/// delegation.
macro_rules! counting_store {
    (
        { $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)* }
        { $($access:ident($($a_arg:ident: $a_ty:ty),*) -> $a_ret:ty;)* }
    ) => {
        #[derive(Debug, Default)]
        pub(crate) struct Calls {
            $(pub(crate) $name: AtomicUsize,)*
            $(pub(crate) $access: AtomicUsize,)*
        }

        impl Calls {
            pub(crate) fn total(&self) -> usize {
                0 $(+ self.$name.load(Ordering::SeqCst))* $(+ self.$access.load(Ordering::SeqCst))*
            }
        }

        #[async_trait]
        impl TokenStore for CountingStore {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                self.calls.$name.fetch_add(1, Ordering::SeqCst);
                self.fail_if(stringify!($name), ApplyFailure::BeforeWriting)?;
                let answer = self.inner.$name($($arg),*).await?;
                self.fail_if(stringify!($name), ApplyFailure::AfterWriting)?;
                Ok(answer)
            })*
        }

        #[async_trait]
        impl AccessStore for CountingStore {
            $(async fn $access(&self, $($a_arg: $a_ty),*) -> Result<$a_ret, StoreError> {
                self.calls.$access.fetch_add(1, Ordering::SeqCst);
                self.inner.$access($($a_arg),*).await
            })*
        }
    };
}

counting_store! {
    {
    create_token(new: &NewToken, limit: u32, audit: &Audit) -> CreateOutcome;
    find_by_digest(digest: &Digest) -> Option<TokenRecord>;
    find_by_id(token_id: u64) -> Option<TokenRecord>;
    find_for_owner(user_id: UserId, token_id: u64) -> Option<TokenRecord>;
    expire(token_id: u64, at: DateTime<Utc>) -> bool;
    record_usage(token_id: u64, uses: u64, at: DateTime<Utc>) -> Option<(u64, DateTime<Utc>)>;
    apply_usage(batch: &UsageBatch) -> ();
    revoke(digest: &Digest, privilege: Option<Privilege>, audit: &Audit) -> Option<TokenRecord>;
    revoke_by_id(token_id: u64, audit: &Audit) -> Option<(TokenRecord, bool)>;
    rotate(rotation: &Rotation) -> RotateOutcome;
    update_ip_restriction(user_id: UserId, digest: &Digest, ips: &IpRestriction, audit: &Audit)
        -> bool;
    update_privilege(user_id: UserId, digest: &Digest, privilege: Privilege, audit: &Audit) -> bool;
    update_metadata(token_id: u64, change: &MetadataChange, audit: &Audit) -> MetadataOutcome;
    counts(user_id: UserId, now: DateTime<Utc>) -> TokenCounts;
    list_valid(user_id: UserId, now: DateTime<Utc>) -> Vec<TokenRecord>;
    list_tokens(query: &TokenQuery) -> Vec<TokenRecord>;
    events(token_id: u64) -> Vec<AuditEvent>;
    audit(query: &AuditQuery) -> Vec<AuditEvent>;
    set_token_state(token_id: u64, change: &StateChange, audit: &Audit) -> Option<StateChanged>;
    rotate_with_grace(rotation: &GraceRotation) -> GraceOutcome;
    bulk(op: BulkOp, ids: &[u64], reason: Option<StateReason>, audit: &Audit) -> Vec<Option<StateChanged>>;
    set_owner_state(user: UserId, change: &StateChange, audit: &Audit) -> StateChanged;
    ping() -> ();
    }
    {
    create_role(role: &NewRole, audit: &Audit) -> RoleCreation;
    roles() -> Vec<RoleRecord>;
    role(name: &RoleName) -> Option<RoleRecord>;
    update_role(name: &RoleName, change: &RoleChange, audit: &Audit) -> RoleUpdate;
    delete_role(name: &RoleName, force: bool, audit: &Audit) -> RoleDeletion;
    change_access(token_id: u64, change: &AccessChange, audit: &Audit) -> AccessOutcome;
    }
}

/// Customer limits and credits pass straight through (not counted).
#[async_trait]
impl AnalyticsStore for CountingStore {
    async fn rollup_sums(
        &self,
        filter: &RollupFilter,
        dimension: Dimension,
        per_bucket: bool,
    ) -> Result<Vec<RollupSum>, StoreError> {
        self.inner.rollup_sums(filter, dimension, per_bucket).await
    }

    async fn prune_rollup(
        &self,
        granularity: Granularity,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner.prune_rollup(granularity, before, limit).await
    }
}

#[async_trait]
impl WebhookStore for CountingStore {
    async fn create_endpoint(
        &self,
        endpoint: &NewEndpoint,
        audit: &Audit,
    ) -> Result<EndpointRecord, StoreError> {
        self.inner.create_endpoint(endpoint, audit).await
    }
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.inner.endpoints().await
    }
    async fn endpoint(&self, endpoint: u64) -> Result<Option<EndpointRecord>, StoreError> {
        self.inner.endpoint(endpoint).await
    }
    async fn update_endpoint(
        &self,
        endpoint: u64,
        change: &EndpointChange,
        audit: &Audit,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        self.inner.update_endpoint(endpoint, change, audit).await
    }
    async fn delete_endpoint(&self, endpoint: u64, audit: &Audit) -> Result<bool, StoreError> {
        self.inner.delete_endpoint(endpoint, audit).await
    }
    async fn rotate_endpoint_secret(
        &self,
        endpoint: u64,
        secret: &EndpointSecret,
        overlap_until: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        self.inner
            .rotate_endpoint_secret(endpoint, secret, overlap_until, audit)
            .await
    }
    async fn test_delivery(
        &self,
        endpoint: u64,
        audit: &Audit,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.inner.test_delivery(endpoint, audit).await
    }
    async fn write_threshold_event(&self, event: &OutboxEvent) -> Result<bool, StoreError> {
        self.inner.write_threshold_event(event).await
    }
    async fn webhook_work_waiting(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.webhook_work_waiting(now).await
    }
    async fn fan_out(&self, limit: u32, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.fan_out(limit, at).await
    }
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ClaimedDelivery, EndpointRecord)>, StoreError> {
        self.inner.claim_deliveries(now, lease_until, limit).await
    }
    async fn finish_attempt(
        &self,
        delivery: u64,
        endpoint: u64,
        attempt: &AttemptRecord,
        disable: Option<DisabledReason>,
        failing_limit: chrono::Duration,
    ) -> Result<(), StoreError> {
        self.inner
            .finish_attempt(delivery, endpoint, attempt, disable, failing_limit)
            .await
    }
    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.inner.deliveries(query).await
    }
    async fn retry_delivery(
        &self,
        delivery: u64,
        at: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError> {
        self.inner.retry_delivery(delivery, at).await
    }
    async fn pending_deliveries(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.pending_deliveries().await
    }
    async fn prune_events(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_events(before, limit).await
    }
    async fn tokens_expiring(
        &self,
        after: (DateTime<Utc>, u64),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(u64, DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        self.inner.tokens_expiring(after, until, limit).await
    }
}

#[async_trait]
impl QuotaStore for CountingStore {
    async fn set_limits(
        &self,
        subject: Subject,
        limits: &RateLimits,
        audit: &Audit,
    ) -> Result<QuotaChange<()>, StoreError> {
        self.inner.set_limits(subject, limits, audit).await
    }

    async fn change_credits(
        &self,
        subject: Subject,
        change: &CreditChange,
        audit: &Audit,
    ) -> Result<QuotaChange<Changed>, StoreError> {
        self.inner.change_credits(subject, change, audit).await
    }

    async fn quota(&self, subject: Subject) -> Result<Option<Quota>, StoreError> {
        self.inner.quota(subject).await
    }

    async fn token_credits(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, iam_tokens::domain::quota::Credits>, StoreError>
    {
        self.inner.token_credits(ids).await
    }

    async fn lease(
        &self,
        subject: Subject,
        at_least: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.lease(subject, at_least, now).await
    }

    async fn deposit(
        &self,
        subject: Subject,
        generation: u64,
        amount: u64,
    ) -> Result<bool, StoreError> {
        self.inner.deposit(subject, generation, amount).await
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
    let inner = iam_tokens::store::open(
        &app.database_url(),
        iam_tokens::store::OpenOptions {
            migrate: false,
            ..iam_tokens::store::OpenOptions::new(4)
        },
    )
    .await
    .expect("store");
    let store = Arc::new(CountingStore {
        inner,
        calls: Calls::default(),
        apply_failure: AtomicU8::new(ApplyFailure::Never as u8),
    });
    let options = ServiceOptions {
        limit_tokens_per_user: 20,
        cache,
        batch_usage,
        flush_every: None,
        analytics: None,
        webhooks: Default::default(),
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
    /// A token for `user_id` named `ci` (or as `request` says): raw key, public id and id.
    pub(crate) async fn token(
        &self,
        user_id: UserId,
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

    /// Verifies `key` as `full` and expects success.
    async fn accepts(&self, key: &str, case: &str) {
        let answer = self.verify(key, Privilege::Full).await;
        assert_eq!(answer["ok"], true, "{case}: {answer}");
    }

    /// Verifies `key` as `full` and expects exactly this failure envelope.
    async fn rejects(&self, key: &str, reason: &str, case: &str) {
        let expected = failure_json(&self.app.clock_iso(), reason);
        assert_eq!(self.verify(key, Privilege::Full).await, expected, "{case}");
    }

    fn finds(&self) -> usize {
        self.store.calls.find_by_digest.load(Ordering::SeqCst)
    }
}

fn unknown_key() -> String {
    let key = GeneratedKey::generate(&Prefix::default());
    key.raw.expose().to_owned()
}

const HOUR: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

#[tokio::test]
async fn malformed_keys_and_bad_checksums_never_reach_the_store() {
    let c = counted_service(Some(cache(HOUR, HOUR, 1000)), false).await;
    let key = unknown_key();
    let (random, checksum) = (
        key.split('_').nth(1).expect("random"),
        &key[key.len() - 8..],
    );
    let mut bad_checksum = key.clone();
    let last = bad_checksum.pop().expect("non-empty key");
    bad_checksum.push(if last == '0' { '1' } else { '0' });
    let cases = [
        (String::new(), "empty"),
        ("garbage".to_owned(), "one part"),
        (format!("api_{random}"), "no checksum"),
        (
            format!("api_{}_{checksum}", &random[1..]),
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
            c.rejects(&presented, "Invalid key", case).await;
        }
    }
    let mut as_digest = VerifyOptions::new(Privilege::Full, None);
    as_digest.is_internal_hash = true;
    let answer = envelope_json(&c.service.verify("not-a-digest", as_digest).await);
    assert_eq!(answer, failure_json(&c.app.clock_iso(), "Invalid key"));
    assert_eq!(c.store.calls.total(), 0, "no store call for garbage");
}

#[tokio::test]
async fn an_unknown_key_reaches_the_store_once_per_negative_ttl() {
    let negative_ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(HOUR, negative_ttl, 1000)), false).await;
    let key = unknown_key();
    for _ in 0..100 {
        c.rejects(&key, "Invalid key", "unknown").await;
    }
    assert_eq!(c.finds(), 1, "100 attempts, one lookup");
    c.app.clock.advance(negative_ttl - MS);
    c.rejects(&key, "Invalid key", "just before the negative TTL")
        .await;
    assert_eq!(
        c.finds(),
        1,
        "still remembered just before the negative TTL"
    );
    c.app.clock.advance(MS);
    for _ in 0..100 {
        c.rejects(&key, "Invalid key", "after the negative TTL")
            .await;
    }
    assert_eq!(
        c.finds(),
        2,
        "one more lookup once the negative TTL has passed"
    );
    assert_eq!(c.store.calls.total(), 2, "nothing but the two lookups");
}

#[tokio::test]
async fn a_known_key_reaches_the_store_once_per_ttl() {
    let ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(ttl, HOUR, 1000)), true).await;
    let (key, _, id) = c.token(uid(7), None).await;
    for n in 1..=1000u64 {
        let answer = c.verify(&key, Privilege::Full).await;
        assert_eq!(answer["data"]["usageCount"], n, "{answer}");
    }
    assert_eq!(c.finds(), 1, "1000 verifications, one lookup");
    let writes = |calls: &Calls| {
        calls.record_usage.load(Ordering::SeqCst) + calls.apply_usage.load(Ordering::SeqCst)
    };
    assert_eq!(writes(&c.store.calls), 0, "counted in memory");
    c.app.clock.advance(ttl - MS);
    c.accepts(&key, "just before the TTL").await;
    assert_eq!(c.finds(), 1, "still fresh just before the TTL");
    c.app.clock.advance(MS);
    let answer = c.verify(&key, Privilege::Full).await;
    assert_eq!(answer["data"]["usageCount"], 1002, "{answer}");
    assert_eq!(c.finds(), 2, "read again once the TTL has passed");
    c.service.flush_usage().await.expect("flush");
    assert_eq!(c.app.usage_and_valid(id).await, (1002, true));
    assert_eq!(writes(&c.store.calls), 1, "one batched write");
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
    user_id: UserId,
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
            envelope_json(&s.rotate(RotateToken::new(key, Privilege::Full, name)).await)
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
    for (user_id, mutation) in (100..).map(uid).zip(mutations) {
        let case = format!("{mutation:?}");
        let (key, public_id, _) = c.token(user_id, None).await;
        let finds = c.finds();
        c.accepts(&key, &case).await;
        c.accepts(&key, &case).await;
        assert_eq!(c.finds(), finds + 1, "{case}: the token is cached");
        let done = mutate(&c, mutation, user_id, &key, &public_id).await;
        assert_eq!(done["ok"], true, "{case}: {done}");
        let reason = match mutation {
            IpUpdate | ManagerIpUpdate => "Invalid Host",
            _ => "Invalid key",
        };
        c.rejects(&key, reason, &case).await;
        match mutation {
            Rotate | ManagerRotate => {
                let new_key = done["data"]["newRawToken"].as_str().expect("new key");
                c.accepts(new_key, &format!("{case}: the new key")).await;
            }
            PrivilegeUpdate | ManagerPrivilegeUpdate => {
                let answer = c.verify(&key, Privilege::Demo).await;
                assert_eq!(answer["data"]["providedPrivilege"], "demo", "{case}");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn expiry_is_seen_by_the_very_next_verification_of_a_cached_token() {
    let c = counted_service(Some(cache(HOUR, HOUR, 1000)), false).await;
    let name = TokenName::parse("ci").expect("name");
    let request = CreateToken::new(uid(7), Privilege::Full, name).lifetime(ms(60_000));
    let (key, _, id) = c.token(uid(7), Some(request)).await;
    c.accepts(&key, "fresh").await;
    c.app.clock.advance(Duration::from_secs(60) - MS);
    c.accepts(&key, "just before expiry").await;
    assert_eq!(c.finds(), 1, "the token is cached");
    c.app.clock.advance(MS);
    c.rejects(&key, "Token expired", "at expiry").await;
    assert_eq!(
        c.app.usage_and_valid(id).await,
        (2, false),
        "marked invalid"
    );
    c.rejects(&key, "Invalid key", "after expiry").await;
}

#[tokio::test]
async fn a_change_made_behind_the_services_back_is_seen_once_the_ttl_has_passed() {
    let ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(ttl, HOUR, 1000)), false).await;
    let (key, _, id) = c.token(uid(7), None).await;
    c.accepts(&key, "cached").await;
    let revoke = "UPDATE api_tokens SET valid = 0 WHERE id = ?";
    c.app.execute(revoke, (id,)).await; // as another instance would
    c.app.clock.advance(ttl - MS);
    c.accepts(&key, "within the TTL").await;
    c.app.clock.advance(MS);
    c.rejects(&key, "Invalid key", "once the TTL has passed")
        .await;
}

#[tokio::test]
async fn cache_max_entries_bounds_the_cached_tokens() {
    let max_entries = 16;
    let c = counted_service(Some(cache(HOUR, HOUR, max_entries)), false).await;
    // A flood of made-up keys, all within one instant of the clock.
    for attempt in 1..=200 {
        c.rejects(&unknown_key(), "Invalid key", "made-up key")
            .await;
        let cached = c.service.cached_tokens();
        assert!(
            cached <= max_entries,
            "{cached} cached digests after {attempt} unknown keys, bound {max_entries}"
        );
    }
}

/// Cache lifetimes are intervals on the monotonic clock: a wall-clock step forward does not
/// expire an entry, a step back does not keep one past its TTL.
#[tokio::test]
async fn cache_lifetimes_ignore_steps_of_the_wall_clock() {
    let ttl = Duration::from_secs(5);
    let c = counted_service(Some(cache(ttl, HOUR, 1000)), true).await;
    let (key, _, _) = c.token(uid(7), None).await;
    c.accepts(&key, "first sight").await;
    assert_eq!(c.finds(), 1);
    c.app.clock.step_wall(chrono::Duration::hours(1));
    c.accepts(&key, "after the wall clock jumped an hour ahead")
        .await;
    assert_eq!(c.finds(), 1, "no time passed: the entry is still fresh");
    c.app.clock.step_wall(chrono::Duration::days(-1));
    c.app.clock.advance(ttl);
    c.accepts(&key, "a TTL later, the wall clock a day behind")
        .await;
    assert_eq!(c.finds(), 2, "the TTL passed: read again");
}
