//! `[webhooks]`: signed event delivery (SPEC B12): where deliveries may go, when threshold
//! events fire, and how the dispatcher paces itself.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::SettingsError;

/// Webhooks (SPEC B12).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Run the dispatcher and the sweeps in this instance (every instance may: they never
    /// claim the same delivery).
    pub enabled: bool,
    /// Admit `http://` endpoints (tests, a receiver on a private network).
    pub allow_http: bool,
    /// Addresses admitted although loopback, private, link-local or reserved.
    pub allow_cidrs: Vec<IpNet>,
    /// `token.expiring_soon` fires when a token's remaining lifetime falls below each.
    pub expiring_offsets: Vec<String>,
    /// `credits.low` fires when a pool falls below this share of its refill amount...
    pub credits_low_ratio: f64,
    /// ...or, when above zero, below this many credits (also for pools without a refill).
    pub credits_low_threshold: u64,
    /// One attempt's bound: connect, send and read the answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How often a dispatcher looks for new events and due deliveries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often the expiry sweep runs (`token.expiring_soon`, `token.expired`).
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Attempts in flight at once per instance.
    pub concurrency: usize,
    /// Deliveries claimed at a time.
    pub batch: u32,
    /// A claimed delivery falls due again after this unless its attempt ended (a killed
    /// dispatcher); longer than `timeout`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Events with nothing left to deliver are deleted after this.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_http: false,
            allow_cidrs: Vec::new(),
            expiring_offsets: vec!["7d".to_owned(), "1d".to_owned()],
            credits_low_ratio: 0.1,
            credits_low_threshold: 0,
            timeout: Duration::from_secs(15),
            poll_interval: Duration::from_millis(100),
            sweep_interval: Duration::from_secs(30),
            concurrency: 16,
            batch: 100,
            lease: Duration::from_secs(60),
            retention: Duration::from_secs(30 * 86_400),
        }
    }
}

impl WebhookSettings {
    /// The expiring offsets, longest first (checked by `validate`).
    pub fn offsets(&self) -> Vec<Duration> {
        let mut offsets: Vec<Duration> = self
            .expiring_offsets
            .iter()
            .filter_map(|text| humantime::parse_duration(text).ok())
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets.dedup();
        offsets
    }

    /// When changes of credits send `credits.low` and `credits.exhausted`.
    pub fn credit_alerts(&self) -> crate::domain::webhook::CreditAlerts {
        crate::domain::webhook::CreditAlerts {
            ratio: self.credits_low_ratio,
            threshold: self.credits_low_threshold,
        }
    }

    /// Rules serde cannot express; each failure names its key.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| {
            Err(SettingsError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        let parsed = self
            .expiring_offsets
            .iter()
            .map(|text| humantime::parse_duration(text));
        if self.expiring_offsets.len() > 8
            || parsed
                .clone()
                .any(|offset| offset.map_or(true, |d| d.is_zero()))
        {
            return invalid(
                "webhooks.expiring_offsets",
                "at most 8 durations above zero, like \"7d\"",
            );
        }
        if !(0.0..=1.0).contains(&self.credits_low_ratio) {
            return invalid("webhooks.credits_low_ratio", "must be between 0 and 1");
        }
        if self.timeout.is_zero() || self.lease <= self.timeout {
            return invalid(
                "webhooks.lease",
                "timeout must be above zero and lease longer than timeout",
            );
        }
        if self.poll_interval.is_zero()
            || self.sweep_interval.is_zero()
            || self.concurrency == 0
            || self.batch == 0
            || self.retention.is_zero()
        {
            return invalid(
                "webhooks",
                "poll_interval, sweep_interval, concurrency, batch and retention must be above zero",
            );
        }
        Ok(())
    }
}
