//! The single place where failures become HTTP statuses and bodies.

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
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
    /// 429 from a rate limiter: `retry` seconds left of the block, `None` for a permanent ban.
    TooManyRequests { retry: Option<u64> },
    /// The riavzon envelope `{"ok":false,"date","reason"}` with a status.
    Envelope {
        status: StatusCode,
        date: DateTime<Utc>,
        reason: Reason,
    },
}

impl ApiError {
    pub fn envelope(status: StatusCode, date: DateTime<Utc>, reason: Reason) -> Self {
        Self::Envelope {
            status,
            date,
            reason,
        }
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
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Envelope { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
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
            Self::Envelope { date, reason, .. } => {
                json(status, &Results::<()>::failure(*date, reason.clone()))
            }
        }
    }
}
