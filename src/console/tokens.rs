//! The tokens page (search, filters, keyset pages, each token's last 24 hours) and a token's
//! page, through the admin API's service calls and under its scopes (`tokens.read`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use super::chart::{sparkline, Sparkline};
use super::form::FormErrors;
use super::pages::{html, when_or, Layout};
use super::session::{forbidden, signed, unavailable};
use crate::domain::record::{TokenQuery, TokenRecord, TokenStatus};
use crate::domain::{PublicIdentifier, UserId};
use crate::http::AppState;

/// Tokens a page shows.
const PAGE: u32 = 50;

/// The search form as sent (shown back as typed).
#[derive(Default)]
pub struct TokenForm {
    pub q: String,
    pub status: String,
    pub meta: String,
}

impl TokenForm {
    pub fn is_default(&self) -> bool {
        self.q.is_empty() && self.meta.is_empty() && matches!(self.status.as_str(), "" | "all")
    }
}

/// One token as a row of the list.
pub struct TokenRow {
    pub id: u64,
    pub name: String,
    pub owner: u64,
    pub status: &'static str,
    /// Its verifications over the last 24 hours; `None` without analytics.
    pub usage: Option<Sparkline>,
    /// Its own credits left (`unlimited` without); empty without `quotas.read`.
    pub credits: String,
    pub last_used: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
pub struct TokensPage {
    pub layout: Layout,
    pub form: TokenForm,
    pub errors: FormErrors,
    pub statuses: [(&'static str, &'static str); 3],
    pub rows: Vec<TokenRow>,
    /// The next page's link.
    pub next: Option<String>,
    /// Whether the credits column is shown (`quotas.read`).
    pub show_credits: bool,
    /// Whether the credential may create tokens (`tokens.create`).
    pub can_create: bool,
}

/// What a token is now, in one word.
pub(super) fn status_of(record: &TokenRecord, now: DateTime<Utc>) -> &'static str {
    let expired = record.expires_at.is_some_and(|at| at <= now);
    match (record.valid, expired, record.state.enabled()) {
        (false, _, _) => "revoked",
        (true, true, _) => "expired",
        (true, false, false) => "disabled",
        (true, false, true) => "valid",
    }
}

/// The query of the form; mistakes are named by field (and the query is not run).
fn query_of(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> (TokenForm, Result<(TokenQuery, Option<u64>), FormErrors>) {
    let text = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let form = TokenForm {
        q: text("q"),
        status: text("status"),
        meta: text("meta"),
    };
    let mut errors = FormErrors::default();
    let mut query = TokenQuery {
        user_id: None,
        name: None,
        public_identifier: None,
        status: TokenStatus::All,
        metadata: None,
        limit: PAGE + 1,
        before_id: None,
        now,
    };
    let mut token_id = None;
    match form.q.as_str() {
        "" => {}
        q if q.bytes().all(|b| b.is_ascii_digit()) => match q.parse() {
            Ok(id) => token_id = Some(id),
            Err(_) => errors.0.push(("q", "That id is too large.".to_owned())),
        },
        q if q.len() == PublicIdentifier::LEN => match PublicIdentifier::parse_shape(q) {
            Ok(id) if id.checksum_holds() => query.public_identifier = Some(q.to_owned()),
            _ => errors.0.push((
                "q",
                "That is no public identifier: its checksum does not match.".to_owned(),
            )),
        },
        q => match q.strip_prefix("user:") {
            Some(owner) => match owner.trim().parse::<UserId>() {
                Ok(owner) => query.user_id = Some(owner),
                Err(err) => errors.0.push(("q", err.to_string())),
            },
            None => query.name = Some(q.to_owned()),
        },
    }
    query.status = match form.status.as_str() {
        "" | "all" => TokenStatus::All,
        "valid" => TokenStatus::Valid,
        "invalid" => TokenStatus::Invalid,
        _ => TokenStatus::All,
    };
    if !form.meta.is_empty() {
        match form.meta.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                query.metadata = Some((key.trim().to_owned(), value.trim().to_owned()));
            }
            _ => errors.0.push(("meta", "Write it as key=value.".to_owned())),
        }
    }
    if let Some(cursor) = params.get("cursor").and_then(|c| c.parse::<u64>().ok()) {
        query.before_id = Some(cursor.min(i64::MAX as u64));
    }
    let result = match errors.0.is_empty() {
        true => Ok((query, token_id)),
        false => Err(errors),
    };
    (form, result)
}

/// The link to the page after the one shown.
fn next_link(form: &TokenForm, cursor: u64) -> String {
    let base = "/console/tokens?";
    let mut link = form_urlencoded::Serializer::for_suffix(String::from(base), base.len());
    for (name, value) in [
        ("q", &form.q),
        ("status", &form.status),
        ("meta", &form.meta),
    ] {
        if !value.is_empty() {
            link.append_pair(name, value);
        }
    }
    link.append_pair("cursor", &cursor.to_string());
    link.finish()
}

pub async fn list(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("tokens.read") {
        return forbidden(&signed, "tokens.read");
    }
    let params: HashMap<String, String> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let now = state.clock.now();
    let (form, query) = query_of(&params, now);
    let layout = Layout::signed("Tokens", &signed, "/console/tokens");
    let statuses = [
        ("all", "All"),
        ("valid", "Valid"),
        ("invalid", "Revoked or expired"),
    ];
    let (query, token_id) = match query {
        Ok(query) => query,
        Err(errors) => {
            let page = TokensPage {
                layout,
                form,
                errors,
                statuses,
                rows: Vec::new(),
                next: None,
                show_credits: false,
                can_create: signed.caller.scopes.allows("tokens.create"),
            };
            return html(StatusCode::BAD_REQUEST, &page);
        }
    };
    if let Some(id) = token_id {
        return HttpResponse::SeeOther()
            .insert_header(("location", format!("/console/tokens/{id}")))
            .finish();
    }
    let records = match state.tokens.list_tokens(&query).await {
        Ok(records) => records,
        Err(err) => {
            tracing::error!(error = %err, "console: the tokens could not be listed");
            return unavailable(layout);
        }
    };
    let more = records.len() > PAGE as usize;
    let records: Vec<TokenRecord> = records.into_iter().take(PAGE as usize).collect();
    let next = more
        .then(|| records.last().map(|r| next_link(&form, r.id)))
        .flatten();
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    let show_credits = signed.caller.scopes.allows("quotas.read");
    // The page's usage and credits are read side by side.
    let credits = async {
        match show_credits {
            true => state.tokens.token_credits(&records).await.map(Some),
            false => Ok(None),
        }
    };
    let (usage, credits) = tokio::join!(state.tokens.usage_24h_by_hour(&ids), credits);
    let usage = usage.ok().flatten();
    let credits = credits.unwrap_or_else(|err| {
        tracing::error!(error = %err, "console: the tokens' credits could not be read");
        None
    });
    let rows = records
        .iter()
        .map(|record| TokenRow {
            id: record.id,
            name: record.name.clone(),
            owner: record.user_id.get(),
            status: status_of(record, now),
            usage: usage
                .as_ref()
                .map(|usage| sparkline(usage.get(&record.id).map_or(&[][..], Vec::as_slice))),
            credits: match &credits {
                None => String::new(),
                Some(credits) => credits
                    .get(&record.id)
                    .map_or("unlimited".to_owned(), |view| {
                        format!("{} left", view.remaining)
                    }),
            },
            last_used: when_or(record.last_used, now, "never"),
            expires: when_or(record.expires_at, now, "never"),
        })
        .collect();
    let page = TokensPage {
        layout,
        form,
        errors: FormErrors::default(),
        statuses,
        rows,
        next,
        can_create: signed.caller.scopes.allows("tokens.create"),
        show_credits,
    };
    html(StatusCode::OK, &page)
}
