//! Permanent bans of the rate limiters, each change in the audit log.

use crate::store::sql::families::*;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{done, work, StoreOps};
use crate::domain::Actor;
use crate::store::backend::{Backend, TxEnd};
use crate::store::{Audit, AuditKind, BanRecord, BanStore, StoreError};

#[async_trait]
impl<B: Backend> BanStore for StoreOps<B> {
    async fn insert_ban(&self, ban: &BanRecord) -> Result<(), StoreError> {
        let ban = Arc::new(ban.clone());
        self.backend
            .write(work(move |tx| {
                let ban = ban.clone();
                Box::pin(async move {
                    if !tx.insert_ban(&ban).await? {
                        return Ok(TxEnd::Rollback(()));
                    }
                    let system = Audit {
                        actor: Actor::system(crate::domain::actor::job::LIMITER),
                        at: ban.created_at,
                    };
                    let detail =
                        json!({"limiter": ban.limiter, "key": ban.key, "reason": ban.reason});
                    tx.write_event(None, AuditKind::Banned, &system, detail)
                        .await?;
                    Ok(TxEnd::Commit(()))
                })
            }))
            .await
    }

    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move { done(tx.list_bans().await?) })
            }))
            .await
    }

    async fn delete_ban(
        &self,
        limiter: &str,
        key: &str,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let (limiter, key) = (Arc::<str>::from(limiter), Arc::<str>::from(key));
        let audit = Arc::new(audit.clone());
        self.backend
            .write(work(move |tx| {
                let (limiter, key, audit) = (limiter.clone(), key.clone(), audit.clone());
                Box::pin(async move {
                    if !tx.delete_ban(&limiter, &key).await? {
                        return Ok(TxEnd::Rollback(false));
                    }
                    let detail = json!({"limiter": &*limiter, "key": &*key});
                    tx.write_event(None, AuditKind::BanLifted, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(true))
                })
            }))
            .await
    }
}
