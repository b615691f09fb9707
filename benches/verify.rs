//! In-process verification: a counting verification of a cached key (also of a key holding a
//! role, with a 3-name permission query), and a malformed key.
//! Needs MariaDB on 127.0.0.1:3306 (scripts/services.sh). Run: `cargo bench --bench verify`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::config::analytics::AnalyticsSettings;
use iam_tokens::domain::access::{Grant, NewRole, Query, RoleName, TokenAccess};
use iam_tokens::domain::{Privilege, TokenName, UserId};
use iam_tokens::http::request_series;
use iam_tokens::service::{CacheConfig, CreateToken, ServiceOptions, TokenService, VerifyOptions};
use iam_tokens::telemetry::Metrics;
use iam_tokens::SystemClock;
use mysql_async::prelude::*;

const SERVER: &str = "mysql://root@127.0.0.1:3306";

fn bench_verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!("iam_bench_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{SERVER}/{db}");
    let (service, key, role_key) = runtime.block_on(async {
        let store = iam_tokens::store::open(&url, iam_tokens::store::OpenOptions::new(4))
            .await
            .expect("MariaDB on 127.0.0.1:3306");
        let options = ServiceOptions {
            limit_tokens_per_user: 20,
            cache: Some(CacheConfig {
                ttl: Duration::from_secs(3600),
                negative_ttl: Duration::from_secs(3600),
                max_entries: 1_000_000,
                max_stale: None,
            }),
            batch_usage: true,
            flush_every: None,
            analytics: Some(AnalyticsSettings::default()),
            webhooks: Default::default(),
        };
        // Counting into metrics, as a service inside an Application does.
        let metrics = Metrics::new(request_series());
        let service = TokenService::observed(store, Arc::new(SystemClock), options, metrics);
        let request = CreateToken::new(
            UserId::new(1).unwrap(),
            Privilege::Full,
            TokenName::parse("bench").unwrap(),
        );
        let key = service.create(request).await.outcome.unwrap().raw_api_key;
        let options = VerifyOptions::new(Privilege::Full, None);
        assert!(
            service.verify(&key, options).await.is_ok(),
            "warm the cache"
        );
        // A key holding a role of three grants, as bench.sh's query route uses.
        let grants = ["projects.*", "billing.read", "reports.export"];
        let role = NewRole {
            name: RoleName::parse("pro").unwrap(),
            description: None,
            permissions: grants.iter().map(|g| Grant::parse(g).unwrap()).collect(),
        };
        service.create_role(role).await.unwrap();
        let access = TokenAccess::new([RoleName::parse("pro").unwrap()].into(), Default::default());
        let request = CreateToken::new(
            UserId::new(2).unwrap(),
            Privilege::Full,
            TokenName::parse("bench role").unwrap(),
        )
        .access(access);
        let role_key = service.create(request).await.outcome.unwrap().raw_api_key;
        assert!(service.verify(&role_key, options).await.is_ok());
        (service, key, role_key)
    });
    let options = VerifyOptions::new(Privilege::Full, Some("203.0.113.7".parse().unwrap()));
    c.bench_function("verify: counting, cached key", |b| {
        b.iter(|| runtime.block_on(service.verify(black_box(&key), options)))
    });
    let text = "projects.write AND billing.read AND NOT admin.delete";
    c.bench_function(
        "verify: counting, cached key, 3-name query parsed per call",
        |b| {
            b.iter(|| {
                let query = Query::parse(black_box(text)).unwrap();
                let options = options.permissions(&query);
                runtime.block_on(service.verify(black_box(&role_key), options))
            })
        },
    );
    let query = Query::parse(text).unwrap();
    c.bench_function(
        "verify: counting, cached key, 3-name query parsed once",
        |b| {
            let options = options.permissions(&query);
            b.iter(|| runtime.block_on(service.verify(black_box(&role_key), options)))
        },
    );
    let malformed = format!("{}0", &key[..key.len() - 1]);
    c.bench_function("verify: malformed key (bad checksum)", |b| {
        b.iter(|| runtime.block_on(service.verify(black_box(&malformed), options)))
    });
    c.bench_function("verify: garbage key", |b| {
        b.iter(|| runtime.block_on(service.verify(black_box("not-a-key"), options)))
    });
    runtime.block_on(async {
        let _ = service.flush_usage().await;
        let mut conn = mysql_async::Conn::from_url(SERVER).await.unwrap();
        conn.query_drop(format!("DROP DATABASE `{db}`"))
            .await
            .unwrap();
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_verify
}
criterion_main!(benches);
