//! Webhook series (SPEC B12), labelled by event type only (a fixed catalogue: bounded).

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder as _};

use super::metrics::{Metrics, METADATA};
use crate::domain::webhook::EventType;

/// One set of handles per event type, registered once.
pub struct WebhookMetrics {
    delivered: Vec<Counter>,
    failed: Vec<Counter>,
    latency: Vec<Histogram>,
    pending: Vec<Gauge>,
}

fn slot(kind: &str) -> Option<usize> {
    EventType::ALL
        .iter()
        .position(|known| known.as_str() == kind)
}

impl WebhookMetrics {
    /// An attempt that got a 2xx (`delivered`) or not, and how long it took.
    pub fn attempt(&self, kind: &str, delivered: bool, seconds: f64) {
        let Some(slot) = slot(kind) else { return };
        match delivered {
            true => self.delivered[slot].increment(1),
            false => self.failed[slot].increment(1),
        }
        self.latency[slot].record(seconds);
    }

    /// Sets the pending gauges (types not named are 0).
    pub fn pending(&self, counts: &[(String, u64)]) {
        for (slot, gauge) in self.pending.iter().enumerate() {
            let kind = EventType::ALL[slot].as_str();
            let count = counts
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(0, |(_, n)| *n);
            gauge.set(count as f64);
        }
    }
}

impl Metrics {
    /// The webhook series.
    pub fn webhooks(&self) -> WebhookMetrics {
        let per_type = |make: &dyn Fn(Vec<Label>) -> Key| -> Vec<Key> {
            EventType::ALL
                .iter()
                .map(|kind| make(vec![Label::new("type", kind.as_str())]))
                .collect()
        };
        let Some(recorder) = &self.recorder else {
            let n = EventType::ALL.len();
            return WebhookMetrics {
                delivered: vec![Counter::noop(); n],
                failed: vec![Counter::noop(); n],
                latency: vec![Histogram::noop(); n],
                pending: vec![Gauge::noop(); n],
            };
        };
        let keys = |name: &'static str| per_type(&|labels| Key::from_parts(name, labels));
        WebhookMetrics {
            delivered: keys("iam_webhook_deliveries_delivered_total")
                .iter()
                .map(|key| recorder.register_counter(key, &METADATA))
                .collect(),
            failed: keys("iam_webhook_attempts_failed_total")
                .iter()
                .map(|key| recorder.register_counter(key, &METADATA))
                .collect(),
            latency: keys("iam_webhook_attempt_duration_seconds")
                .iter()
                .map(|key| recorder.register_histogram(key, &METADATA))
                .collect(),
            pending: keys("iam_webhook_deliveries_pending")
                .iter()
                .map(|key| recorder.register_gauge(key, &METADATA))
                .collect(),
        }
    }
}
