//! MySQL: the audit log and the bans.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use mysql_async::params;
use mysql_async::prelude::*;

use super::rows::utc;
use super::tx::{on, MySqlTx};
use crate::store::backend::AuditSql;
use crate::store::{Audit, AuditEvent, AuditKind, BanRecord, StoreError};

const LIST_BANS: &str =
    "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans ORDER BY created_at, limiter";

const INSERT_BAN: &str =
    "INSERT IGNORE INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (:limiter, :ban_key, :reason, :created_at)";

const INSERT_EVENT: &str = "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?)";
const EVENTS_OF_TOKEN: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id = ? ORDER BY id";
const EVENTS_OF_NO_TOKEN: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id IS NULL ORDER BY id";
/// Byte for byte: `utf8mb4_bin` pads trailing spaces, so equal lengths are required too.
const DELETE_BAN: &str = "DELETE FROM rate_limit_bans WHERE limiter = :limiter \
    AND ban_key = :ban_key AND LENGTH(ban_key) = LENGTH(:ban_key)";

#[async_trait]
impl AuditSql for MySqlTx {
    async fn write_event(
        &mut self,
        token_id: Option<u64>,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let params = (
            token_id,
            kind.as_str(),
            audit.actor.to_string(),
            detail.to_string(),
            audit.at.naive_utc(),
        );
        self.change(INSERT_EVENT, params.into()).await?;
        Ok(())
    }

    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError> {
        match token_id {
            Some(id) => self.events(EVENTS_OF_TOKEN, (id,).into()).await,
            None => {
                self.events(EVENTS_OF_NO_TOKEN, mysql_async::Params::Empty)
                    .await
            }
        }
    }

    async fn insert_ban(&mut self, ban: &BanRecord) -> Result<bool, StoreError> {
        let params = params! {
            "limiter" => ban.limiter.as_str(),
            "ban_key" => ban.key.as_str(),
            "reason" => ban.reason.as_str(),
            "created_at" => ban.created_at.naive_utc(),
        };
        Ok(self.change(INSERT_BAN, params).await? > 0)
    }

    async fn list_bans(&mut self) -> Result<Vec<BanRecord>, StoreError> {
        let rows: Vec<(String, String, String, NaiveDateTime)> =
            on!(self, |q| q.query(LIST_BANS).await)?;
        Ok(rows
            .into_iter()
            .map(|(limiter, key, reason, created_at)| BanRecord {
                limiter,
                key,
                reason,
                created_at: utc(created_at),
            })
            .collect())
    }

    async fn delete_ban(&mut self, limiter: &str, key: &str) -> Result<bool, StoreError> {
        let params = params! { "limiter" => limiter, "ban_key" => key };
        Ok(self.change(DELETE_BAN, params).await? > 0)
    }
}
