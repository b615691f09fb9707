//! The HTTP adapter: route table, extractors and the one error→HTTP mapping.
//! Handlers are thin: parse at the edge, call `TokenService`, map the outcome.

mod admin;
mod bff;
mod body;
mod caller;
mod client_ip;
mod error;
pub mod forward_auth;
mod headers;
mod hmac_guard;
mod jwt;
mod limit;
mod observe;
mod openapi;
mod public;
mod query_params;
mod quota_headers;
mod replay;
mod response;
mod routes;

pub use caller::{Access, Admin, User};
pub use client_ip::client_ip;
pub(crate) use error::AdminFailure;
pub use error::ApiError;
pub use hmac_guard::HmacGuard;
pub use jwt::JwtVerifier;
pub use openapi::{document as openapi_document, rendered as openapi_rendered, DocContext};

use std::sync::Arc;

use ipnet::IpNet;

use crate::clock::Clock;
use crate::limits::Limits;
use crate::service::TokenService;

/// Everything a handler needs; one per application, no globals.
pub struct AppState {
    pub tokens: TokenService,
    pub jwt: JwtVerifier,
    pub hmac: Option<HmacGuard>,
    /// With `redis.url`: for `/ready`.
    pub redis: Option<Arc<crate::shared::Redis>>,
    pub trusted_proxies: Vec<IpNet>,
    pub limits: Arc<Limits>,
    pub admins: Arc<crate::admins::Admins>,
    pub clock: Arc<dyn Clock>,
    /// `server.body_timeout`: the longest wait for a request body.
    pub body_timeout: std::time::Duration,
    /// `GET /openapi.json`, rendered once.
    pub openapi: actix_web::web::Bytes,
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// Whether `/metrics` is served on this listener (not when `metrics.address` is set).
    pub metrics_here: bool,
    /// Permission queries of the public verify route, parsed once per distinct text.
    pub queries: QueryCache,
    /// `[forward_auth]` (SPEC B13).
    pub forward_auth: forward_auth::ForwardAuth,
    /// How long a console session lives (SPEC B14).
    pub console_limits: crate::domain::session::SessionLimits,
    /// The store's kind, as the console's status page names it.
    pub store_kind: &'static str,
}

pub(crate) use admin::{
    audit_query, change_access_as, create_credential_as, create_role_as, create_token_as,
    create_webhook_as, credits_edit, delete_role_as, edit_quota_as, invalid_metadata, limits_edit,
    update_role_as, update_webhook_as, AccessRequest, CreateCredentialRequest, CreateTokenRequest,
    CreditsPatch, RateLimitsRequest, TokenView,
};
pub use query_params::QueryCache;
pub use routes::{count_console, request_series};
pub use routes::{metrics_routes, routes, table as route_table, RouteSpec};

pub use headers::{common_headers, request_id};
