//! `POST /api/admin/verify`: verification with full detail for trusted callers.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body;
use super::views::{AdminVerifyView, VerifiedView};
use crate::domain::access::Query;
use crate::domain::Privilege;
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{ApiError, AppState};
use crate::service::VerifyCode;
use crate::telemetry::metrics::{VerifyResult, VerifyRoute};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The raw key.
    key: String,
    /// When given, a token of another privilege is `NOT_FOUND`.
    privilege: Option<Privilege>,
    /// When given, the token's IP restriction is checked against it.
    #[schema(schema_with = crate::http::openapi::schemas::optional_ip)]
    ip: Option<IpAddr>,
    /// Count this use (default true: a verification is a use).
    count: Option<bool>,
    /// A permission query (`a.read AND (b.* OR NOT c)`): failing it is
    /// `INSUFFICIENT_PERMISSIONS`, and not a use; a malformed one is a 400 naming the offset.
    #[schema(max_length = 1000)]
    permissions: Option<String>,
}

/// Always 200 for a well-formed, authenticated request: `{valid, code, …token, metadata}`.
pub async fn verify(
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: VerifyRequest = body(&req, payload).await?;
    let query = request
        .permissions
        .as_deref()
        .map(Query::parse)
        .transpose()
        .map_err(|err| AdminFailure::bad_request(err.to_string()).field("permissions"))?;
    let verification = state
        .tokens
        .verify_for_admin(
            &request.key,
            request.privilege,
            request.ip,
            request.count.unwrap_or(true),
            query.as_ref(),
        )
        .await
        .map_err(|err| {
            state
                .metrics
                .verification(VerifyRoute::Admin, VerifyResult::ServerError);
            AdminFailure::unavailable(&state.metrics, "admin-verify", &err)
        })?;
    let result = match verification.code {
        VerifyCode::Valid => VerifyResult::Valid,
        VerifyCode::NotFound => VerifyResult::InvalidKey,
        VerifyCode::Expired => VerifyResult::Expired,
        VerifyCode::IpNotAllowed => VerifyResult::InvalidHost,
        VerifyCode::InsufficientPermissions => VerifyResult::InsufficientPermissions,
    };
    state.metrics.verification(VerifyRoute::Admin, result);
    let token = verification.token.as_ref().map(|token| {
        let mut view = VerifiedView::new(token);
        if let Some(verified) = &verification.verified {
            view.usage_count = verified.usage_count;
            view.last_used = verified.last_used;
        }
        view
    });
    let answer = AdminVerifyView {
        valid: verification.code == VerifyCode::Valid,
        code: verification.code,
        token,
    };
    Ok(json(StatusCode::OK, &answer))
}
