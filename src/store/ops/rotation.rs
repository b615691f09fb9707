//! Rotation with a grace period (SPEC B10), in one transaction: the new key takes everything
//! of the old one (name, privilege, prefix, IPs, expiry, metadata, roles, permissions, limits
//! and credits); the old one verifies until its grace ends, charging the new one's limits and
//! credits (one budget per lineage), then expires as any token does.

use crate::store::sql::families::*;
use std::sync::Arc;

use serde_json::json;

use super::access::attach_access;
use super::{expire_and_count, work, StoreOps};
use crate::domain::record::TokenDraft;
use crate::envelope::iso;
use crate::store::backend::{Backend, Lock, TxEnd};
use crate::store::{AuditKind, GraceOutcome, GraceRotation, StoreError, TokenRecord};

impl<B: Backend> StoreOps<B> {
    pub(super) async fn grace_rotation(
        &self,
        rotation: &GraceRotation,
    ) -> Result<GraceOutcome, StoreError> {
        let rotation = Arc::new(rotation.clone());
        self.backend
            .write(work(move |tx| {
                let rotation = rotation.clone();
                Box::pin(async move {
                    let at = rotation.audit.at;
                    let Some(mut old) = tx.token_by_id(rotation.old_id, Lock::ForUpdate).await?
                    else {
                        return Ok(TxEnd::Rollback(GraceOutcome::NotFound));
                    };
                    if !old.valid {
                        return Ok(TxEnd::Rollback(GraceOutcome::Revoked));
                    }
                    if old.is_expired_at(at) {
                        return Ok(TxEnd::Rollback(GraceOutcome::Expired));
                    }
                    // The old key of a lineage in grace is on its way out: rotate its
                    // replacement instead.
                    if let Some(replaced) = old.replaced {
                        return Ok(TxEnd::Rollback(GraceOutcome::InProgress {
                            older: None,
                            replaced_by: Some(replaced.by),
                        }));
                    }
                    let older = tx.in_grace_for(old.id, at).await?;
                    if let Some(&first) = older.first() {
                        if !rotation.force {
                            return Ok(TxEnd::Rollback(GraceOutcome::InProgress {
                                older: Some(first),
                                replaced_by: None,
                            }));
                        }
                        for id in &older {
                            tx.end_grace(*id, at).await?;
                        }
                    }
                    // The old key stays valid during the grace: there must be room for one more.
                    if expire_and_count(tx, old.user_id, at).await? > u64::from(rotation.limit) {
                        return Ok(TxEnd::Rollback(GraceOutcome::LimitReached));
                    }
                    attach_access(tx, std::slice::from_mut(&mut old)).await?;
                    let draft = TokenDraft {
                        digest: rotation.digest.clone(),
                        public_identifier: rotation.public_identifier.clone(),
                        prefix: old.prefix.clone(),
                        name: old.name.clone(),
                        created_at: at,
                        expires_at: old.expires_at,
                        ip_restriction: old.ip_restriction.clone(),
                        privilege: old.privilege,
                    };
                    let new = draft.owned_by(old.user_id, old.metadata.clone(), old.access.clone());
                    let Some(new_id) = tx.insert_token(&new).await? else {
                        return Ok(TxEnd::Rollback(GraceOutcome::CreateFailed));
                    };
                    tx.insert_access(new_id, &new.access).await?;
                    tx.move_quota(old.id, new_id).await?;
                    let ends =
                        (at + rotation.grace).min(old.expires_at.unwrap_or(at + rotation.grace));
                    tx.mark_replaced(old.id, new_id, at, ends).await?;
                    let reason = rotation.reason.as_ref().map(|r| r.as_str());
                    let mut detail = new.created_detail();
                    detail["rotatedFrom"] = json!(old.id);
                    detail["graceEndsAt"] = json!(iso(&ends));
                    tx.write_event(Some(new_id), AuditKind::Created, &rotation.audit, detail)
                        .await?;
                    let detail = json!({
                        "newTokenId": new_id,
                        "graceEndsAt": iso(&ends),
                        "forced": !older.is_empty(),
                        "reason": reason,
                    });
                    tx.write_event(Some(old.id), AuditKind::Rotated, &rotation.audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(GraceOutcome::Rotated {
                        old: Box::new(old),
                        new: Box::new(TokenRecord::from_new(new_id, &new)),
                        grace_ends_at: ends,
                        ended: older,
                    }))
                })
            }))
            .await
    }
}
