//! Statements of webhook deliveries (SPEC B12): one per (event, endpoint), claimed, attempted,
//! finished, listed and retried.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::webhooks::{corrupt, ids, stored_event_from, STORED_EVENT_COLUMNS};
use super::{count, id, placeholders, tuples, Row, Statement};
use crate::domain::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DeliveryStatus,
};
use crate::store::backend::Tx;
use crate::store::StoreError;

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

/// Statements on webhook deliveries.
#[async_trait]
pub trait DeliverySql {
    /// Every delivery, by id (`iam-tokens copy`).
    async fn all_deliveries(&mut self) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Inserts a delivery as it is, id included.
    async fn insert_delivery_row(&mut self, delivery: &DeliveryRecord) -> Result<(), StoreError>;
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
}

#[async_trait]
impl<T: Tx + ?Sized> DeliverySql for T {
    async fn all_deliveries(&mut self) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries ORDER BY id");
        let rows = self.fetch(Statement::new(sql, Vec::new())).await?;
        rows.iter().map(delivery_from).collect()
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
}
