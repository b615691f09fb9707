//! Forward-only migrations from `sql/mysql/`, applied under a named lock so that several
//! instances starting at once apply each migration exactly once.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::StoreError;

/// `(version, name, sql)`, in order. A landed file is never edited; add a new one instead.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "api_tokens",
        include_str!("../../sql/mysql/0001_api_tokens.sql"),
    ),
    (
        2,
        "rate_limit_bans",
        include_str!("../../sql/mysql/0002_rate_limit_bans.sql"),
    ),
    (
        3,
        "usage_flushes",
        include_str!("../../sql/mysql/0003_usage_flushes.sql"),
    ),
    (
        4,
        "metadata_and_audit",
        include_str!("../../sql/mysql/0004_metadata_and_audit.sql"),
    ),
    (5, "access", include_str!("../../sql/mysql/0005_access.sql")),
    (6, "quotas", include_str!("../../sql/mysql/0006_quotas.sql")),
    (
        7,
        "credentials_and_actors",
        include_str!("../../sql/mysql/0007_credentials_and_actors.sql"),
    ),
    (
        8,
        "token_state",
        include_str!("../../sql/mysql/0008_token_state.sql"),
    ),
    (
        9,
        "rotation_grace",
        include_str!("../../sql/mysql/0009_rotation_grace.sql"),
    ),
    (
        10,
        "analytics",
        include_str!("../../sql/mysql/0010_analytics.sql"),
    ),
    (
        11,
        "webhooks",
        include_str!("../../sql/mysql/0011_webhooks.sql"),
    ),
    (
        12,
        "console_sessions",
        include_str!("../../sql/mysql/0012_console_sessions.sql"),
    ),
];

const LOCK_NAME: &str = "iam_tokens_migrations";
const LOCK_TIMEOUT_SECS: u32 = 60;

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT UNSIGNED NOT NULL PRIMARY KEY,
    name       VARCHAR(100) NOT NULL,
    applied_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB";

/// Creates the database named in `url` when it does not exist yet.
pub async fn create_database_if_missing(opts: &Opts) -> Result<(), StoreError> {
    let Some(name) = opts.db_name() else {
        return Err(StoreError::Url("the URL names no database".into()));
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Url(
            "database names may use only letters, digits and '_'".into(),
        ));
    }
    let server_only = OptsBuilder::from_opts(opts.clone()).db_name(None::<String>);
    let mut conn = Conn::new(server_only).await?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))
    .await?;
    conn.disconnect().await?;
    Ok(())
}

/// Applies every migration not yet recorded in `schema_migrations`. Returns how many ran.
pub async fn run(conn: &mut Conn) -> Result<usize, StoreError> {
    let locked: Option<i64> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (LOCK_NAME, LOCK_TIMEOUT_SECS))
        .await?;
    if locked != Some(1) {
        return Err(StoreError::Url(
            "timed out waiting for another instance's migrations".into(),
        ));
    }
    let result = apply_pending(conn).await;
    conn.exec_drop("SELECT RELEASE_LOCK(?)", (LOCK_NAME,))
        .await?;
    result
}

async fn apply_pending(conn: &mut Conn) -> Result<usize, StoreError> {
    conn.query_drop(CREATE_MIGRATIONS_TABLE).await?;
    let applied: Vec<u32> = conn.query("SELECT version FROM schema_migrations").await?;
    let mut ran = 0;
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        for statement in statements(sql) {
            conn.query_drop(statement)
                .await
                .map_err(|source| StoreError::Migration { version, source })?;
        }
        conn.exec_drop(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (version, name),
        )
        .await?;
        tracing::info!(version, name, "applied migration");
        ran += 1;
    }
    Ok(ran)
}

/// Splits a migration file into statements at `;` line ends, dropping comment-only chunks.
fn statements(sql: &str) -> impl Iterator<Item = String> + '_ {
    sql.split(";\n").filter_map(|chunk| {
        let code: Vec<&str> = chunk
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect();
        let statement = code.join("\n");
        let statement = statement.trim().trim_end_matches(';');
        (!statement.is_empty()).then(|| statement.to_owned())
    })
}
