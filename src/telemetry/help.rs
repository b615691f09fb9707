//! The help text of every series `/metrics` serves (Prometheus `# HELP` lines).

use metrics::{Recorder as _, Unit};
use metrics_exporter_prometheus::PrometheusRecorder;

/// Registers the help text of every counter and gauge with `recorder`.
pub fn describe(recorder: &PrometheusRecorder) {
    let counters = [
        (
            "iam_http_requests_total",
            "HTTP requests answered, by method, route and status.",
        ),
        (
            "iam_verifications_total",
            "Verifications, by route and outcome.",
        ),
        (
            "iam_cache_lookups_total",
            "Verification cache lookups, by result.",
        ),
        (
            "iam_usage_flushes_total",
            "Batches of counted uses written, by result.",
        ),
        (
            "iam_usage_flushed_uses_total",
            "Uses written by batch flushes.",
        ),
        (
            "iam_analytics_rollup_rows_total",
            "Analytics rollup rows (minute, hour and day) written by flushes.",
        ),
        (
            "iam_webhook_deliveries_delivered_total",
            "Webhook attempts answered with a 2xx, by event type.",
        ),
        (
            "iam_webhook_attempts_failed_total",
            "Webhook attempts that failed (no answer, or not a 2xx), by event type.",
        ),
        (
            "iam_credit_leases_total",
            "Leases of customer credits taken out of the store (each moves up to 1,000 credits).",
        ),
        (
            "iam_credits_leased_total",
            "Customer credits taken out of the store by leases.",
        ),
        (
            "iam_store_errors_total",
            "Store calls that failed, by operation.",
        ),
        (
            "iam_rate_limit_rejections_total",
            "Requests refused by an abuse limiter, by limiter.",
        ),
        (
            "iam_bans_total",
            "Keys banned by an abuse limiter, by limiter.",
        ),
        (
            "iam_redis_calls_total",
            "Redis calls made for requests, publishing and settling (not the background checks).",
        ),
        (
            "iam_redis_failures_total",
            "Redis calls that failed, by kind: timeout, refused (connection refused or reset), error (an error answer).",
        ),
        (
            "iam_redis_skipped_total",
            "Redis calls not made: the breaker was open, or every connection waited on a late answer.",
        ),
        (
            "iam_redis_breaker_transitions_total",
            "Times the Redis breaker opened or closed, by the state it went to.",
        ),
        (
            "iam_redis_retries_total",
            "Charges of customer limits or credits tried again after their first try timed out.",
        ),
        (
            "iam_redis_voided_charges_total",
            "Charges whose answer was lost, voided in the background (undone where Redis had run them).",
        ),
        (
            "iam_redis_fallbacks_total",
            "Abuse-limiter decisions taken on this instance's own state while Redis was down.",
        ),
        (
            "iam_redis_resubscriptions_total",
            "Times the invalidation subscription was lost and made again (each drops the cache).",
        ),
        (
            "iam_redis_notices_received_total",
            "Changes heard from other instances.",
        ),
    ];
    for (name, help) in counters {
        recorder.describe_counter(name.into(), None, help.into());
    }
    let gauges = [
        ("iam_usage_pending", "Uses counted and not yet written."),
        (
            "iam_webhook_deliveries_pending",
            "Webhook deliveries waiting for an attempt, by event type (read every 10 s).",
        ),
        (
            "iam_analytics_flush_lag_seconds",
            "Seconds since the last flush that wrote every verification counted for analytics.",
        ),
        (
            "iam_redis_up",
            "1 while the Redis breaker is closed (Redis answers), else 0.",
        ),
        (
            "iam_redis_breaker_state",
            "The Redis breaker: 0 closed, 1 half-open (a probe in flight), 2 open.",
        ),
        (
            "iam_process_start_time_seconds",
            "When the process started, in Unix seconds.",
        ),
        ("iam_build_info", "The running version (always 1)."),
    ];
    for (name, help) in gauges {
        recorder.describe_gauge(name.into(), None, help.into());
    }
    let histograms = [
        (
            "iam_verify_duration_seconds",
            "Time to answer a public verification.",
        ),
        (
            "iam_webhook_attempt_duration_seconds",
            "Time for one webhook attempt, by event type.",
        ),
        (
            "iam_usage_flush_duration_seconds",
            "Time to write one batch of uses.",
        ),
        (
            "iam_redis_call_duration_seconds",
            "Time for Redis to answer a call, of every call answered.",
        ),
    ];
    for (name, help) in histograms {
        recorder.describe_histogram(name.into(), Some(Unit::Seconds), help.into());
    }
}
