//! Request lists of role names and grants, parsed with 422s that name the element at fault,
//! and `POST /api/admin/tokens/{id}/access`.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::views::TokenView;
use super::{body, token_id};
use crate::domain::access::{limits, AccessChange, AccessLimit, Grant, RoleName};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{ApiError, AppState};
use crate::store::AccessOutcome;

/// Role names from `field`, each checked (422 `invalid_role` naming `field[i]`).
pub(super) fn role_names(
    field: &str,
    texts: &[String],
) -> Result<BTreeSet<RoleName>, AdminFailure> {
    if texts.len() > limits::TOKEN_ROLES {
        return Err(limit(AccessLimit::Roles, field));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            RoleName::parse(text).map_err(|err| {
                AdminFailure::invalid("invalid_role", err.to_string())
                    .field(format!("{field}[{i}]"))
            })
        })
        .collect()
}

/// Grants from `field` (a permission, `prefix.*` or `*`), at most `most` of them.
pub(super) fn grants(
    field: &str,
    texts: &[String],
    most: usize,
    over: AccessLimit,
) -> Result<BTreeSet<Grant>, AdminFailure> {
    if texts.len() > most {
        return Err(limit(over, field));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Grant::parse(text).map_err(|err| {
                AdminFailure::invalid("invalid_permission", err.to_string())
                    .field(format!("{field}[{i}]"))
            })
        })
        .collect()
}

/// 422 for a limit of SPEC B4.
pub(super) fn limit(limit: AccessLimit, field: &str) -> AdminFailure {
    let code = match limit {
        AccessLimit::Roles => "too_many_roles",
        AccessLimit::Permissions | AccessLimit::RolePermissions => "too_many_permissions",
        AccessLimit::RoleCount => "role_limit",
    };
    AdminFailure::invalid(code, limit.to_string()).field(field)
}

/// 422 naming the unknown role where the request gave it.
pub(super) fn unknown_role(role: &RoleName, field: &str, texts: &[String]) -> AdminFailure {
    let at = texts
        .iter()
        .position(|text| text == role.as_str())
        .map_or_else(|| field.to_owned(), |i| format!("{field}[{i}]"));
    AdminFailure::invalid("unknown_role", format!("no role named {:?}", role.as_str())).field(at)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AccessRequest {
    /// Roles to give (each must exist).
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::role_names)]
    add_roles: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::role_names)]
    remove_roles: Vec<String>,
    /// Direct grants to give: a permission, `prefix.*` or `*`.
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::grants)]
    add_permissions: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::grants)]
    remove_permissions: Vec<String>,
}

/// `POST /api/admin/tokens/{id}/access`: 200 with the token as it is now.
pub async fn change(
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
    crate::http::Admin(admin, _): crate::http::Admin,
) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let request: AccessRequest = body(&req, payload).await?;
    let record = change_as(&state, admin, id, &request).await?;
    Ok(json(
        StatusCode::OK,
        &TokenView::new(record, state.clock.now()),
    ))
}

/// A change of token `id`'s roles and direct grants by `admin` (the admin API's and the
/// console's): the token as it is after it; a refusal names the field at fault.
pub(crate) async fn change_as(
    state: &AppState,
    admin: crate::domain::Actor,
    id: u64,
    request: &AccessRequest,
) -> Result<crate::domain::record::TokenRecord, AdminFailure> {
    let most = limits::TOKEN_PERMISSIONS;
    let change = AccessChange {
        add_roles: role_names("addRoles", &request.add_roles)?,
        remove_roles: role_names("removeRoles", &request.remove_roles)?,
        add_permissions: grants(
            "addPermissions",
            &request.add_permissions,
            most,
            AccessLimit::Permissions,
        )?,
        remove_permissions: grants(
            "removePermissions",
            &request.remove_permissions,
            most,
            AccessLimit::Permissions,
        )?,
    };
    let tokens = state.tokens.acting_as(admin);
    let outcome = tokens
        .change_access(id, change)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-access", &err))?;
    match outcome {
        AccessOutcome::Updated(record) => Ok(*record),
        AccessOutcome::NotFound => Err(AdminFailure::no_token(id)),
        AccessOutcome::UnknownRole(role) => {
            Err(unknown_role(&role, "addRoles", &request.add_roles))
        }
        AccessOutcome::Limit(AccessLimit::Roles) => Err(limit(AccessLimit::Roles, "addRoles")),
        AccessOutcome::Limit(other) => Err(limit(other, "addPermissions")),
    }
}
