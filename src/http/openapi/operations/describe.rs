//! `Describe`: the builder every route's description is written with — its answers (several
//! bodies for one status become an `anyOf`), parameters, body, security and links.

use std::collections::BTreeMap;

use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, HeaderBuilder, RefOr, Required, ResponseBuilder};

use super::super::context::DocContext;
use super::super::schemas::{self, Components};
use crate::envelope::Reason;

const JSON: &str = "application/json";
use crate::http::error::PROBLEM_JSON;

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
        if let Some(body) = body {
            if !answer.bodies.contains(&body) {
                answer.bodies.push(body);
            }
        }
        self
    }

    /// An admin failure: the one `Problem` schema, and the codes it carries at this status.
    pub(super) fn problem(self, status: u16, description: &str, codes: &[&str]) -> Self {
        self.components
            .0
            .entry("Problem".to_owned())
            .or_insert_with(schemas::problem);
        let codes: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
        let description = format!("{description} (code {})", codes.join(", "));
        let body = utoipa::openapi::Ref::from_schema_name("Problem").into();
        self.answer(status, &description, PROBLEM_JSON, Some(body))
    }

    pub(super) fn json(self, status: u16, description: &str, schema: RefOr<Schema>) -> Self {
        self.answer(status, description, JSON, Some(schema))
    }

    /// The riavzon success envelope around `data`.
    pub(super) fn success(self, status: u16, description: &str, data: RefOr<Schema>) -> Self {
        self.json(status, description, schemas::success(data))
    }

    /// The riavzon failure envelope with one of `reasons`.
    pub(super) fn refused(self, status: u16, description: &str, reasons: &[Reason]) -> Self {
        self.json(status, description, schemas::failure(reasons))
    }

    pub(super) fn text(self, status: u16, description: &str, schema: RefOr<Schema>) -> Self {
        self.answer(status, description, "text/plain", Some(schema))
    }

    pub(super) fn empty(self, status: u16, description: &str) -> Self {
        self.answer(status, description, JSON, None)
    }

    /// The operation's description.
    pub(super) fn explain(mut self, text: &str) -> Self {
        self.op = self.op.description(Some(text));
        self
    }

    pub(super) fn parameter(mut self, parameter: Parameter) -> Self {
        self.op = self.op.parameter(parameter);
        self
    }

    pub(super) fn body(mut self, schema: RefOr<Schema>, required: bool) -> Self {
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

    /// An open route: `security: []`, said explicitly.
    pub(super) fn open(mut self) -> Self {
        self.op = self.op.securities(Some(Vec::<SecurityRequirement>::new()));
        self
    }

    pub(super) fn security(mut self, scheme: &str) -> Self {
        self.op = self
            .op
            .security(SecurityRequirement::new(scheme, Vec::<String>::new()));
        self
    }

    /// 429 from an abuse limiter, with `Retry-After` (seconds, or `permanent` for a ban).
    pub(super) fn too_many(self) -> Self {
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

    /// The `RateLimit-Policy` and `RateLimit` headers of the `status` answer (tokens with
    /// customer limits, SPEC B5).
    pub(super) fn limit_headers(mut self, status: u16) -> Self {
        let header = |description: &str| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(description))
                .build()
        };
        if let Some(answer) = self.answers.get_mut(&status) {
            answer.headers.push((
                "RateLimit-Policy",
                header("The token's tightest limit: `\"<name>\";q=<limit>;w=<window s>`."),
            ));
            answer.headers.push((
                "RateLimit",
                header("Its state: `\"<name>\";r=<remaining>;t=<s to reset>`."),
            ));
        }
        self
    }

    /// Headers of the `status` answer, each a string with its description.
    pub(super) fn headers(mut self, status: u16, headers: &[(&'static str, &str)]) -> Self {
        if let Some(answer) = self.answers.get_mut(&status) {
            for (name, description) in headers {
                let header = HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(*description))
                    .build();
                answer.headers.push((name, header));
            }
        }
        self
    }

    /// A link from the `status` answer to operation `to`: `parameters` are
    /// (`in.name`, runtime expression), `body` a request body of runtime expressions.
    pub(super) fn link(
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

pub(super) fn header(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

pub(super) fn path_parameter(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn query(
    name: &str,
    required: bool,
    description: &str,
    schema: RefOr<Schema>,
) -> Parameter {
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

pub(super) fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}
