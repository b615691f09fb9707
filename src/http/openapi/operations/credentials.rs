//! `/api/admin/credentials` and `/api/admin/audit` (SPEC B9).

use utoipa::openapi::path::{Operation, Parameter};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::RefOr;

use super::super::schemas;
use super::common::{admin, admin_body};
use super::describe::{path_parameter, query, string, Describe};
use crate::http::admin::views::{
    AuditPageView, CredentialCreatedView, CredentialView, CredentialsView,
};
use crate::http::admin::{CreateCredentialRequest, UpdateCredentialRequest, MAX_PAGE};

const INVALID: &str = "An invalid name, scope, preset or expiry, naming the field (`scopes[1]`).";
const INVALID_CODES: &[&str] = &["invalid_name", "invalid_scope", "invalid_expiry"];

fn int64() -> RefOr<utoipa::openapi::schema::Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .into()
}

fn credential_id() -> Parameter {
    path_parameter(
        "id",
        "The credential's id (anything else names no credential: 404).",
        int64(),
    )
}

fn no_credential(d: Describe) -> Describe {
    d.problem(404, "No credential with that id.", &["not_found"])
}

pub fn admin_create_credential(d: Describe) -> Operation {
    let body = d.components.of::<CreateCredentialRequest>();
    let view = d.components.of::<CredentialCreatedView>();
    let id = [("path.id", "$response.body#/id")];
    admin_body(
        admin(d.explain(
            "The caller must hold every scope it hands out (no escalation); 403 names the first \
             it lacks.",
        )),
        body,
    )
    .json(201, "Created; `secret` is shown here only.", view)
    .problem(422, INVALID, INVALID_CODES)
    .link(201, "getCredential", &id, None)
    .link(201, "revokeCredential", &id, None)
    .build()
}

pub fn admin_credentials(d: Describe) -> Operation {
    let view = d.components.of::<CredentialsView>();
    admin(d)
        .json(
            200,
            "Every credential, revoked ones included, oldest first.",
            view,
        )
        .build()
}

pub fn admin_get_credential(d: Describe) -> Operation {
    let view = d.components.of::<CredentialView>();
    no_credential(
        admin(d)
            .parameter(credential_id())
            .json(200, "The credential.", view),
    )
    .build()
}

pub fn admin_update_credential(d: Describe) -> Operation {
    let body = d.components.of::<UpdateCredentialRequest>();
    let view = d.components.of::<CredentialView>();
    let d = admin_body(
        admin(d.explain(
            "The caller must hold every scope the credential holds and every scope it is given.",
        )),
        body,
    )
    .parameter(credential_id())
    .json(200, "The credential as it is now.", view)
    .problem(
        409,
        "The credential is revoked (it stays as it was).",
        &["credential_revoked"],
    )
    .problem(422, INVALID, INVALID_CODES);
    no_credential(d).build()
}

pub fn admin_revoke_credential(d: Describe) -> Operation {
    let view = d.components.of::<CredentialView>();
    let d = admin(d.explain(
        "Refused at once on this instance and within 100 ms on the others (with Redis). The \
         credential stays readable, with `revokedAt`.",
    ))
    .parameter(credential_id())
    .json(200, "Revoked (or already revoked).", view);
    no_credential(d).build()
}

pub fn admin_audit(d: Describe) -> Operation {
    let page = d.components.of::<AuditPageView>();
    let limit = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .into();
    let time = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    };
    let kinds: Vec<&str> = crate::store::AuditKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    admin(d)
        .parameter(query(
            "actor",
            false,
            "`<type>` or `<type>:<id>`: `credential:7`, `user:42`, `config:ops`, `cli`, `system`.",
            string(),
        ))
        .parameter(query(
            "kind",
            false,
            "One event kind.",
            schemas::one_of_strings(kinds),
        ))
        .parameter(query("tokenId", false, "Events of this token.", int64()))
        .parameter(query(
            "userId",
            false,
            "Events of this owner's tokens and of its limits and credits.",
            int64(),
        ))
        .parameter(query(
            "since",
            false,
            "Events at or after this time.",
            time(),
        ))
        .parameter(query("until", false, "Events before this time.", time()))
        .parameter(query("limit", false, "Page size (default 50).", limit))
        .parameter(query(
            "cursor",
            false,
            "The `nextCursor` of the previous page.",
            int64(),
        ))
        .json(200, "One page, newest first.", page)
        .problem(400, "A bad query parameter, naming it.", &["bad_request"])
        .build()
}
