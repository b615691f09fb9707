//! iam-tokens: create, verify, rotate and revoke API tokens — a library and an HTTP service.
#![forbid(unsafe_code)]

pub mod admins;
pub mod analytics;
pub mod app;
pub mod clock;
pub mod config;
mod console;
pub mod domain;
pub mod envelope;
pub mod events;
pub mod http;
pub mod limits;
pub mod quotas;
pub mod secret;
pub mod service;
pub mod shared;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use clock::{Clock, ManualClock, Moment, SystemClock};
pub use config::Settings;
pub use envelope::{Reason, Results};
pub use service::TokenService;
