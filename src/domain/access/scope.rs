//! The admin scopes (SPEC B9): what an admin credential may do, named in SPEC B4's grammar so
//! that a credential's grants are checked with the same engine as a token's permissions. The
//! whole catalogue is valid from the start, scopes of features not built yet included.

use super::grants::Grants;
use super::permission::{Grant, PermissionError};

/// Every admin scope.
pub const CATALOGUE: [&str; 19] = [
    "tokens.read",
    "tokens.create",
    "tokens.update",
    "tokens.rotate",
    "tokens.revoke",
    "tokens.disable",
    "tokens.verify",
    "roles.read",
    "roles.write",
    "quotas.read",
    "quotas.write",
    "analytics.read",
    "audit.read",
    "bans.read",
    "bans.write",
    "webhooks.read",
    "webhooks.write",
    "credentials.read",
    "credentials.write",
];

/// The presets a credential may be created with: `(name, grants)`.
pub const PRESETS: [(&str, &[&str]); 5] = [
    ("root", &["*"]),
    ("read-only", &["*.read"]),
    (
        "support",
        &["*.read", "tokens.rotate", "tokens.revoke", "tokens.disable"],
    ),
    ("billing", &["quotas.*", "tokens.read", "analytics.read"]),
    ("verifier", &["tokens.verify"]),
];

/// A preset's grants, by name.
pub fn preset(name: &str) -> Option<&'static [&'static str]> {
    PRESETS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, grants)| *grants)
}

/// What a set of scope grants allows, parsed once.
#[derive(Debug, Clone, Default)]
pub struct Scopes(Grants);

impl Scopes {
    pub fn parse<'a>(grants: impl IntoIterator<Item = &'a str>) -> Result<Self, PermissionError> {
        let grants: Vec<Grant> = grants
            .into_iter()
            .map(Grant::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self(Grants::new(grants)))
    }

    /// Everything: the configured admin secrets (`auth.admin_tokens`, the bootstrap).
    pub fn everything() -> Self {
        Self(Grants::new([Grant::All]))
    }

    pub fn allows(&self, scope: &str) -> bool {
        self.0.allows(scope)
    }

    /// The first of `needed` these scopes do not allow (no escalation: a credential may only
    /// hand out what it holds).
    pub fn first_missing<'a>(&self, needed: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        needed.into_iter().find(|scope| !self.allows(scope))
    }

    /// The catalogue's scopes these allow.
    pub fn granted(&self) -> Vec<&'static str> {
        CATALOGUE
            .into_iter()
            .filter(|scope| self.allows(scope))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(preset_name: &str) -> Scopes {
        Scopes::parse(preset(preset_name).expect("a preset").iter().copied()).expect("valid")
    }

    #[test]
    fn every_scope_is_a_permission_name_and_every_preset_parses() {
        for scope in CATALOGUE {
            assert!(Grant::parse(scope).is_ok(), "{scope}");
        }
        for (name, _) in PRESETS {
            let _ = of(name);
        }
        assert!(preset("nobody").is_none());
    }

    #[test]
    fn the_presets_grant_what_the_spec_says() {
        assert_eq!(of("root").granted(), CATALOGUE.to_vec());
        let reads: Vec<&str> = CATALOGUE
            .into_iter()
            .filter(|s| s.ends_with(".read"))
            .collect();
        assert_eq!(
            of("read-only").granted(),
            reads,
            "*.read: one segment before read"
        );
        let support = of("support");
        for scope in [
            "tokens.rotate",
            "tokens.revoke",
            "tokens.disable",
            "audit.read",
        ] {
            assert!(support.allows(scope), "{scope}");
        }
        assert!(!support.allows("tokens.create") && !support.allows("credentials.write"));
        assert_eq!(
            of("billing").granted(),
            [
                "tokens.read",
                "quotas.read",
                "quotas.write",
                "analytics.read"
            ]
        );
        assert_eq!(of("verifier").granted(), ["tokens.verify"]);
    }

    #[test]
    fn the_first_missing_scope_is_named() {
        let billing = of("billing");
        let wanted = ["quotas.write", "tokens.create", "roles.write"];
        assert_eq!(billing.first_missing(wanted), Some("tokens.create"));
        assert_eq!(Scopes::everything().first_missing(wanted), None);
    }
}
