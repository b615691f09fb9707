//! Statements on the audit log and the bans, and the one mapping of an event row.

use async_trait::async_trait;

use super::{id, Row, Statement};
use crate::store::backend::Tx;
use crate::store::{Audit, AuditEvent, AuditKind, BanRecord, StoreError};

pub(super) const EVENT_COLUMNS: &str = "id, token_id, event, actor, detail, created_at";
const INSERT_EVENT: &str = "INSERT INTO audit_events (token_id, event, actor, detail, created_at) \
    VALUES (?, ?, ?, ?, ?)";
const EVENTS_OF_TOKEN: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id = ? ORDER BY id";
const EVENTS_OF_NO_TOKEN: &str = "SELECT id, token_id, event, actor, detail, created_at \
    FROM audit_events WHERE token_id IS NULL ORDER BY id";
const LIST_BANS: &str =
    "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans ORDER BY created_at, limiter";
const INSERT_BAN: &str = "INSERT INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (?, ?, ?, ?)";
/// Byte for byte: MySQL's `utf8mb4_bin` pads trailing spaces, so equal lengths are required
/// too.
const DELETE_BAN: &str = "DELETE FROM rate_limit_bans WHERE limiter = ? \
    AND ban_key = ? AND LENGTH(ban_key) = LENGTH(?)";

/// A row selected with [`EVENT_COLUMNS`] as an event.
pub fn event_from(row: &Row) -> Result<AuditEvent, StoreError> {
    let detail = row.string(4)?;
    Ok(AuditEvent {
        id: row.u64(0)?,
        token_id: row.opt_u64(1)?,
        event: row.string(2)?,
        actor: row.string(3)?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
        created_at: row.time(5)?,
    })
}

pub(super) async fn events<T: Tx + ?Sized>(
    tx: &mut T,
    statement: Statement,
) -> Result<Vec<AuditEvent>, StoreError> {
    tx.fetch(statement).await?.iter().map(event_from).collect()
}

/// Statements on the audit log and the bans.
#[async_trait]
pub trait AuditSql {
    async fn write_event(
        &mut self,
        token_id: Option<u64>,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError>;
    /// One token's events (`None`: the events of no token), oldest first.
    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError>;
    /// False when the ban is already there.
    async fn insert_ban(&mut self, ban: &BanRecord) -> Result<bool, StoreError>;
    async fn list_bans(&mut self) -> Result<Vec<BanRecord>, StoreError>;
    /// Byte for byte; false when there was none.
    async fn delete_ban(&mut self, limiter: &str, key: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> AuditSql for T {
    async fn write_event(
        &mut self,
        token_id: Option<u64>,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let args = vec![
            token_id.map(id).unwrap_or(super::Value::Null),
            kind.as_str().into(),
            audit.actor.to_string().into(),
            detail.to_string().into(),
            audit.at.into(),
        ];
        self.execute(Statement::new(INSERT_EVENT, args)).await?;
        Ok(())
    }

    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError> {
        let statement = match token_id {
            Some(token) => Statement::new(EVENTS_OF_TOKEN, vec![id(token)]),
            None => Statement::new(EVENTS_OF_NO_TOKEN, Vec::new()),
        };
        events(self, statement).await
    }

    async fn insert_ban(&mut self, ban: &BanRecord) -> Result<bool, StoreError> {
        let args = vec![
            ban.limiter.as_str().into(),
            ban.key.as_str().into(),
            ban.reason.as_str().into(),
            ban.created_at.into(),
        ];
        Ok(self
            .insert(Statement::new(INSERT_BAN, args))
            .await?
            .is_some())
    }

    async fn list_bans(&mut self) -> Result<Vec<BanRecord>, StoreError> {
        let rows = self.fetch(Statement::new(LIST_BANS, Vec::new())).await?;
        rows.iter()
            .map(|row| {
                Ok(BanRecord {
                    limiter: row.string(0)?,
                    key: row.string(1)?,
                    reason: row.string(2)?,
                    created_at: row.time(3)?,
                })
            })
            .collect()
    }

    async fn delete_ban(&mut self, limiter: &str, key: &str) -> Result<bool, StoreError> {
        let args = vec![limiter.into(), key.into(), key.into()];
        Ok(self.execute(Statement::new(DELETE_BAN, args)).await? > 0)
    }
}
