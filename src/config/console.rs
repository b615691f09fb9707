//! `[console]`: the admin console in the binary (SPEC B14).

use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;

/// The admin console (SPEC B14).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Off: `/console` is a 404.
    pub enabled: bool,
    /// A session ends this long after sign-in, whatever happens.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// ...or this long after its last request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            session_ttl: Duration::from_secs(8 * 3600),
            idle_timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl ConsoleSettings {
    /// Rules serde cannot express; each failure names its key.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let minute = Duration::from_secs(60);
        if self.idle_timeout < minute {
            return Err(SettingsError::Invalid {
                key: "console.idle_timeout",
                problem: "must be at least 1 minute".to_owned(),
            });
        }
        if self.session_ttl < self.idle_timeout
            || self.session_ttl > Duration::from_secs(7 * 86_400)
        {
            return Err(SettingsError::Invalid {
                key: "console.session_ttl",
                problem: "must be at least console.idle_timeout and at most 7 days".to_owned(),
            });
        }
        Ok(())
    }

    /// The limits as the domain counts them.
    pub fn limits(&self) -> crate::domain::session::SessionLimits {
        let duration = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        crate::domain::session::SessionLimits {
            ttl: duration(self.session_ttl),
            idle: duration(self.idle_timeout),
        }
    }
}
