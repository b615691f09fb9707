//! A service's life: built from `Settings` (or the embedded store's defaults), its batched uses
//! written by a background task it starts itself, and a `shutdown` that writes the rest. No use
//! of the library can lose counts on a clean stop; one dropped with uses unwritten says so
//! loudly (see `UsageRecorder`'s `Drop`).

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{CacheConfig, ServiceOptions, TokenService, UsageRecorder};
use crate::clock::{Clock, Moment, SystemClock};
use crate::config::{Settings, SettingsError};
use crate::secret::Secret;
use crate::store::StoreError;

/// Why a service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often analytics are written when uses are written before answering
/// (`usage.flush_interval = 0`).
pub const ANALYTICS_FLUSH: Duration = Duration::from_secs(1);

impl ServiceOptions {
    /// The cache and batched counting as `[verify]` and `[usage]` configure them.
    pub fn from_settings(settings: &Settings) -> Self {
        let verify = &settings.verify;
        let cache = (!verify.cache_ttl.is_zero()).then(|| CacheConfig {
            ttl: verify.cache_ttl,
            negative_ttl: verify.negative_cache_ttl,
            max_entries: verify.cache_max_entries,
            max_stale: verify.serve_stale_on_error.then_some(verify.max_stale),
        });
        let flush = settings.usage.flush_interval;
        Self {
            limit_tokens_per_user: settings.api_tokens.limit_tokens_per_user,
            cache,
            batch_usage: !flush.is_zero(),
            // Synchronous counting still writes the analytics in the background.
            flush_every: match flush.is_zero() {
                false => Some(flush),
                true => settings.analytics.enabled.then_some(ANALYTICS_FLUSH),
            },
            analytics: settings
                .analytics
                .enabled
                .then(|| settings.analytics.clone()),
            webhooks: settings.webhooks.clone(),
        }
    }
}

impl TokenService {
    /// The service as `settings` describe it, on the system clock: its store opened (and
    /// migrated when `database.migrate_on_start`), its cache, and — when uses are batched — the
    /// background task that writes them every `usage.flush_interval`. Call
    /// [`shutdown`](Self::shutdown) before exiting. Needs a tokio runtime.
    pub async fn from_settings(settings: &Settings) -> Result<Self, OpenError> {
        let database = &settings.database;
        let mut open = database.open_options();
        open.credit_alerts = settings.webhooks.credit_alerts();
        let store = crate::store::open(database.url.expose(), open).await?;
        let options = ServiceOptions::from_settings(settings);
        Ok(Self::with_options(store, Arc::new(SystemClock), options))
    }

    /// The shipped defaults (`config.toml`) on the embedded SQLite store at `path` (created with
    /// its directory if missing).
    pub async fn embedded(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let mut settings = Settings::defaults()?;
        let url = format!("sqlite://{}", path.as_ref().display());
        settings.database.url = Secret::new(url);
        Self::from_settings(&settings).await
    }

    /// Stops the background flush, gives back the credits this process leased and did not
    /// spend, and writes every use counted and not yet written (three attempts); what still
    /// could not be written is logged with its size. Other clones of
    /// this service keep working, with `flush_usage` as their only writer.
    pub async fn shutdown(&self) {
        if let Some(notices) = &self.notices {
            notices.drained(notices.redis().connect_timeout()).await;
        }
        if let Some(flusher) = &self.flusher {
            flusher.stop().await;
        }
        let lost = self.quotas.give_back().await;
        if lost > 0 {
            tracing::error!(
                credits = lost,
                "stopping with leased credits that could not be given back"
            );
        }
        for attempt in 1..=3 {
            match self.flush_usage().await {
                Ok(()) => return,
                Err(err) => tracing::warn!(attempt, error = %err, "shutdown flush failed"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::error!(
            uses = self.unwritten_uses(),
            "stopping with counted uses that could not be written"
        );
    }
}

/// The background task writing batched uses every period, until stopped or the service is
/// gone (it holds the recorder weakly, so it never keeps a dropped service alive).
pub(super) struct Flusher {
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    /// Starts the task on the current tokio runtime; `None` (with a warning) outside one.
    pub(super) fn start(
        usage: &Arc<UsageRecorder>,
        clock: Arc<dyn Clock>,
        every: Duration,
    ) -> Option<Self> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "no tokio runtime: batched uses are written only by flush_usage() and shutdown()"
            );
            return None;
        };
        let stop = Arc::new(Notify::new());
        let task = runtime.spawn(flush_every(
            Arc::downgrade(usage),
            clock,
            every,
            stop.clone(),
        ));
        Some(Self {
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    async fn stop(&self) {
        self.stop.notify_one();
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

async fn flush_every(
    usage: Weak<UsageRecorder>,
    clock: Arc<dyn Clock>,
    every: Duration,
    stop: Arc<Notify>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.notified() => return,
        }
        let Some(usage) = usage.upgrade() else { return };
        if let Err(err) = usage.flush(Moment::at(clock.now(), &*clock)).await {
            tracing::warn!(error = %err, "usage flush failed; counts kept for the next one");
        }
    }
}
