//! `/api/admin/roles`: create, list, read, change and delete roles (SPEC B4).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer};

use super::access::{grants, limit};
use super::body;
use super::views::{RoleDeletedView, RoleView, RolesView};
use crate::domain::access::{
    limits, AccessLimit, NewRole, RoleChange, RoleDescription, RoleName, RoleRecord,
};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};
use crate::store::{RoleCreation, RoleDeletion, RoleUpdate};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRoleRequest {
    #[schema(schema_with = crate::http::openapi::schemas::role_name)]
    name: String,
    /// At most 200 characters.
    #[schema(max_length = 200)]
    description: Option<String>,
    /// What the role grants: permissions, `prefix.*` or `*` (at most 1,000).
    #[schema(schema_with = crate::http::openapi::schemas::grants)]
    permissions: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateRoleRequest {
    /// A new description; `null` removes it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    description: Option<Option<String>>,
    /// Grants to add.
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::grants)]
    add: Vec<String>,
    /// Grants to remove (removed when also added).
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::grants)]
    remove: Vec<String>,
}

/// A field that is present, `null` or not: `Some(None)` for `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn description(text: Option<&str>) -> Result<Option<RoleDescription>, AdminFailure> {
    text.map(|text| {
        RoleDescription::parse(text).map_err(|err| {
            AdminFailure::invalid("invalid_description", err.to_string()).field("description")
        })
    })
    .transpose()
}

/// A role name from the path; anything else names no role.
fn role_name(raw: &str) -> Result<RoleName, AdminFailure> {
    RoleName::parse(raw).map_err(|_| no_role(raw))
}

fn no_role(name: &str) -> AdminFailure {
    AdminFailure::not_found(format!("no role named {name:?}"))
}

fn unavailable(state: &AppState, err: &crate::store::StoreError) -> AdminFailure {
    AdminFailure::unavailable(&state.metrics, "admin-roles", err)
}

/// `POST /api/admin/roles`: 201 with the role.
pub async fn create(
    Admin(admin, _): Admin,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: CreateRoleRequest = body(&req, payload).await?;
    let role = create_as(&state, admin, &request).await?;
    Ok(json(StatusCode::CREATED, &RoleView::from(role)))
}

/// A new role by `admin` (the admin API's and the console's); a refusal names the field at
/// fault.
pub(crate) async fn create_as(
    state: &AppState,
    admin: crate::domain::Actor,
    request: &CreateRoleRequest,
) -> Result<RoleRecord, AdminFailure> {
    let name = RoleName::parse(&request.name)
        .map_err(|err| AdminFailure::invalid("invalid_role", err.to_string()).field("name"))?;
    let role = NewRole {
        name,
        description: description(request.description.as_deref())?,
        permissions: grants(
            "permissions",
            &request.permissions,
            limits::ROLE_PERMISSIONS,
            AccessLimit::RolePermissions,
        )?,
    };
    let created = state
        .tokens
        .acting_as(admin)
        .create_role(role)
        .await
        .map_err(|err| unavailable(state, &err))?;
    match created {
        RoleCreation::Created(role) => Ok(role),
        RoleCreation::Exists => Err(AdminFailure::new(
            StatusCode::CONFLICT,
            "role_exists",
            format!("a role named {:?} exists", request.name),
        )
        .field("name")),
        RoleCreation::LimitReached => Err(AdminFailure::new(
            StatusCode::CONFLICT,
            "role_limit",
            AccessLimit::RoleCount.to_string(),
        )),
    }
}

/// `GET /api/admin/roles`: every role, by name.
pub async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let roles = state
        .tokens
        .roles()
        .await
        .map_err(|err| unavailable(&state, &err))?;
    let body = RolesView {
        roles: roles.into_iter().map(RoleView::from).collect(),
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /api/admin/roles/{name}`.
pub async fn get(name: Path<String>, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let role = role_name(&name)?;
    let found = state
        .tokens
        .role(&role)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    match found {
        Some(role) => Ok(json(StatusCode::OK, &RoleView::from(role))),
        None => Err(no_role(&name).into()),
    }
}

/// `PATCH /api/admin/roles/{name}`: 200 with the role as it is now.
pub async fn update(
    Admin(admin, _): Admin,
    name: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: UpdateRoleRequest = body(&req, payload).await?;
    let role = update_as(&state, admin, &name, &request).await?;
    Ok(json(StatusCode::OK, &RoleView::from(role)))
}

/// A change of the role named `name` by `admin` (the admin API's and the console's): the
/// role as it is now; a refusal names the field at fault.
pub(crate) async fn update_as(
    state: &AppState,
    admin: crate::domain::Actor,
    name: &str,
    request: &UpdateRoleRequest,
) -> Result<RoleRecord, AdminFailure> {
    let role = role_name(name)?;
    let most = limits::ROLE_PERMISSIONS;
    let over = AccessLimit::RolePermissions;
    let change = RoleChange {
        description: match &request.description {
            None => None,
            Some(text) => Some(description(text.as_deref())?),
        },
        add: grants("add", &request.add, most, over)?,
        remove: grants("remove", &request.remove, most, over)?,
    };
    let updated = state
        .tokens
        .acting_as(admin)
        .update_role(&role, change)
        .await
        .map_err(|err| unavailable(state, &err))?;
    match updated {
        RoleUpdate::Updated(role) => Ok(role),
        RoleUpdate::NotFound => Err(no_role(name)),
        RoleUpdate::TooManyPermissions => Err(limit(over, "add")),
    }
}

/// `DELETE /api/admin/roles/{name}[?force=true]`: 409 `role_in_use` while valid tokens hold
/// it, unless forced.
pub async fn delete(
    Admin(admin, _): Admin,
    name: Path<String>,
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let force = force(req.query_string())?;
    let tokens = delete_as(&state, admin, &name, force).await?;
    let deleted = role_name(&name)?.as_str().to_owned();
    Ok(json(StatusCode::OK, &RoleDeletedView { deleted, tokens }))
}

/// A deletion of the role named `name` by `admin` (the admin API's and the console's): how
/// many tokens it was taken from; 409 `role_in_use` while valid tokens hold it, unless `force`.
pub(crate) async fn delete_as(
    state: &AppState,
    admin: crate::domain::Actor,
    name: &str,
    force: bool,
) -> Result<u64, AdminFailure> {
    let role = role_name(name)?;
    let deleted = state
        .tokens
        .acting_as(admin)
        .delete_role(&role, force)
        .await
        .map_err(|err| unavailable(state, &err))?;
    match deleted {
        RoleDeletion::Deleted { tokens } => Ok(tokens),
        RoleDeletion::NotFound => Err(no_role(name)),
        RoleDeletion::InUse { tokens } => Err(AdminFailure::new(
            StatusCode::CONFLICT,
            "role_in_use",
            format!("{tokens} valid token(s) hold this role; delete with ?force=true to take it from them"),
        )),
    }
}

/// The `force` query parameter: `true` or `false`, once; absent is `false`.
pub(super) fn force(query: &str) -> Result<bool, AdminFailure> {
    let bad = || AdminFailure::bad_request("force is true or false").field("force");
    let mut force = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "force" {
            if force.is_some() {
                return Err(bad());
            }
            force = Some(match value.as_ref() {
                "true" => true,
                "false" => false,
                _ => return Err(bad()),
            });
        }
    }
    Ok(force.unwrap_or(false))
}
