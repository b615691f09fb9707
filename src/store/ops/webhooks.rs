//! Webhooks over any backend (SPEC B12): endpoint changes with their audit events, the fan-out
//! of new events into deliveries, the claim of due deliveries and the end of an attempt.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{done, work, StoreOps};
use crate::domain::actor::job;
use crate::domain::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DisabledReason, EndpointChange,
    EndpointRecord, EndpointSecret, EventType, NewEndpoint, OutboxEvent,
};
use crate::domain::Actor;
use crate::store::backend::{Backend, Tx, TxEnd};
use crate::store::sql::families::*;
use crate::store::{Audit, AuditKind, RetryOutcome, StoreError, WebhookStore};

/// What an endpoint's audit rows say about it (never its secret).
fn endpoint_detail(endpoint: &EndpointRecord) -> serde_json::Value {
    json!({
        "endpointId": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events.patterns(),
        "includeMetadata": endpoint.include_metadata,
        "enabled": endpoint.enabled,
    })
}

async fn locked_endpoint(
    tx: &mut dyn Tx,
    endpoint: u64,
) -> Result<Option<EndpointRecord>, StoreError> {
    Ok(tx
        .endpoints_where(Some(endpoint), true)
        .await?
        .into_iter()
        .next())
}

/// Disables an endpoint (already read under its lock): its audit row, and through it the
/// `webhook.endpoint.disabled` event to the other endpoints.
async fn disable(
    tx: &mut dyn Tx,
    endpoint: &mut EndpointRecord,
    reason: DisabledReason,
    audit: &Audit,
) -> Result<(), StoreError> {
    endpoint.enabled = false;
    endpoint.disabled_reason = Some(reason);
    endpoint.updated_at = audit.at;
    tx.update_endpoint(endpoint).await?;
    let mut detail = endpoint_detail(endpoint);
    detail["reason"] = json!(reason.as_str());
    tx.write_event(None, AuditKind::WebhookDisabled, audit, detail)
        .await
}

/// The endpoints an event goes to: those admitting its type that existed before it was
/// written (by event id: times of one millisecond cannot order them); a test only to its
/// endpoint, an endpoint's disabling to every other.
fn recipients<'e>(
    endpoints: &'e [EndpointRecord],
    kind: &str,
    detail: &serde_json::Value,
    event: u64,
) -> impl Iterator<Item = &'e EndpointRecord> + 'e {
    let kind = EventType::parse(kind);
    let about = detail.get("endpointId").and_then(serde_json::Value::as_u64);
    endpoints.iter().filter(move |endpoint| match kind {
        None => false,
        Some(EventType::Test) => about == Some(endpoint.id),
        Some(kind) => {
            endpoint.enabled
                && endpoint.after_event < event
                && endpoint.events.admits(kind)
                && !(kind == EventType::EndpointDisabled && about == Some(endpoint.id))
        }
    })
}

#[async_trait]
impl<B: Backend> WebhookStore for StoreOps<B> {
    async fn create_endpoint(
        &self,
        endpoint: &NewEndpoint,
        audit: &Audit,
    ) -> Result<EndpointRecord, StoreError> {
        let record = EndpointRecord {
            id: 0,
            url: endpoint.url.as_str().to_owned(),
            description: endpoint.description.as_ref().map(|d| d.as_str().to_owned()),
            events: endpoint.events.clone(),
            include_metadata: endpoint.include_metadata,
            secret: endpoint.secret.clone(),
            previous_secret: None,
            previous_until: None,
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            after_event: 0,
            created_at: audit.at,
            updated_at: audit.at,
        };
        let audit = Arc::new(audit.clone());
        self.backend
            .write(work(move |tx| {
                let (mut record, audit) = (record.clone(), audit.clone());
                Box::pin(async move {
                    record.id = tx.insert_endpoint(&record).await?;
                    // Read back for the event id the insert recorded.
                    if let Some(stored) = tx.endpoints_where(Some(record.id), false).await?.pop() {
                        record.after_event = stored.after_event;
                    }
                    let detail = endpoint_detail(&record);
                    tx.write_event(None, AuditKind::WebhookCreated, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(record))
                })
            }))
            .await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move { done(tx.endpoints_where(None, false).await?) })
            }))
            .await
    }

    async fn endpoint(&self, endpoint: u64) -> Result<Option<EndpointRecord>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move {
                    done(
                        tx.endpoints_where(Some(endpoint), false)
                            .await?
                            .into_iter()
                            .next(),
                    )
                })
            }))
            .await
    }

    async fn update_endpoint(
        &self,
        endpoint: u64,
        change: &EndpointChange,
        audit: &Audit,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let (change, audit) = (Arc::new(change.clone()), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (change, audit) = (change.clone(), audit.clone());
                Box::pin(async move {
                    let Some(mut record) = locked_endpoint(tx, endpoint).await? else {
                        return Ok(TxEnd::Rollback(None));
                    };
                    let was_enabled = record.enabled;
                    if let Some(url) = &change.url {
                        record.url = url.as_str().to_owned();
                    }
                    if let Some(description) = &change.description {
                        record.description = description.as_ref().map(|d| d.as_str().to_owned());
                    }
                    if let Some(events) = &change.events {
                        record.events = events.clone();
                    }
                    if let Some(include) = change.include_metadata {
                        record.include_metadata = include;
                    }
                    if change.enabled == Some(true) && !was_enabled {
                        record.enabled = true;
                        record.disabled_reason = None;
                        record.failing_since = None;
                    }
                    record.updated_at = audit.at;
                    tx.update_endpoint(&record).await?;
                    let detail = endpoint_detail(&record);
                    tx.write_event(None, AuditKind::WebhookUpdated, &audit, detail)
                        .await?;
                    if change.enabled == Some(false) && was_enabled {
                        disable(tx, &mut record, DisabledReason::Manual, &audit).await?;
                    }
                    Ok(TxEnd::Commit(Some(record)))
                })
            }))
            .await
    }

    async fn delete_endpoint(&self, endpoint: u64, audit: &Audit) -> Result<bool, StoreError> {
        let audit = Arc::new(audit.clone());
        self.backend
            .write(work(move |tx| {
                let audit = audit.clone();
                Box::pin(async move {
                    let Some(record) = locked_endpoint(tx, endpoint).await? else {
                        return Ok(TxEnd::Rollback(false));
                    };
                    tx.delete_endpoint(endpoint).await?;
                    let detail = endpoint_detail(&record);
                    tx.write_event(None, AuditKind::WebhookDeleted, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(true))
                })
            }))
            .await
    }

    async fn rotate_endpoint_secret(
        &self,
        endpoint: u64,
        secret: &EndpointSecret,
        overlap_until: DateTime<Utc>,
        audit: &Audit,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let (secret, audit) = (secret.clone(), Arc::new(audit.clone()));
        self.backend
            .write(work(move |tx| {
                let (secret, audit) = (secret.clone(), audit.clone());
                Box::pin(async move {
                    let Some(mut record) = locked_endpoint(tx, endpoint).await? else {
                        return Ok(TxEnd::Rollback(None));
                    };
                    record.previous_secret = Some(std::mem::replace(&mut record.secret, secret));
                    record.previous_until = Some(overlap_until);
                    record.updated_at = audit.at;
                    tx.update_endpoint(&record).await?;
                    let mut detail = endpoint_detail(&record);
                    detail["previousSecretUntil"] = json!(overlap_until);
                    tx.write_event(None, AuditKind::WebhookSecretRotated, &audit, detail)
                        .await?;
                    Ok(TxEnd::Commit(Some(record)))
                })
            }))
            .await
    }

    async fn test_delivery(
        &self,
        endpoint: u64,
        audit: &Audit,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let audit = Arc::new(audit.clone());
        self.backend
            .write(work(move |tx| {
                let audit = audit.clone();
                Box::pin(async move {
                    if locked_endpoint(tx, endpoint).await?.is_none() {
                        return Ok(TxEnd::Rollback(None));
                    }
                    let event = OutboxEvent {
                        kind: EventType::Test,
                        dedupe_key: None,
                        token_id: None,
                        user_id: None,
                        actor: audit.actor.clone(),
                        detail: json!({ "endpointId": endpoint }),
                        at: audit.at,
                    };
                    let Some(event_id) = tx.insert_outbox(&event).await? else {
                        return Err(StoreError::CorruptRow(
                            "webhook_events: test refused".into(),
                        ));
                    };
                    let kind = EventType::Test.as_str();
                    tx.insert_deliveries(&[(event_id, endpoint, kind)], audit.at)
                        .await?;
                    tx.mark_fanned(&[event_id]).await?;
                    let query = DeliveryQuery {
                        endpoint: Some(endpoint),
                        limit: 1,
                        ..DeliveryQuery::default()
                    };
                    let delivery = tx.delivery_page(&query).await?.into_iter().next();
                    Ok(TxEnd::Commit(delivery))
                })
            }))
            .await
    }

    async fn write_threshold_event(&self, event: &OutboxEvent) -> Result<bool, StoreError> {
        let event = Arc::new(event.clone());
        self.backend
            .write(work(move |tx| {
                let event = event.clone();
                Box::pin(async move { done(tx.insert_outbox(&event).await?.is_some()) })
            }))
            .await
    }

    async fn webhook_work_waiting(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.work_waiting(now).await?) })
            }))
            .await
    }

    async fn fan_out(&self, limit: u32, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move {
                    let events = tx.unfanned_events(limit).await?;
                    if events.is_empty() {
                        return done(0);
                    }
                    let endpoints = tx.endpoints_where(None, false).await?;
                    let mut rows = Vec::new();
                    for (event, kind, detail, _) in &events {
                        for endpoint in recipients(&endpoints, kind, detail, *event) {
                            rows.push((*event, endpoint.id, kind.as_str()));
                        }
                    }
                    tx.insert_deliveries(&rows, at).await?;
                    let ids: Vec<u64> = events.iter().map(|event| event.0).collect();
                    tx.mark_fanned(&ids).await?;
                    done(ids.len() as u64)
                })
            }))
            .await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ClaimedDelivery, EndpointRecord)>, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move {
                    let endpoints = tx.endpoints_where(None, false).await?;
                    let enabled: Vec<u64> = endpoints
                        .iter()
                        .filter(|endpoint| endpoint.enabled)
                        .map(|endpoint| endpoint.id)
                        .collect();
                    let due = tx.due_deliveries(&enabled, now, limit).await?;
                    if due.is_empty() {
                        return done(Vec::new());
                    }
                    tx.lease_deliveries(&due, lease_until).await?;
                    let claimed = tx.claimed(&due).await?;
                    let paired = claimed
                        .into_iter()
                        .filter_map(|delivery| {
                            let endpoint = endpoints
                                .iter()
                                .find(|endpoint| endpoint.id == delivery.endpoint_id)?;
                            Some((delivery, endpoint.clone()))
                        })
                        .collect();
                    done(paired)
                })
            }))
            .await
    }

    async fn finish_attempt(
        &self,
        delivery: u64,
        endpoint: u64,
        attempt: &AttemptRecord,
        disable_for: Option<DisabledReason>,
        failing_limit: Duration,
    ) -> Result<(), StoreError> {
        let attempt = Arc::new(attempt.clone());
        self.backend
            .write(work(move |tx| {
                let attempt = attempt.clone();
                Box::pin(async move {
                    tx.finish_attempt(delivery, &attempt).await?;
                    if attempt.status == crate::domain::webhook::DeliveryStatus::Delivered {
                        // No read of the endpoint: a success only ends a run of failures.
                        tx.clear_failing(endpoint).await?;
                        return done(());
                    }
                    let Some(mut record) = locked_endpoint(tx, endpoint).await? else {
                        return done(());
                    };
                    let since = *record.failing_since.get_or_insert(attempt.at);
                    let reason = disable_for.or_else(|| {
                        (attempt.at - since >= failing_limit).then_some(DisabledReason::Failing)
                    });
                    match reason {
                        Some(reason) if record.enabled => {
                            let system = Audit {
                                actor: Actor::system(job::WEBHOOKS),
                                at: attempt.at,
                            };
                            disable(tx, &mut record, reason, &system).await?;
                        }
                        _ => tx.update_endpoint(&record).await?,
                    }
                    done(())
                })
            }))
            .await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let query = Arc::new(query.clone());
        self.backend
            .read(work(move |tx| {
                let query = query.clone();
                Box::pin(async move { done(tx.delivery_page(&query).await?) })
            }))
            .await
    }

    async fn retry_delivery(
        &self,
        delivery: u64,
        at: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move {
                    if !tx.retry_delivery(delivery, at).await? {
                        return done(match tx.delivery(delivery).await? {
                            Some(_) => RetryOutcome::AlreadyPending,
                            None => RetryOutcome::NotFound,
                        });
                    }
                    done(match tx.delivery(delivery).await? {
                        Some(record) => RetryOutcome::Scheduled(record),
                        None => RetryOutcome::NotFound,
                    })
                })
            }))
            .await
    }

    async fn pending_deliveries(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.backend
            .read(work(|tx| {
                Box::pin(async move { done(tx.pending_by_type().await?) })
            }))
            .await
    }

    async fn prune_events(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.backend
            .write(work(move |tx| {
                Box::pin(async move { done(tx.prune_events(before, limit).await?) })
            }))
            .await
    }

    async fn tokens_expiring(
        &self,
        after: (DateTime<Utc>, u64),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(u64, DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        self.backend
            .read(work(move |tx| {
                Box::pin(async move { done(tx.tokens_expiring(after, until, limit).await?) })
            }))
            .await
    }
}
