//! The Redis series (SPEC B6): the breaker, the calls and their failures, the settlements,
//! the call latency. Registered only when `redis.url` is set.

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder};

use super::labels::RedisFailure;
use super::metrics::{Metrics, METADATA};

/// Redis answers in tens of microseconds to a few milliseconds: finer buckets, so that the
/// p99 and p99.9 that `redis.timeout` is chosen from can be read off a scrape.
pub(super) const BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_075, 0.000_1, 0.000_15, 0.000_2, 0.000_3, 0.000_4, 0.000_5,
    0.000_75, 0.001, 0.001_5, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.5, 1.0,
];

/// Redis as this instance sees it (only registered when `redis.url` is set).
#[derive(Clone)]
pub struct RedisMetrics {
    /// 1 while the breaker is closed (Redis answers), else 0.
    pub up: Gauge,
    /// The breaker: 0 closed, 1 half-open (a probe in flight), 2 open.
    pub breaker_state: Gauge,
    /// Times the breaker opened, and closed.
    pub opened: Counter,
    pub closed: Counter,
    /// Redis calls made (requests, publishing, settling; not the background checks).
    pub calls: Counter,
    /// Calls that failed, by kind (`RedisFailure::ALL` order).
    pub failures: [Counter; 3],
    /// Calls not made: the breaker was open, or every connection waited on a late answer.
    pub skipped: Counter,
    /// Charges tried a second time after the first try timed out.
    pub retries: Counter,
    /// Charges whose answer was lost, voided in the background (undone if Redis ran them).
    pub voided: Counter,
    /// Time to an answer, of every call answered.
    pub call_duration: Histogram,
    /// Decisions an abuse limiter took on this instance's own state because Redis was down.
    pub fallbacks: Counter,
    /// Times the subscription was lost and made again (each drops the whole cache).
    pub resubscriptions: Counter,
    /// Changes heard from other instances.
    pub notices_received: Counter,
}

impl Default for RedisMetrics {
    fn default() -> Self {
        Self {
            up: Gauge::noop(),
            breaker_state: Gauge::noop(),
            opened: Counter::noop(),
            closed: Counter::noop(),
            calls: Counter::noop(),
            failures: std::array::from_fn(|_| Counter::noop()),
            skipped: Counter::noop(),
            retries: Counter::noop(),
            voided: Counter::noop(),
            call_duration: Histogram::noop(),
            fallbacks: Counter::noop(),
            resubscriptions: Counter::noop(),
            notices_received: Counter::noop(),
        }
    }
}

impl Metrics {
    /// The Redis series (registered on first call: an application without Redis has none).
    pub fn redis(&self) -> RedisMetrics {
        let Some(recorder) = &self.recorder else {
            return RedisMetrics::default();
        };
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_name(name), &METADATA);
        let transitions = |to: &'static str| {
            let key = Key::from_parts(
                "iam_redis_breaker_transitions_total",
                vec![Label::new("to", to)],
            );
            recorder.register_counter(&key, &METADATA)
        };
        RedisMetrics {
            up: recorder.register_gauge(&Key::from_name("iam_redis_up"), &METADATA),
            breaker_state: recorder
                .register_gauge(&Key::from_name("iam_redis_breaker_state"), &METADATA),
            opened: transitions("open"),
            closed: transitions("closed"),
            calls: counter("iam_redis_calls_total"),
            failures: RedisFailure::ALL.map(|failure| {
                let key = Key::from_parts(
                    "iam_redis_failures_total",
                    vec![Label::new("kind", failure.label())],
                );
                recorder.register_counter(&key, &METADATA)
            }),
            skipped: counter("iam_redis_skipped_total"),
            retries: counter("iam_redis_retries_total"),
            voided: counter("iam_redis_voided_charges_total"),
            call_duration: recorder.register_histogram(
                &Key::from_name("iam_redis_call_duration_seconds"),
                &METADATA,
            ),
            fallbacks: counter("iam_redis_fallbacks_total"),
            resubscriptions: counter("iam_redis_resubscriptions_total"),
            notices_received: counter("iam_redis_notices_received_total"),
        }
    }
}
