//! The command line's rooms beside `main.rs`: tokens, roles, bans, and how output is printed.

pub(crate) mod bans;
pub(crate) mod output;
pub(crate) mod roles;
pub(crate) mod tokens;

pub(crate) type AnyError = Box<dyn std::error::Error>;
