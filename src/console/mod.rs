//! The admin console (SPEC B14): pages rendered by the server from compile-checked templates
//! (`templates/console/`), their stylesheet and script compiled in (`assets/console/`). It is
//! an adapter like `http/`: every page calls the same service methods as the admin API, checks
//! the same scopes, and adds no rule of its own.
//!
//! `session.rs` signs in and out and guards every page (cookie, CSRF, origin); `pages.rs` holds
//! the layout and the shared page types; `form.rs` what the forms share. The pages: `tokens.rs` (the list), `token.rs` (one
//! token; `token_actions.rs` its forms; `chart.rs` draws its verifications), `quotas.rs` (the limits
//! and credits forms of a token and an owner), `create.rs`, `audit.rs`,
//! `owners.rs`, `roles.rs`, `webhooks.rs`, `credentials.rs`, `status.rs`. `assets.rs` serves the compiled-in files.

mod assets;
mod audit;
mod chart;
mod create;
mod credentials;
mod form;
mod owners;
mod pages;
mod quotas;
mod roles;
mod session;
mod status;
mod token;
mod token_actions;
mod tokens;
mod webhooks;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;

/// What the console's answers carry besides the service's common headers: no inline script,
/// nothing from elsewhere, no framing, forms only to ourselves.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `/console` and everything under it (registered only when `console.enabled`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            // Every answer of the console counted, its refusals and 404s included.
            .wrap(actix_web::middleware::from_fn(crate::http::count_console))
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CSP))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("X-Content-Type-Options", "nosniff")),
            )
            .route("", web::get().to(session::home))
            .route("/", web::get().to(session::home))
            .route("/sign-in", web::get().to(session::sign_in_page))
            .route("/sign-in", web::post().to(session::sign_in))
            .route("/sign-out", web::post().to(session::sign_out))
            .route("/tokens", web::get().to(tokens::list))
            .route("/tokens/new", web::get().to(create::new))
            .route("/tokens/new", web::post().to(create::create))
            .route("/tokens/{id}", web::get().to(token::show))
            .route(
                "/tokens/{id}/state",
                web::post().to(token_actions::set_state),
            )
            .route(
                "/tokens/{id}/metadata",
                web::post().to(token_actions::set_metadata),
            )
            .route(
                "/tokens/{id}/access",
                web::post().to(token_actions::set_access),
            )
            .route(
                "/tokens/{id}/ratelimits",
                web::post().to(quotas::token_limits),
            )
            .route(
                "/tokens/{id}/credits",
                web::post().to(quotas::token_credits),
            )
            .route("/tokens/{id}/rotate", web::post().to(token_actions::rotate))
            .route("/tokens/{id}/revoke", web::post().to(token_actions::revoke))
            .route("/audit", web::get().to(audit::list))
            .route("/roles", web::get().to(roles::list))
            .route("/roles", web::post().to(roles::create))
            .route("/roles/{name}/change", web::post().to(roles::change))
            .route("/roles/{name}/delete", web::post().to(roles::delete))
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .route("/webhooks/{id}/test", web::post().to(webhooks::test))
            .route("/webhooks/{id}/state", web::post().to(webhooks::set_state))
            .route("/webhooks/{id}/delete", web::post().to(webhooks::delete))
            .route(
                "/webhooks/deliveries/{id}/retry",
                web::post().to(webhooks::retry),
            )
            .route("/owners/{id}", web::get().to(owners::show))
            .route("/owners/{id}/state", web::post().to(owners::set_state))
            .route(
                "/owners/{id}/ratelimits",
                web::post().to(quotas::owner_limits),
            )
            .route(
                "/owners/{id}/credits",
                web::post().to(quotas::owner_credits),
            )
            .route("/credentials", web::get().to(credentials::list))
            .route("/credentials", web::post().to(credentials::create))
            .route(
                "/credentials/{id}/revoke",
                web::post().to(credentials::revoke),
            )
            .route("/status", web::get().to(status::show))
            .route("/assets/{file}", web::get().to(assets::serve))
            .default_service(web::to(session::not_found)),
    );
}
