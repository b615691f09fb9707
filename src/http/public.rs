//! `/health`, `GET /api/public/verify` and the 404 fallback.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::json as json_value;

use super::limit::enforce;
use super::query_params::verify_params;
use super::quota_headers;
use super::response::{json, verified};
use super::{client_ip, ApiError, AppState};
use crate::domain::analytics::{Code, Tags};
use crate::envelope::Reason;
use crate::service::{VerifyOptions, VerifyOutcome};
use crate::telemetry::metrics::{VerifyResult, VerifyRoute};

pub async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

/// The body of `/ready`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    status: ReadyStatus,
    database: DependencyState,
    /// Only when `redis.url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<DependencyState>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum ReadyStatus {
    Ready,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum DependencyState {
    Up,
    Down,
}

/// Readiness for load balancers: 200 when the database answers, else 503. `/health` stays 200
/// either way (the process is alive and still serves cached tokens). With Redis, its state is
/// reported too; it fails readiness only when `redis.required_for_ready` says so (without it
/// an instance still serves, with per-instance limits).
pub async fn ready(state: Data<AppState>) -> HttpResponse {
    let database = match state.tokens.ping().await {
        Ok(()) => DependencyState::Up,
        Err(err) => {
            tracing::warn!(error = %err, "readiness: database unavailable");
            DependencyState::Down
        }
    };
    let redis = state.redis.as_ref().map(|redis| match redis.is_up() {
        true => DependencyState::Up,
        false => DependencyState::Down,
    });
    let redis_fails = state.redis.as_ref().is_some_and(|r| r.required_for_ready())
        && redis == Some(DependencyState::Down);
    let (status, code) = if database == DependencyState::Down || redis_fails {
        (ReadyStatus::Unavailable, StatusCode::SERVICE_UNAVAILABLE)
    } else {
        (ReadyStatus::Ready, StatusCode::OK)
    };
    json(
        code,
        &Readiness {
            status,
            database,
            redis,
        },
    )
}

/// `GET /metrics` on the public listener: the Prometheus text, unless `metrics.address` moved
/// it to a listener of its own (then 404, as for any unknown route).
pub async fn metrics(state: Data<AppState>) -> HttpResponse {
    if !state.metrics_here {
        return not_found_answer();
    }
    metrics_here(state).await
}

/// The Prometheus text (text format 0.0.4).
pub async fn metrics_here(state: Data<AppState>) -> HttpResponse {
    let tokens = &state.tokens;
    let lag = tokens.analytics().map_or(0.0, |analytics| {
        analytics.lag_seconds(tokens.clock().now().timestamp_millis())
    });
    let text = state.metrics.render(tokens.unwritten_uses(), lag);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

pub async fn not_found(state: Option<Data<AppState>>) -> HttpResponse {
    if let Some(state) = state {
        state.metrics.request_unmatched(404);
    }
    not_found_answer()
}

fn not_found_answer() -> HttpResponse {
    json(
        StatusCode::NOT_FOUND,
        &json_value!({"error": "The page you are looking for doesn't exists"}),
    )
}

/// Machine-to-machine verification: counts the use and checks the IP restriction.
pub async fn verify(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let timer = state.metrics.verify_timer();
    let answer = verify_answer(req, &state).await;
    let result = match &answer {
        Ok(_) => VerifyResult::Valid,
        Err(ApiError::TooManyRequests { .. }) => VerifyResult::RateLimited,
        Err(ApiError::OverQuota { reason, .. }) => match reason {
            Reason::UsageExceeded => VerifyResult::UsageExceeded,
            _ => VerifyResult::LimitExceeded,
        },
        Err(ApiError::Envelope { reason, .. }) => match reason {
            Reason::InvalidHost => VerifyResult::InvalidHost,
            Reason::TokenExpired => VerifyResult::Expired,
            Reason::TokenDisabled => VerifyResult::Disabled,
            Reason::VerifyServerError => VerifyResult::ServerError,
            Reason::InsufficientPermissions => VerifyResult::InsufficientPermissions,
            _ => VerifyResult::InvalidKey,
        },
        Err(_) => VerifyResult::InvalidKey,
    };
    state.metrics.verification(VerifyRoute::Public, result);
    state.metrics.verify_latency(timer);
    answer
}

async fn verify_answer(req: HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let unauthorized = |reason| ApiError::refused(now, reason);
    if let Some(guard) = &state.hmac {
        guard
            .check(&req, now)
            .await
            .map_err(|why| unauthorized(Reason::Guard(why)))?;
    }
    let limits = &state.limits;
    let client = client_ip(&req, &state.trusted_proxies);
    // Non-UTF-8 bytes cannot be a key; they verify as one that does not exist. (`from_utf8`
    // rather than `HeaderValue::to_str`, whose byte-by-byte check costs more than the rest of a
    // cached verification; the key's own shape check refuses anything but ASCII.)
    let key = req
        .headers()
        .get("x-api-key")
        .map(|value| {
            std::str::from_utf8(value.as_bytes())
                .unwrap_or("\u{fffd}")
                .trim()
        })
        .filter(|key| !key.is_empty());
    if let Err(blocked) = enforce(limits, limits.before_verify(client).await).await {
        state.tokens.count_refused(Code::Blocked);
        return Err(blocked);
    }
    let Some(key) = key else {
        state.tokens.count_refused(Code::NotFound);
        enforce(limits, limits.verify_failed(client, None).await).await?;
        return Err(unauthorized(Reason::NoApiKey));
    };
    let params = verify_params(req.query_string()).ok_or_else(|| ApiError::bad_request(now))?;
    let tags = match params.tags.is_empty() {
        true => Tags::default(),
        false => {
            let pairs = params.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
            state.tokens.analytics_tags(pairs).map_err(|err| {
                let reason = Reason::InvalidTag(err.to_string());
                ApiError::envelope(StatusCode::BAD_REQUEST, now, reason)
            })?
        }
    };
    // A malformed query is the caller's mistake, answered before the store is asked.
    let query = match params.permissions.map(|raw| state.queries.parse(raw)) {
        None => None,
        Some(Ok(query)) => Some(query),
        Some(Err(err)) => {
            let reason = Reason::InvalidPermissionsQuery(err.to_string());
            return Err(ApiError::envelope(StatusCode::BAD_REQUEST, now, reason));
        }
    };
    let options = VerifyOptions::new(params.privilege, client)
        .permissions(query.as_deref())
        .tags(&tags);
    let outcome = match state.tokens.verify_outcome_at(key, options, now).await {
        Ok(outcome) => Ok(outcome),
        Err(err) => {
            tracing::error!(error = %err, "verification could not reach the store");
            Err(Reason::VerifyServerError)
        }
    };
    match outcome {
        Ok(VerifyOutcome::Valid(token)) => {
            // Served whatever blocks are in force (SPEC A8: the guard is on failures only);
            // the success resets failure counts but ends no block.
            limits.verify_succeeded(client, key);
            let mut answer = verified(now, &token);
            if let Some(report) = &token.quota {
                quota_headers::add(&mut answer, report, now);
            }
            if let (Some(replaced), Some(ends)) =
                (token.record.replaced.as_deref(), token.record.expires_at)
            {
                deprecation_headers(&mut answer, replaced.at, ends);
            }
            Ok(answer)
        }
        // The key is good: not a failure for the limiters, only not enough for this call.
        Ok(VerifyOutcome::InsufficientPermissions) => Err(ApiError::envelope(
            StatusCode::FORBIDDEN,
            now,
            Reason::InsufficientPermissions,
        )),
        // The key is good, its customer limits or credits say no: not a use, not a failure.
        Ok(VerifyOutcome::RateLimited(report)) => Err(ApiError::OverQuota {
            date: now,
            reason: Reason::RateLimitExceeded,
            report: Box::new(report),
        }),
        Ok(VerifyOutcome::UsageExceeded(report)) => Err(ApiError::OverQuota {
            date: now,
            reason: Reason::UsageExceeded,
            report: Box::new(report),
        }),
        // The key is genuine and paused by an operator (SPEC B10): not a failure, not a use.
        Ok(VerifyOutcome::Disabled) => Err(unauthorized(Reason::TokenDisabled)),
        Ok(other) => {
            let reason = other.into_verified().err().unwrap_or(Reason::InvalidKey);
            enforce(limits, limits.verify_failed(client, Some(key)).await).await?;
            Err(unauthorized(reason))
        }
        Err(reason) => {
            enforce(limits, limits.verify_failed(client, Some(key)).await).await?;
            Err(unauthorized(reason))
        }
    }
}

/// The old key of a rotation in grace (SPEC B10): `Deprecation: @<unix seconds of the
/// rotation>` (RFC 9745) and `Sunset: <HTTP-date of the grace's end>` (RFC 8594), so that a
/// client can see it must move to the new key, and by when.
pub(super) fn deprecation_headers(
    answer: &mut HttpResponse,
    rotated_at: chrono::DateTime<chrono::Utc>,
    ends: chrono::DateTime<chrono::Utc>,
) {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let headers = answer.headers_mut();
    let deprecation = format!("@{}", rotated_at.timestamp());
    let sunset = ends.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    for (name, value) in [("deprecation", deprecation), ("sunset", sunset)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

pub async fn openapi(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::HeaderValue::from_static(super::response::JSON_UTF8),
        ))
        .body(state.openapi.clone())
}
