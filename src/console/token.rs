//! A token's page: what it is, its limits and credits, its verifications over 24 h / 7 d /
//! 30 d, a permission-query tester, its audit trail, and the forms of the actions its scopes
//! allow (`token_actions.rs` answers them). A new key is shown once, on the answer to the form
//! that made it, and never again.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::chart::{chart, Chart, RANGES};
use super::form::{FormErrors, Kept};
use super::pages::{html, not_found_in, when, when_or, Layout};
use super::session::{forbidden, signed, store_down};
use super::tokens::status_of;
use crate::admins::Signed;
use crate::analytics::VerificationQuery;
use crate::domain::analytics::Granularity;
use crate::http::AppState;

/// One token, as its page shows it.
pub struct TokenFacts {
    pub id: u64,
    pub name: String,
    pub owner: u64,
    pub status: &'static str,
    pub enabled: bool,
    pub privilege: &'static str,
    pub public_id: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub uses: u64,
    pub ips: Vec<String>,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub metadata: Vec<(String, String)>,
}

/// One audit event as the trail shows it.
pub struct EventRow {
    pub at: String,
    pub event: String,
    pub actor: String,
}

/// What the credential may do here (each action shown only when allowed).
pub struct Allowed {
    /// `tokens.update`: the metadata editor.
    pub update: bool,
    pub disable: bool,
    pub rotate: bool,
    pub revoke: bool,
    pub audit: bool,
}

#[derive(Template)]
#[template(path = "console/token.html")]
pub struct TokenPage {
    pub layout: Layout,
    pub token: TokenFacts,
    pub allowed: Allowed,
    pub range: &'static str,
    pub ranges: [&'static str; 3],
    /// `None` without analytics.
    pub chart: Option<Chart>,
    pub events: Vec<EventRow>,
    pub errors: FormErrors,
    /// What the last action did, from a fixed set (never text from the request).
    pub notice: Option<&'static str>,
    /// The metadata editor's text: the stored metadata as JSON, or what was sent and refused.
    pub metadata_text: String,
    /// Its own limits (`name: left/limit per window`) and credits; `None` without `quotas.read`.
    pub quota: Option<(Vec<String>, Option<String>)>,
    /// Where the limits and credits forms post (`quotas.write`), else `None`.
    pub quota_form: Option<String>,
    /// The limits editor's text: the stored limits as the API's JSON, or what was refused.
    pub limits_text: String,
    /// What a refused form sent (the roles and permissions form, the credits form), by field.
    pub kept: Kept,
    /// The permission query tried (`?query=`), and what it said of this token.
    pub query: String,
    pub query_result: Option<Result<bool, String>>,
}

/// A new key, shown once.
#[derive(Template)]
#[template(path = "console/secret.html")]
pub struct SecretPage {
    pub layout: Layout,
    pub heading: String,
    pub token_id: u64,
    pub secret: String,
    pub detail: String,
}

/// The answer of a form that made a key: the key (never stored, as no page is).
pub fn secret_page(page: &SecretPage) -> HttpResponse {
    html(StatusCode::OK, page)
}

pub(super) fn not_found(signed: &Signed, id: &str) -> HttpResponse {
    let layout = Layout::signed("Not found", signed, "/console/tokens");
    not_found_in(layout, format!("There is no token with id {id}."))
}

/// The page of token `id`, with `errors` next to the fields of a form that failed.
pub(super) async fn page(
    state: &AppState,
    signed: &Signed,
    id: u64,
    range: &str,
    errors: FormErrors,
    notice: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
    let view = View {
        range,
        notice,
        query: "",
    };
    page_with(state, signed, id, view, (errors, Kept::default()), status).await
}

/// What a page is asked to show besides the token.
pub(super) struct View<'a> {
    range: &'a str,
    notice: Option<&'static str>,
    /// A permission query to try against the token (SPEC B4).
    query: &'a str,
}

/// `page`, with the fields of a refused form showing what was sent (`kept`) instead of what is
/// stored.
pub(super) async fn page_with(
    state: &AppState,
    signed: &Signed,
    id: u64,
    view: View<'_>,
    (errors, kept): (FormErrors, Kept),
    status: StatusCode,
) -> HttpResponse {
    let View {
        range,
        notice,
        query,
    } = view;
    let record = match state.tokens.token_by_id(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return not_found(signed, &id.to_string()),
        Err(err) => {
            tracing::error!(error = %err, "console: the token could not be read");
            return store_down(signed, "/console/tokens");
        }
    };
    let scopes = &signed.caller.scopes;
    let allowed = Allowed {
        update: scopes.allows("tokens.update"),
        disable: scopes.allows("tokens.disable"),
        rotate: scopes.allows("tokens.rotate"),
        revoke: scopes.allows("tokens.revoke"),
        audit: scopes.allows("audit.read"),
    };
    let now = state.clock.now();
    let (range, length, bucket) = RANGES
        .into_iter()
        .find(|(name, _, _)| *name == range)
        .unwrap_or(RANGES[0]);
    let end = (now.timestamp() / bucket + 1) * bucket;
    let start = end - length;
    let usage_query = VerificationQuery {
        start: Some(start),
        end: Some(end),
        granularity: Some(match bucket >= 86_400 {
            true => Granularity::Day,
            false => Granularity::Hour,
        }),
        group_by: None,
        token_id: Some(id),
        user_id: None,
        codes: Vec::new(),
        tags: Vec::new(),
        top: None,
    };
    let chart = match scopes.allows("analytics.read") {
        true => state
            .tokens
            .verification_analytics(usage_query)
            .await
            .ok()
            .map(|report| chart(&report, start, end, bucket)),
        false => None,
    };
    let events = match allowed.audit {
        true => state.tokens.token_events(id).await.unwrap_or_default(),
        false => Vec::new(),
    };
    let events = events
        .into_iter()
        .rev()
        .take(50)
        .map(|event| EventRow {
            at: when(event.created_at, now),
            event: event.event,
            actor: event.actor.to_string(),
        })
        .collect();
    let subject = crate::domain::quota::Subject::Token(id);
    let part = super::quotas::part(state, signed, subject, &kept)
        .await
        .unwrap_or_else(|err| {
            tracing::error!(error = %err, "console: the token's quota could not be read");
            None
        });
    let (limits_text, quota_form) = part.as_ref().map_or(("[]".to_owned(), None), |part| {
        (part.limits_text.clone(), part.form.clone())
    });
    let quota = part.map(|part| {
        let limits = part
            .view
            .limits
            .iter()
            .map(|limit| {
                format!(
                    "{}: {} of {} left per {} s (the window ends {})",
                    limit.name.as_str(),
                    limit.remaining,
                    limit.limit,
                    limit.duration_ms / 1000,
                    when(limit.reset, now)
                )
            })
            .collect();
        (limits, part.credits)
    });
    // The query tester: the query language of verification, against the effective grants.
    let query_result = (!query.trim().is_empty()).then(|| {
        crate::domain::access::Query::check(query, &record.access.effective())
            .map_err(|err| err.to_string())
    });
    let view = crate::http::TokenView::new(record.clone(), now);
    let metadata_text = kept.field("metadata").map_or_else(
        || serde_json::to_string_pretty(&view.metadata).unwrap_or_else(|_| "{}".to_owned()),
        str::to_owned,
    );
    let token = TokenFacts {
        id: record.id,
        name: record.name.clone(),
        owner: record.user_id.get(),
        status: status_of(&record, now),
        enabled: record.state.enabled(),
        privilege: record.privilege.as_str(),
        public_id: view.public_identifier,
        created: when(record.created_at, now),
        expires: when_or(record.expires_at, now, "never"),
        last_used: when_or(record.last_used, now, "never"),
        uses: record.usage_count,
        ips: view.ip_restriction.unwrap_or_default(),
        roles: view.roles,
        permissions: view.effective_permissions,
        metadata: view
            .metadata
            .keys()
            .into_iter()
            .filter_map(|key| {
                let value = match view.metadata.get(&key)? {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                Some((key, value))
            })
            .collect(),
    };
    let page = TokenPage {
        layout: Layout::signed(record.name.clone(), signed, "/console/tokens"),
        token,
        allowed,
        range,
        ranges: RANGES.map(|(name, _, _)| name),
        chart,
        events,
        errors,
        notice,
        metadata_text,
        quota,
        quota_form,
        limits_text,
        kept,
        query: query.to_owned(),
        query_result,
    };
    html(status, &page)
}

/// What a finished action says on the page it returns to.
fn notice_of(done: Option<&String>) -> Option<&'static str> {
    match done.map(String::as_str) {
        Some("disabled") => Some("The token is disabled: it no longer verifies."),
        Some("enabled") => Some("The token is enabled again."),
        Some("revoked") => Some("The token is revoked."),
        Some("metadata") => Some("The metadata is saved."),
        Some("access") => Some("Its roles and permissions are saved."),
        Some("limits") => Some("Its rate limits are saved."),
        Some("credits") => Some("Its credits are saved."),
        _ => None,
    }
}

pub async fn show(req: HttpRequest, state: Data<AppState>, id: Path<String>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("tokens.read") {
        return forbidden(&signed, "tokens.read");
    }
    let Ok(token_id) = id.parse::<u64>() else {
        return not_found(&signed, &id);
    };
    let params: HashMap<String, String> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let view = View {
        range: params.get("range").map_or("24h", String::as_str),
        notice: notice_of(params.get("done")),
        query: params.get("query").map_or("", String::as_str),
    };
    let status = match view.query.trim().is_empty() {
        true => StatusCode::OK,
        false => match crate::domain::access::Query::parse(view.query) {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::BAD_REQUEST,
        },
    };
    let nothing_refused = (FormErrors::default(), Kept::default());
    page_with(&state, &signed, token_id, view, nothing_refused, status).await
}

/// The page as first shown: the last 24 hours, nothing done, no query.
pub(super) fn plain() -> View<'static> {
    View {
        range: "24h",
        notice: None,
        query: "",
    }
}
