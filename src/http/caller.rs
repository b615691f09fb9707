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

use super::error::AdminFailure;
use super::{ApiError, AppState};
use crate::domain::UserId;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, verification, the 404 fallback).
    Public,
    /// A signed-in user, through the BFF: `Authorization: Bearer <access token>` (SPEC A7).
    User,
    /// A trusted server or operator: `Authorization: Bearer <admin secret>` (SPEC B2).
    Admin,
}

/// The authenticated admin's configured name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub String);

/// The authenticated user, the `sub` of their access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User(pub UserId);

/// The guard of `Access::Admin` routes.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    guard(
        req,
        next,
        ApiError::Admin(AdminFailure::unauthorized()),
        |state, req| {
            state
                .admins
                .authenticate(req)
                .map(Admin)
                .map_err(ApiError::Admin)
        },
    )
    .await
}

/// The guard of `Access::User` routes.
pub async fn require_user(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    guard(req, next, ApiError::MissingBearer, |state, req| {
        state.jwt.authenticate(req).map(User)
    })
    .await
}

/// Lets the request through with its caller in the extensions, or answers the refusal
/// (`without_state` when the app has no state to authenticate against: fail closed).
async fn guard<C: 'static>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    without_state: ApiError,
    authenticate: impl FnOnce(&AppState, &HttpRequest) -> Result<C, ApiError>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let caller = match req.app_data::<Data<AppState>>() {
        Some(state) => authenticate(state, req.request()),
        None => Err(without_state),
    };
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
