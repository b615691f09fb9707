//! Every store operation, written once over a `Backend`: what each reads and writes, which
//! audit event it records, what a refusal rolls back. The backends hold only their SQL.

mod access;
mod analytics;
mod bans;
mod copy;
mod credentials;
mod quota;
mod rotation;
mod sessions;
mod state;
mod tokens;
mod usage;
mod webhooks;

use crate::store::sql::families::*;
use futures_util::future::BoxFuture;

use super::backend::{Backend, Tx, TxEnd, Work};
use super::{Audit, AuditKind, StoreError};
use crate::domain::Actor;

/// The store on one backend: `TokenStore`, `BanStore` and `CopyStore` for the service.
pub struct StoreOps<B> {
    backend: B,
    /// When a change of credits sends `credits.low` / `credits.exhausted` (SPEC B12).
    credit_alerts: crate::domain::webhook::CreditAlerts,
}

impl<B: Backend> StoreOps<B> {
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            credit_alerts: Default::default(),
        }
    }

    pub fn with_credit_alerts(mut self, alerts: crate::domain::webhook::CreditAlerts) -> Self {
        self.credit_alerts = alerts;
        self
    }
}

/// A unit of work from a closure (the bound lets the closure's signature be inferred).
fn work<T, F>(body: F) -> Work<T>
where
    F: for<'t> FnMut(&'t mut dyn Tx) -> BoxFuture<'t, Result<TxEnd<T>, StoreError>>
        + Send
        + 'static,
{
    Box::new(body)
}

/// A read's value as a unit of work's end.
fn done<T>(value: T) -> Result<TxEnd<T>, StoreError> {
    Ok(TxEnd::Commit(value))
}

/// Marks the owner's expired tokens invalid (each an `expired` event by `system`) and counts
/// the valid rest, under the owner's lock: the first step of a creation or rotation.
async fn expire_and_count(
    tx: &mut dyn Tx,
    user_id: crate::domain::UserId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, StoreError> {
    tx.lock_owner(user_id).await?;
    let system = Audit {
        actor: Actor::system(crate::domain::actor::job::EXPIRY),
        at: now,
    };
    for id in tx.expired_valid_ids(user_id, now).await? {
        if tx.invalidate(id).await? {
            let detail = serde_json::json!({});
            tx.write_event(Some(id), AuditKind::Expired, &system, detail)
                .await?;
        }
    }
    tx.count_valid(user_id).await
}
