//! Stored admin credentials (SPEC B9): created, changed and revoked each with its audit event
//! in the transaction that makes it; a change or revocation refused, inside that transaction,
//! when the caller does not hold every scope the credential holds (no escalation), and a change
//! of a revoked credential refused (it stays as it was, for the audit trail).

use crate::store::sql::families::*;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{done, work, StoreOps};
use crate::domain::access::Scopes;
use crate::domain::credential::{CredentialChange, CredentialRecord, NewCredential};
use crate::domain::Digest;
use crate::envelope::iso;
use crate::store::backend::{Backend, Lock, Tx, TxEnd};
use crate::store::{Audit, AuditKind, CredentialOutcome, CredentialStore, StoreError};

/// What the log says of a credential (never its digest).
fn described(record: &CredentialRecord) -> Value {
    json!({
        "credentialId": record.id,
        "name": record.name,
        "scopes": record.scopes.texts(),
        "expiresAt": record.expires_at.as_ref().map(iso),
    })
}

/// The credential with this id, under its row lock, when `holder` holds every scope it holds;
/// else why not (`NotFound`, or `Forbidden` naming the first scope `holder` lacks).
async fn held_by(
    tx: &mut dyn Tx,
    id: u64,
    holder: &Scopes,
) -> Result<Result<CredentialRecord, CredentialOutcome>, StoreError> {
    let Some(record) = tx.credential(id, Lock::ForUpdate).await? else {
        return Ok(Err(CredentialOutcome::NotFound));
    };
    Ok(
        match holder.first_missing(record.scopes.scopes().granted()) {
            Some(missing) => Err(CredentialOutcome::Forbidden(missing)),
            None => Ok(record),
        },
    )
}

#[async_trait]
impl<B: Backend> CredentialStore for StoreOps<B> {
    async fn create_credential(
        &self,
        new: &NewCredential,
        audit: &Audit,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let (new, audit) = (Arc::new(new.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (new, audit) = (new.clone(), audit.clone());
                Box::pin(async move {
                    let Some(id) = tx.insert_credential(&new).await? else {
                        return Ok(TxEnd::Rollback(None));
                    };
                    let record = CredentialRecord {
                        id,
                        digest: new.digest.clone(),
                        name: new.name.as_str().to_owned(),
                        scopes: new.scopes.clone(),
                        created_at: new.created_at,
                        created_by: new.created_by.clone(),
                        expires_at: new.expires_at,
                        last_used_at: None,
                        last_used_ip: None,
                        revoked_at: None,
                    };
                    let detail = described(&record);
                    tx.write_event(None, AuditKind::CredentialCreated, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(Some(record)))
                })
            }))
            .await
    }

    async fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move { done(tx.credentials().await?) })
            }))
            .await
    }

    async fn credential(&self, id: u64) -> Result<Option<CredentialRecord>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.credential(id, Lock::No).await?) })
            }))
            .await
    }

    async fn credential_by_digest(
        &self,
        digest: &Digest,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let digest = Arc::new(digest.clone());
        self.backend
            .read(work(move |tx| {
                let digest = digest.clone();
                Box::pin(async move { done(tx.credential_by_digest(&digest).await?) })
            }))
            .await
    }

    async fn change_credential(
        &self,
        id: u64,
        change: &CredentialChange,
        holder: &Scopes,
        audit: &Audit,
    ) -> Result<CredentialOutcome, StoreError> {
        let (change, audit) = (Arc::new(change.clone()), Arc::new(audit.clone()));
        let holder = Arc::new(holder.clone());
        self.backend
            .write(work(move |tx| {
                let (change, audit, holder) = (change.clone(), audit.clone(), holder.clone());
                Box::pin(async move {
                    let mut record = match held_by(tx, id, &holder).await? {
                        Ok(record) => record,
                        Err(refused) => return Ok(TxEnd::Rollback(refused)),
                    };
                    // Kept as it was when revoked: the audit trail reads what it could do.
                    if record.revoked_at.is_some() {
                        return Ok(TxEnd::Rollback(CredentialOutcome::Revoked));
                    }
                    let mut fields = Vec::new();
                    if let Some(name) = &change.name {
                        record.name = name.as_str().to_owned();
                        fields.push("name");
                    }
                    if let Some(scopes) = &change.scopes {
                        record.scopes = scopes.clone();
                        fields.push("scopes");
                    }
                    if let Some(expires_at) = change.expires_at {
                        record.expires_at = expires_at;
                        fields.push("expiresAt");
                    }
                    tx.update_credential(&record).await?;
                    let mut detail = described(&record);
                    detail["changed"] = json!(fields);
                    tx.write_event(None, AuditKind::CredentialUpdated, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(CredentialOutcome::Done(Box::new(record))))
                })
            }))
            .await
    }

    async fn revoke_credential(
        &self,
        id: u64,
        holder: &Scopes,
        audit: &Audit,
    ) -> Result<CredentialOutcome, StoreError> {
        let (holder, audit) = (Arc::new(holder.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (holder, audit) = (holder.clone(), audit.clone());
                Box::pin(async move {
                    let mut record = match held_by(tx, id, &holder).await? {
                        Ok(record) => record,
                        Err(refused) => return Ok(TxEnd::Rollback(refused)),
                    };
                    if record.revoked_at.is_some() {
                        return Ok(TxEnd::Rollback(CredentialOutcome::Done(Box::new(record))));
                    }
                    tx.revoke_credential(id, audit.at).await?;
                    record.revoked_at = Some(audit.at);
                    let detail = described(&record);
                    tx.write_event(None, AuditKind::CredentialRevoked, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(CredentialOutcome::Done(Box::new(record))))
                })
            }))
            .await
    }

    async fn record_credential_uses(
        &self,
        uses: &[(u64, DateTime<Utc>, Option<String>)],
    ) -> Result<(), StoreError> {
        let uses = Arc::new(uses.to_vec());
        self.backend
            .write(work(move |tx| {
                let uses = uses.clone();
                Box::pin(async move {
                    for (id, at, ip) in uses.iter() {
                        tx.touch_credential(*id, *at, ip.as_deref()).await?;
                    }
                    Ok(TxEnd::Commit(()))
                })
            }))
            .await
    }
}
