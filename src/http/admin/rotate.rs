//! `POST /api/admin/tokens/{id}/rotate[?force=true]` (SPEC B10): a new key with everything of
//! the old one; the old one keeps verifying for the grace, charging the new one's limits and
//! credits, then expires.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::roles::force;
use super::views::TokenView;
use super::{body, token_id};
use crate::envelope::{iso_time, Reason};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};
use crate::service::{GraceDecision, MAX_GRACE_MS};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateRequest {
    /// How long the old key keeps verifying, in ms (0 … 604800000, 7 days; default 0: it stops
    /// now). Never past the old key's own expiry.
    #[schema(minimum = 0, maximum = 604_800_000, example = 86_400_000)]
    grace: Option<i64>,
    /// Why (1–200 characters), kept in the audit log.
    #[schema(min_length = 1, max_length = 200)]
    reason: Option<String>,
}

/// The key that was rotated: until when it keeps verifying.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviousView {
    pub id: u64,
    #[serde(with = "iso_time")]
    pub grace_ends_at: DateTime<Utc>,
}

/// The new key, shown once, its token, and the old one's grace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedView {
    pub raw_api_key: String,
    pub raw_public_id: String,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    pub token: TokenView,
    pub previous: PreviousView,
}

fn conflict(code: &'static str, message: String) -> AdminFailure {
    AdminFailure::new(StatusCode::CONFLICT, code, message)
}

/// `POST /api/admin/tokens/{id}/rotate`: 201 with the new key.
pub async fn rotate(
    Admin(admin, _): Admin,
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let force = force(req.query_string())?;
    // The body is optional: none (or an empty one) means no grace and no reason.
    let headers = req.headers();
    let sent = headers.get("content-length").is_some_and(|len| len != "0")
        || headers.contains_key("transfer-encoding");
    let request: RotateRequest = match sent {
        true => body(&req, payload).await?,
        false => RotateRequest::default(),
    };
    let grace = request.grace.unwrap_or(0);
    let grace = u64::try_from(grace)
        .ok()
        .filter(|ms| *ms <= MAX_GRACE_MS)
        .ok_or_else(|| {
            let message = format!("grace is 0 to {MAX_GRACE_MS} ms (7 days)");
            AdminFailure::invalid("invalid_grace", message).field("grace")
        })?;
    let reason = super::reason(request.reason.as_deref())?;
    let decided = state
        .tokens
        .acting_as(admin)
        .rotate_with_grace(id, grace, force, reason)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-rotate", &err))?;
    let rotated = match decided {
        GraceDecision::Rotated(rotated) => rotated,
        GraceDecision::NotFound => return Err(AdminFailure::no_token(id).into()),
        GraceDecision::Revoked => {
            return Err(conflict("token_revoked", format!("token {id} is revoked")).into())
        }
        GraceDecision::Expired => {
            return Err(conflict("token_expired", format!("token {id} has expired")).into())
        }
        GraceDecision::InProgress { older, replaced_by } => {
            let message = match (older, replaced_by) {
                (_, Some(by)) => format!(
                    "token {id} is being replaced by token {by}, in its grace; rotate token {by}"
                ),
                (Some(older), None) => format!(
                    "token {id} replaced token {older}, whose grace still runs; \
                     rotate with ?force=true to end it now"
                ),
                (None, None) => format!("a rotation of token {id} is in progress"),
            };
            return Err(conflict("rotation_in_progress", message).into());
        }
        GraceDecision::LimitReached { limit } => {
            let message = Reason::TooManyTokens { limit }.as_str().into_owned();
            return Err(AdminFailure::token_limit(message).into());
        }
        GraceDecision::CreateFailed => {
            return Err(AdminFailure::store_down().into());
        }
    };
    let now = state.clock.now();
    let view = RotatedView {
        raw_api_key: rotated.raw_api_key,
        raw_public_id: rotated.raw_public_id,
        expires_at: rotated.new.expires_at,
        token: TokenView::new(rotated.new, now),
        previous: PreviousView {
            id: rotated.previous_id,
            grace_ends_at: rotated.grace_ends_at,
        },
    };
    Ok(json(StatusCode::CREATED, &view))
}
