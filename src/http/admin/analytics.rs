//! `GET /api/admin/analytics/verifications` (SPEC B11): verifications over time, by outcome,
//! grouped and ranked. Every parameter is checked before anything is read; a query never writes.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::analytics_views::VerificationAnalyticsView;
use crate::analytics::{GroupBy, QueryError, VerificationQuery, MAX_TOP};
use crate::domain::analytics::{Code, Granularity};
use crate::domain::UserId;
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{ApiError, AppState};

/// `?start=&end=&granularity=&groupBy=&tokenId=&userId=&code=&tag.<key>=&top=`.
pub async fn verifications(
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| AdminFailure::bad_request("malformed query string"))?
        .into_inner();
    let allowed = state
        .tokens
        .analytics()
        .map(|analytics| analytics.tag_keys().to_vec())
        .unwrap_or_default();
    let query = verification_query(&pairs, &allowed)?;
    let report = state
        .tokens
        .verification_analytics(query)
        .await
        .map_err(|err| failure(&state, err))?;
    Ok(json(
        StatusCode::OK,
        &VerificationAnalyticsView::from(&report),
    ))
}

fn failure(state: &AppState, err: QueryError) -> AdminFailure {
    match err {
        QueryError::Invalid { param, problem } => {
            AdminFailure::bad_request(format!("{param} {problem}")).field(param)
        }
        QueryError::RangeExceedsRetention {
            granularity,
            earliest,
        } => {
            let earliest = iso(earliest);
            let message = format!(
                "{} buckets are kept from {earliest}: start later, or ask a coarser granularity",
                granularity.as_str()
            );
            AdminFailure::new(StatusCode::BAD_REQUEST, "range_exceeds_retention", message)
                .field("start")
                .member("earliest", json!(earliest))
        }
        QueryError::TooManyPoints { points, max } => {
            let message = format!(
                "the answer would have {points} points, more than {max}: shorten the range, \
                 coarsen the granularity or lower top"
            );
            AdminFailure::new(StatusCode::BAD_REQUEST, "too_many_points", message)
                .member("points", json!(points))
                .member("max", json!(max))
        }
        QueryError::Disabled => {
            AdminFailure::new(StatusCode::NOT_FOUND, "analytics_disabled", err.to_string())
        }
        QueryError::Store(err) => {
            AdminFailure::unavailable(&state.metrics, "admin-analytics", &err)
        }
    }
}

fn iso(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The query the parameters ask for; 400 naming the first parameter at fault.
fn verification_query(
    pairs: &[(String, String)],
    allowed_tags: &[String],
) -> Result<VerificationQuery, AdminFailure> {
    let mut query = VerificationQuery::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let bad = |message: String| AdminFailure::bad_request(message).field(name.clone());
        if name != "code" && !name.starts_with("tag.") {
            if seen.contains(&name.as_str()) {
                return Err(bad(format!("{name} is given twice")));
            }
            seen.push(name);
        }
        match name.as_str() {
            "start" => query.start = Some(time(value).ok_or_else(|| bad(TIME_RULE.into()))?),
            "end" => query.end = Some(time_up(value).ok_or_else(|| bad(TIME_RULE.into()))?),
            "granularity" => {
                query.granularity = match value.as_str() {
                    "auto" => None,
                    other => Some(Granularity::parse(other).ok_or_else(|| {
                        bad("granularity is one of auto, minute, hour, day".into())
                    })?),
                }
            }
            "groupBy" => {
                query.group_by = Some(match value.as_str() {
                    "code" => GroupBy::Code,
                    "token" => GroupBy::Token,
                    "user" => GroupBy::User,
                    tag => {
                        let key = tag.strip_prefix("tag.").ok_or_else(|| {
                            bad("groupBy is one of code, token, user, tag.<key>".into())
                        })?;
                        if !allowed_tags.iter().any(|k| k == key) {
                            return Err(bad(unknown_tag(key, allowed_tags)));
                        }
                        GroupBy::Tag(key.to_owned())
                    }
                })
            }
            "tokenId" => {
                let id = value
                    .parse::<u64>()
                    .ok()
                    .filter(|id| (1..=UserId::MAX).contains(id))
                    .ok_or_else(|| bad("tokenId is a token id".into()))?;
                query.token_id = Some(id);
            }
            "userId" => {
                let user = value
                    .parse::<UserId>()
                    .map_err(|err| bad(format!("userId: {err}")))?;
                query.user_id = Some(user.get());
            }
            "code" => {
                for code in value.split(',') {
                    let code = Code::parse(code).ok_or_else(|| {
                        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
                        bad(format!("code is one or more of {}", codes.join(", ")))
                    })?;
                    if !query.codes.contains(&code) {
                        query.codes.push(code);
                    }
                }
            }
            "top" => {
                query.top = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or_else(|| bad(format!("top is 1 to {MAX_TOP}")))?,
                );
            }
            tag if tag.starts_with("tag.") => {
                let key = &tag[4..];
                if !allowed_tags.iter().any(|k| k == key) {
                    return Err(bad(unknown_tag(key, allowed_tags)));
                }
                if query.tags.iter().any(|(k, _)| k == key) {
                    return Err(bad(format!("{name} is given twice")));
                }
                query.tags.push((key.to_owned(), value.clone()));
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(query)
}

fn unknown_tag(key: &str, allowed: &[String]) -> String {
    format!(
        "unknown tag key {key:?}: the allowed keys (analytics.tags) are {}",
        allowed.join(", ")
    )
}

const TIME_RULE: &str = "an RFC 3339 time, e.g. 2026-12-07T10:00:00Z";

/// An RFC 3339 time as unix seconds (a fraction is dropped).
fn time(text: &str) -> Option<i64> {
    Some(DateTime::parse_from_rfc3339(text).ok()?.timestamp())
}

/// An end: a fraction of a second rounds up, so the second it falls in is included.
fn time_up(text: &str) -> Option<i64> {
    let at = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    Some(at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0))
}
