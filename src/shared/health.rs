//! Whether Redis answers, as this instance last saw it. Going down is logged once, with the
//! call that found it; coming back is logged once too. While down, the request path does not
//! try Redis at all (the background check does), so an outage costs each request nothing.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::telemetry::metrics::RedisMetrics;

pub struct Health {
    up: AtomicBool,
    metrics: RedisMetrics,
}

impl Health {
    /// Down until a connection proves otherwise.
    pub fn new(metrics: RedisMetrics) -> Self {
        metrics.up.set(0.0);
        Self {
            up: AtomicBool::new(false),
            metrics,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// A call failed with what looks like an outage (refused, dropped, timed out).
    pub fn failed(&self, during: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.errors.increment(1);
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                during,
                error = %error,
                "Redis is unavailable: abuse limiters and replay ids fall back to this instance \
                 until it answers again"
            );
            self.metrics.up.set(0.0);
        }
    }

    /// The background check reached Redis, with the subscription in place.
    pub fn recovered(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!("Redis answers: limits, replay ids and cache invalidation are shared");
            self.metrics.up.set(1.0);
        }
    }

    pub fn metrics(&self) -> &RedisMetrics {
        &self.metrics
    }
}
