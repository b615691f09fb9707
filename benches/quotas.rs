//! The customer limit + credit step of a counting verification without Redis (SPEC B5, issue
//! 16; target ≤ 300 ns): `LocalHolder::spend` of one `Spend` against two limits (one of the
//! token, one of its owner) and the token's credits, already leased in (the pure step); and the
//! whole `Quotas::charge` a verification makes (the plan's charges, the `Spend`, the spend, the
//! report), polled once with `now_or_never`: it never waits, since the pool holds credits.
//! Limits and credits are huge, so every call is allowed. The plan is read back from an SQLite
//! store in a temp dir (deleted at the end): no MariaDB, no Redis.
//! Run: `cargo bench --bench quotas`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::domain::quota::{
    CreditChange, LimitName, QuotaPlan, RateLimit, RateLimits, Remaining, Subject, Usage, MAX_COST,
    MAX_CREDITS, MAX_LIMIT,
};
use iam_tokens::domain::{Privilege, TokenName, UserId};
use iam_tokens::quotas::{Answer, Holder, LocalHolder, QuotaDecision, Quotas, Spend};
use iam_tokens::service::{CreateToken, TokenService};
use iam_tokens::store::{Lease, QuotaChange};
use iam_tokens::{Clock, SystemClock};

const OWNER: u64 = 7;
const MINUTE_MS: u64 = 60_000;

/// One auto-applied limit of 10^9 uses a minute: no bench run comes near it.
fn huge_limit(name: &str) -> RateLimits {
    let name = LimitName::parse(name).unwrap();
    RateLimits::new(vec![
        RateLimit::new(name, MAX_LIMIT, MINUTE_MS, true).unwrap()
    ])
    .unwrap()
}

fn bench_quotas(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("iam_bench_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let owner = UserId::new(OWNER).unwrap();
    let (store, token, plan) = runtime.block_on(async {
        let store = iam_tokens::store::open(&url, iam_tokens::store::OpenOptions::new(1))
            .await
            .expect("SQLite store in a temp dir");
        let service = TokenService::new(store.clone(), Arc::new(SystemClock), 20);
        let request = CreateToken::new(owner, Privilege::Full, TokenName::parse("bench").unwrap());
        let token = service.create(request).await.outcome.unwrap().token_id;
        // As the HTTP bench sets them: a token limit, an owner limit of another name (the same
        // name would be shadowed by the token's), and 2^53 credits on the token.
        let changed = |change: QuotaChange<_>| matches!(change, QuotaChange::Changed { .. });
        let limits = huge_limit("requests");
        let set = service.set_ratelimits(Subject::Token(token), &limits).await;
        assert!(changed(set.unwrap()), "token limits");
        let limits = huge_limit("owner_requests");
        let set = service.set_ratelimits(Subject::Owner(owner), &limits).await;
        assert!(changed(set.unwrap()), "owner limits");
        let credits = CreditChange::new(Some(Remaining::Set(MAX_CREDITS)), None).unwrap();
        let set = service
            .change_credits(Subject::Token(token), &credits)
            .await;
        assert!(changed(set.unwrap()), "token credits");
        // The plan as the verification cache builds it from the stored record.
        let record = store.find_by_id(token).await.unwrap().expect("the token");
        let plan = QuotaPlan::of(&record.quota, &record.owner_quota).expect("a plan");
        assert_eq!(plan.limits.len(), 2, "two limits: {plan:?}");
        assert!(plan.token_credits.is_some() && plan.owner_credits.is_none());
        (store, token, plan)
    });
    let now = SystemClock.now();
    let usage = Usage::default();

    // The pure step: a holder whose token pool already holds a huge lease.
    let holder = LocalHolder::default();
    let lease = Lease {
        granted: u64::MAX / 2,
        generation: 1,
        refilled_at: now,
        remaining: 0,
    };
    holder.add_lease(owner, Subject::Token(token), &lease, now.timestamp_millis());
    let charges = plan.charges(&usage).unwrap();
    let spend = Spend::new(token, owner, charges, plan.credit_pools(), usage.cost, now);
    assert!(matches!(holder.spend(&spend), Answer::Done { .. }));
    c.bench_function(
        "LocalHolder::spend (token + owner limit, token credits)",
        |b| b.iter(|| black_box(holder.spend(black_box(&spend)))),
    );

    // The whole charge. A store lease grants at most 1,000 credits, or a charge's cost when it
    // is more: one charge of cost 10^9 by a plan that also claims owner credits (the owner has
    // none, so it is refused and spends nothing) leaves 10^9 credits leased in the token pool.
    // Metrics count leases only: none happens in the measured calls.
    let quotas = std::sync::Arc::new(Quotas::new(
        store.clone(),
        Holder::Local(LocalHolder::default()),
        iam_tokens::telemetry::Metrics::disabled(),
    ));
    let leasing = QuotaPlan {
        limits: Vec::new(),
        token_credits: Some(None),
        owner_credits: Some(None),
    };
    let big = Usage::new(MAX_COST, Vec::new()).unwrap();
    let leased = runtime.block_on(quotas.charge(token, owner, &leasing, &big, now));
    assert!(
        matches!(leased, Ok(QuotaDecision::UsageExceeded(_))),
        "the leasing charge: {leased:?}"
    );
    let charge = || now_or_never(quotas.charge(token, owner, black_box(&plan), &usage, now));
    assert!(matches!(charge(), Ok(QuotaDecision::Allowed(_))));
    c.bench_function("Quotas::charge (token + owner limit, token credits)", |b| {
        b.iter(|| black_box(charge()))
    });
    let last = charge();
    assert!(matches!(last, Ok(QuotaDecision::Allowed(_))), "{last:?}");

    drop((quotas, store));
    let _ = std::fs::remove_dir_all(&dir);
}

/// With the credits leased in, a charge does no I/O: its future is ready when first polled.
fn now_or_never<T>(charge: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(charge).expect("no store call with credits leased in")
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_quotas
}
criterion_main!(benches);
