//! Which backend a `database.url` names, opened and migrated.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{
    BanStore, CopyStore, CredentialStore, MySqlStore, SessionStore, SqliteStore, StoreError,
    StoreOps, TokenStore,
};

/// Everything the service and the CLI need of a store.
pub trait Store: TokenStore + BanStore + CopyStore + CredentialStore + SessionStore {}

impl<T: TokenStore + BanStore + CopyStore + CredentialStore + SessionStore> Store for T {}

/// A parsed `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `mysql://user:password@host:port/database`
    MySql(String),
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db`
    Sqlite(PathBuf),
}

impl Location {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("mysql://") {
            return Ok(Self::MySql(url.to_owned()));
        }
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            _ => Err(StoreError::Url(
                "use mysql://user@host:port/database or sqlite://path/to/file.db".into(),
            )),
        }
    }
}

/// Creates the database if missing and applies pending migrations. Returns how many ran.
pub async fn migrate(url: &str) -> Result<usize, StoreError> {
    match Location::parse(url)? {
        Location::MySql(url) => MySqlStore::migrate(&url).await,
        Location::Sqlite(path) => tokio::task::spawn_blocking(move || SqliteStore::migrate(&path))
            .await
            .map_err(|err| StoreError::Runtime(err.to_string()))?,
    }
}

/// How a store is opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// MySQL pool size (SQLite has one connection).
    pub max_connections: usize,
    /// Apply pending MySQL migrations first (SQLite always migrates on open).
    pub migrate: bool,
    /// Bound on every store call (`database.timeout`).
    pub timeout: Duration,
    /// When changes of credits send threshold events (`webhooks.credits_low_*`).
    pub credit_alerts: crate::domain::webhook::CreditAlerts,
}

impl OpenOptions {
    /// `max_connections` connections, migrated, the default 2 s bound.
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            migrate: true,
            timeout: Duration::from_secs(2),
            credit_alerts: Default::default(),
        }
    }
}

/// Opens the store `url` names. MySQL is migrated when `migrate` is set (a database that does
/// not exist is created); SQLite is always migrated, since opening creates the file anyway.
pub async fn open(url: &str, options: OpenOptions) -> Result<Arc<dyn Store>, StoreError> {
    let OpenOptions {
        max_connections,
        migrate,
        timeout,
        credit_alerts,
    } = options;
    match Location::parse(url)? {
        Location::MySql(url) => {
            if migrate {
                MySqlStore::migrate(&url).await?;
            }
            // All MySQL I/O on this runtime, never on actix's per-worker runtimes.
            let backend = MySqlStore::connect_lazy(&url, max_connections, timeout)?;
            Ok(Arc::new(
                StoreOps::new(backend).with_credit_alerts(credit_alerts),
            ))
        }
        Location::Sqlite(path) => {
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, timeout))
                .await
                .map_err(|err| StoreError::Runtime(err.to_string()))??;
            Ok(Arc::new(
                StoreOps::new(store).with_credit_alerts(credit_alerts),
            ))
        }
    }
}
