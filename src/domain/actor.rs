//! Who made a change (SPEC B9): a typed value that travels with the call into every mutating
//! operation and is written into its audit row as three columns, `actor_type`, `actor_id`,
//! `actor_name`. Nothing reconstructs it later from a string.

use super::UserId;

/// The kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A secret of `auth.admin_tokens` in the configuration (the bootstrap).
    Config,
    /// A stored admin credential (`/api/admin/credentials`, `admin-token new`).
    Credential,
    /// A BFF call for this JWT subject.
    User,
    /// The command line.
    Cli,
    /// The service itself: the expiry sweep, the abuse limiters, in-process callers that name
    /// no one.
    System,
}

impl ActorKind {
    pub const ALL: [Self; 5] = [
        Self::Config,
        Self::Credential,
        Self::User,
        Self::Cli,
        Self::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Credential => "credential",
            Self::User => "user",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Who acted: `{type, id, name}`. `id` names the caller within its kind (a configured admin's
/// name, a credential's id, a user id); `name` is what a person reads (a credential's name,
/// the operating-system user of a CLI run, the job of the system).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// The system jobs that change things.
pub mod job {
    /// A token found expired (on verification, on a creation for its owner).
    pub const EXPIRY: &str = "expiry";
    /// An abuse limiter banning a key.
    pub const LIMITER: &str = "limiter";
    /// Credits leased out of the store by verifications (`credits.low`, `credits.exhausted`).
    pub const CREDITS: &str = "credits";
    /// The webhook dispatcher disabling an endpoint that answered 410 or kept failing.
    pub const WEBHOOKS: &str = "webhooks";
    /// In-process callers of the library that name no one.
    pub const LIBRARY: &str = "library";
}

impl Actor {
    pub fn system(job: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            name: Some(job.to_owned()),
        }
    }

    /// The command line, named by the operating-system user running it when known.
    pub fn cli(user: Option<String>) -> Self {
        Self {
            kind: ActorKind::Cli,
            id: None,
            name: user,
        }
    }

    pub fn user(id: UserId) -> Self {
        Self {
            kind: ActorKind::User,
            id: Some(id.to_string()),
            name: None,
        }
    }

    /// A configured admin secret, by its configured name.
    pub fn config(name: &str) -> Self {
        Self {
            kind: ActorKind::Config,
            id: Some(name.to_owned()),
            name: Some(name.to_owned()),
        }
    }

    pub fn credential(id: u64, name: &str) -> Self {
        Self {
            kind: ActorKind::Credential,
            id: Some(id.to_string()),
            name: Some(name.to_owned()),
        }
    }
}

impl Default for Actor {
    fn default() -> Self {
        Self::system(job::LIBRARY)
    }
}

/// `<type>:<id>` (`credential:7`, `user:42`, `cli`), as the audit filter `actor=` reads it.
impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}:{id}", self.kind.as_str()),
            None => f.write_str(self.kind.as_str()),
        }
    }
}
