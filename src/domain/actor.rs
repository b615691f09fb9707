//! Who made a change, as the audit log records it.

use super::UserId;

/// `user:<id>`, `admin:<name>`, `cli` or `system`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Actor {
    /// The service itself (expiry, automatic bans) and in-process callers that name no one.
    #[default]
    System,
    Cli,
    User(UserId),
    Admin(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Cli => f.write_str("cli"),
            Self::User(id) => write!(f, "user:{id}"),
            Self::Admin(name) => write!(f, "admin:{name}"),
        }
    }
}
