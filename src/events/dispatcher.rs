//! The dispatcher (SPEC B12): fans new events out into deliveries, claims due deliveries (no
//! other dispatcher claims them: `SKIP LOCKED` and a lease), sends each signed, and writes what
//! the receiver answered. A dispatcher killed mid-attempt loses nothing: its claims fall due
//! again when their lease ends, with the same `webhook-id`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::Rng;

use super::client::{Outbound, Reply};
use super::{payload, schedule, signer};
use crate::clock::Clock;
use crate::domain::webhook::{ClaimedDelivery, EndpointRecord};
use crate::store::{StoreError, TokenStore};
use crate::telemetry::webhooks::WebhookMetrics;

/// A run of failed attempts this long disables an endpoint.
pub fn failing_limit() -> chrono::Duration {
    chrono::Duration::days(5)
}

/// How a dispatcher paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub batch: u32,
    pub concurrency: usize,
    pub lease: Duration,
}

pub struct Dispatcher {
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) outbound: Outbound,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: WebhookMetrics,
    pub(super) pace: Pace,
}

impl Dispatcher {
    /// One round: fans out every new event, then attempts the deliveries due (one claim).
    /// Answers how many it attempted (a full batch: call again at once).
    pub async fn round(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        if !self.store.webhook_work_waiting(now).await? {
            return Ok(0);
        }
        while self.store.fan_out(self.pace.batch, now).await? == u64::from(self.pace.batch) {}
        let lease = chrono::Duration::from_std(self.pace.lease).unwrap_or_default();
        let claimed = self
            .store
            .claim_deliveries(now, now + lease, self.pace.batch)
            .await?;
        let count = claimed.len();
        let attempts = futures_util::stream::iter(claimed)
            .map(|(delivery, endpoint)| self.attempt(delivery, endpoint))
            .buffer_unordered(self.pace.concurrency);
        let results: Vec<Result<(), StoreError>> = attempts.collect().await;
        for result in results {
            if let Err(err) = result {
                // The delivery falls due again when its lease ends.
                tracing::warn!(error = %err, "could not record a webhook attempt");
            }
        }
        Ok(count)
    }

    /// Sends one delivery and records what came of it.
    async fn attempt(
        &self,
        delivery: ClaimedDelivery,
        endpoint: EndpointRecord,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let body = payload::body(&delivery.event, endpoint.include_metadata);
        let id = payload::message_id(&delivery.event);
        let reply = self.send(&endpoint, &id, now, body).await;
        let (record, disable) = schedule::after_attempt(
            delivery.attempts,
            &reply.0,
            self.clock.now(),
            rand::thread_rng().gen_range(-schedule::JITTER..=schedule::JITTER),
        );
        let delivered = record.status == crate::domain::webhook::DeliveryStatus::Delivered;
        self.metrics
            .attempt(&delivery.event.kind, delivered, reply.1.as_secs_f64());
        if !delivered {
            tracing::info!(
                endpoint = endpoint.id,
                delivery = delivery.id,
                status = ?record.response_status,
                error = ?record.error,
                "webhook attempt failed"
            );
        }
        self.store
            .finish_attempt(delivery.id, endpoint.id, &record, disable, failing_limit())
            .await
    }

    async fn send(
        &self,
        endpoint: &EndpointRecord,
        id: &str,
        now: DateTime<Utc>,
        body: Vec<u8>,
    ) -> (Reply, Duration) {
        let timestamp = now.timestamp();
        let secrets = endpoint.signing_secrets(now);
        let headers = [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                signer::signature(&secrets, id, timestamp, &body),
            ),
        ];
        let started = std::time::Instant::now();
        let reply = self.outbound.post(&endpoint.url, &headers, body).await;
        (reply, started.elapsed())
    }
}
