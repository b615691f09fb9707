//! `/api/admin/webhooks`: endpoints, their secrets, test sends and the delivery log
//! (SPEC B12).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer};

use super::audit::{keyset_bound, time, TIME_RULE};
use super::body;
use super::tokens::{DEFAULT_PAGE, MAX_PAGE};
use super::webhook_views::{
    DeliveriesView, DeliveryView, WebhookDeletedView, WebhookSecretView, WebhookView, WebhooksView,
};
use crate::domain::webhook::{
    DeliveryQuery, DeliveryStatus, EndpointChange, EndpointRecord, EndpointSecret, EndpointUrl,
    EventFilter, EventType, NewEndpoint, WebhookDescription, MAX_DESCRIPTION,
};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};
use crate::service::WebhookError;
use crate::store::{RetryOutcome, StoreError};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateWebhookRequest {
    /// `https://…` (`http://` only with `webhooks.allow_http`); it must not resolve to a
    /// loopback, private, link-local or reserved address (unless in `webhooks.allow_cidrs`).
    #[schema(example = "https://hooks.example.com/iam", max_length = 2048)]
    url: String,
    /// Event types and patterns: `token.created`, `token.*`, `*` (1 to 32).
    #[schema(example = json!(["token.*", "credits.low"]))]
    events: Vec<String>,
    #[schema(max_length = 200)]
    description: Option<String>,
    /// Send the token's metadata in `data.metadata` (default false).
    #[serde(default)]
    include_metadata: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateWebhookRequest {
    #[schema(max_length = 2048)]
    url: Option<String>,
    events: Option<Vec<String>>,
    /// A new description; `null` removes it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    description: Option<Option<String>>,
    include_metadata: Option<bool>,
    /// `false` disables it (sending `webhook.endpoint.disabled` to the others); `true`
    /// enables it again, and its pending deliveries resume.
    enabled: Option<bool>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn unavailable(state: &AppState, err: &StoreError) -> AdminFailure {
    AdminFailure::unavailable(&state.metrics, "admin-webhooks", err)
}

fn refused(state: &AppState, err: WebhookError) -> AdminFailure {
    match err {
        WebhookError::Url(why) => {
            AdminFailure::invalid("invalid_url", why.to_string()).field("url")
        }
        WebhookError::Store(err) => unavailable(state, &err),
    }
}

fn endpoint_id(raw: &str) -> Result<u64, AdminFailure> {
    raw.parse().map_err(|_| no_webhook(raw))
}

fn no_webhook(raw: &str) -> AdminFailure {
    AdminFailure::not_found(format!("no webhook with id {raw:?}"))
}

fn url(text: &str) -> Result<EndpointUrl, AdminFailure> {
    EndpointUrl::parse(text)
        .map_err(|err| AdminFailure::invalid("invalid_url", err.to_string()).field("url"))
}

fn events(patterns: &[String]) -> Result<EventFilter, AdminFailure> {
    EventFilter::parse(patterns)
        .map_err(|err| AdminFailure::invalid("invalid_events", err.to_string()).field("events"))
}

fn description(text: Option<&str>) -> Result<Option<WebhookDescription>, AdminFailure> {
    text.map(|text| {
        WebhookDescription::parse(text).ok_or_else(|| {
            AdminFailure::invalid(
                "invalid_description",
                format!("description is at most {MAX_DESCRIPTION} characters"),
            )
            .field("description")
        })
    })
    .transpose()
}

/// 200 with the endpoint as it is now, or 404 naming the id asked for.
fn shown(
    found: Option<EndpointRecord>,
    state: &AppState,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    match found {
        Some(record) => Ok(json(
            StatusCode::OK,
            &WebhookView::at(&record, state.clock.now()),
        )),
        None => Err(no_webhook(id).into()),
    }
}

fn with_secret(record: &EndpointRecord, state: &AppState) -> WebhookSecretView {
    WebhookSecretView {
        secret: record.secret.expose().to_owned(),
        webhook: WebhookView::at(record, state.clock.now()),
    }
}

/// `POST /api/admin/webhooks`: 201 with the endpoint and its secret (shown once).
pub async fn create(
    Admin(admin, _): Admin,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: CreateWebhookRequest = body(&req, payload).await?;
    let created = create_as(&state, admin, &request).await?;
    Ok(json(StatusCode::CREATED, &with_secret(&created, &state)))
}

/// A new endpoint by `admin` (the admin API's and the console's), its secret in it; a refusal
/// names the field at fault.
pub(crate) async fn create_as(
    state: &AppState,
    admin: crate::domain::Actor,
    request: &CreateWebhookRequest,
) -> Result<EndpointRecord, AdminFailure> {
    let endpoint = NewEndpoint {
        url: url(&request.url)?,
        description: description(request.description.as_deref())?,
        events: events(&request.events)?,
        include_metadata: request.include_metadata,
        // Replaced by the service with a fresh one.
        secret: EndpointSecret::generate(),
    };
    state
        .tokens
        .acting_as(admin)
        .create_webhook(endpoint)
        .await
        .map_err(|err| refused(state, err))
}

/// `GET /api/admin/webhooks`: every endpoint, by id.
pub async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let endpoints = state
        .tokens
        .webhooks()
        .await
        .map_err(|err| unavailable(&state, &err))?;
    let now = state.clock.now();
    let body = WebhooksView {
        webhooks: endpoints.iter().map(|e| WebhookView::at(e, now)).collect(),
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /api/admin/webhooks/{id}`.
pub async fn get(id: Path<String>, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let endpoint = endpoint_id(&id)?;
    let found = state
        .tokens
        .webhook(endpoint)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    shown(found, &state, &id)
}

/// `PATCH /api/admin/webhooks/{id}`: 200 with the endpoint as it is now.
pub async fn update(
    Admin(admin, _): Admin,
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = endpoint_id(&id)?;
    let request: UpdateWebhookRequest = body(&req, payload).await?;
    let updated = update_as(&state, admin, endpoint, &request).await?;
    shown(updated, &state, &id)
}

/// A change of endpoint `id` by `admin` (the admin API's and the console's): the endpoint as
/// it is now, `None` when there is none.
pub(crate) async fn update_as(
    state: &AppState,
    admin: crate::domain::Actor,
    id: u64,
    request: &UpdateWebhookRequest,
) -> Result<Option<EndpointRecord>, AdminFailure> {
    let change = EndpointChange {
        url: request.url.as_deref().map(url).transpose()?,
        description: match &request.description {
            None => None,
            Some(text) => Some(description(text.as_deref())?),
        },
        events: request.events.as_deref().map(events).transpose()?,
        include_metadata: request.include_metadata,
        enabled: request.enabled,
    };
    state
        .tokens
        .acting_as(admin)
        .update_webhook(id, change)
        .await
        .map_err(|err| refused(state, err))
}

/// `DELETE /api/admin/webhooks/{id}`: the endpoint and its delivery log.
pub async fn delete(
    Admin(admin, _): Admin,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = endpoint_id(&id)?;
    let deleted = state
        .tokens
        .acting_as(admin)
        .delete_webhook(endpoint)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    match deleted {
        true => Ok(json(
            StatusCode::OK,
            &WebhookDeletedView { deleted: endpoint },
        )),
        false => Err(no_webhook(&id).into()),
    }
}

/// `POST /api/admin/webhooks/{id}/rotate-secret`: the new secret (shown once); the old one
/// keeps signing for 24 hours.
pub async fn rotate_secret(
    Admin(admin, _): Admin,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = endpoint_id(&id)?;
    let rotated = state
        .tokens
        .acting_as(admin)
        .rotate_webhook_secret(endpoint)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    match rotated {
        Some(record) => Ok(json(StatusCode::OK, &with_secret(&record, &state))),
        None => Err(no_webhook(&id).into()),
    }
}

/// `POST /api/admin/webhooks/{id}/test`: 202 with the queued delivery of a `webhook.test`.
pub async fn test(
    Admin(admin, _): Admin,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = endpoint_id(&id)?;
    let queued = state
        .tokens
        .acting_as(admin)
        .test_webhook(endpoint)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    match queued {
        Some(delivery) => Ok(json(StatusCode::ACCEPTED, &DeliveryView::from(delivery))),
        None => Err(no_webhook(&id).into()),
    }
}

/// `GET /api/admin/webhooks/deliveries?endpoint=&status=&type=&since=&cursor=&limit=`.
pub async fn deliveries(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = delivery_query(&super::query_map(&req)?)?;
    let limit = query.limit;
    let page = DeliveryQuery {
        limit: limit + 1,
        ..query
    };
    let found = state
        .tokens
        .webhook_deliveries(&page)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    let (found, next_cursor) = super::keyset_page(found, limit, |d| d.id);
    let body = DeliveriesView {
        deliveries: found.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    };
    Ok(json(StatusCode::OK, &body))
}

fn delivery_query(params: &HashMap<String, String>) -> Result<DeliveryQuery, AdminFailure> {
    let mut query = DeliveryQuery {
        limit: DEFAULT_PAGE,
        ..DeliveryQuery::default()
    };
    for (name, value) in params {
        let bad = |message: String| AdminFailure::bad_request(message).field(name.clone());
        match name.as_str() {
            "endpoint" => {
                query.endpoint = Some(
                    value
                        .parse()
                        .map_err(|_| bad("endpoint is a webhook id".into()))?,
                );
            }
            "status" => {
                query.status =
                    Some(DeliveryStatus::parse(value).ok_or_else(|| {
                        bad("status is one of pending, delivered, failed".into())
                    })?);
            }
            "type" => {
                let kind = EventType::parse(value)
                    .ok_or_else(|| bad(format!("{value:?} is not an event type")))?;
                query.event_type = Some(kind.as_str().to_owned());
            }
            "since" => query.since = Some(time(value).ok_or_else(|| bad(TIME_RULE.into()))?),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("limit is 1 to {MAX_PAGE}")))?;
            }
            "cursor" => {
                let cursor: u64 = value
                    .parse()
                    .map_err(|_| bad("cursor is the nextCursor of a previous page".into()))?;
                query.before = Some(keyset_bound(cursor));
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(query)
}

/// `POST /api/admin/webhooks/deliveries/{id}/retry`: a delivered or failed delivery, sent
/// again now (202); 409 while it is pending.
pub async fn retry(id: Path<String>, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let no_delivery = || AdminFailure::not_found(format!("no delivery with id {:?}", id.as_str()));
    let delivery: u64 = id.parse().map_err(|_| no_delivery())?;
    let outcome = state
        .tokens
        .retry_webhook_delivery(delivery)
        .await
        .map_err(|err| unavailable(&state, &err))?;
    match outcome {
        RetryOutcome::Scheduled(record) => {
            Ok(json(StatusCode::ACCEPTED, &DeliveryView::from(record)))
        }
        RetryOutcome::AlreadyPending => Err(AdminFailure::new(
            StatusCode::CONFLICT,
            "delivery_pending",
            "the delivery is pending: its next attempt is scheduled",
        )
        .into()),
        RetryOutcome::NotFound => Err(no_delivery().into()),
    }
}
