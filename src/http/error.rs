//! The single place where failures become HTTP statuses and bodies.

use actix_web::http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::response::json;
use crate::envelope::{Reason, Results};

/// Every way a request can fail before or instead of a normal answer.
#[derive(Debug)]
pub enum ApiError {
    /// 401 `{"ok":false,"error":"Missing Bearer token"}`.
    MissingBearer,
    /// 401 `{"error":"<why>"}`: bad signature, expired, malformed access token.
    BadAccessToken(&'static str),
    /// 401 `{"error":"Malformed token payload"}`: `sub` is not a numeric user id.
    MalformedTokenPayload,
    /// 403 `{"error":"not allowed."}`: wrong content type or empty body.
    NotAllowed,
    /// 413 `{"error":"Payload too large"}`.
    PayloadTooLarge { limit: usize },
    /// 408 `{"error":"Request timeout"}`: the body did not arrive in time; the connection is
    /// closed.
    RequestTimeout,
    /// 429 from a rate limiter: `retry` seconds left of the block, `None` for a permanent ban.
    TooManyRequests { retry: Option<u64> },
    /// Admin API failures: RFC 9457 problem details (`application/problem+json`),
    /// `{type, title, status, detail, code, field?}`.
    Admin(AdminFailure),
    /// 429 with the envelope: a customer limit or the credits refuse a valid key (SPEC B5),
    /// with `Retry-After` and the rate-limit headers of the report.
    OverQuota {
        date: DateTime<Utc>,
        reason: Reason,
        report: Box<crate::quotas::QuotaReport>,
    },
    /// The riavzon envelope `{"ok":false,"date","reason"}` with a status.
    Envelope {
        status: StatusCode,
        date: DateTime<Utc>,
        reason: Reason,
    },
}

/// One admin API failure; `code` is stable for programs, `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminFailure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault (`metadata.<key>`, `userId`, …).
    pub field: Option<String>,
    /// The admin scope the caller lacks (403 `forbidden`, SPEC B9).
    pub missing_scope: Option<&'static str>,
    /// Members of the problem body particular to its code (`earliest` of
    /// `range_exceeds_retention`, SPEC B11).
    pub extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl AdminFailure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            missing_scope: None,
            extra: None,
        }
    }

    /// A member of the problem body particular to this failure.
    pub fn member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(name.to_owned(), value);
        self
    }

    /// 403: the caller's credential lacks `scope` (for the route, or to hand out).
    pub fn forbidden(scope: &'static str) -> Self {
        Self {
            missing_scope: Some(scope),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this credential does not hold the scope {scope}"),
            )
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin credential is required (Authorization: Bearer <secret>)",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn no_token(id: u64) -> Self {
        Self::not_found(format!("no token with id {id}"))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The store could not answer `operation`; the cause is logged and counted, not shown.
    pub fn unavailable(
        metrics: &crate::telemetry::Metrics,
        operation: &'static str,
        err: &crate::store::StoreError,
    ) -> Self {
        tracing::error!(operation, error = %err, "admin API: token store failed");
        metrics.store_error(operation);
        Self::store_down()
    }

    /// 415: the body is not declared `application/json`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        )
    }

    /// 413: the body is over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("bodies are at most {limit} bytes"),
        )
    }

    /// 408: the body did not arrive within `after` (the connection is closed).
    pub fn request_timeout(after: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the body did not arrive within {after:?}"),
        )
    }

    /// 422: a value breaks a rule of its kind (`code` names the kind, e.g. `invalid_metadata`).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 409: the owner already holds the most valid tokens allowed.
    pub fn token_limit(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "token_limit", message)
    }

    /// 503 for a failure already logged where it happened.
    pub fn store_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the token store is unavailable; try again",
        )
    }
}

impl From<AdminFailure> for ApiError {
    fn from(failure: AdminFailure) -> Self {
        Self::Admin(failure)
    }
}

impl ApiError {
    pub fn envelope(status: StatusCode, date: DateTime<Utc>, reason: Reason) -> Self {
        Self::Envelope {
            status,
            date,
            reason,
        }
    }

    /// 401 with the envelope: a verification refused, and why (SPEC A7).
    pub fn refused(date: DateTime<Utc>, reason: Reason) -> Self {
        Self::envelope(StatusCode::UNAUTHORIZED, date, reason)
    }

    /// 400 `Bad Request` with the envelope: a parameter or body of the wrong shape.
    pub fn bad_request(date: DateTime<Utc>) -> Self {
        Self::envelope(StatusCode::BAD_REQUEST, date, Reason::BadRequest)
    }

    /// 404 `Not found` with the envelope: an unknown `/api/manage` action.
    pub fn unknown_action(date: DateTime<Utc>) -> Self {
        Self::envelope(StatusCode::NOT_FOUND, date, Reason::NotFound)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingBearer => f.write_str("missing bearer token"),
            Self::BadAccessToken(why) => write!(f, "bad access token: {why}"),
            Self::MalformedTokenPayload => f.write_str("malformed token payload"),
            Self::NotAllowed => f.write_str("content type or body not allowed"),
            Self::PayloadTooLarge { limit } => write!(f, "body over {limit} bytes"),
            Self::TooManyRequests { .. } => f.write_str("rate limited"),
            Self::OverQuota { reason, .. } => write!(f, "429: {}", reason.as_str()),
            Self::RequestTimeout => f.write_str("request body timed out"),
            Self::Admin(failure) => write!(f, "{}: {}", failure.code, failure.message),
            Self::Envelope { status, reason, .. } => write!(f, "{status}: {}", reason.as_str()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingBearer | Self::BadAccessToken(_) | Self::MalformedTokenPayload => {
                StatusCode::UNAUTHORIZED
            }
            Self::NotAllowed => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } | Self::OverQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Admin(failure) => failure.status,
            Self::Envelope { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = self.body(status);
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a trickled body may still be coming: the connection is not reused.
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        response
    }
}

impl ApiError {
    fn body(&self, status: StatusCode) -> HttpResponse {
        match self {
            Self::MissingBearer => json(
                status,
                &json!({"ok": false, "error": "Missing Bearer token"}),
            ),
            Self::BadAccessToken(why) => json(status, &json!({ "error": why })),
            Self::MalformedTokenPayload => {
                json(status, &json!({"error": "Malformed token payload"}))
            }
            Self::NotAllowed => json(status, &json!({"error": "not allowed."})),
            Self::PayloadTooLarge { .. } => json(status, &json!({"error": "Payload too large"})),
            Self::RequestTimeout => json(status, &json!({"error": "Request timeout"})),
            Self::TooManyRequests { retry } => {
                let (header, retry) = match retry {
                    Some(seconds) => (seconds.to_string(), json!(seconds)),
                    None => ("permanent".to_owned(), json!("permanent")),
                };
                let mut response = json(
                    status,
                    &json!({"error": "Too many requests", "retry": retry}),
                );
                if let Ok(value) = HeaderValue::from_str(&header) {
                    response.headers_mut().insert(RETRY_AFTER, value);
                }
                response
            }
            Self::Admin(failure) => problem(status, failure),
            Self::OverQuota {
                date,
                reason,
                report,
            } => {
                let mut response = json(status, &Results::<()>::failure(*date, reason.clone()));
                super::quota_headers::add(&mut response, report, *date);
                response
            }
            Self::Envelope { date, reason, .. } => {
                json(status, &Results::<()>::failure(*date, reason.clone()))
            }
        }
    }
}

/// The media type of every admin failure (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An admin failure as problem details: `type` names the code as a URN (stable, not meant to be
/// fetched), `title` is the status's name (the same for every occurrence of a code, whose status
/// never changes), `detail` says what went wrong for people, `code` for programs, `field` which
/// request field is at fault. A 401 says how to authenticate (`WWW-Authenticate`).
pub(super) fn problem(status: StatusCode, failure: &AdminFailure) -> HttpResponse {
    let mut body = json!({
        "type": format!("urn:iam-tokens:problem:{}", failure.code),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": failure.message,
        "code": failure.code,
    });
    if let Some(field) = &failure.field {
        body["field"] = json!(field);
    }
    if let Some(scope) = failure.missing_scope {
        body["missingScope"] = json!(scope);
    }
    for (name, value) in failure.extra.iter().flat_map(|extra| extra.iter()) {
        body[name] = value.clone();
    }
    let mut response = json(status, &body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = HeaderValue::from_static("Bearer realm=\"iam-tokens\"");
        headers.insert(WWW_AUTHENTICATE, challenge);
    }
    response
}

/// The statuses of `/api/manage/*` answers (SPEC A7): the riavzon envelope carries the reason,
/// the action decides the status.
impl super::bff::Action {
    pub(super) fn success_status(self) -> StatusCode {
        match self {
            Self::NewToken => StatusCode::CREATED,
            _ => StatusCode::OK,
        }
    }

    pub(super) fn failure_status(self) -> StatusCode {
        match self {
            Self::Revoke | Self::Metadata => StatusCode::UNAUTHORIZED,
            Self::ListMetadata => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}
