//! Disabling and enabling tokens and owners (SPEC B10): each change under the row's lock, with
//! its audit event in the same transaction; asking for the state already held changes nothing
//! and writes nothing.

use crate::store::sql::families::*;
use std::sync::Arc;

use serde_json::json;

use super::{work, StoreOps};
use crate::domain::state::{Disabled, StateReason};
use crate::domain::UserId;
use crate::store::backend::{Backend, Lock, Tx, TxEnd};
use crate::store::{Audit, AuditKind, BulkOp, StateChange, StateChanged, StoreError};

fn kind(change: &StateChange) -> AuditKind {
    match change.enabled {
        true => AuditKind::Enabled,
        false => AuditKind::Disabled,
    }
}

fn disabled(change: &StateChange, audit: &Audit) -> Disabled {
    Disabled {
        at: audit.at,
        by: audit.actor.clone(),
        reason: change.reason.clone(),
    }
}

fn reason(change: &StateChange) -> Option<&str> {
    change.reason.as_ref().map(StateReason::as_str)
}

/// Disables or enables one token inside the caller's transaction, with its event when it
/// changed; `None` when there is no such token.
async fn apply(
    tx: &mut dyn Tx,
    token_id: u64,
    change: &StateChange,
    audit: &Audit,
) -> Result<Option<StateChanged>, StoreError> {
    let Some(record) = tx.token_by_id(token_id, Lock::ForUpdate).await? else {
        return Ok(None);
    };
    let changed = match change.enabled {
        true => tx.enable_token(token_id).await?,
        false => tx.disable_token(token_id, &disabled(change, audit)).await?,
    };
    if !changed {
        return Ok(Some(StateChanged::default()));
    }
    let detail = json!({ "reason": reason(change) });
    tx.write_event(Some(token_id), kind(change), audit, detail)
        .await?;
    Ok(Some(StateChanged {
        changed,
        tokens: vec![record.digest],
    }))
}

impl<B: Backend> StoreOps<B> {
    pub(super) async fn token_state(
        &self,
        token_id: u64,
        change: &StateChange,
        audit: &Audit,
    ) -> Result<Option<StateChanged>, StoreError> {
        let (change, audit) = (Arc::new(change.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (change, audit) = (change.clone(), audit.clone());
                Box::pin(async move {
                    let applied = apply(tx, token_id, &change, &audit).await?;
                    Ok(match applied.as_ref().is_some_and(|a| a.changed) {
                        true => TxEnd::Commit(applied),
                        false => TxEnd::Rollback(applied),
                    })
                })
            }))
            .await
    }

    /// One chunk of a bulk action, in one transaction: each token revoked, disabled or enabled
    /// with its own event; `None` for an id that names no token.
    pub(super) async fn bulk_chunk(
        &self,
        op: BulkOp,
        ids: &[u64],
        reason: Option<StateReason>,
        audit: &Audit,
    ) -> Result<Vec<Option<StateChanged>>, StoreError> {
        let (ids, audit) = (Arc::new(ids.to_vec()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (ids, audit, reason) = (ids.clone(), audit.clone(), reason.clone());
                Box::pin(async move {
                    let mut done = Vec::with_capacity(ids.len());
                    for &id in ids.iter() {
                        done.push(match op {
                            BulkOp::Revoke => {
                                super::tokens::revoke_in(tx, id, &audit, reason.as_ref())
                                    .await?
                                    .map(|(record, changed)| StateChanged {
                                        changed,
                                        tokens: changed
                                            .then_some(record.digest)
                                            .into_iter()
                                            .collect(),
                                    })
                            }
                            BulkOp::Disable | BulkOp::Enable => {
                                let change = StateChange {
                                    enabled: op == BulkOp::Enable,
                                    reason: reason.clone(),
                                };
                                apply(tx, id, &change, &audit).await?
                            }
                        });
                    }
                    Ok(TxEnd::Commit(done))
                })
            }))
            .await
    }

    pub(super) async fn owner_state(
        &self,
        user: UserId,
        change: &StateChange,
        audit: &Audit,
    ) -> Result<StateChanged, StoreError> {
        let (change, audit) = (Arc::new(change.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (change, audit) = (change.clone(), audit.clone());
                Box::pin(async move {
                    tx.lock_owner(user).await?;
                    let changed = match change.enabled {
                        true => tx.enable_owner(user).await?,
                        false => tx.disable_owner(user, &disabled(&change, &audit)).await?,
                    };
                    if !changed {
                        return Ok(TxEnd::Rollback(StateChanged::default()));
                    }
                    let detail = json!({
                        "scope": "owner",
                        "userId": user,
                        "reason": reason(&change),
                    });
                    tx.write_owner_event(user, kind(&change), &audit, detail)
                        .await?;
                    let tokens = tx.list_valid(user, audit.at).await?;
                    Ok(TxEnd::Commit(StateChanged {
                        changed,
                        tokens: tokens.into_iter().map(|record| record.digest).collect(),
                    }))
                })
            }))
            .await
    }
}
