//! Customer limits and credits in the store conformance suite (`store_conformance.rs` runs each
//! scenario on MySQL and on SQLite): stored and read back with the token and its owner, leased
//! out and given back exactly, voided by a new generation, carried by rotation, exact under
//! concurrency, kept across a restart and refilled at UTC midnight.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::join_all;
use iam_tokens::clock::ManualClock;
use iam_tokens::domain::quota::{
    CreditChange, Credits, Interval, LimitName, Quota, RateLimit, RateLimits, Refill, Remaining,
    Subject,
};
use iam_tokens::domain::{Digest, Privilege, TokenName};
use iam_tokens::service::{CreateToken, RotateToken, TokenService, VerifyOptions, VerifyOutcome};
use iam_tokens::store::{QuotaChange, StoreError};

use crate::helpers::uid;
use crate::store_conformance::{audit, Backend};

fn limits(specs: &[(&str, u64, u64)]) -> RateLimits {
    let limits = specs
        .iter()
        .map(|(name, limit, ms)| {
            RateLimit::new(LimitName::parse(name).unwrap(), *limit, *ms, true).unwrap()
        })
        .collect();
    RateLimits::new(limits).unwrap()
}

fn credits(remaining: u64, refill: Option<Refill>) -> Credits {
    Credits::new(remaining, refill, Utc::now()).unwrap()
}

/// A service on `backend` with a clock of its own, at `start`.
fn service_at(
    backend: &Backend,
    start: DateTime<Utc>,
) -> (TokenService, std::sync::Arc<ManualClock>) {
    let clock = std::sync::Arc::new(ManualClock::new(start));
    (
        TokenService::new(backend.store.clone(), clock.clone(), 20),
        clock,
    )
}

async fn create_with(service: &TokenService, user: u64, quota: Quota) -> (String, u64) {
    let name = TokenName::parse("metered").unwrap();
    let request = CreateToken::new(uid(user), Privilege::Full, name).quota(quota);
    let created = service.create(request).await.outcome.expect("created");
    (created.raw_api_key, created.token_id)
}

async fn verify(service: &TokenService, key: &str) -> Result<VerifyOutcome, StoreError> {
    service
        .verify_outcome(key, VerifyOptions::new(Privilege::Full, None))
        .await
}

async fn stored_remaining(backend: &Backend, subject: Subject) -> u64 {
    let quota = backend
        .store
        .quota(subject)
        .await
        .unwrap()
        .expect("subject");
    quota.credits.expect("credits").remaining
}

pub(crate) async fn quotas_round_trip_and_leases_are_exact(backend: Backend) {
    let (service, _) = service_at(&backend, Utc::now());
    let quota = Quota {
        limits: limits(&[("requests", 100, 60_000)]),
        credits: Some(credits(1_000, None)),
    };
    let (key, id) = create_with(&service, 5, quota).await;
    let owner = Subject::Owner(uid(5));
    let set = backend
        .store
        .set_limits(owner, &limits(&[("daily", 10_000, 86_400_000)]), &audit())
        .await
        .unwrap();
    let QuotaChange::Changed { tokens, .. } = set else {
        panic!("an owner always exists")
    };
    assert_eq!(
        tokens,
        vec![Digest::of(&key)],
        "its valid tokens, to forget"
    );
    let record = backend.store.find_by_id(id).await.unwrap().unwrap();
    assert_eq!(record.quota.limit_names(), ["requests"]);
    assert_eq!(record.owner_quota.limit_names(), ["daily"]);
    assert_eq!(record.quota.credits.map(|c| c.remaining), Some(1_000));

    let token = Subject::Token(id);
    let lease = backend
        .store
        .lease(token, 1, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (lease.granted, lease.remaining, lease.generation),
        (125, 875, 0)
    );
    assert_eq!(stored_remaining(&backend, token).await, 875);
    assert!(backend.store.deposit(token, 0, 25).await.unwrap());
    assert_eq!(stored_remaining(&backend, token).await, 900);

    let set = CreditChange::new(Some(Remaining::Set(50)), None).unwrap();
    backend
        .store
        .change_credits(token, &set, &audit())
        .await
        .unwrap();
    assert!(
        !backend.store.deposit(token, 0, 25).await.unwrap(),
        "credits leased under an older generation are void"
    );
    let down = CreditChange::new(Some(Remaining::Decrement(70)), None).unwrap();
    let changed = backend
        .store
        .change_credits(token, &down, &audit())
        .await
        .unwrap();
    let QuotaChange::Changed { value, .. } = changed else {
        panic!("the token exists")
    };
    assert_eq!((value.credits.remaining, value.shortfall), (0, 20));
    let missing = backend
        .store
        .change_credits(Subject::Token(999), &down, &audit())
        .await;
    assert!(matches!(missing.unwrap(), QuotaChange::NotFound));
    let events: Vec<String> = backend
        .store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.event)
        .collect();
    assert_eq!(events, ["created", "credits_updated", "credits_updated"]);
}

pub(crate) async fn rotation_carries_limits_and_what_remains_of_the_credits(backend: Backend) {
    let (service, _) = service_at(&backend, Utc::now());
    let quota = Quota {
        limits: limits(&[("requests", 100, 60_000)]),
        credits: Some(credits(10, None)),
    };
    let (key, old) = create_with(&service, 6, quota).await;
    for _ in 0..3 {
        assert!(matches!(
            verify(&service, &key).await.unwrap(),
            VerifyOutcome::Valid(_)
        ));
    }
    let name = TokenName::parse("metered").unwrap();
    let rotated = service
        .rotate(RotateToken::new(key.clone(), Privilege::Full, name))
        .await
        .outcome
        .expect("rotated");
    let new = backend
        .store
        .find_by_digest(&Digest::of(&rotated.new_raw_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.quota.limit_names(), ["requests"]);
    assert_eq!(
        stored_remaining(&backend, Subject::Token(new.id)).await,
        7,
        "the 7 left, leased or not, belong to the new key"
    );
    let quota = backend
        .store
        .quota(Subject::Token(old))
        .await
        .unwrap()
        .unwrap();
    assert!(quota.is_empty(), "the old key keeps nothing");
    for _ in 0..7 {
        let outcome = verify(&service, &rotated.new_raw_token).await.unwrap();
        assert!(matches!(outcome, VerifyOutcome::Valid(_)), "{outcome:?}");
    }
    let spent = verify(&service, &rotated.new_raw_token).await.unwrap();
    assert!(
        matches!(spent, VerifyOutcome::UsageExceeded(_)),
        "{spent:?}"
    );
}

pub(crate) async fn credits_are_exact_under_concurrency_and_survive_a_restart(backend: Backend) {
    let (service, _) = service_at(&backend, Utc::now());
    let (key, id) = create_with(
        &service,
        7,
        Quota {
            credits: Some(credits(40, None)),
            ..Quota::default()
        },
    )
    .await;
    let calls = (0..100).map(|_| verify(&service, &key));
    let outcomes = join_all(calls).await;
    let valid = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(VerifyOutcome::Valid(_))))
        .count();
    let exceeded = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(VerifyOutcome::UsageExceeded(_))))
        .count();
    assert_eq!((valid, exceeded), (40, 60));

    let (key, id_2) = create_with(
        &service,
        7,
        Quota {
            credits: Some(credits(100, None)),
            ..Quota::default()
        },
    )
    .await;
    for _ in 0..7 {
        assert!(matches!(
            verify(&service, &key).await.unwrap(),
            VerifyOutcome::Valid(_)
        ));
    }
    assert_eq!(
        stored_remaining(&backend, Subject::Token(id_2)).await,
        88,
        "a lease of an eighth (12) is out"
    );
    service.shutdown().await;
    assert_eq!(stored_remaining(&backend, Subject::Token(id_2)).await, 93);
    assert_eq!(stored_remaining(&backend, Subject::Token(id)).await, 0);
}

pub(crate) async fn credits_refill_at_the_utc_boundary(backend: Backend) {
    let start = Utc.with_ymd_and_hms(2026, 12, 6, 23, 59, 0).unwrap();
    let (service, clock) = service_at(&backend, start);
    let daily = Refill::new(Interval::Daily, 3, None).unwrap();
    let (key, id) = create_with(
        &service,
        8,
        Quota {
            credits: Some(credits(2, Some(daily))),
            ..Quota::default()
        },
    )
    .await;
    for _ in 0..2 {
        assert!(matches!(
            verify(&service, &key).await.unwrap(),
            VerifyOutcome::Valid(_)
        ));
    }
    let spent = verify(&service, &key).await.unwrap();
    let VerifyOutcome::UsageExceeded(report) = spent else {
        panic!("{spent:?}")
    };
    assert_eq!(report.retry_after_ms, Some(60_000), "until midnight");
    clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        assert!(matches!(
            verify(&service, &key).await.unwrap(),
            VerifyOutcome::Valid(_)
        ));
    }
    let spent = verify(&service, &key).await.unwrap();
    assert!(
        matches!(spent, VerifyOutcome::UsageExceeded(_)),
        "{spent:?}"
    );
    let view = service
        .quota_view(Subject::Token(id))
        .await
        .unwrap()
        .unwrap();
    let credits = view.credits.expect("credits");
    assert_eq!(credits.remaining, 0);
    assert_eq!(
        credits.refilled_at,
        Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap()
    );
    assert_eq!(
        credits.next_refill,
        Some(Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap())
    );
}

pub(crate) async fn a_busy_pool_leases_ahead_and_a_clean_stop_gives_everything_back(
    backend: Backend,
) {
    let (service, _) = service_at(&backend, Utc::now());
    let quota = Quota {
        credits: Some(credits(512, None)),
        ..Quota::default()
    };
    let (key, id) = create_with(&service, 9, quota).await;
    let token = Subject::Token(id);
    for _ in 0..48 {
        assert!(matches!(
            verify(&service, &key).await.unwrap(),
            VerifyOutcome::Valid(_)
        ));
    }
    assert_eq!(
        stored_remaining(&backend, token).await,
        448,
        "one lease of 64"
    );
    // The 49th leaves 15 of 64: the next lease (an eighth of 448) is taken in the background.
    assert!(matches!(
        verify(&service, &key).await.unwrap(),
        VerifyOutcome::Valid(_)
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stored_remaining(&backend, token).await != 392 {
        assert!(std::time::Instant::now() < deadline, "no lease ahead");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.shutdown().await;
    assert_eq!(
        stored_remaining(&backend, token).await,
        512 - 49,
        "what was leased and not spent is back"
    );
}
