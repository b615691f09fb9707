//! MySQL: whole-table statements of `iam-tokens copy`.

use async_trait::async_trait;
use mysql_async::params;
use mysql_async::prelude::*;

use super::rows::select_tokens;
use super::tx::{on, MySqlTx};
use crate::store::backend::CopySql;
use crate::store::{AuditEvent, RowCounts, StoreError, TokenRecord};

const INSERT_EVENT_ROW: &str =
    "INSERT INTO audit_events (id, token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?, ?)";

const ALL_EVENTS: &str =
    "SELECT id, token_id, event, actor, detail, created_at FROM audit_events ORDER BY id";

const ALL_TOKENS: &str = select_tokens!("ORDER BY id");
const CLEAR: [&str; 4] = [
    "DELETE FROM audit_events",
    "DELETE FROM api_tokens",
    "DELETE FROM rate_limit_bans",
    "DELETE FROM usage_flushes",
];
const INSERT_TOKEN_ROW: &str = "INSERT INTO api_tokens (id, user_id, api_token, \
    public_identifier, prefix, name, created_at, expires_at, restricted_to_ip_address, last_used, \
    privilege_type, usage_count, valid, metadata) VALUES (:id, :user_id, :digest, \
    :public_identifier, :prefix, :name, :created_at, :expires_at, :ips, :last_used, :privilege, \
    :usage_count, :valid, :metadata)";
const COUNT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM api_tokens), \
    (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM rate_limit_bans), \
    (SELECT COUNT(*) FROM roles)";

#[async_trait]
impl CopySql for MySqlTx {
    async fn all_tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError> {
        self.records(ALL_TOKENS, mysql_async::Params::Empty).await
    }

    async fn all_events(&mut self) -> Result<Vec<AuditEvent>, StoreError> {
        self.events(ALL_EVENTS, mysql_async::Params::Empty).await
    }

    async fn clear(&mut self) -> Result<(), StoreError> {
        for statement in CLEAR
            .iter()
            .chain(&crate::store::access_sql::CLEAR_ALL)
            .chain(&crate::store::quota_sql::CLEAR_ALL)
        {
            on!(self, |q| q.query_drop(*statement).await)?;
        }
        Ok(())
    }

    async fn insert_token_row(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        let params = params! {
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
        self.change(INSERT_TOKEN_ROW, params).await?;
        Ok(())
    }

    async fn insert_event_row(&mut self, e: &AuditEvent) -> Result<(), StoreError> {
        let params = (
            e.id,
            e.token_id,
            e.event.as_str(),
            e.actor.as_str(),
            e.detail.to_string(),
            e.created_at.naive_utc(),
        );
        self.change(INSERT_EVENT_ROW, params.into()).await?;
        Ok(())
    }

    async fn row_counts(&mut self) -> Result<RowCounts, StoreError> {
        let counts: Option<(u64, u64, u64, u64)> = on!(self, |q| q.query_first(COUNT_ROWS).await)?;
        let (tokens, events, bans, roles) = counts.unwrap_or_default();
        Ok(RowCounts {
            tokens,
            roles,
            events,
            bans,
        })
    }
}
