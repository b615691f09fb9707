//! The command line's rooms beside `main.rs`: tokens, roles, bans, webhooks, and how output is printed.

pub(crate) mod admin_tokens;
pub(crate) mod bans;
pub(crate) mod output;
pub(crate) mod roles;
pub(crate) mod tokens;
pub(crate) mod webhooks;

pub(crate) type AnyError = Box<dyn std::error::Error>;

/// The actor of every change the command line makes: `cli`, named by the operating-system
/// user running it when the environment tells (`$USER`).
pub(crate) fn actor() -> iam_tokens::domain::Actor {
    let user = std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .map(|user| user.chars().take(64).collect());
    iam_tokens::domain::Actor::cli(user)
}
