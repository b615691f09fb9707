//! JSON responses with the exact content type SPEC A7 requires.

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::envelope::with_iso;
use crate::service::Verified;

pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// `status` with `body` serialized as `application/json; charset=utf-8`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(text) => json_text(status, text),
        Err(err) => {
            tracing::error!(error = %err, "response serialization failed");
            json_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"Internal server error"}"#.to_owned(),
            )
        }
    }
}

/// The public verify route's 200: byte for byte what
/// `json(OK, &Results::success(date, verified.token()))` writes (a test holds the two equal),
/// straight from the cached record and without serde's per-key escaping: this is the busiest
/// route.
pub fn verified(date: DateTime<Utc>, verified: &Verified) -> HttpResponse {
    let token = &verified.record;
    let mut out = Vec::with_capacity(232 + token.name.len());
    out.extend_from_slice(br#"{"ok":true,"date":"#);
    let date_at = out.len();
    push_time(&mut out, &date);
    let date_text = date_at..out.len();
    out.extend_from_slice(br#","data":{"name":"#);
    // A string always serializes; escaping is the one part worth leaving to serde_json.
    let _ = serde_json::to_writer(&mut out, &*token.name);
    out.extend_from_slice(br#","tokenId":"#);
    push_number(&mut out, token.id);
    out.extend_from_slice(br#","userId":"#);
    push_number(&mut out, token.user_id.get());
    out.extend_from_slice(br#","createdAt":"#);
    push_time(&mut out, &token.created_at);
    out.extend_from_slice(br#","expiresAt":"#);
    push_optional_time(&mut out, token.expires_at.as_ref());
    out.extend_from_slice(br#","lastUsed":"#);
    match verified.last_used {
        // A counted use happened just now: the date is already written once.
        Some(last_used) if last_used == date => out.extend_from_within(date_text),
        last_used => push_optional_time(&mut out, last_used.as_ref()),
    }
    out.extend_from_slice(br#","usageCount":"#);
    push_number(&mut out, verified.usage_count);
    out.extend_from_slice(br#","providedPrivilege":""#);
    out.extend_from_slice(token.privilege.as_str().as_bytes());
    out.extend_from_slice(br#""}}"#);
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
        .body(out)
}

fn json_text(status: StatusCode, text: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
        .body(text)
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A quoted ISO-8601 time (its characters never need escaping).
fn push_time(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    out.push(b'"');
    with_iso(t, |text| out.extend_from_slice(text.as_bytes()));
    out.push(b'"');
}

fn push_optional_time(out: &mut Vec<u8>, t: Option<&DateTime<Utc>>) {
    match t {
        Some(t) => push_time(out, t),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use chrono::TimeZone;

    use std::sync::Arc;

    use super::*;
    use crate::domain::{IpRestriction, Metadata, Privilege};
    use crate::envelope::Results;
    use crate::service::CachedToken;

    fn body_of(response: HttpResponse) -> String {
        let bytes = response.into_body().try_into_bytes().unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn verified_token(name: &str, expires: bool, last_used: Option<i64>) -> Verified {
        let created = Utc.with_ymd_and_hms(2026, 2, 28, 23, 59, 59).unwrap();
        let last_used = last_used.map(|ms| Utc.timestamp_millis_opt(ms).unwrap());
        let record = CachedToken {
            id: u64::MAX,
            user_id: crate::domain::UserId::new(7).unwrap(),
            name: name.into(),
            created_at: created,
            // Years past 9999 take the slow general path.
            expires_at: expires.then(|| Utc.with_ymd_and_hms(12_000, 12, 31, 0, 0, 0).unwrap()),
            last_used: None,
            usage_count: 0,
            privilege: if expires {
                Privilege::Custom
            } else {
                Privilege::Full
            },
            ip_restriction: IpRestriction::default(),
            metadata: Metadata::default(),
            enabled: true,
            replaced: None,
            roles: Box::default(),
            grants: Default::default(),
            plan: None,
        };
        Verified {
            record: Arc::new(record),
            usage_count: 41,
            last_used,
            quota: None,
        }
    }

    #[test]
    fn the_hand_written_verify_body_is_exactly_what_serde_writes() {
        let now = 1_764_441_600_123;
        let date = Utc.timestamp_millis_opt(now).unwrap();
        let names = [
            "ci",
            "",
            "quote \" and \\ back",
            "tab\tnew\nline\u{1}",
            "ünï 😀",
        ];
        for name in names {
            for last_used in [None, Some(now), Some(now - 1), Some(0)] {
                for expires in [false, true] {
                    let token = verified_token(name, expires, last_used);
                    let expected = serde_json::to_string(&Results::success(date, token.token()));
                    let written = body_of(verified(date, &token));
                    assert_eq!(written, expected.unwrap(), "{name:?} {last_used:?}");
                }
            }
        }
    }

    #[test]
    fn the_verify_body_carries_the_json_content_type() {
        let date = Utc.timestamp_millis_opt(0).unwrap();
        let response = verified(date, &verified_token("ci", false, None));
        assert_eq!(response.headers().get(CONTENT_TYPE).unwrap(), JSON_UTF8);
    }
}
