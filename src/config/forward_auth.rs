//! `[forward_auth]` (SPEC B13): where a gateway's request carries its key, and the rules that
//! give each request its policy.

use serde::Deserialize;

use super::SettingsError;
use crate::domain::forward_auth::{NoMatch, PolicyText, RouteRule, RouteRules, RuleError};

/// Forward-auth for gateways (SPEC B13).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthSettings {
    /// Off: `/api/forward-auth` answers 404.
    pub enabled: bool,
    /// The header the key is read from when there is no `Authorization: Bearer`.
    pub key_header: String,
    /// A request no rule covers: `"verify"` (the key alone, any privilege, cost 1) or `"deny"`.
    pub default: String,
    /// First match wins.
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
}

/// One `[[forward_auth.routes]]` rule, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    pub method: Option<String>,
    pub host: Option<String>,
    /// A glob: `*` within a segment, `**` for any number of segments.
    pub path: String,
    pub privilege: Option<String>,
    pub permissions: Option<String>,
    pub cost: Option<u64>,
    /// `name:cost,…`
    pub limits: Option<String>,
    #[serde(default)]
    pub expose_metadata: bool,
}

impl Default for ForwardAuthSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            key_header: "x-api-key".to_owned(),
            default: "verify".to_owned(),
            routes: Vec::new(),
        }
    }
}

impl RouteSettings {
    fn rule(&self) -> Result<RouteRule, RuleError> {
        let cost = self.cost.map(|n| n.to_string());
        let policy = PolicyText {
            privilege: self.privilege.as_deref(),
            permissions: self.permissions.as_deref(),
            cost: cost.as_deref(),
            limits: self.limits.as_deref(),
            expose_metadata: self.expose_metadata,
        };
        RouteRule::parse(
            self.method.as_deref(),
            self.host.as_deref(),
            &self.path,
            &policy,
        )
    }
}

impl ForwardAuthSettings {
    /// The rules, parsed (`validate` has checked that they parse).
    pub fn rules(&self) -> RouteRules {
        RouteRules {
            rules: self
                .routes
                .iter()
                .filter_map(|route| route.rule().ok())
                .collect(),
            no_match: NoMatch::parse(&self.default).unwrap_or_default(),
        }
    }

    /// Rules serde cannot express; each failure names its key.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let header = &self.key_header;
        let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if header.is_empty() || header.len() > 64 || !header.bytes().all(token_char) {
            return Err(SettingsError::Invalid {
                key: "forward_auth.key_header",
                problem: "must be a header name".to_owned(),
            });
        }
        if NoMatch::parse(&self.default).is_none() {
            return Err(SettingsError::Invalid {
                key: "forward_auth.default",
                problem: "must be \"verify\" or \"deny\"".to_owned(),
            });
        }
        for (index, route) in self.routes.iter().enumerate() {
            if let Err(err) = route.rule() {
                return Err(SettingsError::Invalid {
                    key: "forward_auth.routes",
                    problem: format!("rule {} ({}): {err}", index + 1, route.path),
                });
            }
        }
        Ok(())
    }
}
