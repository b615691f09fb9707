//! Whole-store export and import on MySQL (`iam-tokens copy`).

use async_trait::async_trait;
use mysql_async::prelude::*;
use mysql_async::{params, Row};

use super::rows::{record_from_row, select_tokens};
use super::{MySqlStore, TxEnd};
use crate::store::{BanStore, CopyStore, RowCounts, Snapshot, StoreError, TokenStore};

const ALL_TOKENS: &str = select_tokens!("ORDER BY id");
const ALL_EVENT_IDS: &str = "SELECT DISTINCT token_id FROM audit_events WHERE token_id IS NOT NULL";
const GLOBAL_EVENTS: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id IS NULL ORDER BY id";
const CLEAR: [&str; 4] = [
    "DELETE FROM audit_events",
    "DELETE FROM api_tokens",
    "DELETE FROM rate_limit_bans",
    "DELETE FROM usage_flushes",
];
const INSERT_TOKEN: &str = "INSERT INTO api_tokens (id, user_id, api_token, public_identifier, \
    prefix, name, created_at, expires_at, restricted_to_ip_address, last_used, privilege_type, \
    usage_count, valid, metadata) VALUES (:id, :user_id, :digest, :public_identifier, :prefix, \
    :name, :created_at, :expires_at, :ips, :last_used, :privilege, :usage_count, :valid, :metadata)";
const INSERT_EVENT: &str =
    "INSERT INTO audit_events (id, token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?, ?)";
const INSERT_BAN: &str = "INSERT INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (?, ?, ?, ?)";
const COUNT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM api_tokens), \
    (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM rate_limit_bans)";

#[async_trait]
impl CopyStore for MySqlStore {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let rows: Vec<Row> = conn.query(ALL_TOKENS).await?;
        let tokens = rows
            .into_iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let token_ids: Vec<u64> = conn.query(ALL_EVENT_IDS).await?;
        drop(conn);
        let mut events = Vec::new();
        for id in token_ids {
            events.extend(self.events(id).await?);
        }
        events.extend(self.global_events().await?);
        events.sort_by_key(|event| event.id);
        let bans = self.list_bans().await?;
        Ok(Snapshot {
            tokens,
            events,
            bans,
        })
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let snapshot = snapshot.clone();
            Box::pin(async move {
                for statement in CLEAR {
                    tx.query_drop(statement).await?;
                }
                for t in &snapshot.tokens {
                    let values = params! {
                        "id" => t.id,
                        "user_id" => t.user_id.get(),
                        "digest" => t.digest.as_str(),
                        "public_identifier" => t.public_identifier.as_str(),
                        "prefix" => t.prefix.as_str(),
                        "name" => t.name.as_str(),
                        "created_at" => t.created_at.naive_utc(),
                        "expires_at" => t.expires_at.map(|at| at.naive_utc()),
                        "ips" => t.ip_restriction.to_stored(),
                        "last_used" => t.last_used.map(|at| at.naive_utc()),
                        "privilege" => t.privilege.as_str(),
                        "usage_count" => t.usage_count,
                        "valid" => u8::from(t.valid),
                        "metadata" => t.metadata.to_stored(),
                    };
                    tx.exec_drop(INSERT_TOKEN, values).await?;
                }
                for e in &snapshot.events {
                    let values = (
                        e.id,
                        e.token_id,
                        e.event.as_str(),
                        e.actor.as_str(),
                        e.detail.to_string(),
                        e.created_at.naive_utc(),
                    );
                    tx.exec_drop(INSERT_EVENT, values).await?;
                }
                for b in &snapshot.bans {
                    let values = (
                        b.limiter.as_str(),
                        b.key.as_str(),
                        b.reason.as_str(),
                        b.created_at.naive_utc(),
                    );
                    tx.exec_drop(INSERT_BAN, values).await?;
                }
                Ok(TxEnd::Commit(()))
            })
        })
        .await
    }

    async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let counts: Option<(u64, u64, u64)> =
            self.pool.get_conn().await?.query_first(COUNT_ROWS).await?;
        let (tokens, events, bans) = counts.unwrap_or_default();
        Ok(RowCounts {
            tokens,
            events,
            bans,
        })
    }
}

impl MySqlStore {
    async fn global_events(&self) -> Result<Vec<crate::store::AuditEvent>, StoreError> {
        let rows: Vec<(
            u64,
            Option<u64>,
            String,
            String,
            String,
            chrono::NaiveDateTime,
        )> = self.pool.get_conn().await?.query(GLOBAL_EVENTS).await?;
        super::admin::events_from_rows(rows)
    }
}
