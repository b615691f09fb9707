//! `TokenStore` on MySQL: lifecycle of tokens, each change with its audit event.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{params, Row, Transaction};
use serde_json::json;

use super::rows::{first_record, insert_params, record_from_row, select_tokens};
use super::{corrupt, server_code, write_event, MySqlStore, TxEnd, ER_DUP_ENTRY};
use crate::store::AuditKind;
use crate::store::{
    Audit, AuditEvent, CreateOutcome, MetadataChange, MetadataOutcome, NewToken, RotateOutcome,
    Rotation, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStore, UsageDelta,
};
use crate::token::{Actor, Digest, IpRestriction, Privilege, UserId};

const FIND_BY_DIGEST: &str = select_tokens!("WHERE api_token = :digest");
const FIND_BY_ID: &str = select_tokens!("WHERE id = :id");
const FIND_BY_ID_FOR_UPDATE: &str = select_tokens!("WHERE id = :id FOR UPDATE");
const FIND_BY_DIGEST_FOR_UPDATE: &str = select_tokens!("WHERE api_token = :digest FOR UPDATE");
const FIND_FOR_OWNER: &str = select_tokens!("WHERE id = :id AND user_id = :user_id AND valid = 1");
const FIND_OWNED_VALID_FOR_UPDATE: &str =
    select_tokens!("WHERE user_id = :user_id AND api_token = :digest AND valid = 1 FOR UPDATE");
const FIND_VALID_FOR_UPDATE: &str = select_tokens!(
    "WHERE api_token = :digest AND valid = 1 AND privilege_type = :privilege FOR UPDATE"
);
const LIST_VALID: &str = select_tokens!(
    "WHERE user_id = :user_id AND valid = 1 AND (expires_at IS NULL OR expires_at > :now) ",
    "ORDER BY id DESC"
);
const LOCK_OWNER: &str = "INSERT INTO api_token_owners (user_id) VALUES (:user_id) \
    ON DUPLICATE KEY UPDATE user_id = user_id";
const SELECT_EXPIRED: &str = "SELECT id FROM api_tokens \
    WHERE user_id = :user_id AND valid = 1 AND expires_at <= :now";
const COUNT_VALID: &str = "SELECT COUNT(*) FROM api_tokens WHERE user_id = :user_id AND valid = 1";
const INSERT_TOKEN: &str = "INSERT INTO api_tokens \
    (user_id, api_token, public_identifier, prefix, name, created_at, expires_at, \
     restricted_to_ip_address, privilege_type, metadata) \
    VALUES (:user_id, :digest, :public_identifier, :prefix, :name, :created_at, :expires_at, \
     :ips, :privilege, :metadata)";
const INVALIDATE: &str = "UPDATE api_tokens SET valid = 0 WHERE id = :id AND valid = 1";
const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE id = :id";
const UPDATE_IPS: &str = "UPDATE api_tokens SET restricted_to_ip_address = :ips WHERE id = :id";
const UPDATE_PRIVILEGE: &str = "UPDATE api_tokens SET privilege_type = :privilege WHERE id = :id";
const COUNTS: &str = "SELECT \
    COALESCE(SUM(valid = 1 AND (expires_at IS NULL OR expires_at > :now)), 0), COUNT(*) \
    FROM api_tokens WHERE user_id = :user_id";

async fn find_one(
    tx: &mut Transaction<'static>,
    query: &str,
    params: mysql_async::Params,
) -> Result<Option<TokenRecord>, mysql_async::Error> {
    let row: Option<Row> = tx.exec_first(query, params).await?;
    row.map(record_from_row).transpose().map_err(corrupt)
}

/// Locks the owner row, marks the owner's expired tokens invalid (each an `expired` event),
/// and counts the valid rest.
async fn lock_owner_and_count(
    tx: &mut Transaction<'static>,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<u64, mysql_async::Error> {
    tx.exec_drop(LOCK_OWNER, params! { "user_id" => user_id.get() })
        .await?;
    let expired: Vec<u64> = tx
        .exec(
            SELECT_EXPIRED,
            params! { "user_id" => user_id.get(), "now" => now.naive_utc() },
        )
        .await?;
    let system = Audit {
        actor: Actor::System,
        at: now,
    };
    for id in expired {
        tx.exec_drop(INVALIDATE, params! { "id" => id }).await?;
        write_event(tx, Some(id), AuditKind::Expired, &system, json!({})).await?;
    }
    let count: Option<u64> = tx
        .exec_first(COUNT_VALID, params! { "user_id" => user_id.get() })
        .await?;
    Ok(count.unwrap_or(0))
}

/// Inserts a token and its `created` event.
async fn insert_token(
    tx: &mut Transaction<'static>,
    new: &NewToken,
    audit: &Audit,
    detail: serde_json::Value,
) -> Result<u64, mysql_async::Error> {
    tx.exec_drop(INSERT_TOKEN, insert_params(new)).await?;
    let id = tx.last_insert_id().unwrap_or_default();
    write_event(tx, Some(id), AuditKind::Created, audit, detail).await?;
    Ok(id)
}

#[async_trait]
impl TokenStore for MySqlStore {
    async fn create_token(
        &self,
        new: &NewToken,
        limit: u32,
        audit: &Audit,
    ) -> Result<CreateOutcome, StoreError> {
        let created = self
            .in_transaction(|tx| {
                let (new, audit) = (new.clone(), audit.clone());
                Box::pin(async move {
                    let valid = lock_owner_and_count(tx, new.user_id, new.created_at).await?;
                    if valid >= u64::from(limit) {
                        return Ok(TxEnd::Rollback(None));
                    }
                    let id = insert_token(tx, &new, &audit, new.created_detail()).await?;
                    Ok(TxEnd::Commit(Some(id)))
                })
            })
            .await?;
        Ok(match created {
            Some(id) => CreateOutcome::Created(Box::new(TokenRecord::from_new(id, new))),
            None => CreateOutcome::LimitReached,
        })
    }

    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<Row> = conn
            .exec_first(FIND_BY_DIGEST, params! { "digest" => digest.as_str() })
            .await?;
        first_record(row)
    }

    async fn find_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<Row> = conn
            .exec_first(FIND_BY_ID, params! { "id" => token_id })
            .await?;
        first_record(row)
    }

    async fn find_for_owner(
        &self,
        user_id: UserId,
        token_id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<Row> = conn
            .exec_first(
                FIND_FOR_OWNER,
                params! { "id" => token_id, "user_id" => user_id.get() },
            )
            .await?;
        first_record(row)
    }

    async fn expire(&self, token_id: u64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.in_transaction(|tx| {
            Box::pin(async move {
                tx.exec_drop(INVALIDATE, params! { "id" => token_id })
                    .await?;
                if tx.affected_rows() == 0 {
                    return Ok(TxEnd::Rollback(false));
                }
                let system = Audit {
                    actor: Actor::System,
                    at,
                };
                write_event(tx, Some(token_id), AuditKind::Expired, &system, json!({})).await?;
                Ok(TxEnd::Commit(true))
            })
        })
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

    async fn apply_usage(&self, batch_id: &str, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        self.apply_usage_batch(batch_id, deltas).await
    }

    async fn revoke(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
        audit: &Audit,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.in_transaction(|tx| {
            let (digest, audit) = (digest.clone(), audit.clone());
            Box::pin(async move {
                let params = params! { "digest" => digest.as_str() };
                let found = find_one(tx, FIND_BY_DIGEST_FOR_UPDATE, params).await?;
                let Some(record) = found else {
                    return Ok(TxEnd::Rollback(None));
                };
                if !record.valid || privilege.is_some_and(|p| p != record.privilege) {
                    return Ok(TxEnd::Rollback(None));
                }
                tx.exec_drop(INVALIDATE, params! { "id" => record.id })
                    .await?;
                write_event(tx, Some(record.id), AuditKind::Revoked, &audit, json!({})).await?;
                Ok(TxEnd::Commit(Some(record)))
            })
        })
        .await
    }

    async fn revoke_by_id(
        &self,
        token_id: u64,
        audit: &Audit,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError> {
        self.in_transaction(|tx| {
            let audit = audit.clone();
            Box::pin(async move {
                let params = params! { "id" => token_id };
                let Some(record) = find_one(tx, FIND_BY_ID_FOR_UPDATE, params).await? else {
                    return Ok(TxEnd::Rollback(None));
                };
                if !record.valid {
                    return Ok(TxEnd::Rollback(Some((record, false))));
                }
                tx.exec_drop(INVALIDATE, params! { "id" => token_id })
                    .await?;
                write_event(tx, Some(token_id), AuditKind::Revoked, &audit, json!({})).await?;
                Ok(TxEnd::Commit(Some((record, true))))
            })
        })
        .await
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.in_transaction(|tx| {
            let rotation = rotation.clone();
            Box::pin(async move {
                let params = params! {
                    "digest" => rotation.old_digest.as_str(),
                    "privilege" => rotation.privilege.as_str(),
                };
                let Some(old) = find_one(tx, FIND_VALID_FOR_UPDATE, params).await? else {
                    return Ok(TxEnd::Rollback(RotateOutcome::OldNotFound));
                };
                if old.is_expired_at(rotation.audit.at) {
                    return Ok(TxEnd::Rollback(RotateOutcome::OldExpired));
                }
                let retire = if rotation.delete_old {
                    DELETE_TOKEN
                } else {
                    INVALIDATE
                };
                tx.exec_drop(retire, params! { "id" => old.id }).await?;
                let valid = lock_owner_and_count(tx, old.user_id, rotation.audit.at).await?;
                if valid >= u64::from(rotation.limit) {
                    return Ok(TxEnd::Rollback(RotateOutcome::LimitReached));
                }
                let new = rotation
                    .new
                    .clone()
                    .owned_by(old.user_id, old.metadata.clone());
                let mut detail = new.created_detail();
                detail["rotatedFrom"] = json!(old.id);
                let new_id = match insert_token(tx, &new, &rotation.audit, detail).await {
                    Ok(id) => id,
                    Err(err) if server_code(&err) == Some(ER_DUP_ENTRY) => {
                        return Ok(TxEnd::Rollback(RotateOutcome::CreateFailed));
                    }
                    Err(err) => return Err(err),
                };
                let detail = json!({ "newTokenId": new_id, "deleted": rotation.delete_old });
                // A deleted row keeps its history: the event names the id it had.
                write_event(
                    tx,
                    Some(old.id),
                    AuditKind::Rotated,
                    &rotation.audit,
                    detail,
                )
                .await?;
                Ok(TxEnd::Commit(RotateOutcome::Rotated {
                    old: Box::new(old),
                    new: Box::new(TokenRecord::from_new(new_id, &new)),
                }))
            })
        })
        .await
    }

    async fn update_ip_restriction(
        &self,
        user_id: UserId,
        digest: &Digest,
        ips: &IpRestriction,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        self.in_transaction(|tx| {
            let (digest, ips, audit) = (digest.clone(), ips.clone(), audit.clone());
            Box::pin(async move {
                let params = params! { "user_id" => user_id.get(), "digest" => digest.as_str() };
                let Some(record) = find_one(tx, FIND_OWNED_VALID_FOR_UPDATE, params).await? else {
                    return Ok(TxEnd::Rollback(false));
                };
                tx.exec_drop(
                    UPDATE_IPS,
                    params! { "id" => record.id, "ips" => ips.to_stored() },
                )
                .await?;
                let detail = json!({
                    "old": record.ip_restriction.entries(),
                    "new": ips.entries(),
                });
                write_event(
                    tx,
                    Some(record.id),
                    AuditKind::IpRestrictionUpdated,
                    &audit,
                    detail,
                )
                .await?;
                Ok(TxEnd::Commit(true))
            })
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
        self.in_transaction(|tx| {
            let (digest, audit) = (digest.clone(), audit.clone());
            Box::pin(async move {
                let params = params! { "user_id" => user_id.get(), "digest" => digest.as_str() };
                let Some(record) = find_one(tx, FIND_OWNED_VALID_FOR_UPDATE, params).await? else {
                    return Ok(TxEnd::Rollback(false));
                };
                tx.exec_drop(
                    UPDATE_PRIVILEGE,
                    params! { "id" => record.id, "privilege" => privilege.as_str() },
                )
                .await?;
                let detail = json!({ "old": record.privilege, "new": privilege });
                write_event(
                    tx,
                    Some(record.id),
                    AuditKind::PrivilegeUpdated,
                    &audit,
                    detail,
                )
                .await?;
                Ok(TxEnd::Commit(true))
            })
        })
        .await
    }

    async fn update_metadata(
        &self,
        token_id: u64,
        change: &MetadataChange,
        audit: &Audit,
    ) -> Result<MetadataOutcome, StoreError> {
        self.change_metadata(token_id, change, audit).await
    }

    async fn counts(&self, user_id: UserId, now: DateTime<Utc>) -> Result<TokenCounts, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(u64, u64)> = conn
            .exec_first(
                COUNTS,
                params! { "user_id" => user_id.get(), "now" => now.naive_utc() },
            )
            .await?;
        let (valid, total) = row.unwrap_or((0, 0));
        Ok(TokenCounts {
            valid,
            invalid: total.saturating_sub(valid),
        })
    }

    async fn list_valid(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let rows: Vec<Row> = conn
            .exec(
                LIST_VALID,
                params! { "user_id" => user_id.get(), "now" => now.naive_utc() },
            )
            .await?;
        rows.into_iter().map(record_from_row).collect()
    }

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        self.query_tokens(query).await
    }

    async fn events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.token_events(token_id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.get_conn().await?.ping().await?;
        Ok(())
    }
}
