//! Webhook endpoints and their delivery log (SPEC B12), for trusted operators. An endpoint's
//! URL is checked (scheme, where it resolves) before it is stored; the dispatcher checks it
//! again at every connection.

use std::sync::Arc;

use super::TokenService;
use crate::domain::webhook::{
    DeliveryQuery, DeliveryRecord, EndpointChange, EndpointRecord, EndpointSecret, NewEndpoint,
};
use crate::events::{Events, UrlRefused};
use crate::store::{RetryOutcome, StoreError};

/// How long the secret before a rotation keeps signing.
pub fn secret_overlap() -> chrono::Duration {
    chrono::Duration::hours(24)
}

/// Why an endpoint change was not made.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Url(#[from] UrlRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenService {
    /// The webhooks of this service (its outbound client and background work).
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// Creates an endpoint with a new secret (answered once, in the record).
    pub async fn create_webhook(
        &self,
        mut endpoint: NewEndpoint,
    ) -> Result<EndpointRecord, WebhookError> {
        self.events.check_url(&endpoint.url).await?;
        endpoint.secret = EndpointSecret::generate();
        Ok(self.store.create_endpoint(&endpoint, &self.audit()).await?)
    }

    pub async fn webhooks(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.store.endpoints().await
    }

    pub async fn webhook(&self, endpoint: u64) -> Result<Option<EndpointRecord>, StoreError> {
        self.store.endpoint(endpoint).await
    }

    /// Changes an endpoint (a new URL is checked first); `None` when there is none.
    pub async fn update_webhook(
        &self,
        endpoint: u64,
        change: EndpointChange,
    ) -> Result<Option<EndpointRecord>, WebhookError> {
        if let Some(url) = &change.url {
            self.events.check_url(url).await?;
        }
        Ok(self
            .store
            .update_endpoint(endpoint, &change, &self.audit())
            .await?)
    }

    pub async fn delete_webhook(&self, endpoint: u64) -> Result<bool, StoreError> {
        self.store.delete_endpoint(endpoint, &self.audit()).await
    }

    /// A new secret (in the record, shown once); the old one signs for 24 more hours.
    pub async fn rotate_webhook_secret(
        &self,
        endpoint: u64,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let audit = self.audit();
        let until = audit.at + secret_overlap();
        self.store
            .rotate_endpoint_secret(endpoint, &EndpointSecret::generate(), until, &audit)
            .await
    }

    /// Queues a `webhook.test` event to this endpoint alone.
    pub async fn test_webhook(&self, endpoint: u64) -> Result<Option<DeliveryRecord>, StoreError> {
        self.store.test_delivery(endpoint, &self.audit()).await
    }

    pub async fn webhook_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.store.deliveries(query).await
    }

    /// Sends a delivered or failed delivery again, now.
    pub async fn retry_webhook_delivery(&self, delivery: u64) -> Result<RetryOutcome, StoreError> {
        self.store.retry_delivery(delivery, self.clock.now()).await
    }
}
