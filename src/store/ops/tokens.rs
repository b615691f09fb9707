//! The token lifecycle: create under the limit, find, expire, revoke, rotate, update, count and
//! list — each change with its audit event, in the transaction that makes it.

use crate::store::sql::families::*;
use crate::store::sql::record::Holds;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::access::{assemble, attach_access, unknown_role};
use super::quota::{insert_quota, quotas_from};
use super::{done, expire_and_count, work, StoreOps};
use crate::domain::state::StateReason;
use crate::domain::{Actor, Digest, IpRestriction, Privilege, UserId};
use crate::store::backend::{Backend, Lock, Tx, TxEnd};
use crate::store::{
    Audit, AuditEvent, AuditKind, AuditQuery, BulkOp, CreateOutcome, GraceOutcome, GraceRotation,
    MetadataChange, MetadataOutcome, NewToken, RotateOutcome, Rotation, StateChange, StateChanged,
    StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStore, UsageBatch,
};

/// A change of one owned token, chosen by the caller.
#[derive(Clone)]
enum OwnedChange {
    IpRestriction(IpRestriction),
    Privilege(Privilege),
}

#[async_trait]
impl<B: Backend> TokenStore for StoreOps<B> {
    async fn create_token(
        &self,
        new: &NewToken,
        limit: u32,
        audit: &Audit,
    ) -> Result<CreateOutcome, StoreError> {
        let (new, audit) = (Arc::new(new.clone()), Arc::new(audit.clone()));
        let alerts = self.credit_alerts;
        self.backend
            .write(work(move |tx| {
                let (new, audit) = (new.clone(), audit.clone());
                Box::pin(async move {
                    let valid = expire_and_count(tx, new.user_id, new.token.created_at).await?;
                    if valid >= u64::from(limit) {
                        // Refused: the sweep above is rolled back with it.
                        return Ok(TxEnd::Rollback(CreateOutcome::LimitReached));
                    }
                    if let Some(role) = unknown_role(tx, &new.access.roles).await? {
                        return Ok(TxEnd::Rollback(CreateOutcome::UnknownRole(role)));
                    }
                    let Some(id) = tx.insert_token(&new).await? else {
                        return Err(StoreError::CorruptRow("identifier collision".into()));
                    };
                    tx.insert_access(id, &new.access).await?;
                    insert_quota(tx, id, &new.quota, alerts).await?;
                    let detail = new.created_detail();
                    tx.write_event(Some(id), AuditKind::Created, &audit, detail)
                        .await?;
                    let mut record = TokenRecord::from_new(id, &new);
                    if !new.access.is_empty() {
                        // Its roles' grants, read in the transaction that gave them.
                        attach_access(tx, std::slice::from_mut(&mut record)).await?;
                    }
                    Ok(TxEnd::Commit(CreateOutcome::Created(Box::new(record))))
                })
            }))
            .await
    }

    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError> {
        let digest = digest.clone();
        self.backend
            .read(work(move |tx| {
                let digest = digest.clone();
                Box::pin(async move {
                    let found = tx.record_by_digest(&digest).await?;
                    done(whole(tx, found).await?)
                })
            }))
            .await
    }

    async fn find_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move {
                    let found = tx.record_by_id(token_id).await?;
                    done(whole(tx, found).await?)
                })
            }))
            .await
    }

    async fn find_for_owner(
        &self,
        user_id: UserId,
        token_id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.valid_token_of(user_id, token_id).await?) })
            }))
            .await
    }

    async fn expire(&self, token_id: u64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move {
                    if !tx.invalidate(token_id).await? {
                        return Ok(TxEnd::Rollback(false));
                    }
                    let system = Audit {
                        actor: Actor::system(crate::domain::actor::job::EXPIRY),
                        at,
                    };
                    tx.write_event(Some(token_id), AuditKind::Expired, &system, json!({}))
                        .await?;
                    Ok(TxEnd::Commit(true))
                })
            }))
            .await
    }

    async fn record_usage(
        &self,
        token_id: u64,
        uses: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, DateTime<Utc>)>, StoreError> {
        self.add_usage_now(token_id, uses, at).await
    }

    async fn apply_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        self.apply_usage_batch(batch).await
    }

    async fn revoke(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
        audit: &Audit,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let (digest, audit) = (digest.clone(), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (digest, audit) = (digest.clone(), audit.clone());
                Box::pin(async move {
                    let found = tx.token_by_digest(&digest, Lock::ForUpdate).await?;
                    let Some(record) = found.filter(|record| {
                        record.valid && privilege.is_none_or(|p| p == record.privilege)
                    }) else {
                        return Ok(TxEnd::Rollback(None));
                    };
                    tx.invalidate(record.id).await?;
                    tx.write_event(Some(record.id), AuditKind::Revoked, &audit, json!({}))
                        .await?;
                    Ok(TxEnd::Commit(Some(record)))
                })
            }))
            .await
    }

    async fn revoke_by_id(
        &self,
        token_id: u64,
        audit: &Audit,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError> {
        let audit = Arc::new(audit.clone());
        self.backend
            .write(work(move |tx| {
                let audit = audit.clone();
                Box::pin(async move {
                    let revoked = revoke_in(tx, token_id, &audit, None).await?;
                    Ok(
                        match revoked.as_ref().is_some_and(|(_, changed)| *changed) {
                            true => TxEnd::Commit(revoked),
                            false => TxEnd::Rollback(revoked),
                        },
                    )
                })
            }))
            .await
    }

    async fn rotate_with_grace(
        &self,
        rotation: &GraceRotation,
    ) -> Result<GraceOutcome, StoreError> {
        self.grace_rotation(rotation).await
    }

    async fn bulk(
        &self,
        op: BulkOp,
        ids: &[u64],
        reason: Option<StateReason>,
        audit: &Audit,
    ) -> Result<Vec<Option<StateChanged>>, StoreError> {
        self.bulk_chunk(op, ids, reason, audit).await
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let rotation = Arc::new(rotation.clone());
        self.backend
            .write(work(move |tx| {
                let rotation = rotation.clone();
                Box::pin(async move {
                    let found = tx
                        .token_by_digest(&rotation.old_digest, Lock::ForUpdate)
                        .await?;
                    let Some(mut old) =
                        found.filter(|old| old.valid && old.privilege == rotation.privilege)
                    else {
                        return Ok(TxEnd::Rollback(RotateOutcome::OldNotFound));
                    };
                    attach_access(tx, std::slice::from_mut(&mut old)).await?;
                    let at = rotation.audit.at;
                    if old.is_expired_at(at) {
                        return Ok(TxEnd::Rollback(RotateOutcome::OldExpired));
                    }
                    if rotation.delete_old {
                        tx.clear_access(old.id).await?;
                        tx.delete_token(old.id).await?;
                    } else {
                        tx.invalidate(old.id).await?;
                    }
                    if expire_and_count(tx, old.user_id, at).await? >= u64::from(rotation.limit) {
                        return Ok(TxEnd::Rollback(RotateOutcome::LimitReached));
                    }
                    let new = rotation.new.clone().owned_by(
                        old.user_id,
                        old.metadata.clone(),
                        old.access.clone(),
                    );
                    let Some(new_id) = tx.insert_token(&new).await? else {
                        return Ok(TxEnd::Rollback(RotateOutcome::CreateFailed));
                    };
                    tx.insert_access(new_id, &new.access).await?;
                    // Its limits and what remains of its credits go with it.
                    tx.move_quota(old.id, new_id).await?;
                    let mut detail = new.created_detail();
                    detail["rotatedFrom"] = json!(old.id);
                    tx.write_event(Some(new_id), AuditKind::Created, &rotation.audit, detail)
                        .await?;
                    // A deleted row keeps its history: the event names the id it had.
                    let detail = json!({ "newTokenId": new_id, "deleted": rotation.delete_old });
                    tx.write_event(Some(old.id), AuditKind::Rotated, &rotation.audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(RotateOutcome::Rotated {
                        old: Box::new(old),
                        new: Box::new(TokenRecord::from_new(new_id, &new)),
                    }))
                })
            }))
            .await
    }

    async fn update_ip_restriction(
        &self,
        user_id: UserId,
        digest: &Digest,
        ips: &IpRestriction,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let change = OwnedChange::IpRestriction(ips.clone());
        self.change_owned(user_id, digest, change, audit).await
    }

    async fn update_privilege(
        &self,
        user_id: UserId,
        digest: &Digest,
        privilege: Privilege,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let change = OwnedChange::Privilege(privilege);
        self.change_owned(user_id, digest, change, audit).await
    }

    async fn update_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError> {
        let (change, audit) = (Arc::new(change.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (change, audit) = (change.clone(), audit.clone());
                Box::pin(async move {
                    let Some(record) = tx.token_by_id(token_id, Lock::ForUpdate).await? else {
                        return Ok(TxEnd::Rollback(MetadataOutcome::NotFound));
                    };
                    let mut metadata = record.metadata;
                    let detail = match change.apply_to(&mut metadata) {
                        Ok(detail) => detail,
                        Err(err) => return Ok(TxEnd::Rollback(MetadataOutcome::Invalid(err))),
                    };
                    tx.set_metadata(token_id, &metadata).await?;
                    tx.write_event(Some(token_id), AuditKind::MetadataUpdated, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(MetadataOutcome::Updated(metadata)))
                })
            }))
            .await
    }

    async fn counts(&self, user_id: UserId, now: DateTime<Utc>) -> Result<TokenCounts, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.counts(user_id, now).await?) })
            }))
            .await
    }

    async fn list_valid(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.list_valid(user_id, now).await?) })
            }))
            .await
    }

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let query = Arc::new(query.clone());
        self.backend
            .read(work(move |tx| {
                let query = query.clone();
                Box::pin(async move {
                    let mut page = tx.list_tokens(&query).await?;
                    attach_access(tx, &mut page).await?;
                    done(page)
                })
            }))
            .await
    }

    async fn events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.events_of(Some(token_id)).await?) })
            }))
            .await
    }

    async fn set_token_state(
        &self,
        token_id: u64,
        change: &StateChange,
        audit: &Audit,
    ) -> Result<Option<StateChanged>, StoreError> {
        self.token_state(token_id, change, audit).await
    }

    async fn set_owner_state(
        &self,
        user: UserId,
        change: &StateChange,
        audit: &Audit,
    ) -> Result<StateChanged, StoreError> {
        self.owner_state(user, change, audit).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let query = Arc::new(query.clone());
        self.backend
            .read(work(move |tx| {
                let query = query.clone();
                Box::pin(async move { done(tx.audit_page(&query).await?) })
            }))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.backend
            .read(work(|tx| Box::pin(async move { done(tx.ping().await?) })))
            .await
    }
}

/// A record found, with what it holds and its quotas and its owner's: one more statement, and
/// only when its flags say it holds any (a cache miss of a plain key is one statement).
async fn whole(
    tx: &mut dyn Tx,
    found: Option<(TokenRecord, Holds)>,
) -> Result<Option<TokenRecord>, StoreError> {
    let Some((mut record, holds)) = found else {
        return Ok(None);
    };
    if holds.access || holds.quota {
        let quota = record.quota_subject();
        let holdings = tx.holdings(record.id, quota, record.user_id.get()).await?;
        record.access = assemble(holdings.access)?
            .remove(&record.id)
            .unwrap_or_default();
        let quotas = quotas_from(&holdings.limits, &holdings.credits)?;
        record.quota = quotas.token;
        record.owner_quota = quotas.owner;
    }
    Ok(Some(record))
}

impl<B: Backend> StoreOps<B> {
    /// Changes the owner's valid token with this digest and records the change; false when
    /// the owner has no such token.
    async fn change_owned(
        &self,
        user_id: UserId,
        digest: &Digest,
        change: OwnedChange,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let (digest, audit) = (digest.clone(), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (digest, audit, change) = (digest.clone(), audit.clone(), change.clone());
                Box::pin(async move {
                    let found = tx.token_by_digest(&digest, Lock::ForUpdate).await?;
                    let Some(record) = found.filter(|r| r.valid && r.user_id == user_id) else {
                        return Ok(TxEnd::Rollback(false));
                    };
                    let (kind, detail) = match &change {
                        OwnedChange::IpRestriction(ips) => {
                            tx.set_ip_restriction(record.id, ips).await?;
                            let detail = json!({
                                "old": record.ip_restriction.entries(),
                                "new": ips.entries(),
                            });
                            (AuditKind::IpRestrictionUpdated, detail)
                        }
                        OwnedChange::Privilege(privilege) => {
                            tx.set_privilege(record.id, *privilege).await?;
                            let detail = json!({ "old": record.privilege, "new": privilege });
                            (AuditKind::PrivilegeUpdated, detail)
                        }
                    };
                    tx.write_event(Some(record.id), kind, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(true))
                })
            }))
            .await
    }
}

/// Revokes the token with this id inside the caller's transaction, with its event (and the
/// reason, when one is given): the record as it was and whether this call revoked it; `None`
/// when there is no such token.
pub(super) async fn revoke_in(
    tx: &mut dyn Tx,
    token_id: u64,
    audit: &Audit,
    reason: Option<&StateReason>,
) -> Result<Option<(TokenRecord, bool)>, StoreError> {
    let Some(record) = tx.token_by_id(token_id, Lock::ForUpdate).await? else {
        return Ok(None);
    };
    if !record.valid {
        return Ok(Some((record, false)));
    }
    tx.invalidate(token_id).await?;
    let detail = match reason {
        Some(reason) => json!({ "reason": reason.as_str() }),
        None => json!({}),
    };
    tx.write_event(Some(token_id), AuditKind::Revoked, audit, detail)
        .await?;
    Ok(Some((record, true)))
}
