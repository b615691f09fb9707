//! The actions of a token's page (SPEC B14), each a form through the admin API's service calls
//! and under its scope: disable or enable, rotate with a grace (the new key shown once), revoke
//! behind a confirmation, replace the metadata.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};

use super::form::{list, FormErrors, Kept};
use super::pages::{when, Layout};
use super::session::{scoped_form, store_down};
use super::token::{not_found, page, page_with, plain, secret_page, SecretPage};
use crate::http::AppState;
use crate::service::GraceDecision;

/// Back to the token's page, saying what was done.
fn done(id: u64, what: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/console/tokens/{id}?done={what}")))
        .finish()
}

/// `POST /console/tokens/{id}/state`: `enabled=false` (with a `reason`) disables, `true`
/// enables.
pub async fn set_state(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "tokens.disable").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let id = id.into_inner();
    let change = match super::form::state_change(&form) {
        Ok(change) => change,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return page(&state, &signed, id, "24h", errors, None, status).await;
        }
    };
    let enabled = change.enabled;
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    match tokens.set_token_state(id, &change).await {
        Ok(Some(_)) => done(id, if enabled { "enabled" } else { "disabled" }),
        Ok(None) => not_found(&signed, &id.to_string()),
        Err(err) => {
            tracing::error!(error = %err, "console: the state could not be changed");
            store_down(&signed, "/console/tokens")
        }
    }
}

/// `POST /console/tokens/{id}/revoke`: only with `confirm=yes` (the checkbox of the form).
pub async fn revoke(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "tokens.revoke").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let id = id.into_inner();
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let errors = FormErrors(vec![(
            "confirm",
            "Tick the box to confirm: a revoked token never verifies again.".to_owned(),
        )]);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return page(&state, &signed, id, "24h", errors, None, status).await;
    }
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    match tokens.revoke_by_id(id).await {
        Ok(Some(_)) => done(id, "revoked"),
        Ok(None) => not_found(&signed, &id.to_string()),
        Err(err) => {
            tracing::error!(error = %err, "console: the token could not be revoked");
            store_down(&signed, "/console/tokens")
        }
    }
}

/// The grace presets of the rotate form, in ms.
const GRACES: [(&str, u64); 4] = [
    ("0", 0),
    ("1h", 3_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
];

/// `POST /console/tokens/{id}/rotate`: a new key, shown once; the old one keeps verifying for
/// the grace chosen.
pub async fn rotate(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "tokens.rotate").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let id = id.into_inner();
    let refuse = |field: &'static str, message: String| FormErrors(vec![(field, message)]);
    let grace = form.get("grace").map_or("0", String::as_str);
    let Some((_, grace_ms)) = GRACES.iter().find(|(name, _)| *name == grace) else {
        let errors = refuse("grace", "Choose one of the graces offered.".to_owned());
        return page(
            &state,
            &signed,
            id,
            "24h",
            errors,
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    let message = match tokens.rotate_with_grace(id, *grace_ms, false, None).await {
        Ok(GraceDecision::Rotated(rotated)) => {
            let now = state.clock.now();
            let page = SecretPage {
                layout: Layout::signed("New key", &signed, "/console/tokens"),
                heading: format!("Token {id} rotated"),
                token_id: rotated.new.id,
                secret: rotated.raw_api_key,
                detail: format!(
                    "The old key verifies until {}.",
                    when(rotated.grace_ends_at, now)
                ),
            };
            return secret_page(&page);
        }
        Ok(GraceDecision::NotFound) => return not_found(&signed, &id.to_string()),
        Ok(GraceDecision::Revoked) => "This token is revoked.".to_owned(),
        Ok(GraceDecision::Expired) => "This token has expired.".to_owned(),
        Ok(GraceDecision::InProgress { .. }) => {
            "A rotation of this token is still in its grace: rotate its replacement.".to_owned()
        }
        Ok(GraceDecision::LimitReached { limit }) => {
            format!("Its owner holds the most valid tokens allowed ({limit}).")
        }
        Ok(GraceDecision::CreateFailed) | Err(_) => return store_down(&signed, "/console/tokens"),
    };
    let errors = refuse("grace", message);
    page(
        &state,
        &signed,
        id,
        "24h",
        errors,
        None,
        StatusCode::CONFLICT,
    )
    .await
}

/// `POST /console/tokens/{id}/metadata`: replaces the metadata with the JSON object sent
/// (`tokens.update`); the admin API's rules and messages, the refused text kept in the editor.
pub async fn set_metadata(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "tokens.update").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let id = id.into_inner();
    let text = form.get("metadata").cloned().unwrap_or_default();
    let refuse = |message: String| {
        (
            FormErrors::one("metadata", message),
            Kept::one("metadata", text.clone()),
        )
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(_) => {
            let refused = refuse("metadata must be a JSON object".to_owned());
            return page_with(&state, &signed, id, plain(), refused, status).await;
        }
    };
    let metadata = match crate::domain::Metadata::parse(&value) {
        Ok(metadata) => metadata,
        Err(err) => {
            let refused = refuse(crate::http::invalid_metadata(&err).message);
            return page_with(&state, &signed, id, plain(), refused, status).await;
        }
    };
    let tokens = state.tokens.acting_as(signed.caller.actor.clone());
    let change = crate::store::MetadataChange::Replace(metadata);
    match tokens.change_metadata(id, change).await {
        Ok(crate::store::MetadataOutcome::Updated(_)) => done(id, "metadata"),
        Ok(crate::store::MetadataOutcome::NotFound) => not_found(&signed, &id.to_string()),
        Ok(crate::store::MetadataOutcome::Invalid(err)) => {
            let refused = refuse(crate::http::invalid_metadata(&err).message);
            page_with(&state, &signed, id, plain(), refused, status).await
        }
        Err(err) => {
            tracing::error!(error = %err, "console: the metadata could not be saved");
            store_down(&signed, "/console/tokens")
        }
    }
}

/// The fields of the roles and permissions form, as the API's (`addRoles`, …) and the form's.
const ACCESS_FIELDS: [(&str, &str); 4] = [
    ("addRoles", "addRoles"),
    ("removeRoles", "removeRoles"),
    ("addPermissions", "addPermissions"),
    ("removePermissions", "removePermissions"),
];

/// `POST /console/tokens/{id}/access`: roles and direct grants to give and take, each field a
/// comma-separated list (`tokens.update`), through the admin API's `POST …/access`.
pub async fn set_access(
    req: HttpRequest,
    state: Data<AppState>,
    id: Path<u64>,
    body: Bytes,
) -> HttpResponse {
    let (signed, form) = match scoped_form(&req, &state, &body, "tokens.update").await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let id = id.into_inner();
    let text = |field: &str| form.get(field).map_or("", String::as_str);
    let mut request = serde_json::Map::new();
    for (field, _) in ACCESS_FIELDS {
        request.insert(field.into(), serde_json::json!(list(text(field))));
    }
    let refused = |errors: FormErrors| {
        (
            errors,
            Kept::of(&form, &ACCESS_FIELDS.map(|(field, _)| field)),
        )
    };
    let request: crate::http::AccessRequest =
        match serde_json::from_value(serde_json::Value::Object(request)) {
            Ok(request) => request,
            Err(err) => {
                let errors = refused(FormErrors::one("form", err.to_string()));
                let status = StatusCode::BAD_REQUEST;
                return page_with(&state, &signed, id, plain(), errors, status).await;
            }
        };
    let actor = signed.caller.actor.clone();
    match crate::http::change_access_as(&state, actor, id, &request).await {
        Ok(_) => done(id, "access"),
        Err(failure) if failure.status == StatusCode::NOT_FOUND => {
            not_found(&signed, &id.to_string())
        }
        Err(failure) if failure.status == StatusCode::SERVICE_UNAVAILABLE => {
            store_down(&signed, "/console/tokens")
        }
        Err(failure) => {
            let status = failure.status;
            let errors = refused(FormErrors::refused(failure, &ACCESS_FIELDS));
            page_with(&state, &signed, id, plain(), errors, status).await
        }
    }
}
