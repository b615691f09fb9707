//! `/api/admin/roles` and `/api/admin/tokens/{id}/access` (SPEC B4).

use utoipa::openapi::path::Operation;

use super::super::schemas;
use super::common::{admin, admin_body, no_token, token_id, ACCESS_CODES, INVALID_ACCESS};
use super::describe::{path_parameter, query, Describe};
use crate::http::admin::views::{RoleDeletedView, RoleView, RolesView, TokenView};
use crate::http::admin::{AccessRequest, CreateRoleRequest, UpdateRoleRequest};

fn role_name() -> utoipa::openapi::path::Parameter {
    path_parameter(
        "name",
        "The role's name (any other text names no role: 404).",
        super::describe::string(),
    )
}

fn no_role(d: Describe) -> Describe {
    d.problem(404, "No role with that name.", &["not_found"])
}

pub fn admin_create_role(d: Describe) -> Operation {
    let body = d.components.of::<CreateRoleRequest>();
    let view = d.components.of::<RoleView>();
    let name = [("path.name", "$response.body#/name")];
    admin_body(admin(d), body)
        .json(201, "Created.", view)
        .problem(
            409,
            "A role has that name, or there are 1,000 roles.",
            &["role_exists", "role_limit"],
        )
        .problem(
            422,
            "An invalid name, description or permission, or too many permissions, naming it.",
            &[
                "invalid_role",
                "invalid_description",
                "invalid_permission",
                "too_many_permissions",
            ],
        )
        .link(201, "getRole", &name, None)
        .link(201, "updateRole", &name, None)
        .link(201, "deleteRole", &name, None)
        .build()
}

pub fn admin_roles(d: Describe) -> Operation {
    let view = d.components.of::<RolesView>();
    admin(d)
        .json(
            200,
            "Every role, by name, with how many valid tokens hold it.",
            view,
        )
        .build()
}

pub fn admin_get_role(d: Describe) -> Operation {
    let view = d.components.of::<RoleView>();
    no_role(admin(d).parameter(role_name()).json(200, "The role.", view)).build()
}

pub fn admin_update_role(d: Describe) -> Operation {
    let body = d.components.of::<UpdateRoleRequest>();
    let view = d.components.of::<RoleView>();
    let d = admin_body(
        admin(d.explain("Every token holding the role sees the change at its next verification.")),
        body,
    )
    .parameter(role_name())
    .json(200, "The role as it is now.", view)
    .problem(
        422,
        "An invalid description or permission, or more than 1,000 permissions, naming it.",
        &[
            "invalid_description",
            "invalid_permission",
            "too_many_permissions",
        ],
    );
    no_role(d).build()
}

pub fn admin_delete_role(d: Describe) -> Operation {
    let view = d.components.of::<RoleDeletedView>();
    let d = admin(d)
        .parameter(role_name())
        .parameter(query(
            "force",
            false,
            "Delete even while valid tokens hold it (it is taken from them).",
            schemas::one_of_strings(["true", "false"]),
        ))
        .json(200, "Deleted.", view)
        .problem(
            400,
            "`force` is neither `true` nor `false`.",
            &["bad_request"],
        )
        .problem(
            409,
            "Valid tokens hold the role and `force` is not `true`.",
            &["role_in_use"],
        );
    no_role(d).build()
}

pub fn admin_access(d: Describe) -> Operation {
    let body = d.components.of::<AccessRequest>();
    let view = d.components.of::<TokenView>();
    let d = admin_body(
        admin(d.explain(
            "Adds and removes roles and direct grants; what is both added and removed is removed.",
        )),
        body,
    )
    .parameter(token_id())
    .json(200, "The token as it is now.", view)
    .problem(422, INVALID_ACCESS, ACCESS_CODES);
    no_token(d).build()
}
