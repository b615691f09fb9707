//! What every admin operation shares: the credential and the store's failure, the body's
//! failures, the token id in the path, and the 422 codes of access and quota lists. The admin,
//! quota and roles rooms import this; none imports another.

use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::super::context::ADMIN_SCHEME;
use super::describe::{path_parameter, Describe};
use crate::http::body::ADMIN_BODY_LIMIT;

pub(super) fn admin(d: Describe) -> Describe {
    d.security(ADMIN_SCHEME)
        .problem(401, "No or a wrong admin credential.", &["unauthorized"])
        .problem(
            403,
            "The credential does not hold the route's scope (`x-required-scope`), or scopes the \
             call would hand out; `missingScope` names the first.",
            &["forbidden"],
        )
        .problem(503, "The store could not answer.", &["unavailable"])
}

/// What every admin route with a JSON body may answer about the body.
pub(super) fn admin_body(d: Describe, schema: RefOr<Schema>) -> Describe {
    body_of(d, schema, true)
}

/// A JSON body, required or not, and what the route may answer about it.
pub(super) fn body_of(d: Describe, schema: RefOr<Schema>, required: bool) -> Describe {
    d.body(schema, required)
        .problem(
            400,
            "A malformed body, naming the field when there is one.",
            &["bad_request"],
        )
        .problem(
            408,
            "The body did not arrive in time.",
            &["request_timeout"],
        )
        .problem(
            413,
            &format!("The body is over {} KiB.", ADMIN_BODY_LIMIT / 1024),
            &["payload_too_large"],
        )
        .problem(415, "Not `application/json`.", &["unsupported_media_type"])
}

pub(super) fn token_id() -> Parameter {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
    let id = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .into();
    path_parameter(
        "id",
        "The token id, as `TokenView.id` (any other text names no token: 404).",
        id,
    )
}

pub(super) fn no_token(d: Describe) -> Describe {
    d.problem(404, "No token with that id.", &["not_found"])
}

/// What a limit or a credits change that breaks a rule answers.
pub(super) const INVALID_QUOTA: &str =
    "A limit or credits that break a rule (range, count, duplicate name), naming the field.";

/// The 422 codes of limits and credits.
pub(super) const QUOTA_CODES: &[&str] = &["invalid_ratelimit", "invalid_credits"];

pub(super) const INVALID_ACCESS: &str =
    "An invalid role name or permission, an unknown role, or a list over its limit, naming it.";

/// The 422 codes of role and permission lists.
pub(super) const ACCESS_CODES: &[&str] = &[
    "invalid_role",
    "invalid_permission",
    "unknown_role",
    "too_many_roles",
    "too_many_permissions",
];
