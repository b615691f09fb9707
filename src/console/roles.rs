//! The roles (`roles.read`): each with its permissions and how many valid tokens hold it, as the
//! admin API lists them. (Changing a role stays with the admin API and the CLI for now.)

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::pages::{html, when, Layout};
use super::session::{forbidden, signed, unavailable};
use crate::http::AppState;

pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub permissions: String,
    pub tokens: u64,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/roles.html")]
pub struct RolesPage {
    pub layout: Layout,
    pub rows: Vec<RoleRow>,
}

pub async fn list(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("roles.read") {
        return forbidden(&signed, "roles.read");
    }
    let layout = Layout::signed("Roles", &signed, "/console/roles");
    let roles = match state.tokens.roles().await {
        Ok(roles) => roles,
        Err(err) => {
            tracing::error!(error = %err, "console: the roles could not be read");
            return unavailable(layout);
        }
    };
    let now = state.clock.now();
    let rows = roles
        .into_iter()
        .map(|role| RoleRow {
            name: role.name.as_str().to_owned(),
            description: role
                .description
                .as_ref()
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default(),
            permissions: role
                .permissions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            tokens: role.tokens,
            updated: when(role.updated_at, now),
        })
        .collect();
    html(StatusCode::OK, &RolesPage { layout, rows })
}
