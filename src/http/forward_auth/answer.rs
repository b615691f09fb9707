//! What forward-auth answers (SPEC B13). An allow: 200 with an empty body and who the caller
//! is, for the gateway to hand upstream. A denial: its status, `X-Auth-Code` and a problem
//! body (RFC 9457, built in `http/error.rs`), in a status the asking gateway passes on.

use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::Serialize;

use super::super::error::{problem, AdminFailure};
use super::super::public::deprecation_headers;
use super::super::quota_headers;
use super::params::Dialect;
use crate::domain::analytics::Code;
use crate::quotas::QuotaReport;
use crate::service::{CachedToken, Verified};
use crate::telemetry::metrics::VerifyResult;

const TOKEN_ID: HeaderName = HeaderName::from_static("x-auth-token-id");
const USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const PRINCIPAL: HeaderName = HeaderName::from_static("x-auth-principal");
const AUTH_CODE: HeaderName = HeaderName::from_static("x-auth-code");
const ENVOY_REMOVE: HeaderName = HeaderName::from_static("x-envoy-auth-headers-to-remove");

/// `X-Auth-Principal`, before base64url: who the caller is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Principal<'t> {
    token_id: u64,
    user_id: u64,
    name: &'t str,
    roles: Vec<&'t str>,
    permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'t crate::domain::Metadata>,
}

/// `X-Auth-Principal` values, built once per cached token record and policy (a token that
/// changes is a new record, so a stale value is never served); at most `CAPACITY`, cleared when
/// full. Building one (JSON, base64) costs more than the rest of the answer.
pub struct Principals {
    built: DashMap<(u64, bool), (Weak<CachedToken>, HeaderValue), foldhash::fast::RandomState>,
}

impl Principals {
    const CAPACITY: usize = 4096;

    pub fn new() -> Self {
        Self {
            built: DashMap::default(),
        }
    }

    fn of(&self, record: &Arc<CachedToken>, expose_metadata: bool) -> Option<HeaderValue> {
        let key = (record.id, expose_metadata);
        if let Some(entry) = self.built.get(&key) {
            // The Weak keeps the record's allocation, so its address names it alone.
            if std::ptr::eq(entry.0.as_ptr(), Arc::as_ptr(record)) {
                return Some(entry.1.clone());
            }
        }
        let principal = Principal {
            token_id: record.id,
            user_id: record.user_id.get(),
            name: &record.name,
            roles: record.roles.iter().map(|role| role.as_str()).collect(),
            permissions: record.grants.texts(),
            metadata: expose_metadata.then_some(&record.metadata),
        };
        // JSON of strings and numbers always serializes; base64url is always a header value.
        let json = serde_json::to_vec(&principal).ok()?;
        let value = HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(json)).ok()?;
        if self.built.len() >= Self::CAPACITY {
            self.built.clear();
        }
        self.built
            .insert(key, (Arc::downgrade(record), value.clone()));
        Some(value)
    }
}

impl Default for Principals {
    fn default() -> Self {
        Self::new()
    }
}

/// 200, empty: the request may pass. `remove` is what Envoy strips from the upstream request
/// (`authorization, <forward_auth.key_header>`), prepared once.
pub fn allow(
    verified: &Verified,
    expose_metadata: bool,
    principals: &Principals,
    remove: &HeaderValue,
    now: DateTime<Utc>,
) -> HttpResponse {
    let token = &verified.record;
    let mut answer = HttpResponse::Ok().finish();
    let headers = answer.headers_mut();
    headers.insert(TOKEN_ID, HeaderValue::from(token.id));
    headers.insert(USER_ID, HeaderValue::from(token.user_id.get()));
    if let Some(principal) = principals.of(token, expose_metadata) {
        headers.insert(PRINCIPAL, principal);
    }
    headers.insert(ENVOY_REMOVE, remove.clone());
    if let Some(report) = &verified.quota {
        quota_headers::add(&mut answer, report, now);
    }
    if let (Some(replaced), Some(ends)) = (token.replaced.as_deref(), token.expires_at) {
        deprecation_headers(&mut answer, replaced.at, ends);
    }
    answer
}

/// Why a request may not pass.
#[derive(Debug)]
pub struct Denial {
    status: StatusCode,
    /// `X-Auth-Code`: SPEC B2's code, or `MISSING_KEY`, `BLOCKED`, `BAD_REQUEST`, `NO_ROUTE`,
    /// `UNAVAILABLE`.
    code: &'static str,
    detail: String,
    field: Option<String>,
    /// Seconds, for `Retry-After` (an abuse limiter's block; a permanent ban has none).
    retry_after: Option<u64>,
    /// A customer limit's or the credits' report: the RateLimit headers and `Retry-After`.
    quota: Option<(DateTime<Utc>, Box<QuotaReport>)>,
    /// The outcome it is counted under in `iam_verifications_total`; `None`: no verification
    /// (a bad request, no route).
    counted: Option<VerifyResult>,
}

impl Denial {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            quota: None,
            counted: None,
        }
    }

    /// 401 `MISSING_KEY`.
    pub fn missing_key(header: &str) -> Self {
        let detail = format!("send the key as Authorization: Bearer <key>, or in {header}");
        Self {
            counted: Some(VerifyResult::InvalidKey),
            ..Self::new(StatusCode::UNAUTHORIZED, "MISSING_KEY", detail)
        }
    }

    /// The verification said no: 401 (unknown, expired, disabled), 403 (IP, permissions) or
    /// 429 (limits, credits, with the report's headers).
    pub fn refused(code: Code, quota: Option<(DateTime<Utc>, QuotaReport)>) -> Self {
        let (status, detail) = match code {
            Code::IpNotAllowed => (StatusCode::FORBIDDEN, "the key may not be used from here"),
            Code::InsufficientPermissions => (
                StatusCode::FORBIDDEN,
                "the key lacks the permissions this request needs",
            ),
            Code::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "a rate limit is used up"),
            Code::UsageExceeded => (StatusCode::TOO_MANY_REQUESTS, "no credits are left"),
            Code::Blocked => (StatusCode::TOO_MANY_REQUESTS, "too many failed attempts"),
            Code::Expired => (StatusCode::UNAUTHORIZED, "the key has expired"),
            Code::Disabled => (StatusCode::UNAUTHORIZED, "the key is disabled"),
            Code::NotFound | Code::Valid => (StatusCode::UNAUTHORIZED, "the key is not valid"),
        };
        Self {
            quota: quota.map(|(at, report)| (at, Box::new(report))),
            counted: Some(code.into()),
            ..Self::new(status, code.as_str(), detail)
        }
    }

    /// 429 `BLOCKED`: an abuse limiter's block (`None`: a permanent ban).
    pub fn blocked(retry_after: Option<u64>) -> Self {
        Self {
            retry_after,
            ..Self::refused(Code::Blocked, None)
        }
    }

    /// 400 `BAD_REQUEST` naming what is wrong (a parameter or a forwarded header).
    pub fn bad_request(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail)
        }
    }

    /// 403 `NO_ROUTE`: no rule covers the request and `forward_auth.default` is `deny`.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "NO_ROUTE",
            "no forward_auth rule covers this request",
        )
    }

    /// 503 `UNAVAILABLE`: the store could not answer (fail closed).
    pub fn unavailable() -> Self {
        Self {
            counted: Some(VerifyResult::ServerError),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the token store is unavailable; try again",
            )
        }
    }

    /// The outcome it is counted under in `iam_verifications_total`; `None`: no verification
    /// (a bad request, no route).
    pub fn counted(&self) -> Option<VerifyResult> {
        self.counted
    }

    /// The answer, in the status `dialect` passes on: nginx gets 400, 429 and 503 as 403.
    pub fn response(&self, dialect: Dialect) -> HttpResponse {
        let passes = matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        let status = match dialect {
            Dialect::Nginx if !passes => StatusCode::FORBIDDEN,
            _ => self.status,
        };
        let mut failure = AdminFailure::new(status, self.code, self.detail.clone());
        failure.field = self.field.clone();
        let mut answer = problem(status, &failure);
        if let Some((at, report)) = &self.quota {
            quota_headers::add(&mut answer, report, *at);
        }
        let headers = answer.headers_mut();
        headers.insert(AUTH_CODE, HeaderValue::from_static(self.code));
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        answer
    }
}
