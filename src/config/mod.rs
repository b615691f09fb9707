//! Typed settings: `config.toml` defaults → an optional file → `IAM__SECTION__KEY` environment
//! variables, validated once at startup.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use serde::Deserialize;

use crate::secret::Secret;

pub mod analytics;
pub mod console;
pub mod forward_auth;
mod redis;
pub mod webhooks;
pub use analytics::{AnalyticsSettings, RetentionSettings};
pub use console::ConsoleSettings;
pub use forward_auth::{ForwardAuthSettings, RouteSettings};
pub use redis::RedisSettings;
pub use webhooks::WebhookSettings;

/// The repository's `config.toml`, compiled in: the binary has every default wherever it runs.
const DEFAULTS: &str = include_str!("../../config.toml");
/// The shipped development JWT secret; serving with it logs a warning.
pub const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret-change-me-please";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub api_tokens: ApiTokensSettings,
    #[serde(default)]
    pub service: ServiceSettings,
    pub rate_limiters: RateLimitersSettings,
    pub verify: VerifySettings,
    pub usage: UsageSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub redis: RedisSettings,
    #[serde(default)]
    pub analytics: AnalyticsSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub forward_auth: ForwardAuthSettings,
    #[serde(default)]
    pub console: ConsoleSettings,
}

/// `GET /metrics` (SPEC B7).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `host:port` to serve `/metrics` on, away from the public listener; empty = on the
    /// public listener.
    #[serde(default)]
    pub address: String,
}

/// The verification cache (issue: verification at memory speed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySettings {
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub negative_cache_ttl: Duration,
    pub cache_max_entries: usize,
    pub serve_stale_on_error: bool,
    #[serde(with = "humantime_serde")]
    pub max_stale: Duration,
}

/// Batched counting of uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSettings {
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub trusted_proxies: Vec<IpNet>,
    /// Longest wait for a request's head (line and headers) once a connection is open.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest wait for a request's whole body once its head has arrived.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Contains the database password: redacted in `Debug`.
    pub url: Secret,
    pub migrate_on_start: bool,
    pub max_connections: usize,
    /// Bound on every store call: past it the call fails as the store being down would.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl DatabaseSettings {
    /// How the service opens its store.
    pub fn open_options(&self) -> crate::store::OpenOptions {
        crate::store::OpenOptions {
            max_connections: self.max_connections,
            migrate: self.migrate_on_start,
            timeout: self.timeout,
            credit_alerts: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    /// Admin API credentials: a name and the SHA-256 digest of the secret (never the secret).
    #[serde(default)]
    pub admin_tokens: Vec<AdminTokenSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenSettings {
    pub name: String,
    pub digest: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokensSettings {
    pub limit_tokens_per_user: u32,
    pub rate_limit_on_successful_request: bool,
}

/// SPEC A8. Paths are the snake_case twins of riavzon's `rate_limiters.apiTokensLimiters.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitersSettings {
    pub enabled: bool,
    pub ban_after_strikes: u32,
    #[serde(with = "humantime_serde")]
    pub ban_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    pub api_tokens_limiters: ApiTokensLimiters,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokensLimiters {
    pub general_union_limiter: GeneralUnionLimiter,
    pub operation_rate_limits: OperationRateLimits,
    pub consumption_rate_limiter: LimiterSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralUnionLimiter {
    pub burst_limiter: LimiterSettings,
    pub slow_limiter: LimiterSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRateLimits {
    pub new_token_creation_limiter: LimiterSettings,
    pub revoke_tokens_limiter: LimiterSettings,
    pub get_metadata_token_limiter: LimiterSettings,
    pub rotation_rate_limiter: LimiterSettings,
    pub ip_restriction_update: LimiterSettings,
    pub privilege_update: LimiterSettings,
}

/// `points` per `duration`; over it, the key is blocked for `block_duration`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterSettings {
    pub points: u32,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    #[serde(with = "humantime_serde")]
    pub block_duration: Duration,
}

impl ApiTokensLimiters {
    /// Every limiter with its config path, for validation and listing.
    pub fn all(&self) -> [(&'static str, LimiterSettings); 9] {
        let ops = &self.operation_rate_limits;
        let union = &self.general_union_limiter;
        [
            ("general_union_limiter.burst_limiter", union.burst_limiter),
            ("general_union_limiter.slow_limiter", union.slow_limiter),
            (
                "operation_rate_limits.new_token_creation_limiter",
                ops.new_token_creation_limiter,
            ),
            (
                "operation_rate_limits.revoke_tokens_limiter",
                ops.revoke_tokens_limiter,
            ),
            (
                "operation_rate_limits.get_metadata_token_limiter",
                ops.get_metadata_token_limiter,
            ),
            (
                "operation_rate_limits.rotation_rate_limiter",
                ops.rotation_rate_limiter,
            ),
            (
                "operation_rate_limits.ip_restriction_update",
                ops.ip_restriction_update,
            ),
            (
                "operation_rate_limits.privilege_update",
                ops.privilege_update,
            ),
            ("consumption_rate_limiter", self.consumption_rate_limiter),
        ]
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub hmac: Option<HmacSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    pub client_id: String,
    pub shared_secret: Secret,
    #[serde(with = "humantime_serde", default = "default_clock_skew")]
    pub max_clock_skew: Duration,
    /// Request ids remembered at most (about 40 bytes each); past it signed requests are
    /// refused until older ids leave their window.
    #[serde(default = "default_max_remembered_ids")]
    pub max_remembered_ids: usize,
}

fn default_clock_skew() -> Duration {
    Duration::from_secs(300)
}

/// 10,000 signed requests a second with the default skew keep 3,000,000 ids (~120 MB).
fn default_max_remembered_ids() -> usize {
    5_000_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// A setting that could not be loaded, naming the key when it can.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// Defaults, then `file` (or `$IAM_CONFIG`, or `./config.toml` when present), then the
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let file: Option<PathBuf> = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("IAM_CONFIG").map(PathBuf::from));
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        builder = match file {
            Some(path) => builder.add_source(File::from(path).required(true)),
            None => builder.add_source(File::with_name("config.toml").required(false)),
        };
        let env = Environment::with_prefix("IAM")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("server.trusted_proxies")
            .with_list_parse_key("analytics.tags")
            .with_list_parse_key("webhooks.allow_cidrs")
            .with_list_parse_key("webhooks.expiring_offsets");
        Self::from_config(builder.add_source(env).build()?)
    }

    /// The compiled-in defaults alone (no file, no environment): the base tests start from.
    pub fn defaults() -> Result<Self, SettingsError> {
        let built = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()?;
        Self::from_config(built)
    }

    fn from_config(built: Config) -> Result<Self, SettingsError> {
        let settings: Settings = built.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rules serde cannot express. Each failure names its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| {
            Err(SettingsError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        let limits = &self.rate_limiters;
        for (path, limiter) in limits.api_tokens_limiters.all() {
            if limiter.points == 0 || limiter.duration.is_zero() {
                return Err(SettingsError::Invalid {
                    key: "rate_limiters.api_tokens_limiters",
                    problem: format!("{path}: points and duration must be above zero"),
                });
            }
        }
        if !self.verify.cache_ttl.is_zero() && self.verify.cache_max_entries == 0 {
            return invalid(
                "verify.cache_max_entries",
                "must be at least 1 while the cache is on",
            );
        }
        if self.database.timeout.is_zero() {
            return invalid("database.timeout", "must be above zero");
        }
        if self.server.request_timeout.is_zero() || self.server.body_timeout.is_zero() {
            return invalid(
                "server",
                "request_timeout and body_timeout must be above zero",
            );
        }
        if limits.ban_after_strikes == 0 {
            return invalid("rate_limiters.ban_after_strikes", "must be at least 1");
        }
        if limits.ban_refresh.is_zero() || limits.prune_interval.is_zero() {
            return invalid(
                "rate_limiters",
                "ban_refresh and prune_interval must be above zero",
            );
        }
        self.redis.validate()?;
        self.analytics.validate()?;
        self.webhooks.validate()?;
        self.forward_auth.validate()?;
        self.console.validate()?;
        if crate::store::Location::parse(self.database.url.expose()).is_err() {
            return invalid(
                "database.url",
                "must be mysql://user@host:port/database or sqlite://path/to/file.db",
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if self.auth.jwt_secret.expose().len() < 32 {
            return invalid("auth.jwt_secret", "must be at least 32 characters");
        }
        for admin in &self.auth.admin_tokens {
            let name_ok = !admin.name.is_empty()
                && admin.name.len() <= 64
                && admin
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return invalid(
                    "auth.admin_tokens.name",
                    "1 to 64 of A-Z, a-z, 0-9, _ and -",
                );
            }
            let digest_ok = admin.digest.len() == 64
                && admin
                    .digest
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !digest_ok {
                return invalid(
                    "auth.admin_tokens.digest",
                    "must be the lower-case hex SHA-256 of the secret (64 characters)",
                );
            }
        }
        if self.api_tokens.limit_tokens_per_user == 0 {
            return invalid("api_tokens.limit_tokens_per_user", "must be at least 1");
        }
        if let Some(hmac) = &self.service.hmac {
            if hmac.shared_secret.expose().len() < 32 {
                return invalid(
                    "service.hmac.shared_secret",
                    "must be at least 32 characters",
                );
            }
            if hmac.client_id.is_empty() {
                return invalid("service.hmac.client_id", "must not be empty");
            }
        }
        Ok(())
    }

    pub fn uses_dev_jwt_secret(&self) -> bool {
        self.auth.jwt_secret.expose() == DEV_JWT_SECRET
    }
}

#[cfg(test)]
mod tests;
