//! Disabling and enabling tokens and owners (SPEC B10): each change under the row's lock, with
//! its audit event in the same transaction; asking for the state already held changes nothing
//! and writes nothing.

use crate::store::sql::families::*;
use std::sync::Arc;

use serde_json::json;

use super::{work, StoreOps};
use crate::domain::state::{Disabled, StateReason};
use crate::domain::UserId;
use crate::store::backend::{Backend, Lock, TxEnd};
use crate::store::{Audit, AuditKind, StateChange, StateChanged, StoreError};

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
                    let Some(record) = tx.token_by_id(token_id, Lock::ForUpdate).await? else {
                        return Ok(TxEnd::Rollback(None));
                    };
                    let changed = match change.enabled {
                        true => tx.enable_token(token_id).await?,
                        false => {
                            tx.disable_token(token_id, &disabled(&change, &audit))
                                .await?
                        }
                    };
                    if !changed {
                        return Ok(TxEnd::Rollback(Some(StateChanged::default())));
                    }
                    let detail = json!({ "reason": reason(&change) });
                    tx.write_event(Some(token_id), kind(&change), &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(Some(StateChanged {
                        changed,
                        tokens: vec![record.digest],
                    })))
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
