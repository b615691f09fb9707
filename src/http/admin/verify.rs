//! `POST /api/admin/verify`: verification with full detail for trusted callers.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body;
use super::quota_views::{CreditsLeftView, RateLimitView};
use super::views::{AdminVerifyView, RotationView, VerifiedView};
use crate::domain::access::Query;
use crate::domain::analytics::Code;
use crate::domain::quota::{LimitName, Usage, MAX_COST};
use crate::domain::Privilege;
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{ApiError, AppState};
use crate::service::VerifyOptions;
use crate::telemetry::metrics::{VerifyResult, VerifyRoute};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The raw key.
    key: String,
    /// When given, a token of another privilege is `NOT_FOUND`.
    privilege: Option<Privilege>,
    /// When given, the token's IP restriction is checked against it.
    #[schema(schema_with = crate::http::openapi::schemas::optional_ip)]
    ip: Option<IpAddr>,
    /// Count this use (default true: a verification is a use).
    count: Option<bool>,
    /// A permission query (`a.read AND (b.* OR NOT c)`): failing it is
    /// `INSUFFICIENT_PERMISSIONS`, and not a use; a malformed one is a 400 naming the offset.
    #[schema(max_length = 1000)]
    permissions: Option<String>,
    /// What this verification costs against every auto-applied limit and the credits
    /// (default 1; 0 only checks that one more would pass).
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 1_000_000_000)]
    cost: Option<serde_json::Value>,
    /// Limits to charge by name (the token's or its owner's), each at its own cost (default:
    /// `cost`); an auto-applied limit named here is charged once, at this cost.
    #[serde(default)]
    #[schema(max_items = 40)]
    ratelimits: Vec<NamedCost>,
    /// Analytics tags (SPEC B11): keys of `analytics.tags` (default `route`, `method`), values
    /// of at most 64 characters; an unknown key is a 400 naming it.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    tags: std::collections::BTreeMap<String, String>,
}

/// A limit charged by name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamedCost {
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    name: String,
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 1_000_000_000)]
    cost: Option<serde_json::Value>,
}

/// The charge a request asks for (400 naming the field when a cost or a name is malformed).
fn usage(request: &VerifyRequest) -> Result<Option<Usage>, AdminFailure> {
    if request.cost.is_none() && request.ratelimits.is_empty() {
        return Ok(None);
    }
    let cost_of = |value: &serde_json::Value, field: String| {
        value
            .as_u64()
            .filter(|cost| *cost <= MAX_COST)
            .ok_or_else(|| {
                let message = format!("{field} must be an integer from 0 to {MAX_COST}");
                AdminFailure::bad_request(message).field(field)
            })
    };
    let cost = match &request.cost {
        Some(value) => cost_of(value, "cost".to_owned())?,
        None => 1,
    };
    let mut named = Vec::with_capacity(request.ratelimits.len());
    for (i, limit) in request.ratelimits.iter().enumerate() {
        let name = LimitName::parse(&limit.name).map_err(|err| {
            AdminFailure::bad_request(err.to_string()).field(format!("ratelimits[{i}].name"))
        })?;
        let own = match &limit.cost {
            Some(value) => cost_of(value, format!("ratelimits[{i}].cost"))?,
            None => cost,
        };
        named.push((name, own));
    }
    Usage::new(cost, named)
        .map(Some)
        .map_err(|err| AdminFailure::bad_request(err.to_string()).field("ratelimits"))
}

/// Always 200 for a well-formed, authenticated request: `{valid, code, …token, metadata}`.
pub async fn verify(
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: VerifyRequest = body(&req, payload).await?;
    let query = request
        .permissions
        .as_deref()
        .map(Query::parse)
        .transpose()
        .map_err(|err| AdminFailure::bad_request(err.to_string()).field("permissions"))?;
    let usage = usage(&request)?;
    let pairs = request.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let tags = state.tokens.analytics_tags(pairs).map_err(|err| {
        let field = err.field();
        AdminFailure::bad_request(err.to_string()).field(field)
    })?;
    let count = request.count.unwrap_or(true);
    let options = VerifyOptions::new(Privilege::default(), request.ip)
        .skip_count_updates(!count)
        .bypass_ip_check(request.ip.is_none())
        .permissions(query.as_ref())
        .usage(usage.as_ref())
        .tags(&tags)
        .analytics(true);
    let verification = state
        .tokens
        .verify_for_admin(&request.key, request.privilege, options)
        .await
        .map_err(|err| {
            state
                .metrics
                .verification(VerifyRoute::Admin, VerifyResult::ServerError);
            AdminFailure::unavailable(&state.metrics, "admin-verify", &err)
        })?;
    let verification = verification.map_err(|unknown| {
        let message = format!("no limit named {:?}", unknown.name.as_str());
        AdminFailure::invalid("unknown_ratelimit", message)
            .field(format!("ratelimits[{}].name", unknown.index))
    })?;
    let result = VerifyResult::from(verification.code);
    state.metrics.verification(VerifyRoute::Admin, result);
    let token = verification.token.as_ref().map(|token| {
        let mut view = VerifiedView::new(token);
        if let Some(verified) = &verification.verified {
            view.usage_count = verified.usage_count;
            view.last_used = verified.last_used;
        }
        view
    });
    let quota = verification.quota.as_ref();
    let answer = AdminVerifyView {
        valid: verification.code == Code::Valid,
        code: verification.code,
        ratelimits: quota
            .filter(|report| !report.limits.is_empty())
            .map(|report| report.limits.iter().map(RateLimitView::from).collect()),
        credits: CreditsLeftView::of(&verification.credits),
        retry_after: quota
            .and_then(|report| report.retry_after_ms)
            .filter(|_| verification.code != Code::Valid)
            .map(|ms| ms.div_ceil(1000)),
        rotation: verification.token.as_ref().and_then(|token| {
            let replaced = token.replaced.as_deref()?;
            Some(RotationView {
                replaced_by: replaced.by,
                grace_ends_at: token.expires_at?,
            })
        }),
        token,
    };
    Ok(json(StatusCode::OK, &answer))
}
