//! Admin console sessions (SPEC B14): each call one statement, outside any other transaction.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{done, work, StoreOps};
use crate::domain::session::ConsoleSession;
use crate::domain::Digest;
use crate::store::backend::Backend;
use crate::store::sql::families::*;
use crate::store::{SessionStore, StoreError};

#[async_trait]
impl<B: Backend> SessionStore for StoreOps<B> {
    async fn create_session(&self, session: &ConsoleSession) -> Result<(), StoreError> {
        let session = Arc::new(session.clone());
        self.backend
            .write(work(move |tx| {
                let session = session.clone();
                Box::pin(async move { done(tx.insert_session(&session).await?) })
            }))
            .await
    }

    async fn session(&self, id: &Digest) -> Result<Option<ConsoleSession>, StoreError> {
        let id = Arc::new(id.clone());
        self.backend
            .read(work(move |tx| {
                let id = id.clone();
                Box::pin(async move { done(tx.session(&id).await?) })
            }))
            .await
    }

    async fn touch_session(&self, id: &Digest, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = Arc::new(id.clone());
        self.backend
            .write(work(move |tx| {
                let id = id.clone();
                Box::pin(async move { done(tx.touch_session(&id, at).await?) })
            }))
            .await
    }

    async fn end_session(&self, id: &Digest) -> Result<(), StoreError> {
        let id = Arc::new(id.clone());
        self.backend
            .write(work(move |tx| {
                let id = id.clone();
                Box::pin(async move { done(tx.delete_session(&id).await?) })
            }))
            .await
    }

    async fn end_sessions_of(&self, credential: &Digest) -> Result<u64, StoreError> {
        let credential = Arc::new(credential.clone());
        self.backend
            .write(work(move |tx| {
                let credential = credential.clone();
                Box::pin(async move { done(tx.delete_sessions_of(&credential).await?) })
            }))
            .await
    }

    async fn prune_sessions(
        &self,
        created_before: DateTime<Utc>,
        seen_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move { done(tx.prune_sessions(created_before, seen_before).await?) })
            }))
            .await
    }
}
