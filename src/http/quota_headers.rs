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

/// `"<name>";<a>=<x>;<b>=<y>` as a header value, written once into its own buffer.
fn item(name: &str, (a, x): (&str, u64), (b, y): (&str, u64)) -> Option<HeaderValue> {
    let mut numbers = (itoa::Buffer::new(), itoa::Buffer::new());
    let (x, y) = (numbers.0.format(x), numbers.1.format(y));
    let mut out = Vec::with_capacity(name.len() + x.len() + y.len() + 10);
    for part in ["\"", name, "\";", a, "=", x, ";", b, "=", y] {
        out.extend_from_slice(part.as_bytes());
    }
    HeaderValue::from_maybe_shared(actix_web::web::Bytes::from(out)).ok()
}

/// `RateLimit-Policy: "<name>";q=<limit>;w=<window s>` and
/// `RateLimit: "<name>";r=<remaining>;t=<s to reset>`.
fn limit_headers(state: &LimitState, now: DateTime<Utc>) -> [(HeaderName, Option<HeaderValue>); 2] {
    let name = state.name.as_str();
    let window = state.duration_ms.div_ceil(1000);
    let reset = seconds_until(state.reset, now);
    [
        (POLICY, item(name, ("q", state.limit), ("w", window))),
        (STATE, item(name, ("r", state.remaining), ("t", reset))),
    ]
}

/// Adds the headers of `report` to `response`: the tightest limit's, and `Retry-After` when
/// the report says when to try again.
pub fn add(response: &mut HttpResponse, report: &QuotaReport, now: DateTime<Utc>) {
    let headers = response.headers_mut();
    if let Some(tightest) = report.tightest() {
        for (name, value) in limit_headers(tightest, now) {
            if let Some(value) = value {
                headers.insert(name, value);
            }
        }
    }
    if let Some(ms) = report.retry_after_ms {
        headers.insert(RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    }
}
