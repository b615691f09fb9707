//! The five privilege types. A token has exactly one; verification needs an exact match.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Privilege {
    Demo,
    /// riavzon's default.
    #[default]
    Restricted,
    Protected,
    Full,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("privilege must be one of demo, restricted, protected, full, custom")]
pub struct PrivilegeError;

impl Privilege {
    pub const ALL: [Privilege; 5] = [
        Self::Demo,
        Self::Restricted,
        Self::Protected,
        Self::Full,
        Self::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Demo => "demo",
            Self::Restricted => "restricted",
            Self::Protected => "protected",
            Self::Full => "full",
            Self::Custom => "custom",
        }
    }
}

impl FromStr for Privilege {
    type Err = PrivilegeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or(PrivilegeError)
    }
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
