//! Prometheus metrics (SPEC B7), one set per application: no global recorder, so several
//! applications in one process each count their own. Every series is labelled with bounded
//! values only (routes, statuses, outcomes, limiter and operation names) — never a key, a
//! digest, a token id, a user id or an IP. The hot counters (requests, verifications, cache
//! lookups) go to a per-thread tally folded into the exporter at each scrape, and one public
//! verification in 8 is timed: a verification's metrics cost ~30 ns (`cargo bench --bench
//! metrics`). The rest are the exporter's own counters, registered once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::labels::{status_slot, CACHE_SLOTS, STATUSES, STATUS_SLOTS, VERIFICATION_SLOTS};
pub use super::labels::{CacheResult, RedisFailure, VerifyResult, VerifyRoute};
pub use super::redis::RedisMetrics;
use super::tally::Tally;
use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
];

/// The operations whose store failures `iam_store_errors_total` counts, registered at 0 when the
/// metrics are made (any other is registered with its first failure).
const STORE_OPERATIONS: [&str; 26] = [
    "verify",
    "usage-flush",
    "analytics",
    "admin-analytics",
    "webhooks",
    "admin-webhooks",
    "create",
    "rotate",
    "revoke",
    "privilege-update",
    "metadata",
    "list",
    "count",
    "manager",
    "admin-create",
    "admin-get",
    "admin-metadata",
    "admin-revoke",
    "admin-events",
    "admin-list",
    "admin-access",
    "admin-quota",
    "admin-roles",
    "admin-verify",
    "admin-bans",
    "admin-lift-ban",
];

/// One public verification in this many is timed (counted per worker thread): two clock reads
/// and a histogram sample cost more than every counter of a verification together, so the
/// latency histogram is a 1-in-8 sample (its quantiles are unbiased; its `_count` is an eighth
/// of the verifications, which `iam_verifications_total` counts exactly).
pub const LATENCY_SAMPLE: u32 = 8;

thread_local! {
    static UNTIL_SAMPLE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One route's request counters, by status.
pub struct RouteCounters {
    method: &'static str,
    route: String,
    by_status: [OnceLock<Counter>; STATUS_SLOTS],
}

/// The two counters of one abuse limiter.
#[derive(Clone)]
pub struct LimiterMetrics {
    pub rejected: Counter,
    pub banned: Counter,
}

impl Default for LimiterMetrics {
    fn default() -> Self {
        Self {
            rejected: Counter::noop(),
            banned: Counter::noop(),
        }
    }
}

pub struct Metrics {
    /// `None`: a service outside an application (the library): every handle is a no-op.
    pub(super) recorder: Option<PrometheusRecorder>,
    handle: Option<PrometheusHandle>,
    routes: Vec<RouteCounters>,
    /// The hot counters (requests, verifications, cache lookups), folded into the exporter's
    /// counters at each scrape.
    tally: Tally,
    verifications: [[Counter; VerifyResult::ALL.len()]; VerifyRoute::ALL.len()],
    verify_latency: Histogram,
    cache: [Counter; 4],
    flushes_ok: Counter,
    flushes_failed: Counter,
    flushed_uses: Counter,
    flush_latency: Histogram,
    usage_pending: Gauge,
    /// Analytics rollup rows written by flushes (SPEC B11), and the flush lag.
    rollup_rows: Counter,
    analytics_lag: Gauge,
    /// Credits taken out of the store (SPEC B5): leases, and the credits they moved.
    credit_leases: Counter,
    credits_leased: Counter,
    store_errors: Mutex<HashMap<&'static str, Counter>>,
}

impl Metrics {
    /// Metrics that count nothing (a library service not served over HTTP).
    pub fn disabled() -> Arc<Self> {
        static DISABLED: OnceLock<Arc<Metrics>> = OnceLock::new();
        DISABLED
            .get_or_init(|| {
                Arc::new(Self {
                    recorder: None,
                    handle: None,
                    routes: Vec::new(),
                    tally: Tally::new(0),
                    verifications: std::array::from_fn(|_| {
                        std::array::from_fn(|_| Counter::noop())
                    }),
                    verify_latency: Histogram::noop(),
                    cache: std::array::from_fn(|_| Counter::noop()),
                    flushes_ok: Counter::noop(),
                    flushes_failed: Counter::noop(),
                    flushed_uses: Counter::noop(),
                    flush_latency: Histogram::noop(),
                    usage_pending: Gauge::noop(),
                    rollup_rows: Counter::noop(),
                    analytics_lag: Gauge::noop(),
                    credit_leases: Counter::noop(),
                    credits_leased: Counter::noop(),
                    store_errors: Mutex::default(),
                })
            })
            .clone()
    }

    /// A recorder of its own, with one request series per `(method, route)` given.
    pub fn new(routes: Vec<(&'static str, String)>) -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("seconds".into()), LATENCY_BUCKETS)
            .and_then(|builder| {
                let redis = Matcher::Full("iam_redis_call_duration_seconds".into());
                builder.set_buckets_for_metric(redis, super::redis::BUCKETS)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        super::help::describe(&recorder);
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        let verifications = VerifyRoute::ALL.map(|route| {
            let route = route.label();
            VerifyResult::ALL.map(|outcome| {
                counter(
                    "iam_verifications_total",
                    vec![
                        Label::new("route", route),
                        Label::new("outcome", outcome.label()),
                    ],
                )
            })
        });
        let cache = CacheResult::ALL.map(|result| {
            counter(
                "iam_cache_lookups_total",
                vec![Label::new("result", result.label())],
            )
        });
        let flush = |result| {
            counter(
                "iam_usage_flushes_total",
                vec![Label::new("result", result)],
            )
        };
        let start =
            recorder.register_gauge(&Key::from_name("iam_process_start_time_seconds"), &METADATA);
        start.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64()),
        );
        let build = recorder.register_gauge(
            &Key::from_parts(
                "iam_build_info",
                vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
            ),
            &METADATA,
        );
        build.set(1.0);
        let slots = routes.len() * STATUS_SLOTS + VERIFICATION_SLOTS + CACHE_SLOTS;
        let metrics = Arc::new(Self {
            tally: Tally::new(slots),
            routes: routes
                .into_iter()
                .map(|(method, route)| RouteCounters {
                    method,
                    route,
                    by_status: Default::default(),
                })
                .collect(),
            verifications,
            verify_latency: recorder.register_histogram(
                &Key::from_parts(
                    "iam_verify_duration_seconds",
                    vec![Label::new("route", "public")],
                ),
                &METADATA,
            ),
            cache,
            flushes_ok: flush("ok"),
            flushes_failed: flush("error"),
            flushed_uses: counter("iam_usage_flushed_uses_total", Vec::new()),
            flush_latency: recorder.register_histogram(
                &Key::from_name("iam_usage_flush_duration_seconds"),
                &METADATA,
            ),
            usage_pending: recorder.register_gauge(&Key::from_name("iam_usage_pending"), &METADATA),
            rollup_rows: counter("iam_analytics_rollup_rows_total", Vec::new()),
            analytics_lag: recorder.register_gauge(
                &Key::from_name("iam_analytics_flush_lag_seconds"),
                &METADATA,
            ),
            credit_leases: counter("iam_credit_leases_total", Vec::new()),
            credits_leased: counter("iam_credits_leased_total", Vec::new()),
            store_errors: Mutex::default(),
            handle: Some(handle),
            recorder: Some(recorder),
        });
        // Every operation's series exists from the start at 0: alerts and dashboards need the
        // zero, not a series that appears with the first failure.
        for operation in STORE_OPERATIONS {
            metrics.store_errors_of(operation, 0);
        }
        metrics
    }

    /// One request answered on route `route` (an index into the routes given to `new`).
    pub fn request(&self, route: usize, status: u16) {
        if route < self.routes.len() {
            self.tally
                .add(route * STATUS_SLOTS + status_slot(status), 1);
        }
    }

    /// One request no route matched.
    pub fn request_unmatched(&self, status: u16) {
        self.request(self.routes.len().saturating_sub(1), status);
    }

    pub fn verification(&self, route: VerifyRoute, result: VerifyResult) {
        let slot = route as usize * VerifyResult::ALL.len() + result as usize;
        self.tally.add(self.verifications_base() + slot, 1);
    }

    fn verifications_base(&self) -> usize {
        self.routes.len() * STATUS_SLOTS
    }

    fn cache_base(&self) -> usize {
        self.verifications_base() + VERIFICATION_SLOTS
    }

    /// The start of a public verification when it is one to time (see `LATENCY_SAMPLE`).
    pub fn verify_timer(&self) -> Option<quanta::Instant> {
        self.recorder.as_ref()?;
        let due = UNTIL_SAMPLE.with(|left| match left.get() {
            0 => {
                left.set(LATENCY_SAMPLE - 1);
                true
            }
            n => {
                left.set(n - 1);
                false
            }
        });
        due.then(quanta::Instant::now)
    }

    /// Records the time since `verify_timer`, when it timed this verification.
    pub fn verify_latency(&self, started: Option<quanta::Instant>) {
        if let Some(started) = started {
            self.verify_latency.record(started.elapsed().as_secs_f64());
        }
    }

    pub fn cache(&self, result: CacheResult) {
        self.tally.add(self.cache_base() + result as usize, 1);
    }

    /// A usage batch written (`uses` uses) or not, and how long it took.
    pub fn flush(&self, result: Result<u64, ()>, took: Duration) {
        match result {
            Ok(uses) => {
                self.flushes_ok.increment(1);
                self.flushed_uses.increment(uses);
            }
            Err(()) => self.flushes_failed.increment(1),
        }
        self.flush_latency.record(took.as_secs_f64());
    }

    /// Analytics rollup rows written by one flush (minute, hour and day rows together).
    pub fn rollup_rows(&self, rows: u64) {
        self.rollup_rows.increment(rows);
    }

    /// A lease of credits from the store that moved `credits` (0: the store had none left).
    pub fn credit_lease(&self, credits: u64) {
        self.credit_leases.increment(1);
        self.credits_leased.increment(credits);
    }

    /// A store call that failed, by the operation that made it.
    pub fn store_error(&self, operation: &'static str) {
        self.store_errors_of(operation, 1);
    }

    /// `iam_store_errors_total{operation}`, registered on first use, moved by `by`.
    fn store_errors_of(&self, operation: &'static str, by: u64) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let mut errors = self
            .store_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        errors
            .entry(operation)
            .or_insert_with(|| {
                let labels = vec![Label::new("operation", operation)];
                recorder.register_counter(
                    &Key::from_parts("iam_store_errors_total", labels),
                    &METADATA,
                )
            })
            .increment(by);
    }

    /// The two counters of limiter `name`.
    pub fn limiter(&self, name: &'static str) -> LimiterMetrics {
        let Some(recorder) = &self.recorder else {
            return LimiterMetrics::default();
        };
        let labels = || vec![Label::new("limiter", name)];
        LimiterMetrics {
            rejected: recorder.register_counter(
                &Key::from_parts("iam_rate_limit_rejections_total", labels()),
                &METADATA,
            ),
            banned: recorder
                .register_counter(&Key::from_parts("iam_bans_total", labels()), &METADATA),
        }
    }

    /// The Prometheus text, with the gauges read now: `usage_pending` uses not yet written,
    /// `analytics_lag` seconds since the last flush that wrote every verification counted.
    pub fn render(&self, usage_pending: u64, analytics_lag: f64) -> String {
        self.usage_pending.set(usage_pending as f64);
        self.analytics_lag.set(analytics_lag);
        self.fold_tally();
        self.handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    }

    /// Sets the exporter's hot counters to the tally's sums (registering a request series the
    /// first time it has a count).
    fn fold_tally(&self) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let sums = self.tally.sums();
        for (route, counters) in self.routes.iter().enumerate() {
            for (slot, counter) in counters.by_status.iter().enumerate() {
                let sum = sums[route * STATUS_SLOTS + slot];
                if sum == 0 {
                    continue;
                }
                counter
                    .get_or_init(|| {
                        let status = STATUSES
                            .get(slot)
                            .map_or_else(|| "other".to_owned(), u16::to_string);
                        let labels = vec![
                            Label::new("method", counters.method),
                            Label::new("route", counters.route.clone()),
                            Label::new("status", status),
                        ];
                        let key = Key::from_parts("iam_http_requests_total", labels);
                        recorder.register_counter(&key, &METADATA)
                    })
                    .absolute(sum);
            }
        }
        let verifications = self.verifications.iter().flatten();
        for (slot, counter) in verifications.enumerate() {
            counter.absolute(sums[self.verifications_base() + slot]);
        }
        for (slot, counter) in self.cache.iter().enumerate() {
            counter.absolute(sums[self.cache_base() + slot]);
        }
    }

    /// Folds recorded histogram samples into their buckets, so that memory stays bounded
    /// between scrapes (run periodically by the application).
    pub fn upkeep(&self) {
        if let Some(handle) = &self.handle {
            handle.run_upkeep();
        }
    }
}

pub(super) static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
