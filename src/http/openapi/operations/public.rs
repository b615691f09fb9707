//! The public routes: verify, health, readiness, the document itself and the metrics.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::super::context::API_KEY_SCHEME;
use super::super::schemas;
use super::describe::{header, query, string, Describe};
use crate::domain::Privilege;
use crate::envelope::{Reason, INVALID_PERMISSIONS_QUERY};
use crate::http::hmac_guard::refusal;
use crate::http::public::Readiness;
use crate::service::VerifiedToken;

pub fn verify(d: Describe) -> Operation {
    let privilege = d.components.of::<Privilege>();
    let data = d.components.of::<VerifiedToken>();
    let mut refused = vec![
        Reason::NoApiKey,
        Reason::InvalidKey,
        Reason::InvalidHost,
        Reason::TokenExpired,
        Reason::TokenDisabled,
        Reason::VerifyServerError,
    ];
    refused.extend(refusal::ALL.into_iter().map(Reason::Guard));
    d.security(API_KEY_SCHEME)
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
        .success(200, "The key is valid: this use is counted.", data)
        .parameter(query(
            "permissions",
            false,
            "A permission query the key must satisfy (`a.read AND (b.* OR NOT c)`; at most \
             1,000 characters, 100 names, depth 32).",
            schemas::permission_query(),
        ))
        .refused(
            400,
            "The privilege is missing, repeated or unknown, or `permissions` is repeated.",
            &[Reason::BadRequest],
        )
        .json(
            400,
            "A malformed permission query: what was expected, at which character offset.",
            schemas::failure_starting(INVALID_PERMISSIONS_QUERY),
        )
        .refused(
            403,
            "The key is valid but does not satisfy `permissions` (not counted as a use).",
            &[Reason::InsufficientPermissions],
        )
        .refused(
            401,
            "Refused, with verify's (or the HMAC guard's) reason.",
            &refused,
        )
        .refused(
            429,
            "A valid key over one of its (or its owner's) rate limits, or out of credits: not \
             a use. `Retry-After` says when to try again (for credits: the next refill, when \
             there is one).",
            &[Reason::RateLimitExceeded, Reason::UsageExceeded],
        )
        .too_many()
        .limit_headers(200)
        .limit_headers(429)
        .build()
}

pub fn health(d: Describe) -> Operation {
    d.open()
        .text(
            200,
            "The process is alive.",
            schemas::one_of_strings(["OK"]),
        )
        .build()
}

pub fn health_head(d: Describe) -> Operation {
    d.open()
        .empty(200, "The process is alive (no body).")
        .build()
}

pub fn ready(d: Describe) -> Operation {
    let readiness = d.components.of::<Readiness>();
    d.open()
        .json(
            200,
            "The database answers. With `redis.url`, `redis` tells whether Redis does \
         (a Redis that is down fails readiness only with `redis.required_for_ready`).",
            readiness.clone(),
        )
        .json(
            503,
            "The database does not answer (or Redis, when `redis.required_for_ready`).",
            readiness,
        )
        .build()
}

pub fn ready_head(d: Describe) -> Operation {
    d.open()
        .empty(200, "Ready, as `GET /ready` (no body).")
        .empty(503, "Not ready, as `GET /ready` (no body).")
        .build()
}

pub fn openapi(d: Describe) -> Operation {
    let object = ObjectBuilder::new().schema_type(Type::Object).into();
    d.open()
        .json(200, "This document (OpenAPI 3.1).", object)
        .build()
}

pub fn metrics(d: Describe) -> Operation {
    d.open()
        .text(200, "Prometheus text format 0.0.4.", string())
        .json(
            404,
            "Served on `metrics.address` instead of this listener.",
            schemas::error(&["The page you are looking for doesn't exists"]),
        )
        .build()
}
