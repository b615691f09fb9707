//! Customer limits and credits over the admin API (SPEC B5): request shapes parsed with 422s
//! that name the field at fault, and the routes that replace limits, change credits and read
//! an owner's quota.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::quota_views::{
    configured, CreditsJson, OwnerQuotaView, TokenCreditsView, TokenLimitsView,
};
use super::{body, token_id, user_id};
use crate::domain::quota::{
    CreditChange, Credits, Interval, LimitName, RateLimit, RateLimits, Refill, Remaining, Subject,
    MAX_CREDITS, MAX_DURATION_MS, MAX_LIMIT, MAX_LIMITS, MIN_DURATION_MS,
};
use crate::domain::{Actor, UserId};
use crate::http::error::AdminFailure;
use crate::http::response::json;
use crate::http::{Admin, ApiError, AppState};
use crate::quotas::QuotaView;
use crate::store::QuotaChange;

/// A named limit: `limit` uses per `duration` ms.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RateLimitInput {
    /// 1–64 characters of `A-Z a-z 0-9 _ - . :`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    name: String,
    #[schema(value_type = u64, minimum = 1, maximum = 1_000_000_000)]
    limit: Value,
    /// The window in ms: 1 s to 30 days.
    #[schema(value_type = u64, minimum = 1000, maximum = 2_592_000_000_u64)]
    duration: Value,
    /// Charged by every counting verification (default); else only when a verification
    /// names it.
    auto_apply: Option<bool>,
}

/// Credits are set back to `amount` at each UTC boundary: every midnight, or every month on
/// `refillDay` (the 1st by default; the month's last day when it is shorter).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RefillInput {
    #[schema(pattern = "^(daily|monthly)$")]
    interval: String,
    #[schema(value_type = u64, minimum = 1, maximum = 9_007_199_254_740_992_u64)]
    amount: Value,
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 31)]
    refill_day: Option<Value>,
}

/// Credits a token starts with.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreditsInput {
    #[schema(value_type = u64, minimum = 0, maximum = 9_007_199_254_740_992_u64)]
    remaining: Value,
    refill: Option<RefillInput>,
}

/// `PUT …/ratelimits`: the whole new set (empty: none).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitsRequest {
    #[schema(max_items = 20)]
    ratelimits: Vec<RateLimitInput>,
}

/// `PATCH …/credits`: at most one of `remaining` (set), `increment`, `decrement` (never below
/// zero), and/or `refill` (`null` removes it). Credits that do not exist yet start at zero.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreditsPatch {
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 9_007_199_254_740_992_u64)]
    remaining: Option<Value>,
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 9_007_199_254_740_992_u64)]
    increment: Option<Value>,
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 9_007_199_254_740_992_u64)]
    decrement: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RefillInput>, nullable)]
    refill: Option<Option<RefillInput>>,
}

/// A field that is there, even as `null` (`Some(None)`), apart from one that is absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A whole number in `min..=max` at `field`, else 422 `code` naming it.
fn whole(
    value: &Value,
    field: &str,
    min: u64,
    max: u64,
    code: &'static str,
) -> Result<u64, AdminFailure> {
    value
        .as_u64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            AdminFailure::invalid(
                code,
                format!("{field} must be an integer from {min} to {max}"),
            )
            .field(field)
        })
}

/// The limits at `field` (422 `invalid_ratelimit` naming `field[i].<part>` or `field`).
pub(super) fn rate_limits(
    field: &str,
    inputs: &[RateLimitInput],
) -> Result<RateLimits, AdminFailure> {
    const CODE: &str = "invalid_ratelimit";
    if inputs.len() > MAX_LIMITS {
        let message = format!("at most {MAX_LIMITS} limits");
        return Err(AdminFailure::invalid(CODE, message).field(field));
    }
    let mut limits = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let at = |part: &str| format!("{field}[{i}].{part}");
        let name = LimitName::parse(&input.name)
            .map_err(|err| AdminFailure::invalid(CODE, err.to_string()).field(at("name")))?;
        let limit = whole(&input.limit, &at("limit"), 1, MAX_LIMIT, CODE)?;
        let duration = whole(
            &input.duration,
            &at("duration"),
            MIN_DURATION_MS,
            MAX_DURATION_MS,
            CODE,
        )?;
        let auto_apply = input.auto_apply.unwrap_or(true);
        let limit = RateLimit::new(name, limit, duration, auto_apply)
            .map_err(|err| AdminFailure::invalid(CODE, err.to_string()).field(at("name")))?;
        limits.push(limit);
    }
    RateLimits::new(limits).map_err(|err| AdminFailure::invalid(CODE, err.to_string()).field(field))
}

fn refill(field: &str, input: &RefillInput) -> Result<Refill, AdminFailure> {
    const CODE: &str = "invalid_credits";
    let interval = Interval::parse(&input.interval).ok_or_else(|| {
        AdminFailure::invalid(CODE, "refill.interval must be daily or monthly")
            .field(format!("{field}.interval"))
    })?;
    let amount = whole(
        &input.amount,
        &format!("{field}.amount"),
        1,
        MAX_CREDITS,
        CODE,
    )?;
    let day_field = format!("{field}.refillDay");
    let day = match &input.refill_day {
        None | Some(Value::Null) => None,
        Some(day) => Some(whole(day, &day_field, 1, 31, CODE)?),
    };
    Refill::new(interval, amount, day)
        .map_err(|err| AdminFailure::invalid(CODE, err.to_string()).field(day_field))
}

/// The credits a token is created with.
pub(super) fn credits(
    field: &str,
    input: &CreditsInput,
    now: DateTime<Utc>,
) -> Result<Credits, AdminFailure> {
    let remaining_field = format!("{field}.remaining");
    let remaining = whole(
        &input.remaining,
        &remaining_field,
        0,
        MAX_CREDITS,
        "invalid_credits",
    )?;
    let refill = input
        .refill
        .as_ref()
        .map(|input| refill(&format!("{field}.refill"), input))
        .transpose()?;
    Credits::new(remaining, refill, now).map_err(|err| {
        AdminFailure::invalid("invalid_credits", err.to_string()).field(remaining_field)
    })
}

fn change(patch: &CreditsPatch) -> Result<CreditChange, AdminFailure> {
    const CODE: &str = "invalid_credits";
    let given: Vec<(&str, &Value)> = [
        ("remaining", &patch.remaining),
        ("increment", &patch.increment),
        ("decrement", &patch.decrement),
    ]
    .into_iter()
    .filter_map(|(field, value)| value.as_ref().map(|value| (field, value)))
    .collect();
    let remaining = match given.as_slice() {
        [] => None,
        [(field, value)] => {
            let n = whole(value, field, 0, MAX_CREDITS, CODE)?;
            Some(match *field {
                "remaining" => Remaining::Set(n),
                "increment" => Remaining::Increment(n),
                _ => Remaining::Decrement(n),
            })
        }
        [_, (second, _), ..] => {
            let message = "give at most one of remaining, increment and decrement";
            return Err(AdminFailure::invalid(CODE, message).field(*second));
        }
    };
    let refill = match &patch.refill {
        None => None,
        Some(None) => Some(None),
        Some(Some(input)) => Some(Some(refill("refill", input)?)),
    };
    if remaining.is_none() && refill.is_none() {
        let message = "give remaining, increment, decrement or refill";
        return Err(AdminFailure::invalid(CODE, message));
    }
    CreditChange::new(remaining, refill).map_err(|err| AdminFailure::invalid(CODE, err.to_string()))
}

fn owner_view(user: UserId, view: QuotaView) -> OwnerQuotaView {
    OwnerQuotaView {
        user_id: user,
        ratelimits: configured(&view),
        credits: view.credits.map(CreditsJson::from),
    }
}

/// What a route changes.
pub(crate) enum Edit {
    Limits(RateLimits),
    Credits(CreditChange),
}

/// Reads the body of `req` as the edit `parse` makes of it, applies it to `subject` as
/// `admin`, and answers the subject's limits and credits as they stand (404 for no token).
async fn edit<T: serde::de::DeserializeOwned>(
    (req, payload, state, admin): (HttpRequest, Payload, &AppState, Actor),
    subject: Subject,
    parse: fn(&T) -> Result<Edit, AdminFailure>,
) -> Result<QuotaView, ApiError> {
    let request: T = body(&req, payload).await?;
    Ok(edit_as(state, admin, subject, parse(&request)?).await?)
}

/// An edit of `subject` by `admin` (the admin API's and the console's): its limits and
/// credits as they stand after it.
pub(crate) async fn edit_as(
    state: &AppState,
    admin: Actor,
    subject: Subject,
    edit: Edit,
) -> Result<QuotaView, AdminFailure> {
    let tokens = state.tokens.acting_as(admin);
    let changed = match edit {
        Edit::Limits(limits) => tokens.set_ratelimits(subject, &limits).await,
        Edit::Credits(change) => tokens.change_credits(subject, &change).await,
    };
    match changed.map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-quota", &err))? {
        QuotaChange::Changed { value, .. } => Ok(value),
        QuotaChange::NotFound => Err(AdminFailure::no_token(subject.id())),
    }
}

/// The edit a `PUT …/ratelimits` body asks for.
pub(crate) fn limits_edit(request: &RateLimitsRequest) -> Result<Edit, AdminFailure> {
    rate_limits("ratelimits", &request.ratelimits).map(Edit::Limits)
}

/// The edit a `PATCH …/credits` body asks for.
pub(crate) fn credits_edit(patch: &CreditsPatch) -> Result<Edit, AdminFailure> {
    change(patch).map(Edit::Credits)
}

/// `PUT /api/admin/tokens/{id}/ratelimits`: 200 with the token's limits now.
pub async fn put_token_limits(
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
    Admin(admin, _): Admin,
) -> Result<HttpResponse, ApiError> {
    let subject = Subject::Token(token_id(&id)?);
    let view = edit((req, payload, &state, admin), subject, limits_edit).await?;
    let ratelimits = configured(&view);
    Ok(json(StatusCode::OK, &TokenLimitsView { ratelimits }))
}

/// `PUT /api/admin/users/{user_id}/ratelimits`: 200 with the owner's limits and credits now.
pub async fn put_user_limits(
    user: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
    Admin(admin, _): Admin,
) -> Result<HttpResponse, ApiError> {
    owner_edit(&user, (req, payload, &state, admin), limits_edit).await
}

/// `PATCH /api/admin/tokens/{id}/credits`: 200 with the token's credits now.
pub async fn patch_token_credits(
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
    Admin(admin, _): Admin,
) -> Result<HttpResponse, ApiError> {
    let subject = Subject::Token(token_id(&id)?);
    let view = edit((req, payload, &state, admin), subject, credits_edit).await?;
    let credits = view.credits.map(CreditsJson::from);
    Ok(json(StatusCode::OK, &TokenCreditsView { credits }))
}

/// `PATCH /api/admin/users/{user_id}/credits`: 200 with the owner's limits and credits now.
pub async fn patch_user_credits(
    user: Path<String>,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
    Admin(admin, _): Admin,
) -> Result<HttpResponse, ApiError> {
    owner_edit(&user, (req, payload, &state, admin), credits_edit).await
}

/// An edit of the owner at `user` (a path segment), answered with its limits and credits.
async fn owner_edit<T: serde::de::DeserializeOwned>(
    user: &str,
    request: (HttpRequest, Payload, &AppState, Actor),
    parse: fn(&T) -> Result<Edit, AdminFailure>,
) -> Result<HttpResponse, ApiError> {
    let user = user_id(user)?;
    let view = edit(request, Subject::Owner(user), parse).await?;
    Ok(json(StatusCode::OK, &owner_view(user, view)))
}

/// `GET /api/admin/users/{user_id}/quota`: the owner's limits and credits.
pub async fn get_user_quota(
    user: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = user_id(&user)?;
    let view = state
        .tokens
        .quota_view(Subject::Owner(user))
        .await
        .map_err(|err| AdminFailure::unavailable(&state.metrics, "admin-quota", &err))?
        .unwrap_or_default();
    Ok(json(StatusCode::OK, &owner_view(user, view)))
}
