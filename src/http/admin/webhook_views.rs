//! JSON shapes of webhooks (SPEC B12): endpoints (a secret only when just made), deliveries.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::webhook::{DeliveryRecord, EndpointRecord};
use crate::envelope::iso_time;

/// A webhook endpoint. Its secret is shown only when created or rotated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: u64,
    #[schema(example = "https://hooks.example.com/iam")]
    pub url: String,
    pub description: Option<String>,
    /// Event types and patterns (`token.*`, `*`).
    #[schema(example = json!(["token.*", "credits.low"]))]
    pub events: Vec<String>,
    /// Whether a token's metadata is sent in `data.metadata`.
    pub include_metadata: bool,
    pub enabled: bool,
    /// Why it is disabled: `manual`, `gone` (it answered 410) or `failing` (5 days of failed
    /// attempts). Absent while enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "gone")]
    pub disabled_reason: Option<&'static str>,
    /// When its current run of failed attempts began (null: its last attempt succeeded).
    #[serde(with = "iso_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs (a second signature).
    #[serde(with = "iso_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

impl WebhookView {
    pub fn at(record: &EndpointRecord, now: DateTime<Utc>) -> Self {
        Self {
            id: record.id,
            url: record.url.clone(),
            description: record.description.clone(),
            events: record.events.patterns().to_vec(),
            include_metadata: record.include_metadata,
            enabled: record.enabled,
            disabled_reason: record.disabled_reason.map(|r| r.as_str()),
            failing_since: record.failing_since,
            previous_secret_expires_at: record.previous_until.filter(|until| *until > now),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// An endpoint with its new secret: shown here and never again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretView {
    /// `whsec_…`: give it to a Standard Webhooks library to verify our requests.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhooksView {
    pub webhooks: Vec<WebhookView>,
}

/// An endpoint deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeletedView {
    pub deleted: u64,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: u64,
    /// The `webhook-id` every attempt carries (`evt_<n>`).
    #[schema(example = "evt_42")]
    pub event_id: String,
    pub endpoint_id: u64,
    #[serde(rename = "type")]
    #[schema(example = "token.created")]
    pub kind: String,
    /// `pending`, `delivered` or `failed` (every attempt of the schedule failed).
    #[schema(example = "delivered")]
    pub status: &'static str,
    pub attempts: u32,
    #[serde(with = "iso_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's status code (null: no answer).
    pub response_status: Option<u16>,
    /// Up to 2 KiB of the last answer's body.
    pub response_body: Option<String>,
    /// Why the last attempt got no answer.
    pub error: Option<String>,
    #[serde(with = "iso_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(record: DeliveryRecord) -> Self {
        Self {
            id: record.id,
            event_id: format!("evt_{}", record.event_id),
            endpoint_id: record.endpoint_id,
            kind: record.event_type,
            status: record.status.as_str(),
            attempts: record.attempts,
            next_attempt_at: record.next_attempt_at,
            last_attempt_at: record.last_attempt_at,
            response_status: record.response_status,
            response_body: record.response_body,
            error: record.error,
            created_at: record.created_at,
            delivered_at: record.delivered_at,
        }
    }
}

/// A page of the delivery log, newest first; `nextCursor` fetches the next (null: the last).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveriesView {
    pub deliveries: Vec<DeliveryView>,
    pub next_cursor: Option<u64>,
}
