//! Authorising an admin call (issue 26, SPEC B9): the scope check on precomputed grants, and
//! the whole authentication of a presented secret — a configured one, and a stored one found in
//! the credential cache (digest, checksum, cache lookup, last use recorded). No store round trip
//! in either. Run: `cargo bench --bench admin_auth`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::admins::{Admins, Caller, CreateCredential, CredentialCache};
use iam_tokens::config::AdminTokenSettings;
use iam_tokens::domain::access::scope::ScopeList;
use iam_tokens::domain::access::Scopes;
use iam_tokens::domain::credential::CredentialName;
use iam_tokens::domain::{Actor, Digest};
use iam_tokens::SystemClock;

fn bench_scope_check(c: &mut Criterion) {
    let support = ScopeList::preset("support").unwrap();
    let support = support.scopes();
    let root = Scopes::everything();
    c.bench_function("admin: scope check, support allows tokens.revoke", |b| {
        b.iter(|| black_box(support).allows(black_box("tokens.revoke")))
    });
    c.bench_function(
        "admin: scope check, support allows audit.read (*.read)",
        |b| b.iter(|| black_box(support).allows(black_box("audit.read"))),
    );
    c.bench_function("admin: scope check, support refuses tokens.create", |b| {
        b.iter(|| black_box(support).allows(black_box("tokens.create")))
    });
    c.bench_function("admin: scope check, root (*)", |b| {
        b.iter(|| black_box(&root).allows(black_box("credentials.write")))
    });
}

fn bench_authenticate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("iam_bench_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let configured_secret = "a configured admin secret of the bench";
    let configured = [AdminTokenSettings {
        name: "ops".into(),
        digest: Digest::of(configured_secret).as_str().to_owned(),
    }];
    let (admins, stored_secret) = runtime.block_on(async {
        let store = iam_tokens::store::open(&url, iam_tokens::store::OpenOptions::new(1))
            .await
            .expect("SQLite store in a temp dir");
        let admins = Admins::new(
            &configured,
            store,
            Arc::new(SystemClock),
            CredentialCache {
                ttl: Duration::from_secs(3600),
                negative_ttl: Duration::from_secs(3600),
            },
        );
        let root = Caller {
            actor: Actor::cli(None),
            scopes: Arc::new(Scopes::everything()),
        };
        let request = CreateCredential {
            name: CredentialName::parse("bench").unwrap(),
            scopes: ScopeList::preset("support").unwrap(),
            expires_at: None,
        };
        let (_, secret) = admins.create(&root, request).await.unwrap();
        let secret = secret.expose().to_owned();
        // The first call reads it from the store; every later one finds it cached.
        admins.authenticate(&secret, None).await.unwrap();
        (admins, secret)
    });
    let ip = Some("203.0.113.7".parse().unwrap());
    c.bench_function("admin: authenticate a configured secret", |b| {
        b.iter(|| runtime.block_on(admins.authenticate(black_box(configured_secret), ip)))
    });
    c.bench_function("admin: authenticate a stored credential (cached)", |b| {
        b.iter(|| runtime.block_on(admins.authenticate(black_box(&stored_secret), ip)))
    });
    c.bench_function(
        "admin: authenticate + scope check (cached stored credential)",
        |b| {
            b.iter(|| {
                let caller = runtime
                    .block_on(admins.authenticate(black_box(&stored_secret), ip))
                    .unwrap();
                caller.scopes.allows(black_box("tokens.revoke"))
            })
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_scope_check, bench_authenticate
}
criterion_main!(benches);
