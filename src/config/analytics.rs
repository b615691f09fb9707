//! `[analytics]`: verification analytics (SPEC B11): which tags are counted, how many values a
//! tag may take, how long each rollup is kept.

use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;
use crate::domain::analytics::{is_tag_key, Granularity, MAX_TAG_KEYS};

/// Verification analytics (SPEC B11).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// Count verifications into rollups (written with the usage flush).
    pub enabled: bool,
    /// The tag keys a verification may carry (at most 4; a–z, 0–9, `_`).
    pub tags: Vec<String>,
    /// Distinct values a tag key takes per UTC day on one instance; the rest count as
    /// `__other__`.
    pub max_tag_values: usize,
    pub retention: RetentionSettings,
    /// How often rollups past their retention are deleted...
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// ...at most this many rows per rollup each time.
    pub prune_batch: u32,
}

/// How long each rollup keeps its buckets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    #[serde(with = "humantime_serde")]
    pub minute: Duration,
    #[serde(with = "humantime_serde")]
    pub hour: Duration,
    #[serde(with = "humantime_serde")]
    pub day: Duration,
}

impl RetentionSettings {
    pub fn of(&self, granularity: Granularity) -> Duration {
        match granularity {
            Granularity::Minute => self.minute,
            Granularity::Hour => self.hour,
            Granularity::Day => self.day,
        }
    }
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            enabled: true,
            tags: vec!["route".to_owned(), "method".to_owned()],
            max_tag_values: 1_000,
            retention: RetentionSettings {
                minute: Duration::from_secs(2 * DAY),
                hour: Duration::from_secs(90 * DAY),
                day: Duration::from_secs(730 * DAY),
            },
            prune_interval: Duration::from_secs(60),
            prune_batch: 10_000,
        }
    }
}

impl AnalyticsSettings {
    /// Rules serde cannot express; each failure names its key.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| {
            Err(SettingsError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if self.tags.len() > MAX_TAG_KEYS || !self.tags.iter().all(|t| is_tag_key(t)) {
            return invalid(
                "analytics.tags",
                "at most 4 keys, each 1 to 32 of a-z, 0-9 and _, starting with a letter",
            );
        }
        if (1..self.tags.len()).any(|i| self.tags[..i].contains(&self.tags[i])) {
            return invalid("analytics.tags", "a key is named twice");
        }
        if self.max_tag_values == 0 {
            return invalid("analytics.max_tag_values", "must be at least 1");
        }
        let day = Duration::from_secs(86_400);
        let retention = &self.retention;
        if retention.minute < day {
            return invalid(
                "analytics.retention.minute",
                "must be at least 24h (usage24h is read from the minute rollups)",
            );
        }
        if retention.hour < retention.minute || retention.day < retention.hour {
            return invalid(
                "analytics.retention",
                "a coarser rollup must be kept at least as long as a finer one",
            );
        }
        if self.prune_interval.is_zero() || self.prune_batch == 0 {
            return invalid(
                "analytics",
                "prune_interval and prune_batch must be above zero",
            );
        }
        Ok(())
    }
}
