//! `[redis]`: several instances acting as one (SPEC B6).

use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;
use crate::secret::Secret;

/// Several instances acting as one (SPEC B6). An empty `url` keeps everything in this process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`; for a cluster, its seed nodes, comma-separated
    /// (no TLS: put a TLS tunnel in front when Redis is not on a private network).
    /// May hold a password: redacted in `Debug`.
    pub url: Secret,
    /// `url` names the seed nodes of a Redis Cluster.
    pub cluster: bool,
    /// Prepended to every key and channel, so that several deployments share one Redis.
    pub key_prefix: String,
    /// Multiplexed connections opened to Redis (requests are spread over them).
    pub connections: usize,
    /// Longest wait for any Redis call made while serving a request; past it that call fails
    /// (the request goes on without it, or a metered token fails closed) and counts for the
    /// breaker. A charge of credits or limits may be tried twice within it.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The breaker judges the calls of this last stretch of time...
    #[serde(with = "humantime_serde")]
    pub breaker_window: Duration,
    /// ...once there are at least this many...
    pub breaker_min_calls: u32,
    /// ...and opens (the request path stops asking Redis) when at least this share of them
    /// failed, in (0, 1]. A refused or reset connection opens it at once.
    pub breaker_failure_ratio: f64,
    /// Longest wait to connect (in the background: requests never wait for a connection).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How often the subscription is pinged, and a Redis that is down is tried again.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// `/ready` answers 503 while Redis is down (else 200, with `"redis":"down"`).
    pub required_for_ready: bool,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: Secret::new(""),
            cluster: false,
            key_prefix: "iam:".to_owned(),
            connections: 2,
            timeout: Duration::from_millis(100),
            breaker_window: Duration::from_secs(10),
            breaker_min_calls: 20,
            breaker_failure_ratio: 0.5,
            connect_timeout: Duration::from_secs(1),
            check_interval: Duration::from_secs(1),
            required_for_ready: false,
        }
    }
}

impl RedisSettings {
    pub fn enabled(&self) -> bool {
        !self.url.expose().trim().is_empty()
    }
}

impl RedisSettings {
    /// Rules serde cannot express; each failure names its key.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| {
            Err(SettingsError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if !self.enabled() {
            return Ok(());
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() || self.check_interval.is_zero()
        {
            return invalid(
                "redis",
                "timeout, connect_timeout and check_interval must be above zero",
            );
        }
        if self.breaker_window < Duration::from_millis(10) {
            return invalid("redis.breaker_window", "must be at least 10ms");
        }
        if self.breaker_min_calls == 0 {
            return invalid("redis.breaker_min_calls", "must be at least 1");
        }
        let ratio = self.breaker_failure_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return invalid(
                "redis.breaker_failure_ratio",
                "must be above 0 and at most 1",
            );
        }
        if self.connections == 0 {
            return invalid("redis.connections", "must be at least 1");
        }
        if self.key_prefix.contains(['{', '}']) {
            return invalid(
                "redis.key_prefix",
                "must not contain { or }: they mark the hash tags of Redis Cluster",
            );
        }
        let seeds = crate::shared::seed_urls(self.url.expose());
        if seeds
            .as_ref()
            .is_ok_and(|seeds| seeds.len() > 1 && !self.cluster)
        {
            return invalid(
                "redis.url",
                "several URLs name the seed nodes of a cluster: set redis.cluster = true",
            );
        }
        if seeds.is_err() {
            return invalid(
                "redis.url",
                "must be redis://[:password@]host:port[/db], comma-separated for a cluster (TLS, rediss://, is not supported)",
            );
        }
        Ok(())
    }
}
