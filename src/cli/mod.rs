//! The command line's rooms beside `main.rs`: roles, and how output is printed.

pub(crate) mod output;
pub(crate) mod roles;

pub(crate) type AnyError = Box<dyn std::error::Error>;
