//! Who is calling. Authentication is a property of the route, not a line in its handler: the
//! route table gives every route an `Access`, registration wraps each non-public route in the
//! matching guard, and the guard refuses a missing or bad credential before the handler (or
//! any body) is read. Handlers that need the caller take `Admin` or `User` as an extractor,
//! which reads what the guard established (and fails closed if it is absent).

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, ResponseError};

use std::sync::Arc;

use super::client_ip::client_ip;
use super::error::AdminFailure;
use super::{ApiError, AppState};
use crate::admins::Refusal;
use crate::domain::access::Scopes;
use crate::domain::{Actor, UserId};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, verification, the 404 fallback).
    Public,
    /// A signed-in user, through the BFF: `Authorization: Bearer <access token>` (SPEC A7).
    User,
    /// A trusted server or operator: `Authorization: Bearer <admin secret>` (SPEC B2), holding
    /// the route's scope (SPEC B9).
    Admin,
}

/// The authenticated admin: who acts (written into every change they make) and the scopes
/// their credential holds.
#[derive(Debug, Clone)]
pub struct Admin(pub Actor, pub Arc<Scopes>);

/// The authenticated user, the `sub` of their access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User(pub UserId);

/// The guard of `Access::Admin` routes: a credential that authenticates (401 otherwise, the
/// same body whatever was wrong with it) and holds the route's `scope` (403 `forbidden`
/// naming it otherwise).
pub async fn require_admin(
    scope: &'static str,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let caller = match req.app_data::<Data<AppState>>().cloned() {
        Some(state) => admin_of(&state, req.request(), scope).await,
        None => Err(ApiError::Admin(AdminFailure::unauthorized())),
    };
    admit(req, next, caller).await
}

async fn admin_of(
    state: &AppState,
    req: &HttpRequest,
    scope: &'static str,
) -> Result<Admin, ApiError> {
    let secret = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or_else(AdminFailure::unauthorized)?;
    let ip = client_ip(req, &state.trusted_proxies);
    let caller = state
        .admins
        .authenticate(secret, ip)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Unauthorized => AdminFailure::unauthorized(),
            Refusal::Unavailable(err) => {
                AdminFailure::unavailable(&state.metrics, "admin-authenticate", &err)
            }
        })?;
    // `a|b`: either admits the call; the refusal names the first.
    if !scope.split('|').any(|one| caller.scopes.allows(one)) {
        let first = scope.split('|').next().unwrap_or(scope);
        return Err(AdminFailure::forbidden(first).into());
    }
    Ok(Admin(caller.actor, caller.scopes))
}

/// The credential of `Authorization: Bearer <secret>`; the scheme is case-insensitive (RFC 9110).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, secret) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

/// The guard of `Access::User` routes.
pub async fn require_user(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let caller = match req.app_data::<Data<AppState>>() {
        Some(state) => state.jwt.authenticate(req.request()).map(User),
        None => Err(ApiError::MissingBearer),
    };
    admit(req, next, caller).await
}

/// Lets the request through with its caller in the extensions, or answers the refusal (with
/// no app state to authenticate against, the guards fail closed).
async fn admit<C: 'static>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    caller: Result<C, ApiError>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
        Err(refused) => Ok(req.into_response(refused.error_response())),
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admin = req.extensions().get::<Admin>().cloned();
        ready(admin.ok_or_else(|| ApiError::Admin(AdminFailure::unauthorized())))
    }
}

impl FromRequest for User {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = req.extensions().get::<User>().copied();
        ready(user.ok_or(ApiError::MissingBearer))
    }
}
