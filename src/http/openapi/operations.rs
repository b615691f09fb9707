//! One description per route of the table: its parameters, body and every status it answers,
//! each body built from the type the handler serializes.

use std::collections::BTreeMap;
use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;

use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, HeaderBuilder, RefOr, Required, ResponseBuilder};

use super::schemas::{self, Components};
use super::{DocContext, ADMIN_SCHEME, BFF_SCHEME};
use crate::domain::{Metadata, Privilege, UserId};
use crate::envelope::Reason;
use crate::http::admin::views::{
    AdminVerifyView, BansView, CreatedView, EventsView, LiftedView, MetadataView, RevokedView,
    TokenPage, TokenView,
};
use crate::http::admin::{CreateTokenRequest, VerifyRequest};
use crate::http::bff::{Action, NewTokenRequest, TokenActionRequest};
use crate::http::hmac_guard::refusal;
use crate::http::public::Readiness;
use crate::service::{
    CreatedToken, Message, MetadataSnapshot, RevokeData, RotatedToken, TokenList, VerifiedToken,
};

use serde_json::json;

const JSON: &str = "application/json";

/// One status of an operation: every body it can have (several become a `oneOf`).
struct Answer {
    description: String,
    content_type: &'static str,
    bodies: Vec<RefOr<Schema>>,
    headers: Vec<(&'static str, utoipa::openapi::Header)>,
    links: Vec<(String, Link)>,
}

/// An operation being described: its builder and the context it is described in.
pub struct Describe<'a> {
    pub components: &'a mut Components,
    pub ctx: &'a DocContext,
    op: OperationBuilder,
    answers: BTreeMap<u16, Answer>,
}

impl<'a> Describe<'a> {
    pub fn new(
        components: &'a mut Components,
        ctx: &'a DocContext,
        id: &str,
        tag: &str,
        summary: &str,
    ) -> Self {
        let op = OperationBuilder::new()
            .operation_id(Some(id))
            .tag(tag)
            .summary(Some(summary));
        Self {
            components,
            ctx,
            op,
            answers: BTreeMap::new(),
        }
    }

    /// Adds a possible answer; a second body for the same status joins the first.
    fn answer(
        mut self,
        status: u16,
        description: &str,
        content_type: &'static str,
        body: Option<RefOr<Schema>>,
    ) -> Self {
        let answer = self.answers.entry(status).or_insert_with(|| Answer {
            description: String::new(),
            content_type,
            bodies: Vec::new(),
            headers: Vec::new(),
            links: Vec::new(),
        });
        if !answer.description.is_empty() {
            answer.description.push(' ');
        }
        answer.description.push_str(description);
        answer.bodies.extend(body);
        self
    }

    fn json(self, status: u16, description: &str, schema: RefOr<Schema>) -> Self {
        self.answer(status, description, JSON, Some(schema))
    }

    fn text(self, status: u16, description: &str, schema: RefOr<Schema>) -> Self {
        self.answer(status, description, "text/plain", Some(schema))
    }

    fn empty(self, status: u16, description: &str) -> Self {
        self.answer(status, description, JSON, None)
    }

    /// The operation's description.
    fn explain(mut self, text: &str) -> Self {
        self.op = self.op.description(Some(text));
        self
    }

    fn parameter(mut self, parameter: Parameter) -> Self {
        self.op = self.op.parameter(parameter);
        self
    }

    fn body(mut self, schema: RefOr<Schema>, required: bool) -> Self {
        let required = if required {
            Required::True
        } else {
            Required::False
        };
        let body = RequestBodyBuilder::new()
            .required(Some(required))
            .content(JSON, Content::new(Some(schema)));
        self.op = self.op.request_body(Some(body.build()));
        self
    }

    fn security(mut self, scheme: &str) -> Self {
        self.op = self
            .op
            .security(SecurityRequirement::new(scheme, Vec::<String>::new()));
        self
    }

    /// 429 from an abuse limiter, with `Retry-After` (seconds, or `permanent` for a ban).
    fn too_many(self) -> Self {
        let retry_after = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "Seconds until the block ends, or `permanent` for a ban.",
            ))
            .build();
        let mut d = self.json(
            429,
            "Refused by a rate limiter.",
            schemas::too_many_requests(),
        );
        if let Some(answer) = d.answers.get_mut(&429) {
            answer.headers.push(("Retry-After", retry_after));
        }
        d
    }

    /// A link from the `status` answer to operation `to`: `parameters` are
    /// (`in.name`, runtime expression), `body` a request body of runtime expressions.
    fn link(
        mut self,
        status: u16,
        to: &str,
        parameters: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Self {
        let mut link = LinkBuilder::new().operation_id(to);
        for (name, value) in parameters {
            link = link.parameter(*name, *value);
        }
        let link = link.request_body(body).build();
        if let Some(answer) = self.answers.get_mut(&status) {
            answer.links.push((to.to_owned(), link));
        }
        self
    }

    pub fn build(self) -> Operation {
        let mut op = self.op;
        for (status, answer) in self.answers {
            let mut response = ResponseBuilder::new().description(answer.description);
            let mut bodies = answer.bodies;
            let body = match bodies.len() {
                0 => None,
                1 => bodies.pop(),
                _ => Some(
                    bodies
                        .into_iter()
                        .fold(AnyOfBuilder::new(), AnyOfBuilder::item)
                        .into(),
                ),
            };
            if let Some(body) = body {
                response = response.content(answer.content_type, Content::new(Some(body)));
            }
            for (name, header) in answer.headers {
                response = response.header(name, header);
            }
            for (name, link) in answer.links {
                response = response.link(name, link);
            }
            op = op.response(status.to_string(), response.build());
        }
        op.build()
    }
}

fn header(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn path_parameter(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn query(name: &str, required: bool, description: &str, schema: RefOr<Schema>) -> Parameter {
    let required = if required {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(required)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

// ---- public -------------------------------------------------------------------------------

pub fn verify(d: Describe) -> Operation {
    let privilege = d.components.of::<Privilege>();
    let data = d.components.of::<VerifiedToken>();
    let mut refused = vec![
        Reason::NoApiKey,
        Reason::InvalidKey,
        Reason::InvalidHost,
        Reason::TokenExpired,
        Reason::VerifyServerError,
    ];
    refused.extend(refusal::ALL.into_iter().map(Reason::Guard));
    d.parameter(header("x-api-key", "The raw API key."))
        .parameter(query(
            "privilege",
            true,
            "The privilege the key must have.",
            privilege,
        ))
        .parameter(header(
            "X-Client-Id",
            "HMAC guard (when configured): the client.",
        ))
        .parameter(header("X-Timestamp", "HMAC guard: Unix time in ms (or s)."))
        .parameter(header("X-Request-Id", "HMAC guard: used once."))
        .parameter(header(
            "X-Signature",
            "HMAC guard: hex HMAC-SHA256 of `clientId:timestamp:METHOD:path?query:requestId`.",
        ))
        .json(
            200,
            "The key is valid: this use is counted.",
            schemas::success(data),
        )
        .json(
            400,
            "The privilege is missing, repeated or unknown.",
            schemas::failure(&[Reason::BadRequest]),
        )
        .json(
            401,
            "Refused, with verify's (or the HMAC guard's) reason.",
            schemas::failure(&refused),
        )
        .too_many()
        .build()
}

pub fn health(d: Describe) -> Operation {
    d.text(
        200,
        "The process is alive.",
        schemas::one_of_strings(["OK"]),
    )
    .build()
}

pub fn health_head(d: Describe) -> Operation {
    d.empty(200, "The process is alive (no body).").build()
}

pub fn ready(d: Describe) -> Operation {
    let readiness = d.components.of::<Readiness>();
    d.json(200, "The database answers.", readiness.clone())
        .json(503, "The database does not answer.", readiness)
        .build()
}

pub fn ready_head(d: Describe) -> Operation {
    d.empty(200, "The database answers (no body).")
        .empty(503, "The database does not answer (no body).")
        .build()
}

pub fn openapi(d: Describe) -> Operation {
    let object = ObjectBuilder::new().schema_type(Type::Object).into();
    d.json(200, "This document (OpenAPI 3.1).", object).build()
}

pub fn metrics(d: Describe) -> Operation {
    d.text(200, "Prometheus text format 0.0.4.", string())
        .json(
            404,
            "Served on `metrics.address` instead of this listener.",
            schemas::error(&["The page you are looking for doesn't exists"]),
        )
        .build()
}

// ---- /api/manage/{action} -------------------------------------------------------------------

/// The description of one BFF action, at `/api/manage/<action>`.
pub fn manage(d: Describe, action: Action) -> Operation {
    let limit = d.ctx.token_limit;
    let manager = [
        Reason::InvalidIdentity,
        Reason::BadRequest,
        Reason::ManagerServerError,
    ];
    let with_manager = |more: &[Reason]| {
        let mut reasons = manager.to_vec();
        reasons.extend_from_slice(more);
        reasons
    };
    let d = d
        .security(BFF_SCHEME)
        .json(
            401,
            "No, a bad or an expired access token.",
            schemas::bearer_refused(),
        )
        .too_many();
    let d = if action == Action::ListMetadata {
        d
    } else {
        let d = match action {
            Action::NewToken => {
                let body = d.components.of::<NewTokenRequest>();
                d.body(body, true)
            }
            _ => {
                let body = d.components.of::<TokenActionRequest>();
                d.body(body, true)
            }
        };
        d.json(
            403,
            "Not `application/json`, or an empty body.",
            schemas::error(&["not allowed."]),
        )
        .json(
            408,
            "The body did not arrive in time.",
            schemas::error(&["Request timeout"]),
        )
        .json(
            413,
            "The body is over 1 KiB.",
            schemas::error(&["Payload too large"]),
        )
    };
    match action {
        Action::NewToken => {
            let data = d.components.of::<CreatedToken>();
            let refused = [
                Reason::BadRequest,
                Reason::ReservedPrefix,
                Reason::TooManyTokens { limit },
                Reason::ListServerError,
            ];
            d.json(
                201,
                "Created: the raw key is shown here once.",
                schemas::success(data),
            )
            .json(
                400,
                "Malformed, or refused with create's reason.",
                schemas::failure(&refused),
            )
            .link(
                201,
                "verify",
                &[("header.x-api-key", "$response.body#/data/rawApiKey")],
                None,
            )
        }
        Action::ListMetadata => {
            let data = d.components.of::<TokenList>();
            let mut d = d
                .json(
                    200,
                    "The owner's counts and valid tokens.",
                    schemas::success(data),
                )
                .json(
                    500,
                    "The store could not answer.",
                    schemas::failure(&[Reason::ListServerError]),
                );
            // The newest valid token addresses every action on one token.
            let first = json!({
                "tokenId": "$response.body#/data/tokenList/0/id",
                "publicIdentifier": "$response.body#/data/tokenList/0/public_identifier",
                "name": "$response.body#/data/tokenList/0/name",
            });
            for to in Action::ALL.into_iter().filter(|a| a.addresses_a_token()) {
                let id = format!("manage-{}", to.as_str());
                d = d.link(200, &id, &[], Some(first.clone()));
            }
            d
        }
        Action::Revoke => {
            let data = d.components.of::<RevokeData>();
            d.json(200, "Revoked (idempotent).", schemas::success(data))
                .json(
                    400,
                    "A malformed body.",
                    schemas::failure(&[Reason::BadRequest]),
                )
                .json(
                    401,
                    "Refused with the manager's reason.",
                    schemas::failure(&with_manager(&[Reason::RevokeError])),
                )
        }
        Action::Metadata => {
            let data = d.components.of::<MetadataSnapshot>();
            let more = [
                Reason::InvalidKey,
                Reason::TokenExpired,
                Reason::VerifyServerError,
                Reason::MetadataInvalidToken,
                Reason::MetadataError,
            ];
            d.json(
                200,
                "The token and its owner's counts.",
                schemas::success(data),
            )
            .json(
                400,
                "A malformed body.",
                schemas::failure(&[Reason::BadRequest]),
            )
            .json(
                401,
                "Refused with the manager's reason.",
                schemas::failure(&with_manager(&more)),
            )
        }
        Action::Rotate => {
            let data = d.components.of::<RotatedToken>();
            let more = [
                Reason::RotateRevoked,
                Reason::RotateNotNow,
                Reason::RotateCreateFailed,
                Reason::RotateServerError,
                Reason::TooManyTokens { limit },
            ];
            d.json(
                200,
                "Rotated: the new raw key is shown here once.",
                schemas::success(data),
            )
            .json(
                400,
                "Malformed, or refused with the manager's reason.",
                schemas::failure(&with_manager(&more)),
            )
        }
        Action::IpRestrictionUpdate | Action::PrivilegeUpdate => {
            let data = d.components.of::<Message>();
            let more = [Reason::NotFoundOrUnauthorized, Reason::InternalServerError];
            d.json(200, "Updated.", schemas::success(data)).json(
                400,
                "Malformed, or refused with the manager's reason.",
                schemas::failure(&with_manager(&more)),
            )
        }
    }
    .build()
}

// ---- /api/admin ---------------------------------------------------------------------------

/// What every admin route may answer: no credential, a store that cannot answer.
fn admin(d: Describe) -> Describe {
    d.security(ADMIN_SCHEME)
        .json(
            401,
            "No or a wrong admin credential.",
            schemas::admin_error(&["unauthorized"]),
        )
        .json(
            503,
            "The store could not answer.",
            schemas::admin_error(&["unavailable"]),
        )
}

/// What every admin route with a JSON body may answer about the body.
fn admin_body(d: Describe, schema: RefOr<Schema>) -> Describe {
    d.body(schema, true)
        .json(
            400,
            "A malformed body, naming the field when there is one.",
            schemas::admin_error(&["bad_request"]),
        )
        .json(
            408,
            "The body did not arrive in time.",
            schemas::admin_error(&["request_timeout"]),
        )
        .json(
            413,
            "The body is over 16 KiB.",
            schemas::admin_error(&["payload_too_large"]),
        )
        .json(
            415,
            "Not `application/json`.",
            schemas::admin_error(&["unsupported_media_type"]),
        )
}

fn token_id() -> Parameter {
    let id = ObjectBuilder::new().schema_type(Type::String).into();
    path_parameter(
        "id",
        "The token id (any other text names no token: 404).",
        id,
    )
}

fn no_token(d: Describe) -> Describe {
    d.json(
        404,
        "No token with that id.",
        schemas::admin_error(&["not_found"]),
    )
}

fn invalid_metadata(d: Describe) -> Describe {
    d.json(
        422,
        "Metadata that breaks a rule, naming the key.",
        schemas::admin_error(&["invalid_metadata"]),
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
        .json(
            409,
            "The owner holds the most valid tokens allowed.",
            schemas::admin_error(&["token_limit"]),
        )
        .link(201, "adminGetToken", &id, None)
        .link(201, "adminTokenEvents", &id, None)
        .link(201, "adminPatchMetadata", &id, None)
        .link(201, "adminReplaceMetadata", &id, None)
        .link(201, "adminRevokeToken", &id, None)
        .link(201, "adminVerify", &[], Some(key))
        .link(201, "verify", &verify, None);
    invalid_metadata(d).build()
}

pub fn admin_get(d: Describe) -> Operation {
    let view = d.components.of::<TokenView>();
    no_token(admin(d).parameter(token_id()).json(200, "The token.", view)).build()
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
    no_token(
        admin(d)
            .parameter(token_id())
            .json(200, "Revoked (idempotent).", view),
    )
    .build()
}

pub fn admin_events(d: Describe) -> Operation {
    let view = d.components.of::<EventsView>();
    no_token(
        admin(d)
            .parameter(token_id())
            .json(200, "The audit log, oldest first.", view),
    )
    .build()
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
                .minimum(Some(0))
                .maximum(Some(u64::MAX))
                .into(),
        ))
        .json(
            200,
            "One page, newest first. `meta.<key>=<value>` filters on one metadata key.",
            page,
        )
        .json(
            400,
            "A bad owner or query parameter, naming it.",
            schemas::admin_error(&["bad_request"]),
        )
        .json(
            422,
            "A metadata filter on an invalid key.",
            schemas::admin_error(&["invalid_metadata"]),
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
        .json(404, "No such ban.", schemas::admin_error(&["not_found"]))
        .build()
}
