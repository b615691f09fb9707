//! `GET /api/admin/audit`: the whole audit log, newest first, filtered and keyset-paginated
//! (SPEC B9).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::tokens::{DEFAULT_PAGE, MAX_PAGE};
use super::views::{AuditPageView, EventView};
use crate::domain::ActorKind;
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{ApiError, AppState};
use crate::store::{ActorFilter, AuditKind, AuditQuery};

/// `GET /api/admin/audit?actor=&kind=&tokenId=&userId=&since=&until=&cursor=&limit=`.
pub async fn list(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = audit_query(&super::query_map(&req)?)?;
    let limit = query.limit;
    let page = AuditQuery {
        limit: limit + 1,
        ..query
    };
    let events = state
        .tokens
        .audit_log(&page)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-audit", &err))?;
    let (events, next_cursor) = super::keyset_page(events, limit, |e| e.id);
    let events = events.into_iter().map(EventView::from).collect();
    Ok(json(
        StatusCode::OK,
        &AuditPageView {
            events,
            next_cursor,
        },
    ))
}

pub(crate) fn audit_query(params: &HashMap<String, String>) -> Result<AuditQuery, AdminFailure> {
    let mut query = AuditQuery {
        limit: DEFAULT_PAGE,
        ..AuditQuery::default()
    };
    for (name, value) in params {
        let bad = |message: String| AdminFailure::bad_request(message).field(name.clone());
        match name.as_str() {
            "actor" => query.actor = Some(actor(value).ok_or_else(|| bad(ACTOR_RULE.into()))?),
            "kind" => {
                let kind = AuditKind::parse(value).ok_or_else(|| {
                    let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
                    bad(format!("kind is one of {}", kinds.join(", ")))
                })?;
                query.kind = Some(kind.as_str().to_owned());
            }
            "tokenId" => {
                let id = value
                    .parse()
                    .map_err(|_| bad("tokenId is a token id".into()))?;
                query.token_id = Some(id);
            }
            "userId" => {
                let user = value
                    .parse::<crate::domain::UserId>()
                    .map_err(|err| bad(format!("userId: {err}")))?;
                query.user_id = Some(user);
            }
            "since" => query.since = Some(time(value).ok_or_else(|| bad(TIME_RULE.into()))?),
            "until" => query.until = Some(time(value).ok_or_else(|| bad(TIME_RULE.into()))?),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("limit is 1 to {MAX_PAGE}")))?;
            }
            "cursor" => {
                let cursor = value
                    .parse()
                    .map_err(|_| bad("cursor is the nextCursor of a previous page".into()))?;
                query.before = Some(keyset_bound(cursor));
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(query)
}

const ACTOR_RULE: &str = "actor is <type> or <type>:<id>, the type one of config, credential, \
    user, cli, system (a credential's or a user's id is a number; cli and system have none)";
pub(super) const TIME_RULE: &str = "an RFC 3339 time, e.g. 2026-12-07T10:00:00Z";

/// `credential:7`, `user:42`, `config:ops`, `cli`, `system`. A credential's or a user's id is
/// a number (anything else could match nothing); the CLI and the system have no id.
fn actor(text: &str) -> Option<ActorFilter> {
    let (kind, id) = match text.split_once(':') {
        Some((kind, id)) if !id.is_empty() && id.len() <= 120 => (kind, Some(id)),
        Some(_) => return None,
        None => (text, None),
    };
    let kind = ActorKind::parse(kind)?;
    let valid = match (kind, id) {
        (_, None) => true,
        (ActorKind::Credential, Some(id)) => id.parse::<u64>().is_ok(),
        (ActorKind::User, Some(id)) => id.parse::<crate::domain::UserId>().is_ok(),
        (ActorKind::Config, Some(_)) => true,
        (ActorKind::Cli | ActorKind::System, Some(_)) => false,
    };
    valid.then(|| ActorFilter {
        kind,
        id: id.map(str::to_owned),
    })
}

/// An RFC 3339 time, rounded up to the next millisecond when it falls between two: stored
/// times are milliseconds, and a bound between two must mean the same on every store.
pub(super) fn time(text: &str) -> Option<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    let sub_ms = at.timestamp_subsec_nanos() % 1_000_000;
    match sub_ms {
        0 => Some(at),
        _ => at.checked_add_signed(chrono::Duration::nanoseconds(i64::from(1_000_000 - sub_ms))),
    }
}

/// A keyset cursor as a bound every store holds: ids never pass `i64::MAX`, so a larger
/// cursor means "from the newest".
pub(super) fn keyset_bound(cursor: u64) -> u64 {
    cursor.min(i64::MAX as u64)
}
