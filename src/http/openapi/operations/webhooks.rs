//! `/api/admin/webhooks` (SPEC B12).

use utoipa::openapi::path::Operation;

use super::super::schemas;
use super::common::{admin, admin_body};
use super::describe::{path_parameter, query, string, Describe};
use crate::domain::webhook::EventType;
use crate::http::admin::webhook_views::{
    DeliveriesView, DeliveryView, WebhookDeletedView, WebhookSecretView, WebhookView, WebhooksView,
};
use crate::http::admin::{CreateWebhookRequest, UpdateWebhookRequest};

fn webhook_id() -> utoipa::openapi::path::Parameter {
    path_parameter(
        "id",
        "The endpoint's id (any other text names no endpoint: 404).",
        string(),
    )
}

fn no_webhook(d: Describe) -> Describe {
    d.problem(404, "No endpoint with that id.", &["not_found"])
}

const INVALID: &str = "An invalid URL (its scheme, its shape, or an address it resolves to: \
    loopback, private, link-local or reserved), event pattern or description, naming it.";
const INVALID_CODES: &[&str] = &["invalid_url", "invalid_events", "invalid_description"];

pub fn admin_create_webhook(d: Describe) -> Operation {
    let body = d.components.of::<CreateWebhookRequest>();
    let view = d.components.of::<WebhookSecretView>();
    let id = [("path.id", "$response.body#/id")];
    admin_body(
        admin(
            d.explain("The answer holds the signing secret (`whsec_…`): it is never shown again."),
        ),
        body,
    )
    .json(201, "Created, with its secret.", view)
    .problem(422, INVALID, INVALID_CODES)
    .link(201, "getWebhook", &id, None)
    .link(201, "sendWebhookTest", &id, None)
    .build()
}

pub fn admin_webhooks(d: Describe) -> Operation {
    let view = d.components.of::<WebhooksView>();
    admin(d).json(200, "Every endpoint, by id.", view).build()
}

pub fn admin_get_webhook(d: Describe) -> Operation {
    let view = d.components.of::<WebhookView>();
    no_webhook(
        admin(d)
            .parameter(webhook_id())
            .json(200, "The endpoint.", view),
    )
    .build()
}

pub fn admin_update_webhook(d: Describe) -> Operation {
    let body = d.components.of::<UpdateWebhookRequest>();
    let view = d.components.of::<WebhookView>();
    let d = admin_body(admin(d), body)
        .parameter(webhook_id())
        .json(200, "The endpoint as it is now.", view)
        .problem(422, INVALID, INVALID_CODES);
    no_webhook(d).build()
}

pub fn admin_delete_webhook(d: Describe) -> Operation {
    let view = d.components.of::<WebhookDeletedView>();
    no_webhook(
        admin(d)
            .parameter(webhook_id())
            .json(200, "Deleted, with its delivery log.", view),
    )
    .build()
}

pub fn admin_rotate_webhook_secret(d: Describe) -> Operation {
    let view = d.components.of::<WebhookSecretView>();
    no_webhook(
        admin(d.explain(
            "Requests carry two signatures until `previousSecretExpiresAt` (24 h), so a receiver \
             can switch secrets without losing one.",
        ))
        .parameter(webhook_id())
        .json(200, "The endpoint with its new secret (shown once).", view),
    )
    .build()
}

pub fn admin_test_webhook(d: Describe) -> Operation {
    let view = d.components.of::<DeliveryView>();
    no_webhook(admin(d).parameter(webhook_id()).json(
        202,
        "A `webhook.test` event queued to this endpoint alone.",
        view,
    ))
    .build()
}

pub fn admin_webhook_deliveries(d: Describe) -> Operation {
    let view = d.components.of::<DeliveriesView>();
    let types: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    admin(d)
        .parameter(query(
            "endpoint",
            false,
            "Only this endpoint's deliveries.",
            string(),
        ))
        .parameter(query(
            "status",
            false,
            "Only deliveries in this state.",
            schemas::one_of_strings(["pending", "delivered", "failed"]),
        ))
        .parameter(query(
            "type",
            false,
            "Only deliveries of this event type.",
            schemas::one_of_strings(types),
        ))
        .parameter(query(
            "since",
            false,
            "Only deliveries created at or after this RFC 3339 time.",
            string(),
        ))
        .parameter(query(
            "limit",
            false,
            "Page size, 1 to 200 (default 50).",
            string(),
        ))
        .parameter(query(
            "cursor",
            false,
            "The previous page's `nextCursor`.",
            string(),
        ))
        .json(200, "A page of the delivery log, newest first.", view)
        .problem(400, "A bad parameter, naming it.", &["bad_request"])
        .build()
}

pub fn admin_retry_delivery(d: Describe) -> Operation {
    let view = d.components.of::<DeliveryView>();
    admin(d)
        .parameter(path_parameter("id", "The delivery's id.", string()))
        .json(202, "Pending again, due now.", view)
        .problem(404, "No delivery with that id.", &["not_found"])
        .problem(
            409,
            "The delivery is pending: its next attempt is scheduled.",
            &["delivery_pending"],
        )
        .build()
}
