//! Races: the per-user limit holds under parallel creations, and no use is counted twice or
//! lost under parallel verifications (SPEC A5, A6 step 6).

use std::collections::BTreeSet;

use futures_util::future::join_all;
use iam_tokens::domain::{Privilege, TokenName};
use iam_tokens::service::CreateToken;

use crate::helpers::spawn_app;
use crate::helpers::uid;

const USER: u64 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creations_never_exceed_the_per_user_limit() {
    let app = spawn_app().await;
    for n in 0..19 {
        app.create_token(USER, Privilege::Full, &format!("existing {n}"))
            .await;
    }
    let creations = (0..20).map(|n| {
        let tokens = app.tokens.clone();
        let name = TokenName::parse(&format!("racer {n}")).expect("name");
        tokio::spawn(async move {
            tokens
                .create(CreateToken::new(uid(USER), Privilege::Full, name))
                .await
        })
    });
    let answers: Vec<_> = join_all(creations)
        .await
        .into_iter()
        .map(|joined| joined.expect("creation task"))
        .collect();

    let created = answers.iter().filter(|answer| answer.is_ok()).count();
    let refusals: Vec<String> = answers
        .iter()
        .filter_map(|answer| answer.reason().map(|reason| reason.as_str().into_owned()))
        .collect();
    assert_eq!(created, 1, "exactly one racer wins: {answers:?}");
    assert_eq!(
        refusals,
        vec!["You cannot have more then 20 valid tokens at a time".to_owned(); 19]
    );
    assert_eq!(app.valid_token_rows(USER).await, 20);
    assert_eq!(app.token_row_count().await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_verifications_each_count_exactly_once() {
    const USES: u64 = 500;
    let app = spawn_app().await;
    let created = app.create_token(USER, Privilege::Full, "busy").await;
    let id = app.token_id(&created.raw_public_id).await;
    let key = created.raw_api_key.as_str();

    let answers = join_all((0..USES).map(|_| app.verify(key, "full"))).await;

    let statuses: BTreeSet<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(
        statuses,
        BTreeSet::from([200]),
        "every verification succeeds"
    );
    let counts: BTreeSet<u64> = answers
        .iter()
        .filter_map(|answer| answer.data()["usageCount"].as_u64())
        .collect();
    assert_eq!(
        counts,
        (1..=USES).collect::<BTreeSet<u64>>(),
        "each answer saw its own use"
    );
    assert_eq!(app.usage_and_valid(id).await, (USES, true));
}
