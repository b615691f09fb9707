//! Roles and what tokens hold (SPEC B4): create, change and delete roles, change a token's
//! roles and grants — each with its audit event, in the transaction that makes it — and the
//! reads that attach a token's access to its record.

use crate::store::sql::families::*;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{done, work, StoreOps};
use crate::domain::access::{
    limits, sorted_texts, AccessChange, Grant, NewRole, RoleChange, RoleDescription, RoleName,
    RoleRecord, TokenAccess,
};
use crate::store::backend::{Backend, Held, Lock, RoleRow, Tx, TxEnd};
use crate::store::{
    AccessOutcome, AccessStore, Audit, AuditKind, RoleCreation, RoleDeletion, RoleUpdate,
    StoreError, TokenRecord,
};

#[async_trait]
impl<B: Backend> AccessStore for StoreOps<B> {
    async fn create_role(&self, role: &NewRole, audit: &Audit) -> Result<RoleCreation, StoreError> {
        let (role, audit) = (Arc::new(role.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (role, audit) = (role.clone(), audit.clone());
                Box::pin(async move {
                    tx.lock_roles().await?;
                    if tx.count_roles().await? >= limits::ROLES {
                        return Ok(TxEnd::Rollback(RoleCreation::LimitReached));
                    }
                    let record = RoleRecord {
                        name: role.name.clone(),
                        description: role.description.clone(),
                        permissions: role.permissions.iter().cloned().collect(),
                        created_at: audit.at,
                        updated_at: audit.at,
                        tokens: 0,
                    };
                    if !tx.insert_role(&record).await? {
                        return Ok(TxEnd::Rollback(RoleCreation::Exists));
                    }
                    tx.add_role_grants(&record.name, &record.permissions)
                        .await?;
                    let detail = json!({
                        "role": record.name.as_str(),
                        "description": record.description.as_ref().map(RoleDescription::as_str),
                        "permissions": sorted_texts(&record.permissions),
                    });
                    tx.write_event(None, AuditKind::RoleCreated, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(RoleCreation::Created(record)))
                })
            }))
            .await
    }

    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move { done(roles_in(tx, None, Lock::No).await?) })
            }))
            .await
    }

    async fn role(&self, name: &RoleName) -> Result<Option<RoleRecord>, StoreError> {
        let name = name.clone();
        self.backend
            .read(work(move |tx| {
                let name = name.clone();
                Box::pin(async move {
                    let found = roles_in(tx, Some(&name), Lock::No).await?;
                    done(found.into_iter().next())
                })
            }))
            .await
    }

    async fn update_role(
        &self,
        name: &RoleName,
        change: &RoleChange,
        audit: &Audit,
    ) -> Result<RoleUpdate, StoreError> {
        let (name, change, audit) = (
            name.clone(),
            Arc::new(change.clone()),
            Arc::new(audit.clone()),
        );
        self.backend
            .write(work(move |tx| {
                let (name, change, audit) = (name.clone(), change.clone(), audit.clone());
                Box::pin(async move {
                    let found = roles_in(tx, Some(&name), Lock::ForUpdate).await?;
                    let Some(before) = found.into_iter().next() else {
                        return Ok(TxEnd::Rollback(RoleUpdate::NotFound));
                    };
                    let held: std::collections::BTreeSet<&Grant> =
                        before.permissions.iter().collect();
                    let added: Vec<Grant> = change
                        .add
                        .iter()
                        .filter(|g| !held.contains(g) && !change.remove.contains(g))
                        .cloned()
                        .collect();
                    let removed: Vec<Grant> = change
                        .remove
                        .iter()
                        .filter(|g| held.contains(g))
                        .cloned()
                        .collect();
                    if held.len() + added.len() - removed.len() > limits::ROLE_PERMISSIONS {
                        return Ok(TxEnd::Rollback(RoleUpdate::TooManyPermissions));
                    }
                    let description = match &change.description {
                        Some(new) => new.clone(),
                        None => before.description.clone(),
                    };
                    tx.set_role(&name, description.as_ref(), audit.at).await?;
                    tx.add_role_grants(&name, &added).await?;
                    tx.remove_role_grants(&name, &removed).await?;
                    let mut detail = json!({
                        "role": name.as_str(),
                        "added": sorted_texts(&added),
                        "removed": sorted_texts(&removed),
                    });
                    if change.description.is_some() {
                        detail["description"] =
                            json!(description.as_ref().map(RoleDescription::as_str));
                    }
                    tx.write_event(None, AuditKind::RoleUpdated, &audit, detail)
                        .await?;
                    let after = roles_in(tx, Some(&name), Lock::No).await?;
                    let record = after.into_iter().next().ok_or_else(|| {
                        StoreError::CorruptRow("a role vanished in its own transaction".into())
                    })?;
                    Ok(TxEnd::Commit(RoleUpdate::Updated(record)))
                })
            }))
            .await
    }

    async fn delete_role(
        &self,
        name: &RoleName,
        force: bool,
        audit: &Audit,
    ) -> Result<RoleDeletion, StoreError> {
        let (name, audit) = (name.clone(), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (name, audit) = (name.clone(), audit.clone());
                Box::pin(async move {
                    let found = tx.role_rows(Some(&name), Lock::ForUpdate).await?;
                    let Some(role) = found.into_iter().next() else {
                        return Ok(TxEnd::Rollback(RoleDeletion::NotFound));
                    };
                    if role.tokens > 0 && !force {
                        let tokens = role.tokens;
                        return Ok(TxEnd::Rollback(RoleDeletion::InUse { tokens }));
                    }
                    tx.delete_role(&name).await?;
                    let detail = json!({
                        "role": name.as_str(),
                        "tokens": role.tokens,
                        "forced": force,
                    });
                    tx.write_event(None, AuditKind::RoleDeleted, &audit, detail)
                        .await?;
                    let tokens = role.tokens;
                    Ok(TxEnd::Commit(RoleDeletion::Deleted { tokens }))
                })
            }))
            .await
    }

    async fn change_access(
        &self,
        token_id: u64,
        change: &AccessChange,
        audit: &Audit,
    ) -> Result<AccessOutcome, StoreError> {
        let (change, audit) = (Arc::new(change.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (change, audit) = (change.clone(), audit.clone());
                Box::pin(async move {
                    let Some(mut record) = tx.token_by_id(token_id, Lock::ForUpdate).await? else {
                        return Ok(TxEnd::Rollback(AccessOutcome::NotFound));
                    };
                    attach_access(tx, std::slice::from_mut(&mut record)).await?;
                    let next = match record.access.changed(&change) {
                        Ok(next) => next,
                        Err(limit) => return Ok(TxEnd::Rollback(AccessOutcome::Limit(limit))),
                    };
                    let added: Vec<RoleName> = change
                        .add_roles
                        .iter()
                        .filter(|role| next.roles.contains(role))
                        .cloned()
                        .collect();
                    if let Some(unknown) = unknown_role(tx, &added).await? {
                        return Ok(TxEnd::Rollback(AccessOutcome::UnknownRole(unknown)));
                    }
                    let detail = json!({
                        "roles": { "old": record.access.role_texts(), "new": next.role_texts() },
                        "permissions": {
                            "old": record.access.permission_texts(),
                            "new": next.permission_texts(),
                        },
                    });
                    tx.clear_access(token_id).await?;
                    tx.insert_access(token_id, &next).await?;
                    tx.write_event(Some(token_id), AuditKind::AccessUpdated, &audit, detail)
                        .await?;
                    attach_access(tx, std::slice::from_mut(&mut record)).await?;
                    Ok(TxEnd::Commit(AccessOutcome::Updated(Box::new(record))))
                })
            }))
            .await
    }
}

/// The first of `roles` that does not exist (the rest are locked until the transaction ends,
/// so that a concurrent deletion waits for it).
pub(super) async fn unknown_role(
    tx: &mut dyn Tx,
    roles: &[RoleName],
) -> Result<Option<RoleName>, StoreError> {
    if roles.is_empty() {
        return Ok(None);
    }
    let existing = tx.existing_roles(roles).await?;
    Ok(roles
        .iter()
        .find(|role| !existing.iter().any(|name| name == role.as_str()))
        .cloned())
}

/// Fills in what each record holds (its roles' grants included), in one statement.
pub(super) async fn attach_access(
    tx: &mut dyn Tx,
    records: &mut [TokenRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<u64> = records.iter().map(|record| record.id).collect();
    let mut held = assemble(tx.access_rows(&ids).await?)?;
    for record in records {
        record.access = held.remove(&record.id).unwrap_or_default();
    }
    Ok(())
}

/// `(token, what, name)` rows as each token's access, names checked.
pub(super) fn assemble(
    rows: Vec<(u64, Held, String)>,
) -> Result<HashMap<u64, TokenAccess>, StoreError> {
    let mut held: HashMap<u64, TokenAccess> = HashMap::new();
    for (id, what, name) in rows {
        let access = held.entry(id).or_default();
        match what {
            Held::Role => access.roles.push(role_name(&name)?),
            Held::Permission => access.permissions.push(grant(&name)?),
            Held::Inherited => access.inherited.push(grant(&name)?),
        }
    }
    for access in held.values_mut() {
        access.roles.sort_unstable();
        access.roles.dedup();
        access.permissions.sort_unstable();
        access.permissions.dedup();
        access.inherited.sort_unstable();
        access.inherited.dedup();
    }
    Ok(held)
}

/// Roles with their grants: one, or every one by name.
pub(super) async fn roles_in(
    tx: &mut dyn Tx,
    name: Option<&RoleName>,
    lock: Lock,
) -> Result<Vec<RoleRecord>, StoreError> {
    let rows = tx.role_rows(name, lock).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut grants: HashMap<String, Vec<Grant>> = HashMap::new();
    for (role, text) in tx.role_grants(name).await? {
        grants.entry(role).or_default().push(grant(&text)?);
    }
    rows.into_iter()
        .map(|row| {
            let mut permissions = grants.remove(&row.name).unwrap_or_default();
            permissions.sort_unstable();
            role_record(row, permissions)
        })
        .collect()
}

fn role_record(row: RoleRow, permissions: Vec<Grant>) -> Result<RoleRecord, StoreError> {
    let description = row
        .description
        .map(|text| {
            RoleDescription::parse(&text)
                .map_err(|_| StoreError::CorruptRow("roles.description".into()))
        })
        .transpose()?;
    Ok(RoleRecord {
        name: role_name(&row.name)?,
        description,
        permissions,
        created_at: row.created_at,
        updated_at: row.updated_at,
        tokens: row.tokens,
    })
}

fn role_name(text: &str) -> Result<RoleName, StoreError> {
    RoleName::parse(text).map_err(|_| StoreError::CorruptRow("role name".into()))
}

fn grant(text: &str) -> Result<Grant, StoreError> {
    Grant::parse(text).map_err(|_| StoreError::CorruptRow("permission".into()))
}
