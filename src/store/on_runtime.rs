//! Runs every call of a store on one tokio runtime. actix-web gives each worker its own
//! current-thread runtime, and a mysql_async pool must not be shared across runtimes: its
//! sockets and background tasks belong to the runtime that made them and die with it (the
//! last usage flush at shutdown would find the pool gone). Wrapped, all database I/O lives on
//! the runtime that lives as long as the process.
//!
//! Every call is also bounded (`database.timeout`): mysql_async has no read or write timeout,
//! so a database that accepts connections and then goes silent would hold requests forever.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::runtime::Handle;

use super::{
    Audit, AuditEvent, BanRecord, BanStore, CopyStore, CreateOutcome, MetadataChange,
    MetadataOutcome, NewToken, RotateOutcome, Rotation, RowCounts, Snapshot, StoreError,
    TokenCounts, TokenQuery, TokenRecord, TokenStore, UsageDelta,
};
use crate::token::{Digest, IpRestriction, Privilege, UserId};

/// `inner`, with every call sent to `home` and given up after `timeout`.
#[derive(Clone)]
pub struct OnRuntime<S> {
    inner: S,
    home: Handle,
    timeout: Duration,
}

impl<S: Clone + Send + Sync + 'static> OnRuntime<S> {
    pub fn new(inner: S, home: Handle, timeout: Duration) -> Self {
        Self {
            inner,
            home,
            timeout,
        }
    }

    async fn run<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(S) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = self.home.spawn(call(self.inner.clone()));
        match tokio::time::timeout(self.timeout, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => Err(StoreError::Runtime(err.to_string())),
            Err(_) => {
                // Dropping the call's future drops its connection (a transaction left open
                // is rolled back by the server); nothing was confirmed, so nothing is assumed.
                task.abort();
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }
}

#[async_trait]
impl<S: TokenStore + Clone> TokenStore for OnRuntime<S> {
    async fn create_token(
        &self,
        new: &NewToken,
        limit: u32,
        audit: &Audit,
    ) -> Result<CreateOutcome, StoreError> {
        let (new, audit) = (new.clone(), audit.clone());
        self.run(|s| async move { s.create_token(&new, limit, &audit).await })
            .await
    }

    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError> {
        let digest = digest.clone();
        self.run(|s| async move { s.find_by_digest(&digest).await })
            .await
    }

    async fn find_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError> {
        self.run(|s| async move { s.find_by_id(token_id).await })
            .await
    }

    async fn find_for_owner(
        &self,
        user_id: UserId,
        token_id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.run(|s| async move { s.find_for_owner(user_id, token_id).await })
            .await
    }

    async fn expire(&self, token_id: u64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.run(|s| async move { s.expire(token_id, at).await })
            .await
    }

    async fn record_usage(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        self.run(|s| async move { s.record_usage(token_id, uses, at).await })
            .await
    }

    async fn apply_usage(&self, batch_id: &str, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        let (batch_id, deltas) = (batch_id.to_owned(), deltas.to_vec());
        self.run(|s| async move { s.apply_usage(&batch_id, &deltas).await })
            .await
    }

    async fn revoke(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
        audit: &Audit,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let (digest, audit) = (digest.clone(), audit.clone());
        self.run(|s| async move { s.revoke(&digest, privilege, &audit).await })
            .await
    }

    async fn revoke_by_id(
        &self,
        token_id: u64,
        audit: &Audit,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError> {
        let audit = audit.clone();
        self.run(|s| async move { s.revoke_by_id(token_id, &audit).await })
            .await
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let rotation = rotation.clone();
        self.run(|s| async move { s.rotate(&rotation).await }).await
    }

    async fn update_ip_restriction(
        &self,
        user_id: UserId,
        digest: &Digest,
        ips: &IpRestriction,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let (digest, ips, audit) = (digest.clone(), ips.clone(), audit.clone());
        self.run(|s| async move {
            s.update_ip_restriction(user_id, &digest, &ips, &audit)
                .await
        })
        .await
    }

    async fn update_privilege(
        &self,
        user_id: UserId,
        digest: &Digest,
        privilege: Privilege,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let (digest, audit) = (digest.clone(), audit.clone());
        self.run(|s| async move {
            s.update_privilege(user_id, &digest, privilege, &audit)
                .await
        })
        .await
    }

    async fn update_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError> {
        let (change, audit) = (change.clone(), audit.clone());
        self.run(|s| async move { s.update_metadata(token_id, &change, &audit).await })
            .await
    }

    async fn counts(&self, user_id: UserId, now: DateTime<Utc>) -> Result<TokenCounts, StoreError> {
        self.run(|s| async move { s.counts(user_id, now).await })
            .await
    }

    async fn list_valid(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.run(|s| async move { s.list_valid(user_id, now).await })
            .await
    }

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let query = query.clone();
        self.run(|s| async move { s.list_tokens(&query).await })
            .await
    }

    async fn events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.run(|s| async move { s.events(token_id).await }).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|s| async move { s.ping().await }).await
    }
}

#[async_trait]
impl<S: CopyStore + Clone> CopyStore for OnRuntime<S> {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        self.run(|s| async move { s.export().await }).await
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let snapshot = snapshot.clone();
        self.run(|s| async move { s.import(&snapshot).await }).await
    }

    async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        self.run(|s| async move { s.row_counts().await }).await
    }
}

#[async_trait]
impl<S: BanStore + Clone> BanStore for OnRuntime<S> {
    async fn insert_ban(&self, ban: &BanRecord) -> Result<(), StoreError> {
        let ban = ban.clone();
        self.run(|s| async move { s.insert_ban(&ban).await }).await
    }

    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        self.run(|s| async move { s.list_bans().await }).await
    }

    async fn delete_ban(
        &self,
        limiter: &str,
        key: &str,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let (limiter, key, audit) = (limiter.to_owned(), key.to_owned(), audit.clone());
        self.run(|s| async move { s.delete_ban(&limiter, &key, &audit).await })
            .await
    }
}
