//! Statements on the audit log and the bans, and the one mapping of an event row.

use async_trait::async_trait;

use super::webhooks::WebhookSql;
use super::{id, Row, Statement, Value};
use crate::domain::webhook::{expired_key, EventType, OutboxEvent};
use crate::domain::{Actor, ActorKind, UserId};
use crate::store::backend::Tx;
use crate::store::{Audit, AuditEvent, AuditKind, AuditQuery, BanRecord, StoreError};

pub(super) const EVENT_COLUMNS: &str =
    "id, token_id, user_id, event, actor_type, actor_id, actor_name, detail, created_at";
/// The owner is the one given, else the owner of the token (one indexed read, same round trip).
const INSERT_EVENT: &str = "INSERT INTO audit_events \
    (token_id, user_id, event, actor_type, actor_id, actor_name, detail, created_at) \
    VALUES (?, COALESCE(?, (SELECT t.user_id FROM api_tokens t WHERE t.id = ?)), ?, ?, ?, ?, ?, ?)";
const EVENTS_OF_TOKEN: &str = "SELECT id, token_id, user_id, event, actor_type, actor_id, \
    actor_name, detail, created_at FROM audit_events WHERE token_id = ? ORDER BY id";
const EVENTS_OF_NO_TOKEN: &str = "SELECT id, token_id, user_id, event, actor_type, actor_id, \
    actor_name, detail, created_at FROM audit_events WHERE token_id IS NULL ORDER BY id";
const LIST_BANS: &str =
    "SELECT limiter, ban_key, reason, created_at FROM rate_limit_bans ORDER BY created_at, limiter";
const INSERT_BAN: &str = "INSERT INTO rate_limit_bans (limiter, ban_key, reason, created_at) \
    VALUES (?, ?, ?, ?)";
/// Byte for byte: MySQL's `utf8mb4_bin` pads trailing spaces, so equal lengths are required
/// too.
const DELETE_BAN: &str = "DELETE FROM rate_limit_bans WHERE limiter = ? \
    AND ban_key = ? AND LENGTH(ban_key) = LENGTH(?)";

/// An actor as its three columns.
pub(super) fn actor_values(actor: &Actor) -> [Value; 3] {
    [
        actor.kind.as_str().into(),
        actor.id.as_deref().into(),
        actor.name.as_deref().into(),
    ]
}

/// An actor from its three columns, starting at `at`.
pub(super) fn actor_from(row: &Row, at: usize) -> Result<Actor, StoreError> {
    let kind = row.string(at)?;
    Ok(Actor {
        kind: ActorKind::parse(&kind)
            .ok_or_else(|| StoreError::CorruptRow(format!("actor type {kind:?}")))?,
        id: row.opt_string(at + 1)?,
        name: row.opt_string(at + 2)?,
    })
}

/// A row selected with [`EVENT_COLUMNS`] as an event.
pub fn event_from(row: &Row) -> Result<AuditEvent, StoreError> {
    let detail = row.string(7)?;
    Ok(AuditEvent {
        id: row.u64(0)?,
        token_id: row.opt_u64(1)?,
        user_id: match row.opt_u64(2)? {
            None => None,
            Some(user) => Some(
                UserId::new(user)
                    .map_err(|_| StoreError::CorruptRow("audit_events.user_id".into()))?,
            ),
        },
        event: row.string(3)?,
        actor: actor_from(row, 4)?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::CorruptRow("audit_events.detail".into()))?,
        created_at: row.time(8)?,
    })
}

/// The page of the whole log a query asks for: its filters as `AND`ed conditions, newest
/// first. The text varies only with which filters are given.
fn audit_page(query: &AuditQuery) -> Statement {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(actor) = &query.actor {
        conditions.push("actor_type = ?");
        args.push(actor.kind.as_str().into());
        if let Some(actor_id) = &actor.id {
            // Byte for byte: MySQL's `utf8mb4_bin` pads trailing spaces.
            conditions.push("actor_id = ? AND LENGTH(actor_id) = LENGTH(?)");
            args.push(actor_id.as_str().into());
            args.push(actor_id.as_str().into());
        }
    }
    if let Some(kind) = &query.kind {
        conditions.push("event = ?");
        args.push(kind.as_str().into());
    }
    if let Some(token) = query.token_id {
        conditions.push("token_id = ?");
        args.push(id(token));
    }
    if let Some(user) = query.user_id {
        conditions.push("user_id = ?");
        args.push(user.into());
    }
    if let Some(since) = query.since {
        conditions.push("created_at >= ?");
        args.push(since.into());
    }
    if let Some(until) = query.until {
        conditions.push("created_at < ?");
        args.push(until.into());
    }
    if let Some(before) = query.before {
        conditions.push("id < ?");
        args.push(id(before));
    }
    let filter = match conditions.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", conditions.join(" AND ")),
    };
    args.push(super::count(u64::from(query.limit)));
    let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events{filter} ORDER BY id DESC LIMIT ?");
    Statement::new(sql, args)
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
    /// An event of the owner's limits or credits (no token).
    async fn write_owner_event(
        &mut self,
        user: UserId,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError>;
    /// One token's events (`None`: the events of no token), oldest first.
    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError>;
    /// A page of the whole log, newest first.
    async fn audit_page(&mut self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
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
        insert_event(self, token_id, None, kind, audit, detail).await
    }

    async fn write_owner_event(
        &mut self,
        user: UserId,
        kind: AuditKind,
        audit: &Audit,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        insert_event(self, None, Some(user), kind, audit, detail).await
    }

    async fn events_of(&mut self, token_id: Option<u64>) -> Result<Vec<AuditEvent>, StoreError> {
        let statement = match token_id {
            Some(token) => Statement::new(EVENTS_OF_TOKEN, vec![id(token)]),
            None => Statement::new(EVENTS_OF_NO_TOKEN, Vec::new()),
        };
        events(self, statement).await
    }

    async fn audit_page(&mut self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        events(self, audit_page(query)).await
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

async fn insert_event<T: Tx + ?Sized>(
    tx: &mut T,
    token_id: Option<u64>,
    user: Option<UserId>,
    kind: AuditKind,
    audit: &Audit,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let token = token_id.map(id).unwrap_or(Value::Null);
    let [actor_type, actor_id, actor_name] = actor_values(&audit.actor);
    let args = vec![
        token.clone(),
        user.into(),
        token,
        kind.as_str().into(),
        actor_type,
        actor_id,
        actor_name,
        detail.to_string().into(),
        audit.at.into(),
    ];
    tx.execute(Statement::new(INSERT_EVENT, args)).await?;
    // The outbox row rides the same transaction (SPEC B12): an event is sent exactly when its
    // change is committed, and never for one rolled back.
    if let Some(kind) = EventType::of_audit(kind) {
        // A token expires once; the expiry sweep may have sent its event before the token was
        // found expired here: one key for both.
        let dedupe_key = match (kind, token_id) {
            (EventType::TokenExpired, Some(token)) => Some(expired_key(token)),
            _ => None,
        };
        let event = OutboxEvent {
            kind,
            dedupe_key,
            token_id,
            user_id: user,
            actor: audit.actor.clone(),
            detail,
            at: audit.at,
        };
        tx.insert_outbox(&event).await?;
    }
    Ok(())
}
