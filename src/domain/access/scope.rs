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

/// Most grants a credential may hold.
pub const MAX_GRANTS: usize = 32;

/// Why a list of scope grants is refused; `field` names the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a credential holds at least one scope")]
    Empty,
    #[error("a credential holds at most {MAX_GRANTS} scope grants")]
    TooMany,
    #[error("{grant:?}: {error}")]
    Grammar {
        index: usize,
        grant: String,
        error: PermissionError,
    },
    #[error("{grant:?} grants no admin scope (the scopes are {})", CATALOGUE.join(", "))]
    Unknown { index: usize, grant: String },
    #[error("no preset {0:?} (the presets are root, read-only, support, billing, verifier)")]
    UnknownPreset(String),
}

impl ScopeError {
    /// The request field at fault: `scopes[<i>]`, `scopes` or `preset`.
    pub fn field(&self) -> String {
        match self {
            Self::Grammar { index, .. } | Self::Unknown { index, .. } => format!("scopes[{index}]"),
            Self::Empty | Self::TooMany => "scopes".to_owned(),
            Self::UnknownPreset(_) => "preset".to_owned(),
        }
    }
}

/// The grants a credential holds, as written (sorted, without repeats) and parsed: each one
/// a SPEC B4 grant that grants at least one scope of the catalogue.
#[derive(Debug, Clone)]
pub struct ScopeList {
    texts: Vec<String>,
    scopes: Scopes,
}

impl ScopeList {
    pub fn parse<S: AsRef<str>>(grants: &[S]) -> Result<Self, ScopeError> {
        if grants.is_empty() {
            return Err(ScopeError::Empty);
        }
        if grants.len() > MAX_GRANTS {
            return Err(ScopeError::TooMany);
        }
        for (index, grant) in grants.iter().map(AsRef::as_ref).enumerate() {
            let parsed = Grant::parse(grant).map_err(|error| ScopeError::Grammar {
                index,
                grant: grant.to_owned(),
                error,
            })?;
            let one = Scopes(Grants::new([parsed]));
            if one.granted().is_empty() {
                return Err(ScopeError::Unknown {
                    index,
                    grant: grant.to_owned(),
                });
            }
        }
        let mut texts: Vec<String> = grants.iter().map(|g| g.as_ref().to_owned()).collect();
        texts.sort();
        texts.dedup();
        let scopes = Scopes::parse(texts.iter().map(String::as_str)).map_err(|error| {
            ScopeError::Grammar {
                index: 0,
                grant: String::new(),
                error,
            }
        })?;
        Ok(Self { texts, scopes })
    }

    /// A preset's grants, by name.
    pub fn preset(name: &str) -> Result<Self, ScopeError> {
        let grants = preset(name).ok_or_else(|| ScopeError::UnknownPreset(name.to_owned()))?;
        Self::parse(grants)
    }

    /// The grants as written, sorted.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    pub fn scopes(&self) -> &Scopes {
        &self.scopes
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
    fn requested_scope_lists_are_checked_entry_by_entry() {
        let list = ScopeList::parse(&["tokens.read", "*.read", "tokens.read"]).expect("valid");
        assert_eq!(list.texts(), ["*.read", "tokens.read"]);
        assert!(list.scopes().allows("roles.read") && !list.scopes().allows("roles.write"));
        let none: [&str; 0] = [];
        assert_eq!(ScopeList::parse(&none).unwrap_err(), ScopeError::Empty);
        let unknown = ScopeList::parse(&["tokens.read", "tokens.fly"]).unwrap_err();
        assert_eq!(unknown.field(), "scopes[1]");
        let misplaced = ScopeList::parse(&["tok*ens.read"]).unwrap_err();
        assert!(matches!(misplaced, ScopeError::Grammar { index: 0, .. }));
        assert!(
            misplaced.to_string().contains("first or in the middle"),
            "{misplaced}"
        );
        assert_eq!(
            ScopeList::parse(&["api.*.read_key"]).unwrap_err().field(),
            "scopes[0]"
        );
        assert_eq!(
            ScopeList::preset("god").unwrap_err().to_string(),
            "no preset \"god\" (the presets are root, read-only, support, billing, verifier)"
        );
        let many: Vec<String> = (0..=MAX_GRANTS).map(|_| "tokens.read".to_owned()).collect();
        assert_eq!(ScopeList::parse(&many).unwrap_err(), ScopeError::TooMany);
    }

    #[test]
    fn the_first_missing_scope_is_named() {
        let billing = of("billing");
        let wanted = ["quotas.write", "tokens.create", "roles.write"];
        assert_eq!(billing.first_missing(wanted), Some("tokens.create"));
        assert_eq!(Scopes::everything().first_missing(wanted), None);
    }
}
