//! The operations of SPEC A5: the in-process API trusted code calls, and that the HTTP
//! handlers adapt. Every operation answers a `Results<T>` envelope; none authenticates.

mod access;
mod action_manager;
mod analytics;
mod cache;
mod create;
mod decision;
mod grace;
mod operator;
mod payloads;
mod quota;
mod read;
mod rotate;
mod running;
mod state;
mod update;
mod usage;
mod verify;
mod webhooks;

pub use action_manager::{ManagerAction, ManagerData, ManagerDecision};
pub use cache::{CacheConfig, Cached, CachedToken, Lookup, VerificationCache};
pub use create::{CreateToken, Creation};
pub use decision::{Decision, Revocation, RotationDecision, SnapshotDecision, Update};
pub use grace::{GraceDecision, GraceRotated, MAX_GRACE_MS};
pub use operator::AdminVerification;
pub use payloads::*;
pub use rotate::RotateToken;
pub use running::OpenError;
pub use state::{BulkTarget, BULK_MAX};
pub use usage::UsageRecorder;
pub use verify::{Verified, VerifyOptions, VerifyOutcome};
pub use webhooks::{secret_overlap, WebhookError};

use std::sync::Arc;

use crate::analytics::Analytics;
use crate::clock::{Clock, Moment};
use crate::config::analytics::AnalyticsSettings;
use crate::domain::Actor;
use crate::envelope::{Reason, Results};
use crate::quotas::{Holder, LocalHolder, Quotas, SharedHolder};
use crate::shared::{Notice, Notices};
use crate::store::{Audit, StoreError, TokenRecord, TokenStore};
use crate::telemetry::Metrics;

/// How the service verifies and counts.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub limit_tokens_per_user: u32,
    /// `None` = every verification reads the store.
    pub cache: Option<CacheConfig>,
    /// Count uses in memory and write them in batches; else before answering.
    pub batch_usage: bool,
    /// With batching, how often a background task started with the service writes them;
    /// `None`: only [`TokenService::flush_usage`] and [`TokenService::shutdown`] do.
    pub flush_every: Option<std::time::Duration>,
    /// Verification analytics (SPEC B11); `None`: off.
    pub analytics: Option<AnalyticsSettings>,
    /// Webhooks (SPEC B12): where deliveries may go, when thresholds fire.
    pub webhooks: crate::config::WebhookSettings,
}

/// The token service. Cheap to clone; share one per process.
///
/// Build it from [`Settings`](crate::Settings) with [`TokenService::from_settings`], or on the
/// embedded store with the shipped defaults with [`TokenService::embedded`]; call
/// [`TokenService::shutdown`] before exiting, so that every counted use is written.
///
/// ```
/// use iam_tokens::domain::{Privilege, TokenName, UserId};
/// use iam_tokens::service::{CreateToken, VerifyOptions};
/// use iam_tokens::TokenService;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("iam_doc_{}", std::process::id()));
/// let service = TokenService::embedded(dir.join("tokens.db")).await?;
///
/// let request = CreateToken::new(UserId::new(42)?, Privilege::Full, TokenName::parse("ci")?);
/// let created = service.create(request).await.outcome.map_err(|r| r.as_str().into_owned())?;
///
/// let options = VerifyOptions::new(Privilege::Full, None);
/// let verified = service.verify(&created.raw_api_key, options).await;
/// assert_eq!(verified.data().map(|token| token.usage_count), Some(1));
///
/// service.shutdown().await; // writes the batched count
/// # std::fs::remove_dir_all(dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenService {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    limit_tokens_per_user: u32,
    cache: Option<Arc<VerificationCache>>,
    usage: Option<Arc<UsageRecorder>>,
    /// Uses are counted by `usage` and written in batches; else before answering (`usage` then
    /// only carries the analytics).
    batch_usage: bool,
    analytics: Option<Arc<Analytics>>,
    /// Writes batched uses in the background (shared by every clone; stopped by `shutdown`).
    flusher: Option<Arc<running::Flusher>>,
    /// Who the audit log names for changes made through this handle.
    actor: Actor,
    metrics: Arc<Metrics>,
    /// With Redis: where every committed change is told to the other instances.
    notices: Option<Arc<Notices>>,
    /// Customer limits and credits (SPEC B5): held in this process, or in Redis.
    quotas: Arc<Quotas>,
    events: Arc<crate::events::Events>,
    /// Reports first refusals of customer limits (`ratelimit.exceeded`).
    limit_alerts: Option<Arc<crate::events::thresholds::RateLimitAlerts>>,
}

impl TokenService {
    /// No cache, synchronous counting: every call goes to the store.
    pub fn new(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        limit_tokens_per_user: u32,
    ) -> Self {
        let options = ServiceOptions {
            limit_tokens_per_user,
            cache: None,
            batch_usage: false,
            flush_every: None,
            analytics: None,
            webhooks: Default::default(),
        };
        Self::with_options(store, clock, options)
    }

    /// The service with these options. With batched counting and `flush_every`, a background
    /// task (on the current tokio runtime) writes the uses; call [`shutdown`](Self::shutdown)
    /// before exiting so that none is lost.
    pub fn with_options(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        options: ServiceOptions,
    ) -> Self {
        Self::observed(store, clock, options, Metrics::disabled())
    }

    /// `with_options`, counting into `metrics` (cache lookups, usage flushes, store errors).
    pub fn observed(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        options: ServiceOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        let forget_after = options.cache.map_or(std::time::Duration::ZERO, |c| c.ttl);
        let analytics = options.analytics.map(|a| Arc::new(Analytics::new(a)));
        // The recorder batches uses (when asked) and carries the analytics to the store.
        let usage = (options.batch_usage || analytics.is_some()).then(|| {
            Arc::new(UsageRecorder::new(
                store.clone(),
                forget_after,
                metrics.clone(),
                analytics.clone(),
            ))
        });
        let flusher = match (&usage, options.flush_every) {
            (Some(usage), Some(every)) if !every.is_zero() => {
                running::Flusher::start(usage, clock.clone(), every).map(Arc::new)
            }
            _ => None,
        };
        let limit_alerts = crate::events::thresholds::RateLimitAlerts::start(store.clone());
        let quotas = Arc::new(
            Quotas::new(
                store.clone(),
                Holder::Local(LocalHolder::default()),
                metrics.clone(),
            )
            .alerting(limit_alerts.clone()),
        );
        let events = Arc::new(crate::events::Events::new(
            store.clone(),
            clock.clone(),
            options.webhooks,
            metrics.clone(),
        ));
        Self {
            events,
            limit_alerts,
            usage,
            batch_usage: options.batch_usage,
            analytics,
            flusher,
            quotas,
            cache: options.cache.map(|c| Arc::new(VerificationCache::new(c))),
            store,
            clock,
            limit_tokens_per_user: options.limit_tokens_per_user,
            actor: Actor::default(),
            metrics,
            notices: None,
        }
    }

    /// The same service, telling the other instances of every change it commits (they drop
    /// what they cached of it), its customer limits and credits kept in Redis. Apply what they tell with [`apply_notice`](Self::apply_notice).
    pub fn telling(mut self, notices: Arc<Notices>) -> Self {
        let holder = Holder::Shared(SharedHolder::new(notices.redis().clone()));
        self.quotas = Arc::new(
            Quotas::new(self.store.clone(), holder, self.metrics.clone())
                .alerting(self.limit_alerts.clone()),
        );
        self.notices = Some(notices);
        self
    }

    /// What another instance changed, applied to this instance's cache.
    pub fn apply_notice(&self, notice: &Notice) {
        let Some(cache) = &self.cache else { return };
        match notice {
            Notice::Token(digest) => cache.invalidate(digest),
            Notice::Roles => cache.roles_changed(),
            Notice::Everything => cache.clear(),
            Notice::Banned { .. }
            | Notice::Lifted { .. }
            | Notice::Failed { .. }
            | Notice::Credential(_) => {}
        }
    }

    /// The same service, recording `actor` as the author of every change made through it
    /// (`user:<id>` for a BFF's user, `admin:<name>`, `cli`; `system` by default).
    pub fn acting_as(&self, actor: Actor) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }

    /// The audit context of a change made now.
    fn audit(&self) -> Audit {
        Audit {
            actor: self.actor.clone(),
            at: self.clock.now(),
        }
    }

    /// Writes counted uses not yet in the store (batched counting) and the verifications
    /// counted for analytics; waits for a flush under way first.
    pub async fn flush_usage(&self) -> Result<(), StoreError> {
        match &self.usage {
            Some(usage) => {
                usage
                    .flush(Moment::at(self.clock.now(), &*self.clock))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Uses counted in memory and not yet confirmed in the store.
    pub fn unwritten_uses(&self) -> u64 {
        self.usage.as_ref().map_or(0, |usage| usage.unwritten())
    }

    /// A record read from the store, as readers must see it: with the uses this process has
    /// counted and not yet written (as verify answers already show them).
    fn with_unwritten_uses(&self, mut record: TokenRecord) -> TokenRecord {
        if let Some((uses, last_used)) = self
            .usage
            .as_ref()
            .and_then(|usage| usage.unwritten_of(record.id))
        {
            record.usage_count = record.usage_count.saturating_add(uses);
            record.last_used = record.last_used.max(last_used);
        }
        record
    }

    /// Entries in the verification cache.
    pub fn cached_tokens(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.len())
    }

    /// Forgets a digest after a mutation made through this process has committed, here and
    /// on every other instance.
    fn invalidate(&self, digest: &crate::domain::Digest) {
        self.forget(digest.to_bytes());
    }

    fn forget(&self, digest: [u8; 32]) {
        if let Some(cache) = &self.cache {
            cache.invalidate(&digest);
        }
        if let Some(notices) = &self.notices {
            notices.publish(Notice::Token(digest));
        }
    }

    /// Whether the store answers (within `database.timeout`): readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn success<T>(&self, data: T) -> Results<T> {
        Results::success(self.clock.now(), data)
    }

    fn failure<T>(&self, reason: Reason) -> Results<T> {
        Results::failure(self.clock.now(), reason)
    }

    /// Logs a store failure once, with its cause, and answers `reason` instead.
    fn store_failure<T>(
        &self,
        operation: &'static str,
        err: &StoreError,
        reason: Reason,
    ) -> Results<T> {
        tracing::error!(operation, error = %err, "token store failed");
        self.metrics.store_error(operation);
        self.failure(reason)
    }
}
