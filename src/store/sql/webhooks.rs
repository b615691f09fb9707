//! Statements of webhooks (SPEC B12): the endpoints, the outbox and the expiry sweep's reads
//! (the deliveries are `deliveries.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::{actor_from, actor_values};
use super::{count, id, placeholders, Row, Statement, Value};
use crate::domain::webhook::{
    DisabledReason, EndpointRecord, EndpointSecret, EventFilter, OutboxEvent, OutboxRow,
    StoredEvent,
};
use crate::store::backend::Tx;
use crate::store::StoreError;

const ENDPOINT_COLUMNS: &str = "id, url, description, events, include_metadata, secret, \
    previous_secret, previous_until, enabled, disabled_reason, failing_since, created_at, \
    updated_at, after_event";
/// The newest event committed is read in the same statement: the endpoint gets what follows.
const INSERT_ENDPOINT: &str = "INSERT INTO webhook_endpoints (url, description, events, \
    include_metadata, secret, enabled, created_at, updated_at, after_event) \
    SELECT ?, ?, ?, ?, ?, 1, ?, ?, COALESCE(MAX(id), 0) FROM webhook_events";
const UPDATE_ENDPOINT: &str = "UPDATE webhook_endpoints SET url = ?, description = ?, \
    events = ?, include_metadata = ?, secret = ?, previous_secret = ?, previous_until = ?, \
    enabled = ?, disabled_reason = ?, failing_since = ?, updated_at = ? WHERE id = ?";
const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE id = ?";
const DELETE_DELIVERIES_OF: &str = "DELETE FROM webhook_deliveries WHERE endpoint_id = ?";

/// The event's columns after its type and dedupe key; the token's name and metadata (and its
/// owner, unless given) come from its row in the same statement.
const EVENT_VALUES: &str = "(type, dedupe_key, token_id, user_id, name, metadata, actor_type, \
    actor_id, actor_name, detail, created_at) SELECT ?, ?, ?, COALESCE(?, t.user_id), t.name, \
    t.metadata, ?, ?, ?, ?, ? FROM (SELECT 1 AS one) o LEFT JOIN api_tokens t ON t.id = ?";
pub(super) const STORED_EVENT_COLUMNS: &str =
    "e.id, e.type, e.token_id, e.user_id, e.name, e.metadata, \
    e.actor_type, e.actor_id, e.actor_name, e.detail, e.created_at";

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::CorruptRow(what.to_owned())
}

fn endpoint_from(row: &Row) -> Result<EndpointRecord, StoreError> {
    let secret = |text: String| {
        EndpointSecret::from_stored(text).map_err(|_| corrupt("webhook_endpoints.secret"))
    };
    Ok(EndpointRecord {
        id: row.u64(0)?,
        url: row.string(1)?,
        description: row.opt_string(2)?,
        events: EventFilter::from_stored(&row.string(3)?)
            .ok_or_else(|| corrupt("webhook_endpoints.events"))?,
        include_metadata: row.bool(4)?,
        secret: secret(row.string(5)?)?,
        previous_secret: row.opt_string(6)?.map(secret).transpose()?,
        previous_until: row.opt_time(7)?,
        enabled: row.bool(8)?,
        disabled_reason: match row.opt_string(9)? {
            None => None,
            Some(text) => Some(
                DisabledReason::parse(&text)
                    .ok_or_else(|| corrupt("webhook_endpoints.disabled_reason"))?,
            ),
        },
        failing_since: row.opt_time(10)?,
        created_at: row.time(11)?,
        updated_at: row.time(12)?,
        after_event: row.u64(13)?,
    })
}

fn endpoint_values(endpoint: &EndpointRecord) -> Vec<Value> {
    vec![
        endpoint.url.as_str().into(),
        endpoint.description.as_deref().into(),
        endpoint.events.to_stored().into(),
        endpoint.include_metadata.into(),
        endpoint.secret.expose().into(),
        endpoint.previous_secret.as_ref().map(|s| s.expose()).into(),
        endpoint.previous_until.into(),
        endpoint.enabled.into(),
        endpoint.disabled_reason.map(|r| r.as_str()).into(),
        endpoint.failing_since.into(),
        endpoint.updated_at.into(),
        id(endpoint.id),
    ]
}

/// A row selected with [`STORED_EVENT_COLUMNS`] from `at`.
pub(super) fn stored_event_from(row: &Row, at: usize) -> Result<StoredEvent, StoreError> {
    let detail = row.string(at + 9)?;
    Ok(StoredEvent {
        id: row.u64(at)?,
        kind: row.string(at + 1)?,
        token_id: row.opt_u64(at + 2)?,
        user_id: row.opt_u64(at + 3)?,
        name: row.opt_string(at + 4)?,
        metadata: row.opt_string(at + 5)?,
        actor: actor_from(row, at + 6)?,
        detail: serde_json::from_str(&detail).map_err(|_| corrupt("webhook_events.detail"))?,
        created_at: row.time(at + 10)?,
    })
}

pub(super) fn ids(values: &[u64]) -> Vec<Value> {
    values.iter().copied().map(id).collect()
}

/// Statements on webhooks.
#[async_trait]
pub trait WebhookSql {
    async fn insert_endpoint(&mut self, endpoint: &EndpointRecord) -> Result<u64, StoreError>;
    /// Inserts an endpoint as it is, id included (`iam-tokens copy`).
    async fn insert_endpoint_row(&mut self, endpoint: &EndpointRecord) -> Result<(), StoreError>;
    /// Every outbox row, by id (`iam-tokens copy`).
    async fn all_outbox(&mut self) -> Result<Vec<OutboxRow>, StoreError>;
    /// Inserts an outbox row as it is, id included, so that `webhook-id`s go on from there.
    async fn insert_outbox_row(&mut self, row: &OutboxRow) -> Result<(), StoreError>;
    /// Every endpoint by id, or the one with this id; `lock` reads it for update.
    async fn endpoints_where(
        &mut self,
        endpoint: Option<u64>,
        lock: bool,
    ) -> Result<Vec<EndpointRecord>, StoreError>;
    /// Writes every field of an endpoint read before.
    async fn update_endpoint(&mut self, endpoint: &EndpointRecord) -> Result<(), StoreError>;
    /// Deletes an endpoint and its deliveries; false when there was none.
    async fn delete_endpoint(&mut self, endpoint: u64) -> Result<bool, StoreError>;
    /// Ends an endpoint's run of failed attempts, if it has one.
    async fn clear_failing(&mut self, endpoint: u64) -> Result<(), StoreError>;
    /// Writes an event: its id, or `None` when its dedupe key was written before.
    async fn insert_outbox(&mut self, event: &OutboxEvent) -> Result<Option<u64>, StoreError>;
    /// Events not yet fanned out to their endpoints, oldest first, claimed (skipped by
    /// another dispatcher until this transaction ends): `(id, type, detail, created_at)`.
    async fn unfanned_events(
        &mut self,
        limit: u32,
    ) -> Result<Vec<(u64, String, serde_json::Value, DateTime<Utc>)>, StoreError>;
    async fn mark_fanned(&mut self, events: &[u64]) -> Result<(), StoreError>;
    /// Whether an event waits to be fanned out, or a delivery is due at `now` (one indexed
    /// read each, without locks: an idle dispatcher costs two reads a round).
    async fn work_waiting(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Up to `limit` events written before `before` with nothing left to deliver, and their
    /// deliveries, deleted; how many events.
    async fn prune_events(&mut self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
    /// Valid tokens whose `(expires_at, id)` is after `after` and whose expiry is at most
    /// `until`, by expiry then id: `(id, created_at, expires_at)`.
    async fn tokens_expiring(
        &mut self,
        after: (DateTime<Utc>, u64),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(u64, DateTime<Utc>, DateTime<Utc>)>, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> WebhookSql for T {
    async fn insert_endpoint(&mut self, endpoint: &EndpointRecord) -> Result<u64, StoreError> {
        let args = vec![
            endpoint.url.as_str().into(),
            endpoint.description.as_deref().into(),
            endpoint.events.to_stored().into(),
            endpoint.include_metadata.into(),
            endpoint.secret.expose().into(),
            endpoint.created_at.into(),
            endpoint.updated_at.into(),
        ];
        self.insert(Statement::new(INSERT_ENDPOINT, args))
            .await?
            .ok_or_else(|| corrupt("webhook_endpoints: an insert without a unique key refused"))
    }
    async fn insert_endpoint_row(&mut self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        let mut args = endpoint_values(endpoint);
        // `endpoint_values` ends with the id (an update's key): here it leads, with the
        // creation time after it.
        let id_value = args.pop().unwrap_or(Value::Null);
        args.insert(0, id_value);
        args.push(endpoint.created_at.into());
        args.push(id(endpoint.after_event));
        let sql = format!(
            "INSERT INTO webhook_endpoints (id, url, description, events, include_metadata, \
             secret, previous_secret, previous_until, enabled, disabled_reason, failing_since, \
             updated_at, created_at, after_event) VALUES ({})",
            placeholders(14)
        );
        self.execute(Statement::new(sql, args)).await?;
        Ok(())
    }
    async fn all_outbox(&mut self) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {STORED_EVENT_COLUMNS}, e.dedupe_key, e.fanned FROM webhook_events e \
             ORDER BY e.id"
        );
        let rows = self.fetch(Statement::new(sql, Vec::new())).await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    event: stored_event_from(row, 0)?,
                    dedupe_key: row.opt_string(11)?,
                    fanned: row.bool(12)?,
                })
            })
            .collect()
    }
    async fn insert_outbox_row(&mut self, row: &OutboxRow) -> Result<(), StoreError> {
        let event = &row.event;
        let [actor_type, actor_id, actor_name] = actor_values(&event.actor);
        let args = vec![
            id(event.id),
            event.kind.as_str().into(),
            row.dedupe_key.as_deref().into(),
            event.token_id.map(id).unwrap_or(Value::Null),
            event.user_id.map(count).unwrap_or(Value::Null),
            event.name.as_deref().into(),
            event.metadata.as_deref().into(),
            actor_type,
            actor_id,
            actor_name,
            event.detail.to_string().into(),
            event.created_at.into(),
            row.fanned.into(),
        ];
        let sql = format!(
            "INSERT INTO webhook_events (id, type, dedupe_key, token_id, user_id, name, \
             metadata, actor_type, actor_id, actor_name, detail, created_at, fanned) \
             VALUES ({})",
            placeholders(13)
        );
        self.execute(Statement::new(sql, args)).await?;
        Ok(())
    }
    async fn endpoints_where(
        &mut self,
        endpoint: Option<u64>,
        lock: bool,
    ) -> Result<Vec<EndpointRecord>, StoreError> {
        let lock = match lock {
            true => self.dialect().for_update(),
            false => "",
        };
        let statement = match endpoint {
            Some(endpoint) => Statement::new(
                format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?{lock}"),
                vec![id(endpoint)],
            ),
            None => Statement::new(
                format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id{lock}"),
                Vec::new(),
            ),
        };
        self.fetch(statement)
            .await?
            .iter()
            .map(endpoint_from)
            .collect()
    }
    async fn update_endpoint(&mut self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        self.execute(Statement::new(UPDATE_ENDPOINT, endpoint_values(endpoint)))
            .await?;
        Ok(())
    }
    async fn delete_endpoint(&mut self, endpoint: u64) -> Result<bool, StoreError> {
        let deleted = self
            .execute(Statement::new(DELETE_ENDPOINT, vec![id(endpoint)]))
            .await?;
        self.execute(Statement::new(DELETE_DELIVERIES_OF, vec![id(endpoint)]))
            .await?;
        Ok(deleted > 0)
    }
    async fn clear_failing(&mut self, endpoint: u64) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_endpoints SET failing_since = NULL \
            WHERE id = ? AND failing_since IS NOT NULL";
        self.execute(Statement::new(sql, vec![id(endpoint)]))
            .await?;
        Ok(())
    }
    async fn insert_outbox(&mut self, event: &OutboxEvent) -> Result<Option<u64>, StoreError> {
        let token = event.token_id.map(id).unwrap_or(Value::Null);
        let [actor_type, actor_id, actor_name] = actor_values(&event.actor);
        let args = vec![
            event.kind.as_str().into(),
            event.dedupe_key.as_deref().into(),
            token.clone(),
            event.user_id.into(),
            actor_type,
            actor_id,
            actor_name,
            event.detail.to_string().into(),
            event.at.into(),
            token,
        ];
        let insert = match event.dedupe_key {
            Some(_) => self.dialect().insert_ignore(),
            None => "INSERT",
        };
        let sql = format!("{insert} INTO webhook_events {EVENT_VALUES}");
        let (changed, event_id) = self.execute_with_id(Statement::new(sql, args)).await?;
        Ok((changed > 0).then_some(event_id))
    }
    async fn unfanned_events(
        &mut self,
        limit: u32,
    ) -> Result<Vec<(u64, String, serde_json::Value, DateTime<Utc>)>, StoreError> {
        let sql = format!(
            "SELECT id, type, detail, created_at FROM webhook_events WHERE fanned = 0 \
             ORDER BY id LIMIT ?{}",
            self.dialect().skip_locked()
        );
        let rows = self
            .fetch(Statement::new(sql, vec![count(u64::from(limit))]))
            .await?;
        rows.iter()
            .map(|row| {
                let detail = row.string(2)?;
                Ok((
                    row.u64(0)?,
                    row.string(1)?,
                    serde_json::from_str(&detail).map_err(|_| corrupt("webhook_events.detail"))?,
                    row.time(3)?,
                ))
            })
            .collect()
    }
    async fn work_waiting(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let unfanned = "SELECT id FROM webhook_events WHERE fanned = 0 LIMIT 1";
        if !self
            .fetch(Statement::new(unfanned, Vec::new()))
            .await?
            .is_empty()
        {
            return Ok(true);
        }
        // Due to an enabled endpoint: a disabled one's deliveries wait without costing a claim.
        let due = "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints p \
            ON p.id = d.endpoint_id AND p.enabled = 1 \
            WHERE d.status = 'pending' AND d.next_attempt_at <= ? LIMIT 1";
        Ok(!self
            .fetch(Statement::new(due, vec![now.into()]))
            .await?
            .is_empty())
    }
    async fn mark_fanned(&mut self, events: &[u64]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE webhook_events SET fanned = 1 WHERE id IN ({})",
            placeholders(events.len())
        );
        self.execute(Statement::new(sql, ids(events))).await?;
        Ok(())
    }
    async fn prune_events(&mut self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        let sql = "SELECT e.id FROM webhook_events e WHERE e.created_at < ? AND e.fanned = 1 \
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id \
            AND d.status = 'pending') ORDER BY e.id LIMIT ?";
        let args = vec![before.into(), count(u64::from(limit))];
        let rows = self.fetch(Statement::new(sql, args)).await?;
        let events: Vec<u64> = rows
            .iter()
            .map(|row| row.u64(0))
            .collect::<Result<_, _>>()?;
        if events.is_empty() {
            return Ok(0);
        }
        let list = placeholders(events.len());
        let sql = format!("DELETE FROM webhook_deliveries WHERE event_id IN ({list})");
        self.execute(Statement::new(sql, ids(&events))).await?;
        let sql = format!("DELETE FROM webhook_events WHERE id IN ({list})");
        self.execute(Statement::new(sql, ids(&events))).await
    }
    async fn tokens_expiring(
        &mut self,
        after: (DateTime<Utc>, u64),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(u64, DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let sql = "SELECT id, created_at, expires_at FROM api_tokens WHERE valid = 1 \
            AND expires_at >= ? AND (expires_at > ? OR id > ?) AND expires_at <= ? \
            ORDER BY expires_at, id LIMIT ?";
        let args = vec![
            after.0.into(),
            after.0.into(),
            id(after.1),
            until.into(),
            count(u64::from(limit)),
        ];
        let rows = self.fetch(Statement::new(sql, args)).await?;
        rows.iter()
            .map(|row| Ok((row.u64(0)?, row.time(1)?, row.time(2)?)))
            .collect()
    }
}
