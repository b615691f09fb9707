//! Changing limits and credits from the console (`quotas.write`), a token's and an owner's
//! alike: the forms become the admin API's own requests (`PUT …/ratelimits`,
//! `PATCH …/credits`), checked and applied by the same calls; a refusal shows the API's
//! message next to the field and changes nothing.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::form::{FormErrors, Kept};
use super::pages::credits_text;
use super::session::scoped_form;
use crate::admins::Signed;
use crate::domain::quota::Subject;
use crate::http::{credits_edit, edit_quota_as, limits_edit, AppState, CreditsPatch};
use crate::http::{AdminFailure, RateLimitsRequest};
use crate::quotas::QuotaView;

/// The limits editor's text for what is stored: the API's own `ratelimits` array, a limit a
/// line.
pub fn limits_text(view: &QuotaView) -> String {
    let lines: Vec<String> = view
        .limits
        .iter()
        .map(|limit| {
            let name = Value::from(limit.name.as_str());
            format!(
                "  {{\"name\": {name}, \"limit\": {}, \"duration\": {}, \"autoApply\": {}}}",
                limit.limit, limit.duration_ms, limit.auto_apply
            )
        })
        .collect();
    match lines.is_empty() {
        true => "[]".to_owned(),
        false => format!("[\n{}\n]", lines.join(",\n")),
    }
}

/// The editor's text as the admin API's `PUT …/ratelimits` body.
fn limits_request(text: &str) -> Result<RateLimitsRequest, FormErrors> {
    let refuse = |message: String| FormErrors::one("ratelimits", message);
    let text = if text.trim().is_empty() { "[]" } else { text };
    let value: Value = serde_json::from_str(text).map_err(|_| {
        refuse(
            "ratelimits must be a JSON array such as \
             [{\"name\": \"requests\", \"limit\": 100, \"duration\": 60000}]"
                .to_owned(),
        )
    })?;
    serde_json::from_value(json!({ "ratelimits": value }))
        .map_err(|err| refuse(format!("ratelimits: {err}")))
}

/// The credits form as the admin API's `PATCH …/credits` body: `change` (`keep`, `set`,
/// `add`, `take`) by `amount`, and `refill` (`keep`, `none`, `daily`, `monthly`) of
/// `refillAmount` on `refillDay`.
fn credits_request(
    form: &std::collections::HashMap<String, String>,
) -> Result<CreditsPatch, FormErrors> {
    let text = |name: &str| form.get(name).map_or("", |value| value.trim());
    // A number as a number; anything else as typed, for the API to name what is wrong.
    let number = |name: &str| match text(name).parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(text(name)),
    };
    let mut body = Map::new();
    let member = match text("change") {
        "" | "keep" => None,
        "set" => Some("remaining"),
        "add" => Some("increment"),
        "take" => Some("decrement"),
        _ => {
            return Err(FormErrors::one(
                "change",
                "Choose one of the changes offered.",
            ))
        }
    };
    if let Some(member) = member {
        body.insert(member.into(), number("amount"));
    }
    match text("refill") {
        "" | "keep" => {}
        "none" => {
            body.insert("refill".into(), Value::Null);
        }
        interval @ ("daily" | "monthly") => {
            let mut refill = Map::new();
            refill.insert("interval".into(), json!(interval));
            refill.insert("amount".into(), number("refillAmount"));
            if interval == "monthly" && !text("refillDay").is_empty() {
                refill.insert("refillDay".into(), number("refillDay"));
            }
            body.insert("refill".into(), Value::Object(refill));
        }
        _ => {
            return Err(FormErrors::one(
                "refill",
                "Choose one of the refills offered.",
            ))
        }
    }
    serde_json::from_value(Value::Object(body))
        .map_err(|err| FormErrors::one("credits", format!("credits: {err}")))
}

/// Where the credits form's fields meet the API's (what names none: the form's top).
const CREDIT_FIELDS: [(&str, &str); 5] = [
    ("remaining", "amount"),
    ("increment", "amount"),
    ("decrement", "amount"),
    ("refill", "refill"),
    ("", "credits"),
];

/// The credits form's fields, kept when it is refused.
const CREDIT_FORM: [&str; 5] = ["change", "amount", "refill", "refillAmount", "refillDay"];

/// The page of `subject` (a token's or an owner's), where its forms post.
fn page_of(subject: Subject) -> String {
    match subject {
        Subject::Token(id) => format!("/console/tokens/{id}"),
        Subject::Owner(user) => format!("/console/owners/{}", user.get()),
    }
}

/// Its page with the form's mistakes, the refused text kept.
async fn refused(
    subject: Subject,
    state: &AppState,
    signed: &Signed,
    (errors, kept): (FormErrors, Kept),
    status: StatusCode,
) -> HttpResponse {
    match subject {
        Subject::Token(id) => {
            let view = super::token::plain();
            super::token::page_with(state, signed, id, view, (errors, kept), status).await
        }
        Subject::Owner(user) => {
            super::owners::page(state, signed, user, (errors, kept), None, status).await
        }
    }
}

/// What a page shows of a subject's limits and credits (with `quotas.read`).
pub struct QuotaPart {
    pub view: QuotaView,
    /// Its credits as text (`None`: it has none of its own).
    pub credits: Option<String>,
    /// The limits editor's text: what is stored, or what a refused form sent (`kept`).
    pub limits_text: String,
    /// Where its limits and credits forms post (`None` without `quotas.write`).
    pub form: Option<String>,
}

/// `subject`'s limits and credits as its page shows them; `None` without `quotas.read`.
pub async fn part(
    state: &AppState,
    signed: &Signed,
    subject: Subject,
    kept: &Kept,
) -> Result<Option<QuotaPart>, crate::store::StoreError> {
    let scopes = &signed.caller.scopes;
    if !scopes.allows("quotas.read") {
        return Ok(None);
    }
    let view = state.tokens.quota_view(subject).await?.unwrap_or_default();
    let now = state.clock.now();
    Ok(Some(QuotaPart {
        credits: view.credits.map(|credits| credits_text(&credits, now)),
        limits_text: kept
            .field("ratelimits")
            .map_or_else(|| limits_text(&view), str::to_owned),
        form: scopes.allows("quotas.write").then(|| page_of(subject)),
        view,
    }))
}

/// What a form asks for.
enum Ask {
    Limits,
    Credits,
}

async fn change(
    (req, state, body): (HttpRequest, Data<AppState>, Bytes),
    subject: Option<Subject>,
    ask: Ask,
) -> HttpResponse {
    let Some(subject) = subject else {
        return super::session::not_found(req, state).await;
    };
    let (signed, form) = match scoped_form(&req, &state, &body, "quotas.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let sent = form.get("ratelimits").cloned().unwrap_or_default();
    let kept = || match ask {
        Ask::Limits => Kept::one("ratelimits", sent.clone()),
        Ask::Credits => Kept::of(&form, &CREDIT_FORM),
    };
    let edit = match ask {
        Ask::Limits => limits_request(&sent).and_then(|request| {
            limits_edit(&request)
                .map_err(|failure| FormErrors::refused(failure, &[("ratelimits", "ratelimits")]))
        }),
        Ask::Credits => credits_request(&form).and_then(|patch| {
            credits_edit(&patch).map_err(|failure| FormErrors::refused(failure, &CREDIT_FIELDS))
        }),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let edit = match edit {
        Ok(edit) => edit,
        Err(errors) => return refused(subject, &state, &signed, (errors, kept()), status).await,
    };
    let actor = signed.caller.actor.clone();
    match edit_quota_as(&state, actor, subject, edit).await {
        Ok(_) => {
            let what = match ask {
                Ask::Limits => "limits",
                Ask::Credits => "credits",
            };
            HttpResponse::SeeOther()
                .insert_header(("location", format!("{}?done={what}", page_of(subject))))
                .finish()
        }
        Err(failure) => failed(&signed, subject, &failure),
    }
}

/// An edit the store did not take: no such token, or the store is down.
fn failed(signed: &Signed, subject: Subject, failure: &AdminFailure) -> HttpResponse {
    match (failure.status, subject) {
        (StatusCode::NOT_FOUND, Subject::Token(id)) => {
            super::token::not_found(signed, &id.to_string())
        }
        _ => super::session::store_down(signed, "/console/tokens"),
    }
}

fn token(id: &str) -> Option<Subject> {
    id.parse().ok().map(Subject::Token)
}

fn owner(id: &str) -> Option<Subject> {
    id.parse().ok().map(Subject::Owner)
}

/// `POST /console/tokens/{id}/ratelimits`: `ratelimits`, the API's JSON array.
pub async fn token_limits(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    change((req, state, body), token(&id), Ask::Limits).await
}

/// `POST /console/tokens/{id}/credits`.
pub async fn token_credits(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    change((req, state, body), token(&id), Ask::Credits).await
}

/// `POST /console/owners/{id}/ratelimits`.
pub async fn owner_limits(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    change((req, state, body), owner(&id), Ask::Limits).await
}

/// `POST /console/owners/{id}/credits`.
pub async fn owner_credits(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    change((req, state, body), owner(&id), Ask::Credits).await
}
