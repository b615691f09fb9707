//! Webhooks (SPEC B12) as values: the event catalogue and its filters, an endpoint, its
//! secret and its URL's shape, a delivery and its retry schedule.

mod catalogue;
mod credit_alerts;
mod delivery;
mod endpoint;
mod event;
mod secret;

pub use catalogue::{expired_key, EventFilter, EventFilterError, EventType};
pub use credit_alerts::CreditAlerts;
pub use delivery::{
    retry_after_cap, AttemptRecord, DeliveryQuery, DeliveryRecord, DeliveryStatus, RETRY_SCHEDULE,
};
pub use endpoint::{
    DisabledReason, EndpointChange, EndpointRecord, EndpointUrl, EndpointUrlError, NewEndpoint,
    WebhookDescription, MAX_DESCRIPTION,
};
pub use event::{ClaimedDelivery, OutboxEvent, OutboxRow, StoredEvent};
pub use secret::{EndpointSecret, SecretError};
