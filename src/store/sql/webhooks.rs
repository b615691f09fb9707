//! Statements of webhooks (SPEC B12): the endpoints, the outbox, the deliveries and the
//! expiry sweep's reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::{actor_from, actor_values};
use super::{count, id, placeholders, tuples, Row, Statement, Value};
use crate::domain::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DeliveryStatus, DisabledReason,
    EndpointRecord, EndpointSecret, EventFilter, OutboxEvent, OutboxRow, StoredEvent,
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
const STORED_EVENT_COLUMNS: &str = "e.id, e.type, e.token_id, e.user_id, e.name, e.metadata, \
    e.actor_type, e.actor_id, e.actor_name, e.detail, e.created_at";

const DELIVERY_COLUMNS: &str = "id, event_id, endpoint_id, event_type, status, attempts, \
    next_attempt_at, last_attempt_at, response_status, response_body, error, created_at, \
    delivered_at";
const FINISH_ATTEMPT: &str = "UPDATE webhook_deliveries SET status = ?, attempts = ?, \
    next_attempt_at = ?, last_attempt_at = ?, response_status = ?, response_body = ?, \
    error = ?, delivered_at = ? WHERE id = ?";
const RETRY: &str = "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ? \
    WHERE id = ? AND status <> 'pending'";
const PENDING_BY_TYPE: &str = "SELECT event_type, COUNT(*) FROM webhook_deliveries \
    WHERE status = 'pending' GROUP BY event_type";

/// Rows per multi-row insert of deliveries (7 values each).
const DELIVERY_CHUNK: usize = 200;

fn corrupt(what: &str) -> StoreError {
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
fn stored_event_from(row: &Row, at: usize) -> Result<StoredEvent, StoreError> {
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

fn delivery_from(row: &Row) -> Result<DeliveryRecord, StoreError> {
    let status = row.string(4)?;
    Ok(DeliveryRecord {
        id: row.u64(0)?,
        event_id: row.u64(1)?,
        endpoint_id: row.u64(2)?,
        event_type: row.string(3)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt("webhook_deliveries.status"))?,
        attempts: u32::try_from(row.u64(5)?).unwrap_or(u32::MAX),
        next_attempt_at: row.opt_time(6)?,
        last_attempt_at: row.opt_time(7)?,
        response_status: row
            .opt_u64(8)?
            .map(|code| u16::try_from(code).map_err(|_| corrupt("response_status")))
            .transpose()?,
        response_body: row.opt_string(9)?,
        error: row.opt_string(10)?,
        created_at: row.time(11)?,
        delivered_at: row.opt_time(12)?,
    })
}

fn ids(values: &[u64]) -> Vec<Value> {
    values.iter().copied().map(id).collect()
}

/// The page of the delivery log a query asks for, newest first.
fn delivery_page(query: &DeliveryQuery) -> Statement {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(endpoint) = query.endpoint {
        conditions.push("endpoint_id = ?");
        args.push(id(endpoint));
    }
    if let Some(status) = query.status {
        conditions.push("status = ?");
        args.push(status.as_str().into());
    }
    if let Some(kind) = &query.event_type {
        conditions.push("event_type = ?");
        args.push(kind.as_str().into());
    }
    if let Some(since) = query.since {
        conditions.push("created_at >= ?");
        args.push(since.into());
    }
    if let Some(before) = query.before {
        conditions.push("id < ?");
        args.push(id(before));
    }
    let filter = match conditions.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", conditions.join(" AND ")),
    };
    args.push(count(u64::from(query.limit)));
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries{filter} ORDER BY id DESC LIMIT ?"
    );
    Statement::new(sql, args)
}

/// Statements on webhooks.
#[async_trait]
pub trait WebhookSql {
    async fn insert_endpoint(&mut self, endpoint: &EndpointRecord) -> Result<u64, StoreError>;
    /// Inserts an endpoint as it is, id included (`iam-tokens copy`).
    async fn insert_endpoint_row(&mut self, endpoint: &EndpointRecord) -> Result<(), StoreError>;
    /// Every outbox row and every delivery, by id (`iam-tokens copy`).
    async fn all_outbox(&mut self) -> Result<(Vec<OutboxRow>, Vec<DeliveryRecord>), StoreError>;
    /// Inserts an outbox row as it is, id included, so that `webhook-id`s go on from there.
    async fn insert_outbox_row(&mut self, row: &OutboxRow) -> Result<(), StoreError>;
    /// Inserts a delivery as it is, id included.
    async fn insert_delivery_row(&mut self, delivery: &DeliveryRecord) -> Result<(), StoreError>;
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
    /// One pending delivery per `(event, endpoint, type)`, due at `at`; pairs that have one
    /// are skipped.
    async fn insert_deliveries(
        &mut self,
        rows: &[(u64, u64, &str)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The ids of pending deliveries due at `now` to these endpoints, claimed as above.
    async fn due_deliveries(
        &mut self,
        endpoints: &[u64],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<u64>, StoreError>;
    /// Moves these deliveries' next attempt to `until` (the claim's lease).
    async fn lease_deliveries(
        &mut self,
        deliveries: &[u64],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// These deliveries with their events.
    async fn claimed(&mut self, deliveries: &[u64]) -> Result<Vec<ClaimedDelivery>, StoreError>;
    async fn finish_attempt(
        &mut self,
        delivery: u64,
        attempt: &AttemptRecord,
    ) -> Result<(), StoreError>;
    async fn delivery(&mut self, delivery: u64) -> Result<Option<DeliveryRecord>, StoreError>;
    async fn delivery_page(
        &mut self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// A delivered or failed delivery made pending and due at `at`; false when there is none
    /// or it is pending.
    async fn retry_delivery(
        &mut self,
        delivery: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn pending_by_type(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
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

    async fn all_outbox(&mut self) -> Result<(Vec<OutboxRow>, Vec<DeliveryRecord>), StoreError> {
        let sql = format!(
            "SELECT {STORED_EVENT_COLUMNS}, e.dedupe_key, e.fanned FROM webhook_events e \
             ORDER BY e.id"
        );
        let rows = self.fetch(Statement::new(sql, Vec::new())).await?;
        let events = rows
            .iter()
            .map(|row| {
                Ok(OutboxRow {
                    event: stored_event_from(row, 0)?,
                    dedupe_key: row.opt_string(11)?,
                    fanned: row.bool(12)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries ORDER BY id");
        let rows = self.fetch(Statement::new(sql, Vec::new())).await?;
        let deliveries = rows.iter().map(delivery_from).collect::<Result<_, _>>()?;
        Ok((events, deliveries))
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

    async fn insert_delivery_row(&mut self, d: &DeliveryRecord) -> Result<(), StoreError> {
        let args = vec![
            id(d.id),
            id(d.event_id),
            id(d.endpoint_id),
            d.event_type.as_str().into(),
            d.status.as_str().into(),
            count(u64::from(d.attempts)),
            d.next_attempt_at.into(),
            d.last_attempt_at.into(),
            d.response_status.map(i64::from).into(),
            d.response_body.as_deref().into(),
            d.error.as_deref().into(),
            d.created_at.into(),
            d.delivered_at.into(),
        ];
        let sql = format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ({})",
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

    async fn insert_deliveries(
        &mut self,
        rows: &[(u64, u64, &str)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(DELIVERY_CHUNK) {
            let sql = format!(
                "{} INTO webhook_deliveries (event_id, endpoint_id, event_type, status, \
                 attempts, next_attempt_at, created_at) VALUES {}",
                self.dialect().insert_ignore(),
                tuples(chunk.len(), 7)
            );
            let mut args = Vec::with_capacity(chunk.len() * 7);
            for &(event, endpoint, kind) in chunk {
                args.extend([
                    id(event),
                    id(endpoint),
                    kind.into(),
                    DeliveryStatus::Pending.as_str().into(),
                    count(0),
                    at.into(),
                    at.into(),
                ]);
            }
            self.execute(Statement::new(sql, args)).await?;
        }
        Ok(())
    }

    async fn due_deliveries(
        &mut self,
        endpoints: &[u64],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<u64>, StoreError> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? \
             AND endpoint_id IN ({}) ORDER BY next_attempt_at LIMIT ?{}",
            placeholders(endpoints.len()),
            self.dialect().skip_locked()
        );
        let mut args = vec![now.into()];
        args.extend(ids(endpoints));
        args.push(count(u64::from(limit)));
        let rows = self.fetch(Statement::new(sql, args)).await?;
        rows.iter().map(|row| row.u64(0)).collect()
    }

    async fn lease_deliveries(
        &mut self,
        deliveries: &[u64],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN ({})",
            placeholders(deliveries.len())
        );
        let mut args = vec![until.into()];
        args.extend(ids(deliveries));
        self.execute(Statement::new(sql, args)).await?;
        Ok(())
    }

    async fn claimed(&mut self, deliveries: &[u64]) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT d.id, d.endpoint_id, d.attempts, {STORED_EVENT_COLUMNS} \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             WHERE d.id IN ({}) ORDER BY d.id",
            placeholders(deliveries.len())
        );
        let rows = self.fetch(Statement::new(sql, ids(deliveries))).await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    id: row.u64(0)?,
                    endpoint_id: row.u64(1)?,
                    attempts: u32::try_from(row.u64(2)?).unwrap_or(u32::MAX),
                    event: stored_event_from(row, 3)?,
                })
            })
            .collect()
    }

    async fn finish_attempt(
        &mut self,
        delivery: u64,
        attempt: &AttemptRecord,
    ) -> Result<(), StoreError> {
        let delivered_at = (attempt.status == DeliveryStatus::Delivered).then_some(attempt.at);
        let args = vec![
            attempt.status.as_str().into(),
            count(u64::from(attempt.attempts)),
            attempt.next_attempt_at.into(),
            attempt.at.into(),
            attempt.response_status.map(i64::from).into(),
            attempt.response_body.as_deref().into(),
            attempt.error.as_deref().into(),
            delivered_at.into(),
            id(delivery),
        ];
        self.execute(Statement::new(FINISH_ATTEMPT, args)).await?;
        Ok(())
    }

    async fn delivery(&mut self, delivery: u64) -> Result<Option<DeliveryRecord>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?");
        let rows = self.fetch(Statement::new(sql, vec![id(delivery)])).await?;
        rows.first().map(delivery_from).transpose()
    }

    async fn delivery_page(
        &mut self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = self.fetch(delivery_page(query)).await?;
        rows.iter().map(delivery_from).collect()
    }

    async fn retry_delivery(
        &mut self,
        delivery: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let args = vec![at.into(), id(delivery)];
        Ok(self.execute(Statement::new(RETRY, args)).await? > 0)
    }

    async fn pending_by_type(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .fetch(Statement::new(PENDING_BY_TYPE, Vec::new()))
            .await?;
        rows.iter()
            .map(|row| Ok((row.string(0)?, row.u64(1)?)))
            .collect()
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
