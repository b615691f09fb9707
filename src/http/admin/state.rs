//! `PUT /api/admin/tokens/{id}/state` and `PUT /api/admin/users/{user_id}/state` (SPEC B10):
//! disable or enable a token, or every token of an owner, present and future. Idempotent.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{body, token_id, user_id};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};
use crate::store::StateChange;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateRequest {
    /// `false` disables, `true` enables.
    enabled: bool,
    /// Why (1–200 characters), kept with a disabled state and in the audit log.
    #[schema(min_length = 1, max_length = 200, example = "chargeback on invoice 42")]
    reason: Option<String>,
}

/// The state asked for, and whether this call changed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateView {
    pub enabled: bool,
    /// False when it already was in that state (nothing written).
    pub changed: bool,
}

fn change(request: &StateRequest) -> Result<StateChange, AdminFailure> {
    let reason = super::reason(request.reason.as_deref())?;
    Ok(StateChange {
        enabled: request.enabled,
        reason,
    })
}

fn unavailable(state: &AppState, err: &crate::store::StoreError) -> AdminFailure {
    AdminFailure::unavailable(&state.metrics, "admin-state", err)
}

/// `PUT /api/admin/tokens/{id}/state`: 200 `{enabled, changed}`, 404 for no token.
pub async fn put_token_state(
    Admin(admin, _): Admin,
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let request: StateRequest = body(&req, payload).await?;
    let change = change(&request)?;
    let changed = state
        .tokens
        .acting_as(admin)
        .set_token_state(id, &change)
        .await
        .map_err(|err| unavailable(&state, &err))?
        .ok_or_else(|| AdminFailure::no_token(id))?;
    let view = StateView {
        enabled: change.enabled,
        changed,
    };
    Ok(json(StatusCode::OK, &view))
}

/// `PUT /api/admin/users/{user_id}/state`: 200 `{enabled, changed}`.
pub async fn put_user_state(
    Admin(admin, _): Admin,
    user: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = user_id(&user)?;
    let request: StateRequest = body(&req, payload).await?;
    let change = change(&request)?;
    let changed = state
        .tokens
        .acting_as(admin)
        .set_owner_state(user, &change)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    let view = StateView {
        enabled: change.enabled,
        changed,
    };
    Ok(json(StatusCode::OK, &view))
}
