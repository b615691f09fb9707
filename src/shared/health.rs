//! Whether Redis answers, as this instance sees it: the breaker (`breaker.rs`) fed with every
//! call's outcome, reported once per transition — one log line and the metrics — and the
//! failures counted by kind.

use std::sync::Arc;

use super::breaker::{Admission, Breaker, BreakerSettings, State, Transition};
use crate::clock::Clock;
pub use crate::telemetry::metrics::RedisFailure as Failure;
use crate::telemetry::metrics::RedisMetrics;

pub struct Health {
    breaker: Breaker,
    metrics: RedisMetrics,
}

impl Health {
    /// Down (open) until a call or the background check proves otherwise.
    pub fn new(settings: BreakerSettings, clock: Arc<dyn Clock>, metrics: RedisMetrics) -> Self {
        metrics.up.set(0.0);
        metrics.breaker_state.set(State::Open as u8 as f64);
        Self {
            breaker: Breaker::new(settings, clock),
            metrics,
        }
    }

    /// Closed: the request path uses Redis (`/ready` says `up`).
    pub fn is_up(&self) -> bool {
        self.breaker.is_closed()
    }

    /// Whether a request-path call may go to Redis now (counted as skipped when not).
    pub fn admit(&self) -> Admission {
        let admission = self.breaker.admit();
        match admission {
            Admission::Refused => self.metrics.skipped.increment(1),
            Admission::Probe => self.show_state(),
            Admission::Call => {}
        }
        admission
    }

    /// The call admitted as `admission` answered in time.
    pub fn succeeded(&self, admission: Admission) {
        let transition = self.breaker.succeeded(admission);
        self.report(transition, "probe", &"answered");
        if admission == Admission::Probe {
            self.show_state();
        }
    }

    /// The call admitted as `admission` failed.
    pub fn failed(
        &self,
        admission: Admission,
        failure: Failure,
        during: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        self.metrics.failures[failure as usize].increment(1);
        let transition = match failure {
            Failure::Refused => self.breaker.refused(),
            Failure::Timeout | Failure::Error => self.breaker.failed(admission),
        };
        self.report(transition, during, error);
        if admission == Admission::Probe || failure == Failure::Refused {
            self.show_state();
        }
    }

    /// A request-path call found every connection waiting on an answer given up on: not sent
    /// (skipped), and a failure for the breaker.
    pub fn stalled(&self, admission: Admission) {
        self.metrics.skipped.increment(1);
        let transition = self.breaker.failed(admission);
        self.report(
            transition,
            "call",
            &"every connection is waiting on a late answer",
        );
    }

    /// The connection or the subscription is gone (not a request's call): open at once.
    pub fn lost(&self, during: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.failures[Failure::Refused as usize].increment(1);
        let transition = self.breaker.refused();
        self.report(transition, during, error);
        self.show_state();
    }

    /// The background check reached Redis, with the subscription in place.
    pub fn recovered(&self) {
        let transition = self.breaker.recovered();
        self.report(transition, "check", &"answered");
    }

    fn report(
        &self,
        transition: Option<Transition>,
        during: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        match transition {
            Some(Transition::Opened) => {
                tracing::warn!(
                    during,
                    error = %error,
                    "Redis is unavailable: abuse limiters and replay ids fall back to this \
                     instance, metered tokens fail closed, until it answers again"
                );
                self.metrics.up.set(0.0);
                self.metrics.opened.increment(1);
            }
            Some(Transition::Closed) => {
                tracing::info!(
                    "Redis answers: limits, replay ids and cache invalidation are shared"
                );
                self.metrics.up.set(1.0);
                self.metrics.closed.increment(1);
            }
            None => return,
        }
        self.show_state();
    }

    fn show_state(&self) {
        self.metrics
            .breaker_state
            .set(self.breaker.state() as u8 as f64);
    }

    pub fn metrics(&self) -> &RedisMetrics {
        &self.metrics
    }
}
