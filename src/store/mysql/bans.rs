//! `BanStore` on MySQL: bans shared by every instance, each change in the audit log.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use mysql_async::params;
use mysql_async::prelude::*;
use serde_json::json;

use super::rows::utc;
use super::{write_event, MySqlStore, TxEnd};
use crate::store::AuditKind;
use crate::store::{Audit, BanRecord, BanStore, StoreError};
use crate::token::Actor;

const INSERT_BAN: &str =
    "INSERT IGNORE INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (:limiter, :ban_key, :reason, :created_at)";
const LIST_BANS: &str =
    "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans ORDER BY created_at, limiter";
/// Byte for byte: `utf8mb4_bin` pads trailing spaces, so equal lengths are required too.
const DELETE_BAN: &str = "DELETE FROM rate_limit_bans WHERE limiter = :limiter \
    AND ban_key = :ban_key AND LENGTH(ban_key) = LENGTH(:ban_key)";

#[async_trait]
impl BanStore for MySqlStore {
    async fn insert_ban(&self, ban: &BanRecord) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let ban = ban.clone();
            Box::pin(async move {
                tx.exec_drop(
                    INSERT_BAN,
                    params! {
                        "limiter" => ban.limiter.as_str(),
                        "ban_key" => ban.key.as_str(),
                        "reason" => ban.reason.as_str(),
                        "created_at" => ban.created_at.naive_utc(),
                    },
                )
                .await?;
                if tx.affected_rows() == 0 {
                    return Ok(TxEnd::Rollback(()));
                }
                let audit = Audit {
                    actor: Actor::System,
                    at: ban.created_at,
                };
                let detail = json!({"limiter": ban.limiter, "key": ban.key, "reason": ban.reason});
                write_event(tx, None, AuditKind::Banned, &audit, detail).await?;
                Ok(TxEnd::Commit(()))
            })
        })
        .await
    }

    async fn list_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        let rows: Vec<(String, String, String, NaiveDateTime)> =
            self.pool.get_conn().await?.query(LIST_BANS).await?;
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

    async fn delete_ban(
        &self,
        limiter: &str,
        key: &str,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        self.in_transaction(|tx| {
            let (limiter, key, audit) = (limiter.to_owned(), key.to_owned(), audit.clone());
            Box::pin(async move {
                tx.exec_drop(
                    DELETE_BAN,
                    params! { "limiter" => limiter.as_str(), "ban_key" => key.as_str() },
                )
                .await?;
                if tx.affected_rows() == 0 {
                    return Ok(TxEnd::Rollback(false));
                }
                let detail = json!({"limiter": limiter, "key": key});
                write_event(tx, None, AuditKind::BanLifted, &audit, detail).await?;
                Ok(TxEnd::Commit(true))
            })
        })
        .await
    }
}
