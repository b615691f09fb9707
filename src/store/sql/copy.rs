//! Whole-table statements of `iam-tokens copy`.

use async_trait::async_trait;

use super::audit::{actor_values, events, EVENT_COLUMNS};
use super::tokens::{select_tokens, token_from};
use super::{count, first, id, Statement, Value};
use crate::store::backend::Tx;
use crate::store::{AuditEvent, RowCounts, StoreError, TokenRecord};

const ALL_TOKENS: &str = select_tokens!("ORDER BY id");
const CLEAR: [&str; 9] = [
    "DELETE FROM webhook_deliveries",
    "DELETE FROM webhook_events",
    "DELETE FROM webhook_endpoints",
    "DELETE FROM owner_states",
    "DELETE FROM admin_credentials",
    "DELETE FROM audit_events",
    "DELETE FROM api_tokens",
    "DELETE FROM rate_limit_bans",
    "DELETE FROM usage_flushes",
];
const INSERT_TOKEN_ROW: &str = "INSERT INTO api_tokens (id, user_id, api_token, \
    public_identifier, prefix, name, created_at, expires_at, restricted_to_ip_address, last_used, \
    privilege_type, usage_count, valid, metadata, disabled_at, disabled_reason, disabled_by_type, \
    disabled_by_id, disabled_by_name, replaced_by, rotated_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_EVENT_ROW: &str = "INSERT INTO audit_events (id, token_id, user_id, event, \
    actor_type, actor_id, actor_name, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const COUNT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM api_tokens), \
    (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM rate_limit_bans), \
    (SELECT COUNT(*) FROM roles)";

/// Whole-table statements of `iam-tokens copy`.
#[async_trait]
pub trait CopySql {
    /// Every token, oldest first.
    async fn all_tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Every audit event, oldest first.
    async fn all_events(&mut self) -> Result<Vec<AuditEvent>, StoreError>;
    /// Deletes every row of every table.
    async fn clear(&mut self) -> Result<(), StoreError>;
    /// Inserts a token as it is, id included.
    async fn insert_token_row(&mut self, token: &TokenRecord) -> Result<(), StoreError>;
    /// Inserts an event as it is, id included.
    async fn insert_event_row(&mut self, event: &AuditEvent) -> Result<(), StoreError>;
    async fn row_counts(&mut self) -> Result<RowCounts, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> CopySql for T {
    async fn all_tokens(&mut self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = self.fetch(Statement::new(ALL_TOKENS, Vec::new())).await?;
        rows.iter().map(|row| token_from(row, 0)).collect()
    }

    async fn all_events(&mut self) -> Result<Vec<AuditEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY id");
        events(self, Statement::new(sql, Vec::new())).await
    }

    async fn clear(&mut self) -> Result<(), StoreError> {
        let tables = CLEAR.iter().chain(&super::access::CLEAR_ALL);
        for sql in tables.chain(&super::quota::CLEAR_ALL) {
            self.execute(Statement::new(*sql, Vec::new())).await?;
        }
        Ok(())
    }

    async fn insert_token_row(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        let mut args = vec![
            id(t.id),
            t.user_id.into(),
            t.digest.as_str().into(),
            t.public_identifier.as_str().into(),
            t.prefix.as_str().into(),
            t.name.as_str().into(),
            t.created_at.into(),
            t.expires_at.into(),
            t.ip_restriction.to_stored().into(),
            t.last_used.into(),
            t.privilege.as_str().into(),
            count(t.usage_count),
            t.valid.into(),
            t.metadata.to_stored().into(),
        ];
        match &t.state.token {
            Some(disabled) => {
                args.push(disabled.at.into());
                args.push(disabled.reason.as_ref().map(|r| r.as_str()).into());
                args.extend(actor_values(&disabled.by));
            }
            None => args.extend([
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]),
        }
        args.push(t.replaced.map(|r| id(r.by)).unwrap_or(Value::Null));
        args.push(t.replaced.map(|r| r.at).into());
        self.execute(Statement::new(INSERT_TOKEN_ROW, args)).await?;
        Ok(())
    }

    async fn insert_event_row(&mut self, e: &AuditEvent) -> Result<(), StoreError> {
        let [actor_type, actor_id, actor_name] = actor_values(&e.actor);
        let args = vec![
            id(e.id),
            e.token_id.map(id).unwrap_or(Value::Null),
            e.user_id.into(),
            e.event.as_str().into(),
            actor_type,
            actor_id,
            actor_name,
            e.detail.to_string().into(),
            e.created_at.into(),
        ];
        self.execute(Statement::new(INSERT_EVENT_ROW, args)).await?;
        Ok(())
    }

    async fn row_counts(&mut self) -> Result<RowCounts, StoreError> {
        let row = first(self, Statement::new(COUNT_ROWS, Vec::new())).await?;
        let Some(row) = row else {
            return Ok(RowCounts::default());
        };
        Ok(RowCounts {
            tokens: row.u64(0)?,
            events: row.u64(1)?,
            bans: row.u64(2)?,
            roles: row.u64(3)?,
        })
    }
}
