//! `TokenStore` on SQLite: the same lifecycle and audit events as the MySQL backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};
use serde_json::json;

use super::admin::IS_VALID;
use super::rows::{record_from_row, to_sql_id, TOKEN_COLUMNS};
use super::{write_event, SqliteStore};
use crate::store::AuditKind;
use crate::store::{
    Audit, AuditEvent, CreateOutcome, MetadataChange, MetadataOutcome, NewToken, RotateOutcome,
    Rotation, StoreError, TokenCounts, TokenQuery, TokenRecord, TokenStatus, TokenStore,
    UsageDelta,
};
use crate::token::{Actor, Digest, IpRestriction, Privilege, UserId};

pub(super) fn find(
    tx: &rusqlite::Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {filter}");
    let mut statement = tx.prepare_cached(&sql)?;
    let mut rows = statement.query(args)?;
    match rows.next()? {
        Some(row) => Ok(Some(record_from_row(row)?)),
        None => Ok(None),
    }
}

/// Marks the owner's expired tokens invalid (each an `expired` event) and counts the valid rest.
fn expire_and_count(
    tx: &Transaction<'_>,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let expired: Vec<i64> = {
        let mut statement = tx.prepare_cached(
            "SELECT id FROM api_tokens WHERE user_id = ?1 AND valid = 1 AND expires_at <= ?2",
        )?;
        let ids = statement.query_map(params![user_id.as_i64(), now.timestamp_millis()], |r| {
            r.get(0)
        })?;
        ids.collect::<Result<_, _>>()?
    };
    let system = Audit {
        actor: Actor::System,
        at: now,
    };
    for id in expired {
        tx.execute("UPDATE api_tokens SET valid = 0 WHERE id = ?1", [id])?;
        write_event(tx, Some(id as u64), AuditKind::Expired, &system, json!({}))?;
    }
    let count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM api_tokens WHERE user_id = ?1 AND valid = 1",
        [user_id.as_i64()],
        |row| row.get(0),
    )?;
    Ok(count as u64)
}

/// Inserts a token and its `created` event; `None` when an identifier collides.
fn insert_token(
    tx: &Transaction<'_>,
    new: &NewToken,
    audit: &Audit,
    mut detail: serde_json::Value,
) -> Result<Option<u64>, StoreError> {
    let inserted = tx.execute(
        "INSERT INTO api_tokens (user_id, api_token, public_identifier, prefix, name, created_at, \
         expires_at, restricted_to_ip_address, privilege_type, metadata) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            new.user_id.as_i64(),
            new.digest.as_str(),
            new.public_identifier.as_str(),
            new.prefix,
            new.name,
            new.created_at.timestamp_millis(),
            new.expires_at.map(|t| t.timestamp_millis()),
            new.ip_restriction.to_stored(),
            new.privilege.as_str(),
            new.metadata.to_stored(),
        ],
    );
    match inserted {
        Ok(_) => {}
        // Only a UNIQUE violation (digest or public identifier) is a collision; any other
        // failure (a CHECK, a trigger, …) is a store error, as on MySQL.
        Err(rusqlite::Error::SqliteFailure(err, _))
            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            return Ok(None)
        }
        Err(err) => return Err(err.into()),
    }
    let id = tx.last_insert_rowid() as u64;
    if let Some(object) = detail.as_object_mut() {
        object.extend(
            new.created_detail()
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
    }
    write_event(tx, Some(id), AuditKind::Created, audit, detail)?;
    Ok(Some(id))
}

fn invalidate(tx: &Transaction<'_>, id: u64) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE api_tokens SET valid = 0 WHERE id = ?1 AND valid = 1",
        [to_sql_id(id)],
    )? > 0)
}

impl SqliteStore {
    /// Changes the owner's valid token with this digest (`change` runs the UPDATE and answers
    /// the audit detail) and records `event`; false when the owner has no such token.
    async fn update_owned<F>(
        &self,
        user_id: UserId,
        digest: &Digest,
        audit: &Audit,
        event: AuditKind,
        change: F,
    ) -> Result<bool, StoreError>
    where
        F: FnOnce(&Transaction<'_>, &TokenRecord) -> Result<serde_json::Value, StoreError>
            + Send
            + 'static,
    {
        let (digest, audit) = (digest.as_str().to_owned(), audit.clone());
        self.write(move |tx| {
            let found = find(
                tx,
                "user_id = ?1 AND api_token = ?2 AND valid = 1",
                params![user_id.as_i64(), digest],
            )?;
            let Some(record) = found else {
                return Ok((false, false));
            };
            let detail = change(tx, &record)?;
            write_event(tx, Some(record.id), event, &audit, detail)?;
            Ok((true, true))
        })
        .await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(
        &self,
        new: &NewToken,
        limit: u32,
        audit: &Audit,
    ) -> Result<CreateOutcome, StoreError> {
        let (new, audit) = (new.clone(), audit.clone());
        self.write(move |tx| {
            if expire_and_count(tx, new.user_id, new.created_at)? >= u64::from(limit) {
                // Refused: the sweep is rolled back with it (nothing changes), as on MySQL.
                return Ok((false, CreateOutcome::LimitReached));
            }
            match insert_token(tx, &new, &audit, json!({}))? {
                Some(id) => Ok((
                    true,
                    CreateOutcome::Created(Box::new(TokenRecord::from_new(id, &new))),
                )),
                None => Err(StoreError::CorruptRow("identifier collision".into())),
            }
        })
        .await
    }

    async fn find_by_digest(&self, digest: &Digest) -> Result<Option<TokenRecord>, StoreError> {
        let digest = digest.as_str().to_owned();
        self.run(move |conn| find(conn, "api_token = ?1", [digest]))
            .await
    }

    async fn find_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError> {
        self.run(move |conn| find(conn, "id = ?1", [to_sql_id(token_id)]))
            .await
    }

    async fn find_for_owner(
        &self,
        user_id: UserId,
        token_id: u64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.run(move |conn| {
            find(
                conn,
                "id = ?1 AND user_id = ?2 AND valid = 1",
                params![to_sql_id(token_id), user_id.as_i64()],
            )
        })
        .await
    }

    async fn expire(&self, token_id: u64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if !invalidate(tx, token_id)? {
                return Ok((false, false));
            }
            let system = Audit {
                actor: Actor::System,
                at,
            };
            write_event(tx, Some(token_id), AuditKind::Expired, &system, json!({}))?;
            Ok((true, true))
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
        let (digest, audit) = (digest.as_str().to_owned(), audit.clone());
        self.write(move |tx| {
            let Some(record) = find(tx, "api_token = ?1", [digest])? else {
                return Ok((false, None));
            };
            if !record.valid || privilege.is_some_and(|p| p != record.privilege) {
                return Ok((false, None));
            }
            invalidate(tx, record.id)?;
            write_event(tx, Some(record.id), AuditKind::Revoked, &audit, json!({}))?;
            Ok((true, Some(record)))
        })
        .await
    }

    async fn revoke_by_id(
        &self,
        token_id: u64,
        audit: &Audit,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let Some(record) = find(tx, "id = ?1", [to_sql_id(token_id)])? else {
                return Ok((false, None));
            };
            if !record.valid {
                return Ok((false, Some((record, false))));
            }
            invalidate(tx, token_id)?;
            write_event(tx, Some(token_id), AuditKind::Revoked, &audit, json!({}))?;
            Ok((true, Some((record, true))))
        })
        .await
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let rotation = rotation.clone();
        self.write(move |tx| {
            let found = find(
                tx,
                "api_token = ?1 AND valid = 1 AND privilege_type = ?2",
                params![rotation.old_digest.as_str(), rotation.privilege.as_str()],
            )?;
            let Some(old) = found else {
                return Ok((false, RotateOutcome::OldNotFound));
            };
            if old.is_expired_at(rotation.audit.at) {
                return Ok((false, RotateOutcome::OldExpired));
            }
            let retire = if rotation.delete_old {
                "DELETE FROM api_tokens WHERE id = ?1"
            } else {
                "UPDATE api_tokens SET valid = 0 WHERE id = ?1"
            };
            tx.execute(retire, [to_sql_id(old.id)])?;
            if expire_and_count(tx, old.user_id, rotation.audit.at)? >= u64::from(rotation.limit) {
                return Ok((false, RotateOutcome::LimitReached));
            }
            let new = rotation
                .new
                .clone()
                .owned_by(old.user_id, old.metadata.clone());
            let Some(new_id) =
                insert_token(tx, &new, &rotation.audit, json!({ "rotatedFrom": old.id }))?
            else {
                return Ok((false, RotateOutcome::CreateFailed));
            };
            let detail = json!({ "newTokenId": new_id, "deleted": rotation.delete_old });
            write_event(
                tx,
                Some(old.id),
                AuditKind::Rotated,
                &rotation.audit,
                detail,
            )?;
            Ok((
                true,
                RotateOutcome::Rotated {
                    old: Box::new(old),
                    new: Box::new(TokenRecord::from_new(new_id, &new)),
                },
            ))
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
        let ips = ips.clone();
        self.update_owned(
            user_id,
            digest,
            audit,
            AuditKind::IpRestrictionUpdated,
            move |tx, record| {
                tx.execute(
                    "UPDATE api_tokens SET restricted_to_ip_address = ?1 WHERE id = ?2",
                    params![ips.to_stored(), to_sql_id(record.id)],
                )?;
                Ok(json!({ "old": record.ip_restriction.entries(), "new": ips.entries() }))
            },
        )
        .await
    }

    async fn update_privilege(
        &self,
        user_id: UserId,
        digest: &Digest,
        privilege: Privilege,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        self.update_owned(
            user_id,
            digest,
            audit,
            AuditKind::PrivilegeUpdated,
            move |tx, record| {
                tx.execute(
                    "UPDATE api_tokens SET privilege_type = ?1 WHERE id = ?2",
                    params![privilege.as_str(), to_sql_id(record.id)],
                )?;
                Ok(json!({ "old": record.privilege, "new": privilege }))
            },
        )
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
        self.run(move |conn| {
            let (valid, total): (i64, i64) = conn.query_row(
                &format!("SELECT COALESCE(SUM({IS_VALID}), 0), COUNT(*) FROM api_tokens WHERE user_id = ?"),
                params![now.timestamp_millis(), user_id.as_i64()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(TokenCounts {
                valid: valid as u64,
                invalid: (total - valid).max(0) as u64,
            })
        })
        .await
    }

    async fn list_valid(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let query = TokenQuery {
            user_id,
            status: TokenStatus::Valid,
            metadata: None,
            limit: u32::MAX,
            before_id: None,
            now,
        };
        self.list_tokens(&query).await
    }

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        self.query_tokens(query).await
    }
    async fn events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.token_events(token_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }
}
