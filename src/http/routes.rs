//! The route table: every route with its method, path, handler and `Access`, registered from
//! this one list (so no route can be added without saying who may call it) and readable by
//! tests (`table()`), which walk it to prove that every non-public route refuses a call
//! without a credential.

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{guard, web, Route};

use utoipa::openapi::path::Operation;

use super::bff::Action;
use super::caller::{require_admin, require_user, Access};
use super::error::{AdminFailure, ApiError};
use super::observe::RouteSeries;
use super::openapi::operations::{self as doc, Describe};
use super::{admin, bff, forward_auth, observe, public};

/// One route as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// `None`: any method (the handler answers a wrong one itself).
    pub method: Option<&'static str>,
    pub path: &'static str,
    pub access: Access,
    /// The admin scope a call needs (SPEC B9; `domain::access::scope::CATALOGUE`): every admin
    /// route has one, no other route does. `a|b`: either admits the call (the bulk route, whose
    /// operation then needs its own).
    pub scope: Option<&'static str>,
}

/// How a route is described in the OpenAPI document.
#[derive(Clone, Copy)]
pub(super) enum Doc {
    /// One operation, with its id.
    One(&'static str, fn(Describe) -> Operation),
    /// `/api/manage/{action}`: one path per BFF action.
    PerAction,
}

pub(super) struct Entry {
    pub(super) spec: RouteSpec,
    route: fn() -> Route,
    pub(super) doc: Doc,
}

const fn entry(
    method: Option<&'static str>,
    path: &'static str,
    access: Access,
    scope: Option<&'static str>,
    route: fn() -> Route,
    doc: Doc,
) -> Entry {
    Entry {
        spec: RouteSpec {
            method,
            path,
            access,
            scope,
        },
        route,
        doc,
    }
}

use Doc::{One, PerAction};

const GET: Option<&str> = Some("GET");
const HEAD: Option<&str> = Some("HEAD");
const POST: Option<&str> = Some("POST");
const PATCH: Option<&str> = Some("PATCH");
const PUT: Option<&str> = Some("PUT");
const DELETE: Option<&str> = Some("DELETE");

/// In matching order: the busiest, verification, first.
#[rustfmt::skip]
pub(super) const TABLE: &[Entry] = &[
    entry(GET,    "/api/public/verify",                Access::Public, None, || web::to(public::verify),                  One("verifyKey", doc::verify)),
    entry(None,   "/api/forward-auth",                 Access::Public, None, || web::to(forward_auth::check),             One("verifyForGateway", doc::forward_auth)),
    entry(None,   "/api/forward-auth/{tail:.*}",       Access::Public, None, || web::to(forward_auth::check),             One("verifyForEnvoy", doc::forward_auth_tail)),
    entry(GET,    "/health",                           Access::Public, None, || web::to(public::health),                  One("getHealth", doc::health)),
    entry(HEAD,   "/health",                           Access::Public, None, || web::to(public::health),                  One("headHealth", doc::health_head)),
    entry(GET,    "/ready",                            Access::Public, None, || web::to(public::ready),                   One("getReadiness", doc::ready)),
    entry(HEAD,   "/ready",                            Access::Public, None, || web::to(public::ready),                   One("headReadiness", doc::ready_head)),
    entry(GET,    "/openapi.json",                     Access::Public, None, || web::to(public::openapi),                  One("getOpenApiDocument", doc::openapi)),
    entry(GET,    "/metrics",                          Access::Public, None, || web::to(public::metrics),                 One("getMetrics", doc::metrics)),
    entry(None,   "/api/manage/{action}",              Access::User, None,   || web::to(bff::manage),                     PerAction),
    entry(POST,   "/api/admin/tokens",                 Access::Admin, Some("tokens.create"),  || web::to(admin::tokens::create),           One("createToken", doc::admin_create)),
    entry(GET,    "/api/admin/tokens/{id}",            Access::Admin, Some("tokens.read"),  || web::to(admin::tokens::get),              One("getToken", doc::admin_get)),
    entry(PATCH,  "/api/admin/tokens/{id}/metadata",   Access::Admin, Some("tokens.update"),  || web::to(admin::tokens::patch_metadata),   One("patchTokenMetadata", doc::admin_patch_metadata)),
    entry(PUT,    "/api/admin/tokens/{id}/metadata",   Access::Admin, Some("tokens.update"),  || web::to(admin::tokens::replace_metadata), One("replaceTokenMetadata", doc::admin_replace_metadata)),
    entry(POST,   "/api/admin/tokens/{id}/revoke",     Access::Admin, Some("tokens.revoke"),  || web::to(admin::tokens::revoke),           One("revokeToken", doc::admin_revoke)),
    entry(POST,   "/api/admin/tokens/bulk",            Access::Admin, Some("tokens.revoke|tokens.disable"), || web::to(admin::bulk::bulk), One("changeTokensInBulk", doc::admin_bulk)),
    entry(POST,   "/api/admin/tokens/{id}/rotate",     Access::Admin, Some("tokens.rotate"), || web::to(admin::rotate::rotate),     One("rotateToken", doc::admin_rotate)),
    entry(PUT,    "/api/admin/tokens/{id}/state",      Access::Admin, Some("tokens.disable"), || web::to(admin::state::put_token_state), One("setTokenState", doc::admin_token_state)),
    entry(PUT,    "/api/admin/users/{user_id}/state",  Access::Admin, Some("tokens.disable"), || web::to(admin::state::put_user_state), One("setUserState", doc::admin_user_state)),
    entry(GET,    "/api/admin/tokens/{id}/events",     Access::Admin, Some("audit.read"),  || web::to(admin::tokens::events),           One("listTokenEvents", doc::admin_events)),
    entry(GET,    "/api/admin/users/{user_id}/tokens", Access::Admin, Some("tokens.read"),  || web::to(admin::tokens::list),             One("listUserTokens", doc::admin_list)),
    entry(POST,   "/api/admin/tokens/{id}/access",     Access::Admin, Some("tokens.update"),  || web::to(admin::access::change),           One("changeTokenAccess", doc::admin_access)),
    entry(PUT,    "/api/admin/tokens/{id}/ratelimits", Access::Admin, Some("quotas.write"),  || web::to(admin::quota::put_token_limits),  One("setTokenRateLimits", doc::admin_token_ratelimits)),
    entry(PATCH,  "/api/admin/tokens/{id}/credits",    Access::Admin, Some("quotas.write"),  || web::to(admin::quota::patch_token_credits), One("changeTokenCredits", doc::admin_token_credits)),
    entry(PUT,    "/api/admin/users/{user_id}/ratelimits", Access::Admin, Some("quotas.write"), || web::to(admin::quota::put_user_limits), One("setUserRateLimits", doc::admin_user_ratelimits)),
    entry(PATCH,  "/api/admin/users/{user_id}/credits", Access::Admin, Some("quotas.write"), || web::to(admin::quota::patch_user_credits), One("changeUserCredits", doc::admin_user_credits)),
    entry(GET,    "/api/admin/users/{user_id}/quota",  Access::Admin, Some("quotas.read"),  || web::to(admin::quota::get_user_quota),    One("getUserQuota", doc::admin_user_quota)),
    entry(GET,    "/api/admin/webhooks/deliveries",    Access::Admin, Some("webhooks.read"), || web::to(admin::webhooks::deliveries),     One("listWebhookDeliveries", doc::admin_webhook_deliveries)),
    entry(POST,   "/api/admin/webhooks/deliveries/{id}/retry", Access::Admin, Some("webhooks.write"), || web::to(admin::webhooks::retry), One("retryWebhookDelivery", doc::admin_retry_delivery)),
    entry(POST,   "/api/admin/webhooks",               Access::Admin, Some("webhooks.write"), || web::to(admin::webhooks::create),       One("createWebhook", doc::admin_create_webhook)),
    entry(GET,    "/api/admin/webhooks",               Access::Admin, Some("webhooks.read"), || web::to(admin::webhooks::list),          One("listWebhooks", doc::admin_webhooks)),
    entry(GET,    "/api/admin/webhooks/{id}",          Access::Admin, Some("webhooks.read"), || web::to(admin::webhooks::get),           One("getWebhook", doc::admin_get_webhook)),
    entry(PATCH,  "/api/admin/webhooks/{id}",          Access::Admin, Some("webhooks.write"), || web::to(admin::webhooks::update),       One("updateWebhook", doc::admin_update_webhook)),
    entry(DELETE, "/api/admin/webhooks/{id}",          Access::Admin, Some("webhooks.write"), || web::to(admin::webhooks::delete),       One("deleteWebhook", doc::admin_delete_webhook)),
    entry(POST,   "/api/admin/webhooks/{id}/rotate-secret", Access::Admin, Some("webhooks.write"), || web::to(admin::webhooks::rotate_secret), One("rotateWebhookSecret", doc::admin_rotate_webhook_secret)),
    entry(POST,   "/api/admin/webhooks/{id}/test",     Access::Admin, Some("webhooks.write"), || web::to(admin::webhooks::test),         One("sendWebhookTest", doc::admin_test_webhook)),
    entry(POST,   "/api/admin/roles",                  Access::Admin, Some("roles.write"),  || web::to(admin::roles::create),            One("createRole", doc::admin_create_role)),
    entry(GET,    "/api/admin/roles",                  Access::Admin, Some("roles.read"),  || web::to(admin::roles::list),              One("listRoles", doc::admin_roles)),
    entry(GET,    "/api/admin/roles/{name}",           Access::Admin, Some("roles.read"),  || web::to(admin::roles::get),               One("getRole", doc::admin_get_role)),
    entry(PATCH,  "/api/admin/roles/{name}",           Access::Admin, Some("roles.write"),  || web::to(admin::roles::update),            One("updateRole", doc::admin_update_role)),
    entry(DELETE, "/api/admin/roles/{name}",           Access::Admin, Some("roles.write"),  || web::to(admin::roles::delete),            One("deleteRole", doc::admin_delete_role)),
    entry(POST,   "/api/admin/verify",                 Access::Admin, Some("tokens.verify"),  || web::to(admin::verify::verify),           One("verifyKeyDetailed", doc::admin_verify)),
    entry(GET,    "/api/admin/bans",                   Access::Admin, Some("bans.read"),  || web::to(admin::bans::list),               One("listBans", doc::admin_bans)),
    entry(DELETE, "/api/admin/bans/{limiter}/{key}",   Access::Admin, Some("bans.write"),  || web::to(admin::bans::lift),               One("liftBan", doc::admin_lift)),
    entry(POST,   "/api/admin/credentials",            Access::Admin, Some("credentials.write"), || web::to(admin::credentials::create), One("createCredential", doc::admin_create_credential)),
    entry(GET,    "/api/admin/credentials",            Access::Admin, Some("credentials.read"), || web::to(admin::credentials::list),    One("listCredentials", doc::admin_credentials)),
    entry(GET,    "/api/admin/credentials/{id}",       Access::Admin, Some("credentials.read"), || web::to(admin::credentials::get),     One("getCredential", doc::admin_get_credential)),
    entry(PATCH,  "/api/admin/credentials/{id}",       Access::Admin, Some("credentials.write"), || web::to(admin::credentials::update), One("updateCredential", doc::admin_update_credential)),
    entry(DELETE, "/api/admin/credentials/{id}",       Access::Admin, Some("credentials.write"), || web::to(admin::credentials::revoke), One("revokeCredential", doc::admin_revoke_credential)),
    entry(GET,    "/api/admin/audit",                  Access::Admin, Some("audit.read"),  || web::to(admin::audit::list),              One("listAuditEvents", doc::admin_audit)),
    entry(GET,    "/api/admin/analytics/verifications", Access::Admin, Some("analytics.read"), || web::to(admin::analytics::verifications), One("getVerificationAnalytics", doc::admin_analytics)),
];

/// Every route, in matching order.
pub fn table() -> Vec<RouteSpec> {
    TABLE.iter().map(|entry| entry.spec).collect()
}

/// Registers every route of the table, each behind the guard of its `Access`, and the 404
/// fallback.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let (series, _) = series_of_entries();
    for (entry, series) in TABLE.iter().zip(series) {
        let RouteSpec {
            method,
            path,
            access,
            scope,
        } = entry.spec;
        let mut resource = web::resource(path);
        if let Some(method) = method {
            // A method guard on the resource: another method falls through to the next entry
            // of the same path (as `ServiceConfig::route` does), then to the 404.
            let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
            resource = resource.guard(guard::Method(method));
        }
        let route = (entry.route)();
        // The counter wraps outermost, so that refusals by the guards are counted too.
        let count = from_fn(move |req, next| observe::count(series, req, next));
        match access {
            Access::Public => cfg.service(resource.route(route).wrap(count)),
            Access::User => cfg.service(
                resource
                    .route(route)
                    .wrap(from_fn(require_user))
                    .wrap(count),
            ),
            Access::Admin => {
                // Every admin route names its scope (a test walks the table); one that did not
                // would need a scope only `*` grants.
                let scope = scope.unwrap_or("unlisted");
                cfg.service(
                    resource
                        .route(route)
                        .wrap(from_fn(move |req, next| require_admin(scope, req, next)))
                        .wrap(count),
                )
            }
        };
    }
    cfg.default_service(web::to(fallback));
}

/// What answers a request no route took. Under `/api/admin/` it is problem details: 405 with
/// `Allow` when the path is a route's and the method is not one of them, else 404. Anywhere
/// else, riavzon's 404 as it always was.
async fn fallback(
    req: actix_web::HttpRequest,
    state: Option<web::Data<super::AppState>>,
) -> actix_web::HttpResponse {
    use actix_web::http::header::{HeaderValue, ALLOW};
    use actix_web::ResponseError as _;

    let path = req.path();
    if !(path == "/api/admin" || path.starts_with("/api/admin/")) {
        return public::not_found(state).await;
    }
    let allowed: Vec<&str> = TABLE
        .iter()
        .filter(|entry| actix_web::dev::ResourceDef::new(entry.spec.path).is_match(path))
        .filter_map(|entry| entry.spec.method)
        .collect();
    let failure = match allowed.is_empty() {
        true => AdminFailure::not_found(format!("no admin route at {path}")),
        false => AdminFailure::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} answers {}", allowed.join(", ")),
        ),
    };
    if let Some(state) = &state {
        state.metrics.request_unmatched(failure.status.as_u16());
    }
    let mut response = ApiError::Admin(failure).error_response();
    if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
        if !allowed.is_empty() {
            response.headers_mut().insert(ALLOW, allow);
        }
    }
    response
}

/// The request series, in order: each route of the table (a BFF route as its seven actions
/// and an unknown one), then requests no route matched.
pub fn request_series() -> Vec<(&'static str, String)> {
    let mut series = Vec::new();
    for entry in TABLE {
        let spec = entry.spec;
        match entry.doc {
            Doc::One(..) => series.push((
                spec.method.unwrap_or("*"),
                super::openapi::documented_path(spec.path),
            )),
            Doc::PerAction => {
                for action in Action::ALL {
                    let path = spec.path.replace("{action}", action.as_str());
                    series.push((action.method(), path));
                }
                series.push(("*", spec.path.to_owned()));
            }
        }
    }
    series.push(("*", "/console".to_owned()));
    series.push(("*", "unmatched".to_owned()));
    series
}

/// Counts the admin console's answers, whatever the page, as the one series `/console` (SPEC
/// B14: its pages are not API routes; a series per page would only grow the scrape).
pub async fn count_console(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    static CONSOLE: std::sync::LazyLock<RouteSeries> =
        std::sync::LazyLock::new(|| RouteSeries::One(series_of_entries().1));
    observe::count(*CONSOLE, req, next).await
}

/// Each table entry's place in `request_series`, in table order, and the console's (the
/// unmatched one follows it, last).
fn series_of_entries() -> (Vec<RouteSeries>, usize) {
    let mut next = 0;
    let mut places = Vec::with_capacity(TABLE.len());
    for entry in TABLE {
        match entry.doc {
            Doc::One(..) => {
                places.push(RouteSeries::One(next));
                next += 1;
            }
            Doc::PerAction => {
                places.push(RouteSeries::PerAction(next));
                next += Action::ALL.len() + 1;
            }
        }
    }
    (places, next)
}

/// The listener of `metrics.address`: `/metrics` and nothing else.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(public::metrics_here));
    cfg.default_service(web::to(public::not_found));
}
