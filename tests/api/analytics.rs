use crate::helpers::{spawn_admin_app_with, spawn_app};
use iam_tokens::domain::Privilege;

#[tokio::test]
async fn probe_sync_flush_race() {
    let app = spawn_app().await;
    let created = app.create_token(7, Privilege::Full, "ci").await;
    let mut misses = 0;
    for n in 1..=200u64 {
        assert_eq!(app.verify(&created.raw_api_key, "full").await.status, 200);
        app.tokens.flush_usage().await.expect("flush");
        let stored: u64 = app
            .query_one("SELECT CAST(COALESCE(SUM(total), 0) AS SIGNED) FROM analytics_minute", ())
            .await;
        if stored != n {
            misses += 1;
        }
    }
    let _ = spawn_admin_app_with(|_| {});
    panic!("misses {misses} of 200");
}
