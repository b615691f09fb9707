//! Migrations: the database is created, every migration applied once, even by racing instances.

use iam_tokens::store::{MySqlStore, MIGRATIONS};
use mysql_async::prelude::*;

use crate::helpers::SERVER_URL;

/// Drops its database at the end, even on panic.
struct FreshDatabase(String);

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        crate::helpers::drop_database(&self.0);
    }
}

#[tokio::test]
async fn eight_instances_migrating_a_missing_database_at_once_apply_each_migration_once() {
    let db = FreshDatabase(format!("iam_test_{}", uuid::Uuid::new_v4().simple()));
    let url = format!("{SERVER_URL}/{}", db.0);
    let runs = futures_util::future::join_all((0..8).map(|_| MySqlStore::migrate(&url))).await;
    let applied: usize = runs
        .into_iter()
        .map(|ran| ran.expect("every instance migrates without error"))
        .sum();
    assert_eq!(
        applied,
        MIGRATIONS.len(),
        "each migration ran exactly once in all"
    );

    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let versions: Vec<u32> = conn
        .query("SELECT version FROM schema_migrations ORDER BY version")
        .await
        .unwrap();
    let expected: Vec<u32> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(versions, expected);
    conn.disconnect().await.unwrap();
    assert_eq!(
        MySqlStore::migrate(&url).await.unwrap(),
        0,
        "a second run applies nothing"
    );
}
