//! `/api/admin/*`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::super::schemas;
use super::describe::{path_parameter, query, string, Describe};
use serde_json::json;
use utoipa::openapi::path::Parameter;

use super::common::{
    admin, admin_body, no_token, token_id, ACCESS_CODES, INVALID_ACCESS, INVALID_QUOTA, QUOTA_CODES,
};
use crate::domain::{Metadata, UserId};
use crate::http::admin::views::{
    AdminVerifyView, BansView, CreatedView, EventsView, LiftedView, MetadataView, RevokedView,
    TokenPage, TokenView,
};
use crate::http::admin::{CreateTokenRequest, VerifyRequest};

/// `meta[<key>]=<value>` (`meta.<key>=<value>` is the same): the tokens whose metadata value
/// at `key` is `value` (strings bare, numbers as written, `true`/`false`/`null` as words).
fn metadata_filter() -> Parameter {
    use utoipa::openapi::path::ParameterStyle;
    let values = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(string()))
        .max_properties(Some(1));
    let mut parameter = query(
        "meta",
        false,
        "Filter on one metadata key: `meta[plan]=pro` (or `meta.plan=pro`) lists the tokens \
         whose metadata `plan` is `pro`.",
        values.into(),
    );
    parameter.style = Some(ParameterStyle::DeepObject);
    parameter.explode = Some(true);
    parameter
}

fn invalid_metadata(d: Describe) -> Describe {
    d.problem(
        422,
        "Metadata that breaks a rule, naming the key.",
        &["invalid_metadata"],
    )
}

pub fn admin_create(d: Describe) -> Operation {
    let body = d.components.of::<CreateTokenRequest>();
    let created = d.components.of::<CreatedView>();
    let id = [("path.id", "$response.body#/token/id")];
    let key = json!({"key": "$response.body#/rawApiKey"});
    let verify = [
        ("header.x-api-key", "$response.body#/rawApiKey"),
        ("query.privilege", "$response.body#/token/privilege"),
    ];
    let d = admin_body(admin(d), body)
        .json(201, "Created: the raw key is shown here once.", created)
        .problem(
            409,
            "The owner holds the most valid tokens allowed.",
            &["token_limit"],
        )
        .link(201, "getToken", &id, None)
        .link(201, "listTokenEvents", &id, None)
        .link(201, "patchTokenMetadata", &id, None)
        .link(201, "replaceTokenMetadata", &id, None)
        .link(201, "revokeToken", &id, None)
        .link(201, "verifyKeyDetailed", &[], Some(key))
        .link(201, "verifyKey", &verify, None)
        .link(201, "changeTokenAccess", &id, None);
    invalid_metadata(d)
        .problem(422, INVALID_ACCESS, ACCESS_CODES)
        .problem(422, INVALID_QUOTA, QUOTA_CODES)
        .build()
}

pub fn admin_get(d: Describe) -> Operation {
    let view = d.components.of::<TokenView>();
    on_one_token(d, "The token.", view)
}

pub fn admin_patch_metadata(d: Describe) -> Operation {
    admin_metadata(d, "A merge-patch: keys set, `null` removes a key.")
}

pub fn admin_replace_metadata(d: Describe) -> Operation {
    admin_metadata(d, "The whole metadata.")
}

fn admin_metadata(d: Describe, body: &str) -> Operation {
    let object = d.components.of::<Metadata>();
    let view = d.components.of::<MetadataView>();
    let d = admin_body(admin(d.explain(body)).parameter(token_id()), object).json(
        200,
        "The resulting metadata.",
        view,
    );
    invalid_metadata(no_token(d)).build()
}

pub fn admin_revoke(d: Describe) -> Operation {
    let view = d.components.of::<RevokedView>();
    on_one_token(d, "Revoked (idempotent).", view)
}

pub fn admin_events(d: Describe) -> Operation {
    let view = d.components.of::<EventsView>();
    on_one_token(d, "The audit log, oldest first.", view)
}

/// An admin route on `/tokens/{id}…` without a body: `view`, or 404.
fn on_one_token(d: Describe, answer: &str, view: RefOr<Schema>) -> Operation {
    no_token(admin(d).parameter(token_id()).json(200, answer, view)).build()
}

pub fn admin_list(d: Describe) -> Operation {
    let user = d.components.of::<UserId>();
    let page = d.components.of::<TokenPage>();
    let status = schemas::one_of_strings(["valid", "invalid", "all"]);
    let limit = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(crate::http::admin::MAX_PAGE))
        .into();
    admin(d)
        .parameter(path_parameter("user_id", "The owner.", user))
        .parameter(query(
            "status",
            false,
            "Which tokens (default all).",
            status,
        ))
        .parameter(query("limit", false, "Page size (default 50).", limit))
        .parameter(query(
            "cursor",
            false,
            "The `nextCursor` of the previous page.",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                    utoipa::openapi::schema::KnownFormat::Int64,
                )))
                .minimum(Some(0))
                .into(),
        ))
        .parameter(metadata_filter())
        .json(200, "One page, newest first.", page)
        .problem(
            400,
            "A bad owner or query parameter, naming it.",
            &["bad_request"],
        )
        .problem(
            422,
            "A metadata filter on an invalid key.",
            &["invalid_metadata"],
        )
        .build()
}

pub fn admin_verify(d: Describe) -> Operation {
    let body = d.components.of::<VerifyRequest>();
    let view = d.components.of::<AdminVerifyView>();
    admin_body(admin(d), body)
        .json(
            200,
            "Always 200 for a well-formed request: `code` says what was found.",
            view,
        )
        .problem(
            422,
            "A named limit that neither the token nor its owner has.",
            &["unknown_ratelimit"],
        )
        .build()
}

pub fn admin_bans(d: Describe) -> Operation {
    let view = d.components.of::<BansView>();
    admin(d).json(200, "Every stored ban.", view).build()
}

pub fn admin_lift(d: Describe) -> Operation {
    let view = d.components.of::<LiftedView>();
    admin(d)
        .parameter(path_parameter(
            "limiter",
            "The limiter that banned.",
            string(),
        ))
        .parameter(path_parameter(
            "key",
            "The banned key (an IP or a key digest).",
            string(),
        ))
        .json(
            200,
            "Lifted here at once, everywhere within `rate_limiters.ban_refresh`.",
            view,
        )
        .problem(404, "No such ban.", &["not_found"])
        .build()
}
