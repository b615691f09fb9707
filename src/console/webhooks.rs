//! Webhooks (`webhooks.read`): the endpoints (never their secrets) and the delivery log, newest
//! first; with `webhooks.write`, a new endpoint (its signing secret shown once), an endpoint
//! disabled, enabled or deleted, a test event to it and a delivery sent again, through the
//! admin API's own calls.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::form::{self, FormErrors, Kept};
use super::pages::{html, when, when_or, Layout};
use super::session::{forbidden, scoped_form, signed, store_down, unavailable};
use crate::admins::Signed;
use crate::domain::webhook::DeliveryQuery;
use crate::http::AppState;
use crate::store::RetryOutcome;

const DELIVERIES: u32 = 50;

pub struct EndpointRow {
    pub id: u64,
    pub url: String,
    pub events: String,
    pub state: String,
    pub created: String,
}

pub struct DeliveryRow {
    pub id: u64,
    pub endpoint: u64,
    pub event_type: String,
    pub status: &'static str,
    pub attempts: u32,
    pub last: String,
    pub answer: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
pub struct WebhooksPage {
    pub layout: Layout,
    pub endpoints: Vec<EndpointRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub can_write: bool,
    pub errors: FormErrors,
    pub notice: Option<&'static str>,
    /// The new endpoint form as typed, when refused.
    pub kept: Kept,
    /// The endpoint just created and its signing secret: shown once, on the answer to the form.
    pub created: Option<(u64, String)>,
}

/// What the page shows besides the endpoints and deliveries.
#[derive(Default)]
struct Shown {
    errors: FormErrors,
    notice: Option<&'static str>,
    kept: Kept,
    created: Option<(u64, String)>,
}

async fn page(state: &AppState, signed: &Signed, shown: Shown, status: StatusCode) -> HttpResponse {
    let layout = Layout::signed("Webhooks", signed, "/console/webhooks");
    let query = DeliveryQuery {
        limit: DELIVERIES,
        ..DeliveryQuery::default()
    };
    let (endpoints, deliveries) = match tokio::try_join!(
        state.tokens.webhooks(),
        state.tokens.webhook_deliveries(&query)
    ) {
        Ok(both) => both,
        Err(err) => {
            tracing::error!(error = %err, "console: the webhooks could not be read");
            return unavailable(layout);
        }
    };
    let now = state.clock.now();
    let endpoints = endpoints
        .into_iter()
        .map(|endpoint| EndpointRow {
            id: endpoint.id,
            url: endpoint.url.clone(),
            events: endpoint.events.patterns().join(", "),
            state: match (endpoint.enabled, endpoint.disabled_reason) {
                (true, _) => "enabled".to_owned(),
                (false, Some(reason)) => format!("disabled ({})", reason.as_str()),
                (false, None) => "disabled".to_owned(),
            },
            created: when(endpoint.created_at, now),
        })
        .collect();
    let deliveries = deliveries
        .into_iter()
        .map(|delivery| DeliveryRow {
            id: delivery.id,
            endpoint: delivery.endpoint_id,
            event_type: delivery.event_type.clone(),
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            last: when_or(delivery.last_attempt_at, now, "not yet"),
            answer: match (delivery.response_status, &delivery.error) {
                (Some(code), _) => code.to_string(),
                (None, Some(error)) => error.clone(),
                (None, None) => String::new(),
            },
            next: when_or(delivery.next_attempt_at, now, ""),
        })
        .collect();
    let page = WebhooksPage {
        layout,
        endpoints,
        deliveries,
        can_write: signed.caller.scopes.allows("webhooks.write"),
        errors: shown.errors,
        notice: shown.notice,
        kept: shown.kept,
        created: shown.created,
    };
    html(status, &page)
}

pub async fn list(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let signed = match signed(&req, &state).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    if !signed.caller.scopes.allows("webhooks.read") {
        return forbidden(&signed, "webhooks.read");
    }
    let notice = match req.query_string() {
        "done=test" => Some("A webhook.test event is queued for that endpoint."),
        "done=retry" => Some("The delivery is pending again and goes out now."),
        "done=enabled" => Some("The endpoint is enabled: its pending deliveries resume."),
        "done=disabled" => Some("The endpoint is disabled: nothing is sent to it."),
        "done=deleted" => Some("The endpoint and its delivery log are deleted."),
        _ => None,
    };
    let shown = Shown {
        notice,
        ..Shown::default()
    };
    page(&state, &signed, shown, StatusCode::OK).await
}

/// The page with one mistake of the form as a whole.
async fn refused(
    state: &AppState,
    signed: &Signed,
    message: &str,
    status: StatusCode,
) -> HttpResponse {
    let shown = Shown {
        errors: FormErrors::one("form", message),
        ..Shown::default()
    };
    page(state, signed, shown, status).await
}

/// The new endpoint form's fields, the API's and the form's.
const ENDPOINT_FIELDS: [(&str, &str); 3] = [
    ("url", "url"),
    ("events", "events"),
    ("description", "description"),
];

/// `POST /console/webhooks`: `url`, `events` (comma-separated), `description`,
/// `includeMetadata`; the answer shows its signing secret, once.
pub async fn create(req: HttpRequest, state: Data<AppState>, body: Bytes) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "webhooks.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let text = |field: &str| form.get(field).map_or("", |value| value.trim());
    let mut request = serde_json::Map::new();
    request.insert("url".into(), serde_json::json!(text("url")));
    request.insert(
        "events".into(),
        serde_json::json!(form::list(text("events"))),
    );
    if !text("description").is_empty() {
        request.insert("description".into(), serde_json::json!(text("description")));
    }
    let include = text("includeMetadata") == "yes";
    request.insert("includeMetadata".into(), serde_json::json!(include));
    let kept = || Kept::of(&form, &["url", "events", "description", "includeMetadata"]);
    let created = match serde_json::from_value(serde_json::Value::Object(request)) {
        Ok(request) => {
            let actor = signed.caller.actor.clone();
            crate::http::create_webhook_as(&state, actor, &request).await
        }
        Err(err) => Err(crate::http::AdminFailure::bad_request(err.to_string())),
    };
    match created {
        Ok(endpoint) => {
            let shown = Shown {
                created: Some((endpoint.id, endpoint.secret.expose().to_owned())),
                ..Shown::default()
            };
            page(&state, &signed, shown, StatusCode::CREATED).await
        }
        Err(failure) if failure.status == StatusCode::SERVICE_UNAVAILABLE => {
            store_down(&signed, "/console/webhooks")
        }
        Err(failure) => {
            let status = failure.status;
            let shown = Shown {
                errors: FormErrors::refused(failure, &ENDPOINT_FIELDS),
                kept: kept(),
                ..Shown::default()
            };
            page(&state, &signed, shown, status).await
        }
    }
}

/// `POST /console/webhooks/{id}/state`: `enabled=true` or `false`.
pub async fn set_state(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "webhooks.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let enabled = form.get("enabled").map(String::as_str) == Some("true");
    let request = serde_json::json!({ "enabled": enabled });
    let Ok(request) = serde_json::from_value(request) else {
        return refused(
            &state,
            &signed,
            "enabled is true or false",
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let actor = signed.caller.actor.clone();
    match crate::http::update_webhook_as(&state, actor, id.into_inner(), &request).await {
        Ok(Some(_)) => done(if enabled { "enabled" } else { "disabled" }),
        Ok(None) => refused(&state, &signed, NO_ENDPOINT, StatusCode::NOT_FOUND).await,
        Err(_) => store_down(&signed, "/console/webhooks"),
    }
}

/// `POST /console/webhooks/{id}/delete`: the endpoint and its delivery log.
pub async fn delete(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, _) = match scoped_form(&req, &state, &body, "webhooks.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    match tokens.delete_webhook(id.into_inner()).await {
        Ok(true) => done("deleted"),
        Ok(false) => refused(&state, &signed, NO_ENDPOINT, StatusCode::NOT_FOUND).await,
        Err(err) => {
            tracing::error!(error = %err, "console: the endpoint could not be deleted");
            store_down(&signed, "/console/webhooks")
        }
    }
}

const NO_ENDPOINT: &str = "There is no such endpoint.";

fn done(what: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/console/webhooks?done={what}")))
        .finish()
}

pub async fn test(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, _) = match scoped_form(&req, &state, &body, "webhooks.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    match tokens.test_webhook(id.into_inner()).await {
        Ok(Some(_)) => done("test"),
        Ok(None) => refused(&state, &signed, NO_ENDPOINT, StatusCode::NOT_FOUND).await,
        Err(err) => {
            tracing::error!(error = %err, "console: the test event could not be queued");
            store_down(&signed, "/console/webhooks")
        }
    }
}

pub async fn retry(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, _) = match scoped_form(&req, &state, &body, "webhooks.write").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let message = match state.tokens.retry_webhook_delivery(id.into_inner()).await {
        Ok(RetryOutcome::Scheduled(_)) => return done("retry"),
        Ok(RetryOutcome::AlreadyPending) => "That delivery is pending: its next attempt is coming.",
        Ok(RetryOutcome::NotFound) => "There is no such delivery.",
        Err(err) => {
            tracing::error!(error = %err, "console: the delivery could not be retried");
            return store_down(&signed, "/console/webhooks");
        }
    };
    refused(&state, &signed, message, StatusCode::CONFLICT).await
}
