//! One description per route of the table: its parameters, body and every status it answers,
//! each body built from the type the handler serializes.

mod admin;
mod analytics;
pub(crate) mod catalogue;
mod common;
mod credentials;
mod describe;
mod forward_auth;
mod manage;
mod public;
mod quota;
mod roles;
mod state;
mod webhooks;

pub use admin::*;
pub use analytics::*;
pub use credentials::*;
pub use describe::Describe;
pub use forward_auth::*;
pub use manage::manage;
pub use public::*;
pub use quota::*;
pub use roles::*;
pub use state::*;
pub use webhooks::*;
