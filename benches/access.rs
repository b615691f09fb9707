//! The permission query (issue 14): parse and evaluate a 10-name query against 100 effective
//! permissions. Target ≤ 1 µs. Run: `cargo bench --bench access`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use iam_tokens::domain::access::{Grant, Grants, Query};

fn bench_access(c: &mut Criterion) {
    let mut granted: Vec<Grant> = (0..95)
        .map(|n| Grant::parse(&format!("service{}.resource{}.read", n % 10, n)).unwrap())
        .collect();
    for prefix in [
        "billing.*",
        "projects.*",
        "admin.audit.*",
        "teams.*",
        "ops.*",
    ] {
        granted.push(Grant::parse(prefix).unwrap());
    }
    let grants = Grants::new(granted);
    let text = "(service1.resource11.read AND service2.resource12.read) OR \
                (projects.write AND NOT admin.delete) OR billing.invoices.read AND \
                (teams.x OR ops.y OR service9.resource99.read) AND NOT nope.* AND service0.resource0.read";
    let names = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty() && !["AND", "OR", "NOT"].contains(w))
        .count();
    assert_eq!(names, 10, "a 10-name query");
    c.bench_function(
        "access: parse + evaluate, 10 names vs 100 permissions",
        |b| {
            b.iter(|| {
                Query::parse(black_box(text))
                    .unwrap()
                    .holds(black_box(&grants))
            })
        },
    );
    c.bench_function(
        "access: check the text directly (parse and evaluate in one pass)",
        |b| b.iter(|| Query::check(black_box(text), black_box(&grants)).unwrap()),
    );
    let query = Query::parse(text).unwrap();
    c.bench_function("access: evaluate only", |b| {
        b.iter(|| black_box(&query).holds(black_box(&grants)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_access
}
criterion_main!(benches);
