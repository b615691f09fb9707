//! `GET /api/admin/bans`, `DELETE /api/admin/bans/{limiter}/{key}`.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use super::views::{BanView, BansView, LiftedView};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::Admin;
use crate::http::{ApiError, AppState};

/// Every stored ban.
pub async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let bans = state
        .limits
        .stored_bans()
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-bans", &err))?;
    let bans: Vec<BanView> = bans.into_iter().map(BanView::from).collect();
    Ok(json(StatusCode::OK, &BansView { bans }))
}

/// Lifts one ban here at once and everywhere within `rate_limiters.ban_refresh`.
pub async fn lift(
    Admin(admin, _): Admin,
    path: Path<(String, String)>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (limiter, key) = path.into_inner();
    let lifted = state
        .limits
        .lift(&limiter, &key, admin)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-lift-ban", &err))?;
    if !lifted {
        let message = format!("no ban of {key:?} by {limiter:?}");
        return Err(AdminFailure::not_found(message).into());
    }
    let body = LiftedView {
        lifted: true,
        limiter,
        key,
    };
    Ok(json(StatusCode::OK, &body))
}
