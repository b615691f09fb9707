//! An owner's page (`tokens.read`; its limits and credits with `quotas.read`): its limits and
//! credits as they stand, its tokens, and disabling or enabling all of them, present and future
//! (`tokens.disable`), as the admin API does.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::form::{FormErrors, Kept};
use super::pages::{html, not_found_in, when, Layout};
use super::session::{forbidden, scoped_form, signed, store_down, unavailable};
use crate::admins::Signed;
use crate::domain::quota::Subject;
use crate::domain::record::{TokenQuery, TokenStatus};
use crate::domain::UserId;
use crate::http::AppState;

pub struct LimitRow {
    pub name: String,
    pub limit: u64,
    pub window: String,
    pub remaining: u64,
    pub reset: String,
}

#[derive(Template)]
#[template(path = "console/owner.html")]
pub struct OwnerPage {
    pub layout: Layout,
    pub owner: u64,
    /// `None`: the owner's state is not known (no token to read it with).
    pub disabled: Option<Option<String>>,
    /// `None` without `quotas.read`.
    pub limits: Option<Vec<LimitRow>>,
    pub credits: Option<String>,
    pub can_disable: bool,
    /// Where the limits and credits forms post (`quotas.write`), else `None`.
    pub quota_form: Option<String>,
    /// The limits editor's text: the stored limits as the API's JSON, or what was refused.
    pub limits_text: String,
    /// What a refused form sent, shown again.
    pub kept: Kept,
    pub errors: FormErrors,
    pub notice: Option<&'static str>,
}

fn not_found(signed: &Signed, raw: &str) -> HttpResponse {
    let layout = Layout::signed("Not found", signed, "/console/tokens");
    not_found_in(
        layout,
        format!("{raw:?} is not an owner id (1 to 9223372036854775807)."),
    )
}

/// The page of `owner`, with the mistakes of a refused form and what it sent (`kept`).
pub(super) async fn page(
    state: &AppState,
    signed: &Signed,
    owner: UserId,
    (errors, kept): (FormErrors, Kept),
    notice: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
    let layout = Layout::signed(format!("Owner {}", owner.get()), signed, "/console/tokens");
    let now = state.clock.now();
    // The owner's state is read with its tokens (any one says it).
    let query = TokenQuery {
        user_id: Some(owner),
        name: None,
        public_identifier: None,
        status: TokenStatus::All,
        metadata: None,
        limit: 1,
        before_id: None,
        now,
    };
    let newest = match state.tokens.list_tokens(&query).await {
        Ok(tokens) => tokens.into_iter().next(),
        Err(err) => {
            tracing::error!(error = %err, "console: the owner's tokens could not be read");
            return unavailable(layout);
        }
    };
    let disabled = newest.map(|token| {
        token.state.owner.map(|disabled| {
            let why = disabled
                .reason
                .map(|r| format!(": {}", r.as_str()))
                .unwrap_or_default();
            format!("{} by {}{why}", when(disabled.at, now), disabled.by)
        })
    });
    let scopes = &signed.caller.scopes;
    let part = match super::quotas::part(state, signed, Subject::Owner(owner), &kept).await {
        Ok(part) => part,
        Err(err) => {
            tracing::error!(error = %err, "console: the owner's quota could not be read");
            return unavailable(layout);
        }
    };
    let (limits_text, quota_form) = part.as_ref().map_or(("[]".to_owned(), None), |part| {
        (part.limits_text.clone(), part.form.clone())
    });
    let (limits, credits) = match part {
        None => (None, None),
        Some(part) => {
            let limits = part
                .view
                .limits
                .iter()
                .map(|limit| LimitRow {
                    name: limit.name.as_str().to_owned(),
                    limit: limit.limit,
                    window: format!("{} s", limit.duration_ms / 1000),
                    remaining: limit.remaining,
                    reset: when(limit.reset, now),
                })
                .collect();
            (Some(limits), part.credits)
        }
    };
    let page = OwnerPage {
        layout,
        owner: owner.get(),
        disabled,
        limits,
        credits,
        can_disable: scopes.allows("tokens.disable"),
        quota_form,
        limits_text,
        kept,
        errors,
        notice,
    };
    html(status, &page)
}

pub async fn show(req: HttpRequest, state: Data<AppState>, owner: Path<String>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("tokens.read") {
        return forbidden(&signed, "tokens.read");
    }
    let Ok(user) = owner.parse::<UserId>() else {
        return not_found(&signed, &owner);
    };
    let notice = match req.query_string() {
        "done=disabled" => Some("Every token of this owner is disabled, and so will new ones be."),
        "done=enabled" => Some("This owner's tokens are enabled again."),
        "done=limits" => Some("Its rate limits are saved."),
        "done=credits" => Some("Its credits are saved."),
        _ => None,
    };
    page(
        &state,
        &signed,
        user,
        (FormErrors::default(), Kept::default()),
        notice,
        StatusCode::OK,
    )
    .await
}

/// `POST /console/owners/{id}/state`: `enabled=false` (with a `reason`) or `true`.
pub async fn set_state(
    req: HttpRequest,
    state: Data<AppState>,
    owner: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "tokens.disable").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let Ok(user) = owner.parse::<UserId>() else {
        return not_found(&signed, &owner);
    };
    let change = match super::form::state_change(&form) {
        Ok(change) => change,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let refused = (errors, Kept::default());
            return page(&state, &signed, user, refused, None, status).await;
        }
    };
    let enabled = change.enabled;
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    match tokens.set_owner_state(user, &change).await {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header((
                "location",
                format!(
                    "/console/owners/{}?done={}",
                    user.get(),
                    if enabled { "enabled" } else { "disabled" }
                ),
            ))
            .finish(),
        Err(err) => {
            tracing::error!(error = %err, "console: the owner's state could not be changed");
            store_down(&signed, "/console/tokens")
        }
    }
}
