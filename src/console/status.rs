//! The status page: the version, the store and Redis as `/ready` sees them, and the uses
//! counted but not yet written.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::pages::{html, when, Layout};
use super::session::signed;
use crate::http::AppState;

#[derive(Template)]
#[template(path = "console/status.html")]
pub struct StatusPage {
    pub layout: Layout,
    pub version: &'static str,
    pub store: &'static str,
    pub database: &'static str,
    pub redis: String,
    pub pending_uses: u64,
    pub now: String,
}

pub async fn show(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let database = match state.tokens.ping().await {
        Ok(()) => "up",
        Err(_) => "down",
    };
    let redis = match &state.redis {
        None => "not configured (limits and credits are per instance)".to_owned(),
        Some(redis) if redis.is_up() => "up".to_owned(),
        Some(_) => "down".to_owned(),
    };
    let now = state.clock.now();
    let page = StatusPage {
        layout: Layout::signed("Status", &signed, "/console/status"),
        version: env!("CARGO_PKG_VERSION"),
        store: state.store_kind,
        database,
        redis,
        pending_uses: state.tokens.unwritten_uses(),
        now: when(now, now),
    };
    html(StatusCode::OK, &page)
}
