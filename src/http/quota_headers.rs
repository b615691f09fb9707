//! The IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers) of a token's tightest
//! customer limit, and `Retry-After`, on answers of a token with limits (SPEC B5).

use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};

use crate::quotas::{LimitState, QuotaReport};

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const STATE: HeaderName = HeaderName::from_static("ratelimit");

/// Whole seconds from `now` to `at`, rounded up (never 0 while time is left).
fn seconds_until(at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (at - now).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000)
}

/// `RateLimit-Policy: "<name>";q=<limit>;w=<window s>` and
/// `RateLimit: "<name>";r=<remaining>;t=<s to reset>`.
fn limit_headers(state: &LimitState, now: DateTime<Utc>) -> [(HeaderName, String); 2] {
    let name = state.name.as_str();
    let window = state.duration_ms.div_ceil(1000);
    let reset = seconds_until(state.reset, now);
    [
        (POLICY, format!("\"{name}\";q={};w={window}", state.limit)),
        (STATE, format!("\"{name}\";r={};t={reset}", state.remaining)),
    ]
}

/// Adds the headers of `report` to `response`: the tightest limit's, and `Retry-After` when
/// the report says when to try again.
pub fn add(response: &mut HttpResponse, report: &QuotaReport, now: DateTime<Utc>) {
    let headers = response.headers_mut();
    if let Some(tightest) = report.tightest() {
        for (name, value) in limit_headers(tightest, now) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    if let Some(ms) = report.retry_after_ms {
        headers.insert(RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    }
}
