//! Admin token routes: create with metadata, read, metadata patch/replace, list, revoke, events.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::access::{grants, limit, role_names, unknown_role};
use super::quota::{credits, rate_limits, CreditsInput, RateLimitInput};
use super::views::{
    CreatedView, EventView, EventsView, MetadataView, RevokedView, TokenPage, TokenView,
};
use super::{body, invalid_metadata, token_id};
use crate::domain::access::{limits, AccessLimit, TokenAccess};
use crate::domain::metadata::MetadataPatch;
use crate::domain::quota::Quota;
use crate::domain::{IpRestriction, Lifetime, Metadata, Prefix, Privilege, TokenName, UserId};
use crate::envelope::Reason;
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::Admin;
use crate::http::{ApiError, AppState};
use crate::service::{CreateToken, Creation};
use crate::store::{MetadataChange, MetadataOutcome, TokenQuery, TokenRecord, TokenStatus};

pub(crate) const DEFAULT_PAGE: u32 = 50;
pub(crate) const MAX_PAGE: u32 = 200;
pub(super) const USER_ID_RULE: &str = "userId must be an integer from 1 to 9223372036854775807";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateTokenRequest {
    /// Checked by hand so that the 400 names the field (SPEC B3).
    #[schema(value_type = UserId)]
    user_id: serde_json::Value,
    /// 1–50 characters, no control characters.
    #[schema(schema_with = crate::http::openapi::schemas::token_name)]
    name: String,
    #[serde(default)]
    privilege: Privilege,
    /// 1–32 letters, digits or `-`; `api` when absent.
    #[schema(pattern = "^[A-Za-z0-9-]{1,32}$")]
    prefix: Option<String>,
    /// Lifetime in ms; absent or null = never expires.
    #[schema(schema_with = crate::http::openapi::schemas::lifetime_ms)]
    expires: Option<u64>,
    /// Allowed addresses or CIDR ranges (at most 100); empty = anywhere.
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::ip_list)]
    ips: Vec<String>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<serde_json::Value>,
    /// Roles to give it (each must exist; at most 100).
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::role_names)]
    roles: Vec<String>,
    /// Direct grants: permissions, `prefix.*` or `*` (at most 1,000).
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::schemas::grants)]
    permissions: Vec<String>,
    /// Its own named rate limits (at most 20).
    #[serde(default)]
    #[schema(max_items = 20)]
    ratelimits: Vec<RateLimitInput>,
    /// Credits it starts with (each counting verification spends its cost).
    credits: Option<CreditsInput>,
}

/// `POST /api/admin/tokens`: 201 with the raw key (shown once) and the token.
pub async fn create(
    Admin(admin, _): Admin,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: CreateTokenRequest = body(&req, payload).await?;
    let body = create_as(&state, admin, &request).await?;
    Ok(json(StatusCode::CREATED, &body))
}

/// A creation by `admin` (the admin API's and the console's): the raw key, shown once, and the
/// token; a refusal names the field at fault.
pub(crate) async fn create_as(
    state: &AppState,
    admin: crate::domain::Actor,
    request: &CreateTokenRequest,
) -> Result<CreatedView, AdminFailure> {
    let user_id = request
        .user_id
        .as_u64()
        .and_then(|id| UserId::new(id).ok())
        .ok_or_else(|| AdminFailure::bad_request(USER_ID_RULE).field("userId"))?;
    let name = TokenName::parse(&request.name)
        .map_err(|err| AdminFailure::bad_request(err.to_string()).field("name"))?;
    let prefix = match &request.prefix {
        None => Prefix::default(),
        Some(prefix) => Prefix::parse(prefix)
            .map_err(|err| AdminFailure::bad_request(err.to_string()).field("prefix"))?,
    };
    let lifetime = request
        .expires
        .map(Lifetime::from_ms)
        .transpose()
        .map_err(|err| AdminFailure::bad_request(err.to_string()).field("expires"))?;
    let ips = IpRestriction::parse(&request.ips)
        .map_err(|err| AdminFailure::bad_request(err.to_string()).field("ips"))?;
    let metadata = match &request.metadata {
        None | Some(serde_json::Value::Null) => Metadata::default(),
        Some(value) => Metadata::parse(value).map_err(|err| invalid_metadata(&err))?,
    };
    let access = TokenAccess::new(
        role_names("roles", &request.roles)?,
        grants(
            "permissions",
            &request.permissions,
            limits::TOKEN_PERMISSIONS,
            AccessLimit::Permissions,
        )?,
    );
    let now = state.clock.now();
    let quota = Quota {
        limits: rate_limits("ratelimits", &request.ratelimits)?,
        credits: request
            .credits
            .as_ref()
            .map(|input| credits("credits", input, now))
            .transpose()?,
    };
    let create = CreateToken::new(user_id, request.privilege, name)
        .prefix(prefix)
        .lifetime(lifetime)
        .ips(ips)
        .metadata(metadata)
        .access(access)
        .quota(quota);
    let tokens = state.tokens.acting_as(admin);
    let created = match tokens.create_outcome(create).await {
        Ok(Creation::Created(created)) => created,
        Ok(Creation::LimitReached { limit }) => {
            let message = Reason::TooManyTokens { limit }.as_str().into_owned();
            return Err(AdminFailure::token_limit(message));
        }
        Ok(Creation::UnknownRole(role)) => {
            return Err(unknown_role(&role, "roles", &request.roles))
        }
        Ok(Creation::TooMuchAccess(over)) => return Err(limit(over, "roles")),
        Err(err) => {
            return Err(AdminFailure::unavailable(
                &state.metrics,
                "admin-create",
                &err,
            ))
        }
    };
    let record = tokens
        .token_by_id(created.token_id)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-create", &err))?
        .ok_or_else(|| AdminFailure::not_found("the new token vanished"))?;
    let token = with_quota(state, record).await?;
    Ok(CreatedView {
        raw_api_key: created.raw_api_key,
        raw_public_id: created.raw_public_id,
        expires_at: created.expires_at,
        token,
    })
}

/// `GET /api/admin/tokens/{id}`.
pub async fn get(id: Path<String>, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let record = state
        .tokens
        .token_by_id(id)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-get", &err))?
        .ok_or_else(|| AdminFailure::no_token(id))?;
    let mut view = with_quota(&state, record).await?;
    let usage = usage_24h(&state, &[id]).await?;
    view.usage_24h = usage.map(|usage| usage.get(&id).copied().unwrap_or(0));
    Ok(json(StatusCode::OK, &view))
}

/// Verifications of each token over the last 24 hours (SPEC B11); `None` without analytics.
async fn usage_24h(
    state: &AppState,
    ids: &[u64],
) -> Result<Option<std::collections::HashMap<u64, u64>>, AdminFailure> {
    state
        .tokens
        .usage_24h(ids)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-analytics", &err))
}

/// The view of one token with its limits (this window's remaining and reset) and credits.
async fn with_quota(state: &AppState, record: TokenRecord) -> Result<TokenView, AdminFailure> {
    let quota = state
        .tokens
        .quota_view_of(&record)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-get", &err))?;
    Ok(TokenView::new(record, state.clock.now()).with_quota(&quota))
}

/// `PATCH /api/admin/tokens/{id}/metadata`: merge-patch; answers the resulting metadata.
pub async fn patch_metadata(
    Admin(admin, _): Admin,
    req: HttpRequest,
    id: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let value: serde_json::Value = body(&req, payload).await?;
    let patch = MetadataPatch::parse(&value).map_err(|err| invalid_metadata(&err))?;
    change_metadata(&state, admin, id, MetadataChange::Patch(patch)).await
}

/// `PUT /api/admin/tokens/{id}/metadata`: replaces all of it.
pub async fn replace_metadata(
    Admin(admin, _): Admin,
    req: HttpRequest,
    id: Path<String>,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let value: serde_json::Value = body(&req, payload).await?;
    let metadata = Metadata::parse(&value).map_err(|err| invalid_metadata(&err))?;
    change_metadata(&state, admin, id, MetadataChange::Replace(metadata)).await
}

async fn change_metadata(
    state: &AppState,
    admin: crate::domain::Actor,
    id: u64,
    change: MetadataChange,
) -> Result<HttpResponse, ApiError> {
    let outcome = state
        .tokens
        .acting_as(admin)
        .change_metadata(id, change)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-metadata", &err))?;
    match outcome {
        MetadataOutcome::Updated(metadata) => Ok(json(StatusCode::OK, &MetadataView { metadata })),
        MetadataOutcome::NotFound => Err(AdminFailure::no_token(id).into()),
        MetadataOutcome::Invalid(err) => Err(invalid_metadata(&err).into()),
    }
}

/// `POST /api/admin/tokens/{id}/revoke`: idempotent; `revoked` says whether this call did it.
pub async fn revoke(
    Admin(admin, _): Admin,
    id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let revoked = state
        .tokens
        .acting_as(admin)
        .revoke_by_id(id)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-revoke", &err))?;
    let (record, changed) = revoked.ok_or_else(|| AdminFailure::no_token(id))?;
    let body = RevokedView {
        revoked: changed,
        token: TokenView::new(record, state.clock.now()),
    };
    Ok(json(StatusCode::OK, &body))
}

/// `GET /api/admin/tokens/{id}/events`: the audit log, oldest first.
pub async fn events(id: Path<String>, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = token_id(&id)?;
    let unavailable = |err| AdminFailure::unavailable(&state.metrics, "admin-events", &err);
    let events = state.tokens.token_events(id).await.map_err(unavailable)?;
    if events.is_empty()
        && state
            .tokens
            .token_by_id(id)
            .await
            .map_err(unavailable)?
            .is_none()
    {
        return Err(AdminFailure::no_token(id).into());
    }
    let events: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    Ok(json(StatusCode::OK, &EventsView { events }))
}

/// `GET /api/admin/users/{userId}/tokens?status=&meta.<key>=&limit=&cursor=`.
pub async fn list(
    req: HttpRequest,
    user_id: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user_id = super::user_id(&user_id)?;
    let query = list_query(user_id, &super::query_map(&req)?, state.clock.now())?;
    let limit = query.limit;
    let page_query = TokenQuery {
        limit: limit + 1,
        ..query
    };
    let records = state
        .tokens
        .list_tokens(&page_query)
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-list", &err))?;
    let (records, next_cursor) = super::keyset_page(records, limit, |r| r.id);
    let now = state.clock.now();
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    let usage = usage_24h(&state, &ids).await?;
    let tokens: Vec<TokenView> = records
        .into_iter()
        .map(|r| {
            let used = usage.as_ref().map(|u| u.get(&r.id).copied().unwrap_or(0));
            let mut view = TokenView::new(r, now);
            view.usage_24h = used;
            view
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &TokenPage {
            tokens,
            next_cursor,
        },
    ))
}

fn list_query(
    user_id: UserId,
    params: &HashMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TokenQuery, AdminFailure> {
    let mut query = TokenQuery {
        user_id: Some(user_id),
        name: None,
        public_identifier: None,
        status: TokenStatus::All,
        metadata: None,
        limit: DEFAULT_PAGE,
        before_id: None,
        now,
    };
    for (name, value) in params {
        match name.as_str() {
            "status" => {
                query.status = match value.as_str() {
                    "valid" => TokenStatus::Valid,
                    "invalid" => TokenStatus::Invalid,
                    "all" => TokenStatus::All,
                    _ => {
                        let message = "status is valid, invalid or all";
                        return Err(AdminFailure::bad_request(message).field("status"));
                    }
                }
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        AdminFailure::bad_request(format!("limit is 1 to {MAX_PAGE}"))
                            .field("limit")
                    })?;
            }
            "cursor" => {
                let cursor = value.parse().map_err(|_| {
                    AdminFailure::bad_request("cursor is the nextCursor of a previous page")
                        .field("cursor")
                })?;
                query.before_id = Some(super::audit::keyset_bound(cursor));
            }
            other => {
                let deep = other
                    .strip_prefix("meta[")
                    .and_then(|k| k.strip_suffix(']'));
                let Some(key) = other.strip_prefix("meta.").or(deep) else {
                    let message = format!("unknown query parameter {other:?}");
                    return Err(AdminFailure::bad_request(message).field(other.to_owned()));
                };
                // Same rule as stored keys: the key goes into a JSON path.
                Metadata::parse(&json!({ key: null })).map_err(|err| invalid_metadata(&err))?;
                if query.metadata.is_some() {
                    let message = "filter on one metadata key at a time";
                    return Err(AdminFailure::bad_request(message).field(other.to_owned()));
                }
                query.metadata = Some((key.to_owned(), value.clone()));
            }
        }
    }
    Ok(query)
}
