//! Audit rows written before actors were typed (SPEC B9): the migration keeps what their old
//! `actor` text could tell, on MySQL and on SQLite.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, Utc};
use iam_tokens::store::{MIGRATIONS, SQLITE_MIGRATIONS};
use mysql_async::prelude::*;
use serde_json::{json, Value};

use crate::audit_trail::{actor, created, event, event_ids};
use crate::helpers::{drop_database, ops_admin, spawn_on, test_settings, SERVER_URL};
use crate::test_db::TestDb;
// ---- Rows written before actors were typed ----

/// A scratch database, dropped (MySQL) or deleted (SQLite) at the end, even on panic.
enum Scratch {
    MySql(String),
    Sqlite(PathBuf),
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match self {
            Self::MySql(name) => drop_database(name),
            Self::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}

/// A MySQL database at migration 6, migrated as `src/store/migrate.rs` does it.
async fn mysql_before_actors(name: &str) -> TestDb {
    let mut server = mysql_async::Conn::from_url(SERVER_URL)
        .await
        .expect("MariaDB");
    let create = format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
    server.query_drop(create).await.expect("create database");
    server.disconnect().await.expect("disconnect");
    let url = format!("{SERVER_URL}/{name}");
    let mut conn = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect");
    let table = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INT UNSIGNED NOT NULL PRIMARY KEY,
        name       VARCHAR(100) NOT NULL,
        applied_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
    ) ENGINE=InnoDB";
    conn.query_drop(table).await.expect("schema_migrations");
    assert_eq!(MIGRATIONS[6].0, 7, "migration 7 types the actors");
    for &(version, migration, sql) in &MIGRATIONS[..6] {
        // Statements end with `;` at a line end; comment lines are dropped.
        for chunk in sql.split(";\n") {
            let code: Vec<&str> = chunk
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect();
            let statement = code.join("\n");
            let statement = statement.trim().trim_end_matches(';');
            if !statement.is_empty() {
                conn.query_drop(statement).await.expect("old migration");
            }
        }
        let record = "INSERT INTO schema_migrations (version, name) VALUES (?, ?)";
        conn.exec_drop(record, (version, migration))
            .await
            .expect("recorded");
    }
    conn.disconnect().await.expect("disconnect");
    TestDb::MySql(mysql_async::Pool::new(url.as_str()))
}

/// A SQLite file at migration 3, migrated as `src/store/sqlite/mod.rs` does it.
fn sqlite_before_actors(path: &PathBuf) -> TestDb {
    std::fs::create_dir_all(path.parent().expect("a directory")).expect("directory");
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL)",
    )
    .expect("schema_migrations");
    assert_eq!(SQLITE_MIGRATIONS[3].0, 4, "migration 4 types the actors");
    for &(version, name, sql) in &SQLITE_MIGRATIONS[..3] {
        conn.execute_batch(sql).expect("old migration");
        let record =
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";
        let now = Utc::now().timestamp_millis();
        conn.execute(record, rusqlite::params![version, name, now])
            .expect("recorded");
    }
    TestDb::Sqlite(path.clone())
}

/// An old row: `(event, actor text, token, detail)`.
type OldRow = (&'static str, &'static str, Option<u64>, Value);
/// What the migration makes of it: `(actor, userId)`.
type Told = (Value, Option<u64>);

/// Old rows and what they told, in the order written.
fn old_rows(token: u64) -> Vec<(OldRow, Told)> {
    let owner_credits =
        json!({"scope": "owner", "userId": 9, "change": {"remaining": 3}, "remaining": 3});
    let token_credits = json!({"scope": "token", "change": {"remaining": 1}, "remaining": 1});
    let reason = "rejected again while blocked";
    let ban = json!({"limiter": "burst_limiter", "key": "127.0.0.1", "reason": reason});
    let made = created(42, "old", "full");
    let metadata = json!({"mode": "patch", "keys": ["a"]});
    let privilege = json!({"old": "full", "new": "demo"});
    let (t, config) = (Some(token), actor("config", Some("ops"), Some("ops")));
    let (user, cli) = (actor("user", Some("42"), None), actor("cli", None, None));
    let system = |job| actor("system", None, job);
    #[rustfmt::skip]
    let rows = vec![
        (("created",           "user:42",   t,    made),          (user, Some(42))),
        (("metadata_updated",  "admin:ops", t,    metadata),      (config.clone(), Some(42))),
        (("privilege_updated", "cli",       t,    privilege),     (cli, Some(42))),
        (("credits_updated",   "admin:ops", t,    token_credits), (config.clone(), Some(42))),
        (("expired",           "system",    t,    json!({})),     (system(Some("expiry")), Some(42))),
        (("banned",            "system",    None, ban),           (system(Some("limiter")), None)),
        (("credits_updated",   "admin:ops", None, owner_credits), (config, Some(9))),
        (("role_created",      "system",    None, json!({})),     (system(None), None)),
    ];
    rows
}

/// The time of old row `n`.
fn old_time(n: usize) -> NaiveDateTime {
    let base = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z").expect("time");
    (base.with_timezone(&Utc) + chrono::Duration::seconds(n as i64)).naive_utc()
}

/// Writes old-format rows into `db`, runs the real migration on `url`, and checks the rows,
/// the columns (`actor` gone) and, through a service on the database, the listed log.
async fn old_rows_keep_what_their_text_told(
    db: &TestDb,
    url: &str,
    db_name: &str,
    columns_sql: &str,
) {
    let insert =
        "INSERT INTO api_tokens (user_id, api_token, public_identifier, name, created_at) \
        VALUES (?, ?, ?, ?, ?)";
    db.exec(
        insert,
        (42, "a".repeat(64), "old-public-id", "old", old_time(0)).into(),
    )
    .await;
    let tokens: Vec<u64> = db.query("SELECT id FROM api_tokens", ().into()).await;
    let token = tokens[0];
    let rows = old_rows(token);
    let insert = "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
        VALUES (?, ?, ?, ?, ?)";
    for (n, ((kind, old, token, detail), _)) in rows.iter().enumerate() {
        let params = (*token, *kind, *old, detail.to_string(), old_time(n));
        db.exec(insert, params.into()).await;
    }
    let ran = iam_tokens::store::migrate(url).await.expect("migrates");
    assert!(
        ran >= 1,
        "the actors' migration and those after it ran: {ran}"
    );

    let columns: Vec<String> = db.query(columns_sql, ().into()).await;
    let expected = [
        "id",
        "token_id",
        "event",
        "detail",
        "created_at",
        "actor_type",
        "actor_id",
        "actor_name",
        "user_id",
    ];
    assert_eq!(columns, expected, "the actor column is gone");
    type Typed = (String, Option<String>, Option<String>, Option<u64>);
    let sql = "SELECT actor_type, actor_id, actor_name, user_id FROM audit_events ORDER BY id";
    let stored: Vec<Typed> = db.query(sql, ().into()).await;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let told: Vec<Typed> = rows
        .iter()
        .map(|(_, (who, user))| {
            (
                text(&who["type"]).unwrap_or_default(),
                text(&who["id"]),
                text(&who["name"]),
                *user,
            )
        })
        .collect();
    assert_eq!(stored, told, "the typed columns");

    let mut settings = test_settings(db_name);
    settings.database.url = iam_tokens::secret::Secret::new(url.to_owned());
    ops_admin(&mut settings);
    let app = spawn_on(settings, db_name.to_owned()).await;
    let ids = event_ids(&app).await;
    let mut events: Vec<Value> = rows
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(n, (((kind, _, token, detail), (who, user)), id))| {
            let at = iam_tokens::envelope::iso(&old_time(n).and_utc());
            event(id, kind, who, (token, user), detail, &at)
        })
        .collect();
    events.reverse();
    let answer = app.admin_get("/audit").await;
    answer.assert_is(
        200,
        &json!({"events": events, "nextCursor": null}),
        "the migrated log",
    );
}

#[tokio::test]
async fn old_mysql_rows_keep_what_their_actor_text_told() {
    crate::mysql_only!();
    let name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let _scratch = Scratch::MySql(name.clone());
    let db = mysql_before_actors(&name).await;
    let columns = "SELECT column_name FROM information_schema.columns \
        WHERE table_schema = DATABASE() AND table_name = 'audit_events' ORDER BY ordinal_position";
    let url = format!("{SERVER_URL}/{name}");
    old_rows_keep_what_their_text_told(&db, &url, &name, columns).await;
}

#[tokio::test]
async fn old_sqlite_rows_keep_what_their_actor_text_told() {
    let name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
    let path = std::env::temp_dir()
        .join("iam_tokens_tests")
        .join(format!("{name}.db"));
    let _scratch = Scratch::Sqlite(path.clone());
    let db = sqlite_before_actors(&path);
    let columns = "SELECT name FROM pragma_table_info('audit_events') ORDER BY cid";
    let url = format!("sqlite://{}", path.display());
    old_rows_keep_what_their_text_told(&db, &url, &name, columns).await;
}
