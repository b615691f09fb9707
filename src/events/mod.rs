//! Webhooks at run time (SPEC B12): the one outbound client, the dispatcher, the expiry sweep
//! and the threshold reporters. Events themselves are written by the store, in the
//! transaction of the change they describe (`store/sql/audit.rs`), or once per crossing under
//! a dedupe key (credits in `store/ops/quota.rs`, limits in `thresholds.rs`, expiry in
//! `sweep.rs`).

pub mod address;
pub mod client;
mod dispatcher;
mod payload;
mod schedule;
mod signer;
mod sweep;
pub mod thresholds;

pub use client::{Outbound, Reply, UrlRefused};
pub use dispatcher::failing_limit;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::WebhookSettings;
use crate::domain::webhook::EndpointUrl;
use crate::store::{StoreError, TokenStore};
use crate::telemetry::Metrics;

/// How often the pending gauges are read.
const PENDING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Events deleted per prune.
const PRUNE_BATCH: u32 = 1_000;

/// The webhooks of one service.
pub struct Events {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    settings: WebhookSettings,
    /// `None` when the TLS client could not be built (logged): nothing is sent.
    outbound: Option<Outbound>,
    metrics: Arc<Metrics>,
}

impl Events {
    pub fn new(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        settings: WebhookSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let policy = address::AddressPolicy::new(settings.allow_cidrs.clone());
        let outbound = match Outbound::new(policy, settings.allow_http, settings.timeout) {
            Ok(outbound) => Some(outbound),
            Err(err) => {
                tracing::error!(error = %err, "could not build the webhook client; webhooks are off");
                None
            }
        };
        Self {
            store,
            clock,
            settings,
            outbound,
            metrics,
        }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Whether an endpoint URL may be used (scheme and resolved addresses, SPEC B12).
    pub async fn check_url(&self, url: &EndpointUrl) -> Result<(), UrlRefused> {
        match &self.outbound {
            Some(outbound) => outbound.check(url).await,
            None => Err(UrlRefused::Unresolved),
        }
    }

    fn dispatcher(&self) -> Option<dispatcher::Dispatcher> {
        Some(dispatcher::Dispatcher {
            store: self.store.clone(),
            outbound: self.outbound.clone()?,
            clock: self.clock.clone(),
            metrics: self.metrics.webhooks(),
            pace: dispatcher::Pace {
                batch: self.settings.batch,
                concurrency: self.settings.concurrency,
                lease: self.settings.lease,
            },
        })
    }

    /// Delivers until stopped: fans out new events and attempts due deliveries every
    /// `poll_interval` (at once again after a full batch).
    pub async fn run_dispatcher(self: Arc<Self>) {
        let Some(dispatcher) = self.dispatcher() else {
            return;
        };
        loop {
            match dispatcher.round().await {
                Ok(attempted) if attempted == self.settings.batch as usize => continue,
                Ok(_) => {}
                Err(err) => {
                    self.metrics.store_error("webhooks");
                    tracing::warn!(error = %err, "webhook dispatch failed; retrying");
                }
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// One dispatch round (tests drive it with a manual clock): how many attempts it made.
    pub async fn dispatch_once(&self) -> Result<usize, StoreError> {
        match self.dispatcher() {
            Some(dispatcher) => dispatcher.round().await,
            None => Ok(0),
        }
    }

    /// Sweeps expiry every `sweep_interval` until stopped.
    pub async fn run_sweep(self: Arc<Self>) {
        let mut sweep = sweep::Sweep {
            store: self.store.clone(),
            clock: self.clock.clone(),
            offsets: self.settings.offsets(),
            lookback: self.settings.retention,
            swept_until: None,
        };
        loop {
            if let Err(err) = sweep.run().await {
                self.metrics.store_error("webhooks");
                tracing::warn!(error = %err, "the expiry sweep failed; retrying");
            }
            tokio::time::sleep(self.settings.sweep_interval).await;
        }
    }

    /// Reads the pending gauges and deletes old events every 10 s, until stopped.
    pub async fn run_upkeep(self: Arc<Self>) {
        let gauges = self.metrics.webhooks();
        loop {
            self.upkeep(&gauges).await;
            tokio::time::sleep(PENDING_EVERY).await;
        }
    }

    /// One upkeep: the pending gauges read, up to 1,000 events past `retention` deleted.
    pub async fn upkeep_once(&self) {
        self.upkeep(&self.metrics.webhooks()).await;
    }

    async fn upkeep(&self, gauges: &crate::telemetry::webhooks::WebhookMetrics) {
        match self.store.pending_deliveries().await {
            Ok(counts) => gauges.pending(&counts),
            Err(err) => tracing::warn!(error = %err, "could not count pending webhooks"),
        }
        let retention = chrono::Duration::from_std(self.settings.retention).unwrap_or_default();
        let before = self.clock.now() - retention;
        if let Err(err) = self.store.prune_events(before, PRUNE_BATCH).await {
            tracing::warn!(error = %err, "could not prune webhook events; retrying");
        }
    }
}
