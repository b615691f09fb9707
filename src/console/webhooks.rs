//! Webhooks (`webhooks.read`): the endpoints (never their secrets) and the delivery log, newest
//! first; with `webhooks.write`, a test event to an endpoint and a delivery sent again, through
//! the admin API's service calls.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::pages::{html, when, when_or, Layout};
use super::session::{forbidden, signed, signed_form, store_down, unavailable};
use super::tokens::FormErrors;
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
}

async fn page(
    state: &AppState,
    signed: &Signed,
    errors: FormErrors,
    notice: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
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
        errors,
        notice,
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
        _ => None,
    };
    page(
        &state,
        &signed,
        FormErrors::default(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// A `webhooks.write` form: the session, or the answer to give instead.
async fn writer(req: &HttpRequest, state: &AppState, body: &Bytes) -> Result<Signed, HttpResponse> {
    let (signed, _) = signed_form(req, state, body).await?;
    match signed.caller.scopes.allows("webhooks.write") {
        true => Ok(signed),
        false => Err(forbidden(&signed, "webhooks.write")),
    }
}

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
    let signed = match writer(&req, &state, &body).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    match tokens.test_webhook(id.into_inner()).await {
        Ok(Some(_)) => done("test"),
        Ok(None) => {
            let errors = FormErrors(vec![("form", "There is no such endpoint.".to_owned())]);
            page(&state, &signed, errors, None, StatusCode::NOT_FOUND).await
        }
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
    let signed = match writer(&req, &state, &body).await {
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
    let errors = FormErrors(vec![("form", message.to_owned())]);
    page(&state, &signed, errors, None, StatusCode::CONFLICT).await
}
