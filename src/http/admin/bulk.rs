//! `POST /api/admin/tokens/bulk` (SPEC B10): revoke, disable or enable up to 1,000 tokens, or
//! every valid token of one owner, with a result per token. The route admits a credential
//! holding `tokens.revoke` or `tokens.disable`; the operation asked then needs its own.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body;
use crate::domain::UserId;
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};
use crate::service::{BulkTarget, BULK_MAX};
use crate::store::BulkOp;

/// What to do to each token.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BulkOperation {
    Revoke,
    Disable,
    Enable,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct BulkRequest {
    op: BulkOperation,
    /// 1 to 1,000 token ids, no repeats; or give `userId`.
    #[schema(min_items = 1, max_items = 1000)]
    ids: Option<Vec<u64>>,
    /// Every valid token of this owner; or give `ids`.
    #[schema(value_type = Option<UserId>)]
    user_id: Option<UserId>,
    /// Why (1–200 characters), kept with a disabled state and in each audit event.
    #[schema(min_length = 1, max_length = 200)]
    reason: Option<String>,
}

/// One token's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResultView {
    pub id: u64,
    /// The token now is as asked (revoked, disabled or enabled; it may already have been).
    pub ok: bool,
    /// Why not, when not `ok`: `not_found`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkView {
    /// In the order of `ids` (for `userId`: oldest token first).
    pub results: Vec<BulkResultView>,
}

fn target(request: &BulkRequest) -> Result<BulkTarget, AdminFailure> {
    let ids = match (&request.ids, request.user_id) {
        (Some(_), Some(_)) => {
            return Err(AdminFailure::bad_request("give ids or userId, not both").field("userId"))
        }
        (None, None) => return Err(AdminFailure::bad_request("give ids or userId").field("ids")),
        (None, Some(user)) => return Ok(BulkTarget::Owner(user)),
        (Some(ids), None) => ids,
    };
    let invalid =
        |message: String, field: String| AdminFailure::invalid("invalid_ids", message).field(field);
    if ids.is_empty() || ids.len() > BULK_MAX {
        let message = format!("ids names 1 to {BULK_MAX} tokens");
        return Err(invalid(message, "ids".into()));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(index) = ids.iter().position(|id| !seen.insert(*id)) {
        let message = format!("token {} is named twice", ids[index]);
        return Err(invalid(message, format!("ids[{index}]")));
    }
    Ok(BulkTarget::Ids(ids.clone()))
}

/// `POST /api/admin/tokens/bulk`: 200 `{results: [{id, ok, code?}]}`.
pub async fn bulk(
    Admin(admin, scopes): Admin,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: BulkRequest = body(&req, payload).await?;
    let (op, scope) = match request.op {
        BulkOperation::Revoke => (BulkOp::Revoke, "tokens.revoke"),
        BulkOperation::Disable => (BulkOp::Disable, "tokens.disable"),
        BulkOperation::Enable => (BulkOp::Enable, "tokens.disable"),
    };
    if !scopes.allows(scope) {
        return Err(AdminFailure::forbidden(scope).into());
    }
    let target = target(&request)?;
    let reason = super::reason(request.reason.as_deref())?;
    let done = state
        .tokens
        .acting_as(admin)
        .bulk(op, target, reason)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-bulk", &err))?;
    let results = done
        .into_iter()
        .map(|(id, found)| BulkResultView {
            id,
            ok: found,
            code: (!found).then_some("not_found"),
        })
        .collect();
    Ok(json(StatusCode::OK, &BulkView { results }))
}
