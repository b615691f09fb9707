//! Roles (named sets of grants), what a token holds, and the changes the admin API makes to
//! them, with the limits of SPEC B4. Pure values; the store keeps them.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};

use super::grants::Grants;
use super::permission::Grant;

/// A role's name: 1–64 characters of `A-Z a-z 0-9 _ . : -`, compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role name is 1 to 64 characters of A-Z, a-z, 0-9, _, ., : and -")]
pub struct RoleNameError;

impl RoleName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(text: &str) -> Result<Self, RoleNameError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
        if text.is_empty() || text.len() > Self::MAX_CHARS || !text.bytes().all(allowed) {
            return Err(RoleNameError);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role's description: at most 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDescription(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a description is at most 200 characters, without control characters")]
pub struct DescriptionError;

impl RoleDescription {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(text: &str) -> Result<Self, DescriptionError> {
        if text.chars().count() > Self::MAX_CHARS || text.chars().any(char::is_control) {
            return Err(DescriptionError);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The limits of SPEC B4.
pub mod limits {
    /// Roles in the store.
    pub const ROLES: u64 = 1000;
    /// Grants of one role.
    pub const ROLE_PERMISSIONS: usize = 1000;
    /// Roles one token holds.
    pub const TOKEN_ROLES: usize = 100;
    /// Direct grants of one token.
    pub const TOKEN_PERMISSIONS: usize = 1000;
}

/// A role as stored, with how many valid tokens hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub name: RoleName,
    pub description: Option<RoleDescription>,
    /// Sorted and distinct.
    pub permissions: Vec<Grant>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Valid tokens holding it (0 in a snapshot for `copy`, where it is not needed).
    pub tokens: u64,
}

/// A role to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole {
    pub name: RoleName,
    pub description: Option<RoleDescription>,
    pub permissions: BTreeSet<Grant>,
}

/// A change of a role: its description (`Some(None)` clears it), grants added and removed.
/// A grant both added and removed is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleChange {
    pub description: Option<Option<RoleDescription>>,
    pub add: BTreeSet<Grant>,
    pub remove: BTreeSet<Grant>,
}

/// What a token holds: its roles and its direct grants, and — as read with it — the grants of
/// its roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenAccess {
    /// Sorted and distinct.
    pub roles: Vec<RoleName>,
    /// Direct grants, sorted and distinct.
    pub permissions: Vec<Grant>,
    /// The grants of its roles when it was read (not stored with the token).
    pub inherited: Vec<Grant>,
}

impl TokenAccess {
    /// Roles and direct grants, as a token is created with them.
    pub fn new(roles: BTreeSet<RoleName>, permissions: BTreeSet<Grant>) -> Self {
        Self {
            roles: roles.into_iter().collect(),
            permissions: permissions.into_iter().collect(),
            inherited: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.permissions.is_empty()
    }

    pub fn role_texts(&self) -> Vec<String> {
        self.roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect()
    }

    /// The direct grants as written, sorted.
    pub fn permission_texts(&self) -> Vec<String> {
        sorted_texts(&self.permissions)
    }

    /// Direct ∪ inherited: what verification checks a query against.
    pub fn effective(&self) -> Grants {
        Grants::new(self.permissions.iter().chain(&self.inherited).cloned())
    }

    /// What this token would hold after `change`, or the limit it breaks.
    pub fn changed(&self, change: &AccessChange) -> Result<TokenAccess, AccessLimit> {
        let mut roles: BTreeSet<RoleName> = self.roles.iter().cloned().collect();
        roles.extend(change.add_roles.iter().cloned());
        roles.retain(|role| !change.remove_roles.contains(role));
        let mut permissions: BTreeSet<Grant> = self.permissions.iter().cloned().collect();
        permissions.extend(change.add_permissions.iter().cloned());
        permissions.retain(|grant| !change.remove_permissions.contains(grant));
        let next = Self::new(roles, permissions);
        next.within_limits()?;
        Ok(next)
    }

    /// Whether it holds at most 100 roles and 1,000 direct grants.
    pub fn within_limits(&self) -> Result<(), AccessLimit> {
        if self.roles.len() > limits::TOKEN_ROLES {
            return Err(AccessLimit::Roles);
        }
        if self.permissions.len() > limits::TOKEN_PERMISSIONS {
            return Err(AccessLimit::Permissions);
        }
        Ok(())
    }
}

/// Grants as written (`*`, `a.*`, `a.b`), sorted as text.
pub fn sorted_texts<'g>(grants: impl IntoIterator<Item = &'g Grant>) -> Vec<String> {
    let mut texts: Vec<String> = grants.into_iter().map(Grant::to_string).collect();
    texts.sort_unstable();
    texts.dedup();
    texts
}

/// A change of what one token holds. Something both added and removed is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessChange {
    pub add_roles: BTreeSet<RoleName>,
    pub remove_roles: BTreeSet<RoleName>,
    pub add_permissions: BTreeSet<Grant>,
    pub remove_permissions: BTreeSet<Grant>,
}

/// A limit of SPEC B4 that a change would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessLimit {
    #[error("a token holds at most 100 roles")]
    Roles,
    #[error("a token holds at most 1000 direct permissions")]
    Permissions,
    #[error("a role holds at most 1000 permissions")]
    RolePermissions,
    #[error("there are at most 1000 roles")]
    RoleCount,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_up_to_64_of_the_allowed_characters() {
        for good in [
            "customer_standard",
            "a",
            "plan:pro",
            "x.y-z",
            &"r".repeat(64),
        ] {
            assert!(RoleName::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["", &"r".repeat(65), "a b", "é", "a*", "a\0", "a/b"] {
            assert_eq!(RoleName::parse(bad), Err(RoleNameError), "{bad:?}");
        }
    }

    #[test]
    fn descriptions_are_up_to_200_characters_without_controls() {
        assert!(RoleDescription::parse(&"é".repeat(200)).is_ok());
        assert!(RoleDescription::parse("").is_ok());
        assert!(RoleDescription::parse(&"é".repeat(201)).is_err());
        assert!(RoleDescription::parse("a\nb").is_err());
    }

    #[test]
    fn a_change_removes_what_it_both_adds_and_removes_and_keeps_the_limits() {
        let role = |t: &str| RoleName::parse(t).unwrap();
        let grant = |t: &str| Grant::parse(t).unwrap();
        let held = TokenAccess::new([role("a")].into(), [grant("x.read")].into());
        let change = AccessChange {
            add_roles: [role("b"), role("c")].into(),
            remove_roles: [role("a"), role("c")].into(),
            add_permissions: [grant("y.*")].into(),
            remove_permissions: [grant("x.read")].into(),
        };
        let next = held.changed(&change).unwrap();
        assert_eq!(next.roles, [role("b")]);
        assert_eq!(next.permissions, [grant("y.*")]);
        let many = AccessChange {
            add_roles: (0..101).map(|i| role(&format!("r{i}"))).collect(),
            ..AccessChange::default()
        };
        assert_eq!(held.changed(&many), Err(AccessLimit::Roles));
    }
}
