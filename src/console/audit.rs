//! The audit log (`audit.read`): the admin API's listing, its filters read by the admin API's
//! own parser (so a bad value gets the same message, next to its field), newest first, keyset
//! pages.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::form::FormErrors;
use super::pages::{html, when, Layout};
use super::session::{forbidden, signed, unavailable};
use crate::http::{audit_query, AppState};

/// The filters, named as the admin API names its parameters.
const FILTERS: [&str; 6] = ["actor", "kind", "tokenId", "userId", "since", "until"];
const PAGE: u32 = 50;

pub struct EventRow {
    pub id: u64,
    pub at: String,
    pub event: String,
    pub actor: String,
    pub token: Option<u64>,
    pub owner: Option<u64>,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct AuditPage {
    pub layout: Layout,
    /// Each filter and its value as typed.
    pub filters: Vec<(&'static str, String)>,
    pub errors: FormErrors,
    pub rows: Vec<EventRow>,
    pub next: Option<String>,
}

pub async fn list(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("audit.read") {
        return forbidden(&signed, "audit.read");
    }
    let sent: HashMap<String, String> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .filter(|(name, value)| {
            !value.trim().is_empty() && (FILTERS.contains(&name.as_str()) || name == "cursor")
        })
        .collect();
    let filters = FILTERS
        .iter()
        .map(|name| (*name, sent.get(*name).cloned().unwrap_or_default()))
        .collect();
    let layout = Layout::signed("Audit log", &signed, "/console/audit");
    let mut page = AuditPage {
        layout,
        filters,
        errors: FormErrors::default(),
        rows: Vec::new(),
        next: None,
    };
    let mut query = match audit_query(&sent) {
        Ok(query) => query,
        Err(failure) => {
            let field = FILTERS
                .into_iter()
                .find(|name| failure.field.as_deref() == Some(*name))
                .unwrap_or("actor");
            page.errors = FormErrors(vec![(field, failure.message)]);
            return html(StatusCode::BAD_REQUEST, &page);
        }
    };
    query.limit = PAGE + 1;
    let events = match state.tokens.audit_log(&query).await {
        Ok(events) => events,
        Err(err) => {
            tracing::error!(error = %err, "console: the audit log could not be read");
            return unavailable(page.layout);
        }
    };
    let now = state.clock.now();
    let more = events.len() > PAGE as usize;
    page.rows = events
        .into_iter()
        .take(PAGE as usize)
        .map(|event| EventRow {
            id: event.id,
            at: when(event.created_at, now),
            event: event.event,
            actor: event.actor.to_string(),
            token: event.token_id,
            owner: event.user_id.map(|user| user.get()),
            detail: event.detail.to_string(),
        })
        .collect();
    if more {
        let mut link = form_urlencoded::Serializer::for_suffix(
            String::from("/console/audit?"),
            "/console/audit?".len(),
        );
        for (name, value) in &page.filters {
            if !value.is_empty() {
                link.append_pair(name, value);
            }
        }
        if let Some(last) = page.rows.last() {
            link.append_pair("cursor", &last.id.to_string());
        }
        page.next = Some(link.finish());
    }
    html(StatusCode::OK, &page)
}
