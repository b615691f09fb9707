//! `[[forward_auth.routes]]` (SPEC B13): which requests a rule covers (method, host, path glob)
//! and the policy it gives them; the first match wins, and a request no rule covers gets
//! `forward_auth.default` (verify the key alone, or deny).

use std::sync::Arc;

use super::PathGlob;
use crate::domain::access::Query;
use crate::domain::quota::{LimitName, Usage, MAX_COST};
use crate::domain::Privilege;

/// What a covered request is verified with.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `None`: any privilege.
    pub privilege: Option<Privilege>,
    /// A permission query the key must satisfy (SPEC B4), parsed once.
    pub permissions: Option<Arc<Query>>,
    /// What the request costs: credits and auto-applied limits, and named limits each at its
    /// own cost (SPEC B5).
    pub usage: Usage,
    /// Put the token's metadata into `X-Auth-Principal`.
    pub expose_metadata: bool,
}

impl Default for Policy {
    /// The key alone: any privilege, cost 1, nothing else.
    fn default() -> Self {
        Self {
            privilege: None,
            permissions: None,
            usage: Usage::default(),
            expose_metadata: false,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRule {
    /// Upper case; `None`: any method.
    pub method: Option<String>,
    /// Lower case, exact or `*.example.com` (any subdomain); `None`: any host.
    pub host: Option<String>,
    pub path: PathGlob,
    pub policy: Policy,
}

/// What a request no rule covers gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoMatch {
    /// The key alone ([`Policy::default`]).
    #[default]
    Verify,
    /// 403 `NO_ROUTE`.
    Deny,
}

impl NoMatch {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "verify" => Some(Self::Verify),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("method is an HTTP method (GET, POST, …)")]
    Method,
    #[error("host is a host name, or *.domain for its subdomains")]
    Host,
    #[error("path: {0}")]
    Path(#[from] super::GlobError),
    #[error("privilege is demo, restricted, protected, full or custom")]
    Privilege,
    #[error("permissions: {0}")]
    Permissions(String),
    #[error("cost is 0 to 1000000000")]
    Cost,
    #[error("limits is name:cost,… (at most 16 names, each once; costs of 0 to 1000000000)")]
    Limits,
}

impl RouteRule {
    /// A rule from its written parts; each error names the part.
    pub fn parse(
        method: Option<&str>,
        host: Option<&str>,
        path: &str,
        policy: &PolicyText<'_>,
    ) -> Result<Self, RuleError> {
        let method = method
            .map(|m| {
                let ok =
                    !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_alphabetic());
                ok.then(|| m.to_ascii_uppercase()).ok_or(RuleError::Method)
            })
            .transpose()?;
        let host = host
            .map(|h| {
                let name = h.strip_prefix("*.").unwrap_or(h);
                let ok = !name.is_empty()
                    && name.len() <= 253
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                ok.then(|| h.to_ascii_lowercase()).ok_or(RuleError::Host)
            })
            .transpose()?;
        Ok(Self {
            method,
            host,
            path: PathGlob::parse(path)?,
            policy: policy.parse()?,
        })
    }

    /// Whether the rule covers a request (`method` upper case, `host` without its port).
    pub fn covers(&self, method: &str, host: &str, path: &str) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| m == method);
        let host_ok = self.host.as_deref().is_none_or(|h| host_matches(h, host));
        method_ok && host_ok && self.path.matches(path)
    }
}

fn host_matches(rule: &str, host: &str) -> bool {
    match rule.strip_prefix("*.") {
        Some(domain) => host
            .len()
            .checked_sub(domain.len() + 1)
            .is_some_and(|at| host[at..].eq_ignore_ascii_case(&format!(".{domain}")) && at > 0),
        None => rule.eq_ignore_ascii_case(host),
    }
}

/// A policy as written (a rule's fields, or a call's query parameters).
#[derive(Debug, Clone, Default)]
pub struct PolicyText<'a> {
    pub privilege: Option<&'a str>,
    pub permissions: Option<&'a str>,
    pub cost: Option<&'a str>,
    pub limits: Option<&'a str>,
    pub expose_metadata: bool,
}

impl PolicyText<'_> {
    /// The policy; each error names the field.
    pub fn parse(&self) -> Result<Policy, RuleError> {
        let privilege = self
            .privilege
            .map(|p| p.parse::<Privilege>().map_err(|_| RuleError::Privilege))
            .transpose()?;
        let permissions = self
            .permissions
            .map(|text| Query::parse(text).map_err(|err| RuleError::Permissions(err.to_string())))
            .transpose()?
            .map(Arc::new);
        let cost = match self.cost {
            None => 1,
            Some(text) => cost(text).ok_or(RuleError::Cost)?,
        };
        let limits = match self.limits {
            None => Vec::new(),
            Some(text) => named_limits(text).ok_or(RuleError::Limits)?,
        };
        let usage = Usage::new(cost, limits).map_err(|_| RuleError::Limits)?;
        Ok(Policy {
            privilege,
            permissions,
            usage,
            expose_metadata: self.expose_metadata,
        })
    }
}

fn cost(text: &str) -> Option<u64> {
    text.parse().ok().filter(|n| *n <= MAX_COST)
}

/// `name:cost,name:cost` (at most 16, each name once).
fn named_limits(text: &str) -> Option<Vec<(LimitName, u64)>> {
    let mut limits: Vec<(LimitName, u64)> = Vec::new();
    for item in text.split(',') {
        let (name, amount) = item.split_once(':')?;
        let name = LimitName::parse(name.trim()).ok()?;
        if limits.iter().any(|(seen, _)| *seen == name) || limits.len() == 16 {
            return None;
        }
        limits.push((name, cost(amount.trim())?));
    }
    Some(limits)
}

/// The rules in order, and what a request none covers gets.
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    pub rules: Vec<RouteRule>,
    pub no_match: NoMatch,
}

impl RouteRules {
    /// The first rule covering a request (`method` upper case, `host` without its port).
    pub fn rule_for(&self, method: &str, host: &str, path: &str) -> Option<&RouteRule> {
        self.rules
            .iter()
            .find(|rule| rule.covers(method, host, path))
    }

    /// The policy of a request: the first rule covering it, else the default (`None`: deny).
    pub fn policy(&self, method: &str, host: &str, path: &str) -> Option<Policy> {
        match self.rule_for(method, host, path) {
            Some(rule) => Some(rule.policy.clone()),
            None => match self.no_match {
                NoMatch::Verify => Some(Policy::default()),
                NoMatch::Deny => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<&str>, host: Option<&str>, path: &str, privilege: &str) -> RouteRule {
        let policy = PolicyText {
            privilege: Some(privilege),
            ..PolicyText::default()
        };
        RouteRule::parse(method, host, path, &policy).unwrap()
    }

    #[test]
    fn the_first_covering_rule_gives_the_policy_else_the_default() {
        let rules = RouteRules {
            rules: vec![
                rule(Some("post"), None, "/api/**", "full"),
                rule(None, Some("*.example.com"), "/api/**", "protected"),
                rule(
                    Some("GET"),
                    Some("api.example.com"),
                    "/reports/*",
                    "restricted",
                ),
            ],
            no_match: NoMatch::Deny,
        };
        let privilege = |method, host, path| {
            rules
                .policy(method, host, path)
                .map(|p| p.privilege.map(Privilege::as_str))
        };
        let cases = [
            ("POST", "api.example.com", "/api/x", Some(Some("full"))),
            ("GET", "api.example.com", "/api/x", Some(Some("protected"))),
            ("GET", "API.Example.com", "/api/x", Some(Some("protected"))),
            ("GET", "example.com", "/api/x", None),
            ("GET", "evilexample.com", "/api/x", None),
            (
                "GET",
                "api.example.com",
                "/reports/q1",
                Some(Some("restricted")),
            ),
            ("DELETE", "api.example.com", "/reports/q1", None),
            ("GET", "other.org", "/health", None),
        ];
        for (method, host, path, expected) in cases {
            assert_eq!(
                privilege(method, host, path),
                expected,
                "{method} {host}{path}"
            );
        }
        let verify = RouteRules::default();
        assert_eq!(verify.policy("GET", "h", "/x"), Some(Policy::default()));
    }

    #[test]
    fn a_policy_is_read_from_its_text_and_each_mistake_named() {
        let text = PolicyText {
            privilege: Some("full"),
            permissions: Some("reports.read AND billing.*"),
            cost: Some("3"),
            limits: Some("search:2, export:1"),
            expose_metadata: true,
        };
        let policy = text.parse().unwrap();
        assert_eq!((policy.usage.cost, policy.usage.named.len()), (3, 2));
        let bad = |text: PolicyText<'_>| text.parse().unwrap_err();
        let base = PolicyText::default;
        let cases = [
            (
                PolicyText {
                    privilege: Some("root"),
                    ..base()
                },
                RuleError::Privilege,
            ),
            (
                PolicyText {
                    cost: Some("-1"),
                    ..base()
                },
                RuleError::Cost,
            ),
            (
                PolicyText {
                    cost: Some("1000000001"),
                    ..base()
                },
                RuleError::Cost,
            ),
            (
                PolicyText {
                    limits: Some("search"),
                    ..base()
                },
                RuleError::Limits,
            ),
            (
                PolicyText {
                    limits: Some("a:1,a:2"),
                    ..base()
                },
                RuleError::Limits,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(bad(text.clone()), expected, "{text:?}");
        }
        let query = PolicyText {
            permissions: Some("a AND ("),
            ..base()
        };
        assert!(matches!(bad(query), RuleError::Permissions(_)));
        let policy = PolicyText::default();
        assert_eq!(
            RouteRule::parse(Some("G E T"), None, "/", &policy),
            Err(RuleError::Method)
        );
        assert_eq!(
            RouteRule::parse(None, Some("bad host"), "/", &policy),
            Err(RuleError::Host)
        );
    }
}
