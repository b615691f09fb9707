//! The MySQL/MariaDB backend through mysql_async. The session time zone is UTC; every query
//! is parameterised; multi-statement work runs in one READ COMMITTED transaction.

mod tx;

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, TxOpts};
use tokio::runtime::Handle;

use super::backend::{Backend, TxEnd, Work};
use super::{migrate, StoreError};
use tx::MySqlTx;

/// MySQL error numbers after which a whole transaction is worth running again.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_DUP_ENTRY: u16 = 1062;
const TRANSACTION_ATTEMPTS: usize = 8;
/// Prepared statements each connection keeps (its least recently used beyond are closed):
/// the fixed statements are a few dozen, and the multi-row ones one per row count in use.
const STATEMENTS_KEPT: usize = 256;

/// The MySQL backend. Cheap to clone (the pool is shared).
///
/// actix-web gives each worker its own current-thread runtime, and a mysql_async pool must not
/// be shared across runtimes: its sockets and background tasks belong to the runtime that made
/// them and die with it. So every unit of work runs on `home`, the runtime the store was opened
/// on (the one that lives as long as the process), and is given up after `timeout`: mysql_async
/// has no read or write timeout, and a database that goes silent must not hold requests.
#[derive(Clone)]
pub struct MySqlStore {
    pool: Pool,
    home: Handle,
    timeout: Duration,
}

impl MySqlStore {
    /// Builds a lazy pool on the current runtime: no connection is made until the first query,
    /// so a service can start (and answer `/health`) while the database is down.
    pub fn connect_lazy(
        url: &str,
        max_connections: usize,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let home = Handle::try_current()
            .map_err(|_| StoreError::Runtime("the MySQL store needs a tokio runtime".into()))?;
        let opts = parse_url(url)?;
        let constraints = PoolConstraints::new(0, max_connections.max(1))
            .ok_or_else(|| StoreError::Url("bad pool size".into()))?;
        // A connection keeps its session and its prepared statements for its whole life: it
        // is set up once (UTC, READ COMMITTED for every transaction) and never reset when it
        // goes back to the pool (mysql_async's default reset would prepare every statement
        // again and rerun the setup on each checkout). A transaction left open is rolled
        // back by the pool; a unit of work given up mid-statement drops its connection.
        let opts = OptsBuilder::from_opts(opts)
            .setup(vec![
                "SET time_zone = '+00:00'",
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            ])
            .client_found_rows(true)
            .stmt_cache_size(STATEMENTS_KEPT)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(false)
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            );
        Ok(Self {
            pool: Pool::new(opts),
            home,
            timeout,
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

    /// Runs `call` on the home runtime, bounded by the timeout.
    async fn on_home<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = self.home.spawn(call);
        match tokio::time::timeout(self.timeout, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => Err(StoreError::Runtime(err.to_string())),
            Err(_) => {
                // Dropping the work drops its connection (an open transaction is rolled back
                // by the server); nothing was confirmed, so nothing is assumed.
                task.abort();
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }
}

#[async_trait]
impl Backend for MySqlStore {
    async fn read<T: Send + 'static>(&self, mut work: Work<T>) -> Result<T, StoreError> {
        let pool = self.pool.clone();
        self.on_home(async move {
            let mut tx = MySqlTx::Read(pool.get_conn().await?);
            match work(&mut tx).await? {
                TxEnd::Commit(value) | TxEnd::Rollback(value) => Ok(value),
            }
        })
        .await
    }

    /// READ COMMITTED (the session's, set once per connection: `START TRANSACTION` is the
    /// only statement a transaction adds besides `COMMIT`); run again from the start after a
    /// deadlock or a lock-wait timeout (both roll the transaction back, so a retry sees a
    /// clean slate).
    async fn write<T: Send + 'static>(&self, mut work: Work<T>) -> Result<T, StoreError> {
        let pool = self.pool.clone();
        self.on_home(async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let options = TxOpts::default();
                let mut tx = MySqlTx::Write(pool.start_transaction(options).await?);
                let ended = work(&mut tx).await;
                let MySqlTx::Write(transaction) = tx else {
                    return Err(StoreError::Runtime("a write lost its transaction".into()));
                };
                match ended {
                    Ok(TxEnd::Commit(value)) => {
                        transaction.commit().await?;
                        return Ok(value);
                    }
                    Ok(TxEnd::Rollback(value)) => {
                        transaction.rollback().await?;
                        return Ok(value);
                    }
                    Err(StoreError::Database(err))
                        if is_retryable(&err) && attempt < TRANSACTION_ATTEMPTS =>
                    {
                        drop(transaction);
                        tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
                    }
                    Err(err) => return Err(err),
                }
            }
        })
        .await
    }
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
