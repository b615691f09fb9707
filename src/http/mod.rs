//! The HTTP adapter: route table, extractors and the one error→HTTP mapping.
//! Handlers are thin: parse at the edge, call `TokenService`, map the outcome.

mod admin;
mod body;
mod client_ip;
mod error;
mod headers;
mod hmac_guard;
mod jwt;
mod limit;
mod manage;
mod public;
mod replay;
mod response;

pub use admin::AdminCredentials;
pub use client_ip::client_ip;
pub use error::ApiError;
pub use hmac_guard::HmacGuard;
pub use jwt::JwtVerifier;

use std::sync::Arc;

use actix_web::web;
use ipnet::IpNet;

use crate::clock::Clock;
use crate::limits::Limits;
use crate::tokens::TokenService;

/// Everything a handler needs; one per application, no globals.
pub struct AppState {
    pub tokens: TokenService,
    pub jwt: JwtVerifier,
    pub hmac: Option<HmacGuard>,
    pub trusted_proxies: Vec<IpNet>,
    pub limits: Arc<Limits>,
    pub admins: AdminCredentials,
    pub clock: Arc<dyn Clock>,
    /// `server.body_timeout`: the longest wait for a request body.
    pub body_timeout: std::time::Duration,
}

/// Registers every route and the 404 fallback.
/// Routes match in the order they are registered: the busiest, verification, comes first.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/public/verify", web::get().to(public::verify))
        .route("/health", web::get().to(public::health))
        // Load balancers probe with HEAD too; actix sends the head without the body.
        .route("/health", web::head().to(public::health))
        .route("/ready", web::get().to(public::ready))
        .route("/ready", web::head().to(public::ready))
        .route("/api/manage/{action}", web::route().to(manage::manage))
        .configure(admin::routes)
        .default_service(web::to(public::not_found));
}

pub use headers::{common_headers, request_id};
