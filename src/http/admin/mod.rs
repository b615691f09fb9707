//! `/api/admin/*`: the admin API for trusted servers and operators (SPEC B2), authenticated
//! by an admin credential holding the route's scope (SPEC B9; `http/caller.rs`).

pub(super) mod access;
pub(super) mod analytics;
pub(super) mod analytics_views;
pub(super) mod audit;
pub(super) mod audit_views;
pub(super) mod bans;
pub(super) mod bulk;
pub(super) mod credentials;
pub(super) mod quota;
pub(super) mod quota_views;
pub(super) mod roles;
pub(super) mod rotate;
pub(super) mod state;
pub(super) mod tokens;
pub(super) mod verify;
pub(super) mod views;

pub(crate) use access::change_as as change_access_as;
pub(crate) use audit::audit_query;
pub(crate) use credentials::{create_as as create_credential_as, CreateCredentialRequest};
pub(crate) use quota::{
    credits_edit, edit_as as edit_quota_as, limits_edit, CreditsPatch, RateLimitsRequest,
};
pub(crate) use roles::{
    create_as as create_role_as, delete_as as delete_role_as, update_as as update_role_as,
    CreateRoleRequest, UpdateRoleRequest,
};
pub(crate) use tokens::{create_as as create_token_as, CreateTokenRequest};
pub(crate) use views::TokenView;
pub(crate) use webhooks::{
    create_as as create_webhook_as, update_as as update_webhook_as, CreateWebhookRequest,
    UpdateWebhookRequest,
};
pub(super) mod webhook_views;
pub(super) mod webhooks;

pub(crate) use access::AccessRequest;
pub(super) use bulk::BulkRequest;
pub(super) use credentials::UpdateCredentialRequest;
pub(super) use rotate::RotateRequest;
pub(super) use state::StateRequest;
pub(super) use tokens::MAX_PAGE;
pub(super) use verify::VerifyRequest;

use actix_web::web::{self, Payload};
use actix_web::HttpRequest;
use serde::de::DeserializeOwned;

use super::body::{json_body, BodyError, ADMIN_BODY_LIMIT, DEFAULT_BODY_TIMEOUT};
use super::error::AdminFailure;
use super::AppState;
use crate::domain::metadata::MetadataError;

/// Reads an admin JSON body (≤ 16 KiB).
async fn body<T: DeserializeOwned>(req: &HttpRequest, payload: Payload) -> Result<T, AdminFailure> {
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |state| state.body_timeout);
    json_body(req, payload, ADMIN_BODY_LIMIT, timeout)
        .await
        .map_err(|err| match err {
            BodyError::NotJson => AdminFailure::unsupported_media_type(),
            BodyError::Empty => AdminFailure::bad_request("the body is empty"),
            BodyError::TooLarge { limit } => AdminFailure::payload_too_large(limit),
            BodyError::TimedOut { after } => AdminFailure::request_timeout(after),
            BodyError::Shape { why, field } => match named_field(&why).or(field) {
                Some(field) => AdminFailure::bad_request(why.clone()).field(field),
                None => AdminFailure::bad_request(why),
            },
        })
}

/// The field serde names in "unknown field `x`" / "missing field `x`".
fn named_field(why: &str) -> Option<String> {
    let rest = why
        .strip_prefix("unknown field `")
        .or_else(|| why.strip_prefix("missing field `"))?;
    rest.split_once('`').map(|(field, _)| field.to_owned())
}

/// The query string as name → value, else 400.
fn query_map(req: &HttpRequest) -> Result<std::collections::HashMap<String, String>, AdminFailure> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| AdminFailure::bad_request("malformed query string"))
}

/// A keyset page: the first `limit` of the `limit + 1` rows read, and the next page's cursor
/// (the last row's id) when there was one more.
fn keyset_page<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> u64) -> (Vec<T>, Option<u64>) {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more.then(|| rows.last().map(id)).flatten();
    (rows, next)
}

/// A token id from the path; anything else names no token.
fn token_id(raw: &str) -> Result<u64, AdminFailure> {
    raw.parse()
        .map_err(|_| AdminFailure::not_found(format!("no token with id {raw:?}")))
}

/// An owner id from the path (SPEC B3), else 400 naming `userId`.
fn user_id(raw: &str) -> Result<crate::domain::UserId, AdminFailure> {
    raw.parse()
        .map_err(|_| AdminFailure::bad_request(tokens::USER_ID_RULE).field("userId"))
}

/// 422 naming the key and the rule it broke.
pub(crate) fn invalid_metadata(err: &MetadataError) -> AdminFailure {
    let (message, field) = if err.key.is_empty() {
        (err.rule.to_owned(), "metadata".to_owned())
    } else {
        (
            format!("{}: {}", err.key, err.rule),
            format!("metadata.{}", err.key),
        )
    };
    AdminFailure::invalid("invalid_metadata", message).field(field)
}

/// An optional `reason` (SPEC B10), else 422 `invalid_reason` naming it.
fn reason(text: Option<&str>) -> Result<Option<crate::domain::state::StateReason>, AdminFailure> {
    text.map(crate::domain::state::StateReason::parse)
        .transpose()
        .map_err(|err| AdminFailure::invalid("invalid_reason", err.to_string()).field("reason"))
}
