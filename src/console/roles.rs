//! The roles (`roles.read`): each with its permissions and how many valid tokens hold it, as the
//! admin API lists them; with `roles.write`, a new role, grants added to or removed from one,
//! and a role deleted (taken from the tokens holding it only when asked), through the admin
//! API's own calls.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use super::form::{self, FormErrors, Kept};
use super::pages::{html, when, Layout};
use super::session::{forbidden, scoped_form, signed, store_down, unavailable};
use crate::admins::Signed;
use crate::http::{AdminFailure, AppState};

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
    pub can_write: bool,
    pub errors: FormErrors,
    pub notice: Option<&'static str>,
    /// The new role form as typed, when refused.
    pub kept: Kept,
}

async fn page(
    state: &AppState,
    signed: &Signed,
    (errors, kept): (FormErrors, Kept),
    notice: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
    let layout = Layout::signed("Roles", signed, "/console/roles");
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
    let page = RolesPage {
        layout,
        rows,
        can_write: signed.caller.scopes.allows("roles.write"),
        errors,
        notice,
        kept,
    };
    html(status, &page)
}

pub async fn list(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("roles.read") {
        return forbidden(&signed, "roles.read");
    }
    let notice = match req.query_string() {
        "done=created" => Some("The role is created: give it to tokens on their pages."),
        "done=changed" => Some("The role is changed: every token holding it has it at once."),
        "done=deleted" => Some("The role is deleted."),
        _ => None,
    };
    let nothing = (FormErrors::default(), Kept::default());
    page(&state, &signed, nothing, notice, StatusCode::OK).await
}

fn done(what: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/console/roles?done={what}")))
        .finish()
}

/// The answer to a refused form: the API's message next to the field (`fields`), what was
/// typed kept; a store that is down is a 503.
async fn refused(
    state: &AppState,
    signed: &Signed,
    failure: AdminFailure,
    (fields, kept): (&[(&str, &'static str)], Kept),
) -> HttpResponse {
    if failure.status == StatusCode::SERVICE_UNAVAILABLE {
        return store_down(signed, "/console/roles");
    }
    let status = failure.status;
    let errors = FormErrors::refused(failure, fields);
    page(state, signed, (errors, kept), None, status).await
}

/// The new role form's fields, the API's and the form's.
const ROLE_FIELDS: [(&str, &str); 3] = [
    ("name", "name"),
    ("description", "description"),
    ("permissions", "permissions"),
];

/// A JSON object of the admin API, as the request type it is the body of.
fn request<T: serde::de::DeserializeOwned>(body: Map<String, Value>) -> Result<T, AdminFailure> {
    serde_json::from_value(Value::Object(body))
        .map_err(|err| AdminFailure::bad_request(err.to_string()))
}

/// `POST /console/roles`: `name`, `description`, `permissions` (comma-separated).
pub async fn create(req: HttpRequest, state: Data<AppState>, body: Bytes) -> HttpResponse {
    let (signed, fields) = match scoped_form(&req, &state, &body, "roles.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let text = |field: &str| fields.get(field).map_or("", |value| value.trim());
    let mut body = Map::new();
    body.insert("name".into(), json!(text("name")));
    if !text("description").is_empty() {
        body.insert("description".into(), json!(text("description")));
    }
    body.insert("permissions".into(), json!(form::list(text("permissions"))));
    let actor = signed.caller.actor.clone();
    let created = match request(body) {
        Ok(request) => crate::http::create_role_as(&state, actor, &request).await,
        Err(failure) => Err(failure),
    };
    match created {
        Ok(_) => done("created"),
        Err(failure) => {
            let kept = Kept::of(&fields, &["name", "description", "permissions"]);
            refused(&state, &signed, failure, (&ROLE_FIELDS, kept)).await
        }
    }
}

/// A refusal about the role `name`, at the top of the page (its row has no room for it).
fn about(name: &str, mut failure: AdminFailure) -> AdminFailure {
    failure.message = format!("Role {name:?}: {}", failure.message);
    failure.field = None;
    failure
}

/// `POST /console/roles/{name}/change`: grants to `add` and to `remove` (comma-separated).
pub async fn change(
    req: HttpRequest,
    state: Data<AppState>,
    name: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (signed, fields) = match scoped_form(&req, &state, &body, "roles.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let text = |field: &str| fields.get(field).map_or("", |value| value.trim());
    let mut body = Map::new();
    body.insert("add".into(), json!(form::list(text("add"))));
    body.insert("remove".into(), json!(form::list(text("remove"))));
    let actor = signed.caller.actor.clone();
    let changed = match request(body) {
        Ok(request) => crate::http::update_role_as(&state, actor, &name, &request).await,
        Err(failure) => Err(failure),
    };
    match changed {
        Ok(_) => done("changed"),
        Err(failure) => {
            let failure = about(&name, failure);
            refused(&state, &signed, failure, (&[], Kept::default())).await
        }
    }
}

/// `POST /console/roles/{name}/delete`: refused while valid tokens hold it, unless `force=yes`
/// (the checkbox "take it from the tokens holding it").
pub async fn delete(
    req: HttpRequest,
    state: Data<AppState>,
    name: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (signed, fields) = match scoped_form(&req, &state, &body, "roles.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let force = fields.get("force").map(String::as_str) == Some("yes");
    let actor = signed.caller.actor.clone();
    match crate::http::delete_role_as(&state, actor, &name, force).await {
        Ok(_) => done("deleted"),
        Err(mut failure) => {
            if failure.code == "role_in_use" {
                failure.message = failure.message.replace(
                    "delete with ?force=true to take it from them",
                    "tick \"take it from the tokens holding it\" to delete it anyway",
                );
            }
            let failure = about(&name, failure);
            refused(&state, &signed, failure, (&[], Kept::default())).await
        }
    }
}
