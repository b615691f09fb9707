//! The MySQL/MariaDB backend through mysql_async. The session time zone is UTC; every query
//! is parameterised; multi-statement work runs in one READ COMMITTED transaction.

mod admin;
mod bans;
mod copy;
mod rows;
mod tokens;
mod usage;

use std::future::Future;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{
    IsolationLevel, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Transaction, TxOpts,
};
use serde_json::Value;

use super::{migrate, Audit, StoreError};
use crate::store::AuditKind;

/// MySQL error numbers after which a whole transaction is worth running again.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_DUP_ENTRY: u16 = 1062;
const TRANSACTION_ATTEMPTS: usize = 8;

const INSERT_EVENT: &str = "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?)";

/// The MySQL backend. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct MySqlStore {
    pool: Pool,
}

impl MySqlStore {
    /// Builds a lazy pool: no connection is made until the first query, so a service can start
    /// (and answer `/health`) while the database is down.
    pub fn connect_lazy(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let opts = parse_url(url)?;
        let constraints = PoolConstraints::new(0, max_connections.max(1))
            .ok_or_else(|| StoreError::Url("bad pool size".into()))?;
        let opts = OptsBuilder::from_opts(opts)
            .setup(vec!["SET time_zone = '+00:00'"])
            .client_found_rows(true)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            );
        Ok(Self {
            pool: Pool::new(opts),
        })
    }

    /// Creates the database if missing and applies pending migrations.
    pub async fn migrate(url: &str) -> Result<usize, StoreError> {
        let opts = parse_url(url)?;
        migrate::create_database_if_missing(&opts).await?;
        let mut conn = mysql_async::Conn::new(opts).await?;
        let ran = migrate::run(&mut conn).await;
        conn.disconnect().await?;
        ran
    }

    /// Closes every pooled connection.
    pub async fn close(self) -> Result<(), StoreError> {
        self.pool.disconnect().await?;
        Ok(())
    }

    /// Runs `op` in a READ COMMITTED transaction, again from the start after a deadlock or a
    /// lock-wait timeout (both roll the transaction back, so a retry sees a clean slate).
    async fn in_transaction<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: for<'t> Fn(&'t mut Transaction<'static>) -> BoxFut<'t, T>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut options = TxOpts::default();
            options.with_isolation_level(IsolationLevel::ReadCommitted);
            let mut tx = self.pool.start_transaction(options).await?;
            match op(&mut tx).await {
                Ok(TxEnd::Commit(value)) => {
                    tx.commit().await?;
                    return Ok(value);
                }
                Ok(TxEnd::Rollback(value)) => {
                    tx.rollback().await?;
                    return Ok(value);
                }
                Err(err) if is_retryable(&err) && attempt < TRANSACTION_ATTEMPTS => {
                    drop(tx);
                    tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

type BoxFut<'t, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<TxEnd<T>, mysql_async::Error>> + Send + 't>>;

/// How a transaction body ends.
enum TxEnd<T> {
    Commit(T),
    Rollback(T),
}

/// Writes one audit event inside the caller's transaction.
async fn write_event(
    tx: &mut Transaction<'static>,
    token_id: Option<u64>,
    event: AuditKind,
    audit: &Audit,
    detail: Value,
) -> Result<(), mysql_async::Error> {
    tx.exec_drop(
        INSERT_EVENT,
        (
            token_id,
            event.as_str(),
            audit.actor.to_string(),
            detail.to_string(),
            audit.at.naive_utc(),
        ),
    )
    .await
}

/// The URL as written: mysql_async would otherwise move from `127.0.0.1`/`localhost` to the
/// server's Unix socket after the first connection (`prefer_socket`), bypassing the host and
/// port the URL names (a proxy, a tunnel, TLS). `?prefer_socket=true` asks for that move.
fn parse_url(url: &str) -> Result<Opts, StoreError> {
    let opts =
        Opts::from_url(url).map_err(|_| StoreError::Url("not a valid mysql:// URL".into()))?;
    let asks_for_socket = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("prefer_socket=")));
    if asks_for_socket {
        return Ok(opts);
    }
    Ok(OptsBuilder::from_opts(opts).prefer_socket(false).into())
}

fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}

fn is_retryable(err: &mysql_async::Error) -> bool {
    matches!(
        server_code(err),
        Some(ER_LOCK_DEADLOCK | ER_LOCK_WAIT_TIMEOUT)
    )
}

/// Inside a transaction body only driver errors travel; a corrupt row becomes one.
fn corrupt(err: StoreError) -> mysql_async::Error {
    mysql_async::Error::Other(err.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn a_url_is_used_as_written_unless_it_asks_for_the_socket() {
        let tcp = parse_url("mysql://root@127.0.0.1:3306/db").expect("url");
        assert!(!tcp.prefer_socket(), "127.0.0.1 stays on TCP");
        let asked = parse_url("mysql://root@127.0.0.1:3306/db?prefer_socket=true").expect("url");
        assert!(asked.prefer_socket(), "?prefer_socket=true is honoured");
    }
}
