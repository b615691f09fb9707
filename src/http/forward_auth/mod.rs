//! `ANY /api/forward-auth[/{tail}]` (SPEC B13): gateways (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`) ask whether a request may pass.
//! It is a verification like `/api/public/verify`: the abuse limiters, usage, limits, credits
//! and analytics (tagged with the route and method) all apply.
//!
//! `origin.rs` reads the request the gateway asks about, `params.rs` our own query (the
//! dialect, a policy per call), `answer.rs` the allow and the denials.

mod answer;
mod origin;
mod params;

pub use answer::Denial;
pub use origin::{origin, Origin, OriginError};
pub use params::{params, Dialect, ParamError, Params};

use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};

use super::limit::enforce;
use super::{ApiError, AppState};
use crate::config::ForwardAuthSettings;
use crate::domain::analytics::Code;
use crate::domain::forward_auth::{NoMatch, Policy, PolicyText, RouteRules};
use crate::domain::quota::Usage;
use crate::service::{VerifyOptions, VerifyOutcome};
use crate::telemetry::metrics::{VerifyResult, VerifyRoute};

/// `[forward_auth]`, ready to answer with.
pub struct ForwardAuth {
    enabled: bool,
    rules: RouteRules,
    key_header: HeaderName,
    /// `x-envoy-auth-headers-to-remove`: the credential's headers.
    remove: HeaderValue,
    principals: answer::Principals,
}

impl ForwardAuth {
    /// From settings already validated (a key header that is not a header name falls back to
    /// `x-api-key`).
    pub fn new(settings: &ForwardAuthSettings) -> Self {
        let key_header =
            HeaderName::from_bytes(settings.key_header.to_ascii_lowercase().as_bytes())
                .unwrap_or(HeaderName::from_static("x-api-key"));
        let remove = HeaderValue::from_str(&format!("authorization, {key_header}"))
            .unwrap_or(HeaderValue::from_static("authorization, x-api-key"));
        Self {
            enabled: settings.enabled,
            rules: settings.rules(),
            key_header,
            remove,
            principals: answer::Principals::new(),
        }
    }
}

/// The handler of both paths.
pub async fn check(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    if !state.forward_auth.enabled {
        return super::public::not_found(Some(state)).await;
    }
    let timer = state.metrics.verify_timer();
    // Envoy's form: our path's tail is the original path, and our query the client's own, so
    // it carries no parameters of ours.
    let tail = req.match_info().get("tail");
    let params = match tail {
        Some(_) => Ok(Params::default()),
        None => params(req.query_string()),
    };
    let (dialect, decided) = match params {
        Ok(params) => (params.dialect, decide(&req, &state, tail, &params).await),
        Err(err) => (
            Dialect::Plain,
            Err(Denial::bad_request(err.name, err.to_string())),
        ),
    };
    let (answer, counted) = match decided {
        Ok(answer) => (answer, Some(VerifyResult::Valid)),
        Err(denial) => (denial.response(dialect), denial.counted()),
    };
    if let Some(result) = counted {
        state.metrics.verification(VerifyRoute::ForwardAuth, result);
        state.metrics.verify_latency(timer);
    }
    answer
}

/// The policy, the verification, the answer.
async fn decide(
    req: &HttpRequest,
    state: &AppState,
    tail: Option<&str>,
    params: &Params<'_>,
) -> Result<HttpResponse, Denial> {
    let now = state.clock.now();
    let gateway = &state.forward_auth;
    let origin = origin(req, &state.trusted_proxies, tail)
        .map_err(|err| Denial::bad_request(err.header(), err.to_string()))?;
    // A policy in the query is the gateway's configuration: believed from a trusted peer only,
    // as its forwarded headers are (else a client calling us directly could set its own cost).
    let owned;
    let (policy, route): (&Policy, &str) = if params.has_policy() && origin.trusted {
        owned = query_policy(params, state)?;
        (&owned, &origin.path)
    } else {
        match gateway
            .rules
            .rule_for(&origin.method, &origin.host, &origin.path)
        {
            Some(rule) => (&rule.policy, rule.path.as_str()),
            None if gateway.rules.no_match == NoMatch::Verify => {
                owned = Policy::default();
                (&owned, &origin.path)
            }
            None => return Err(Denial::no_route()),
        }
    };
    let limits = &state.limits;
    let client = origin.client;
    if let Err(blocked) = enforce(limits, limits.before_verify(client).await).await {
        state.tokens.count_refused(Code::Blocked);
        return Err(blocked_denial(blocked));
    }
    let Some(key) = presented_key(req, &gateway.key_header) else {
        state.tokens.count_refused(Code::NotFound);
        enforce(limits, limits.verify_failed(client, None).await)
            .await
            .map_err(blocked_denial)?;
        return Err(Denial::missing_key(gateway.key_header.as_str()));
    };
    let tags = state.tokens.gateway_tags(route, &origin.method);
    let usage = (policy.usage != Usage::default()).then_some(&policy.usage);
    let options = VerifyOptions::new(policy.privilege.unwrap_or_default(), client)
        .permissions(policy.permissions.as_deref())
        .usage(usage)
        .tags(&tags);
    let outcome = state
        .tokens
        .verify_outcome_for_gateway(key, options, policy.privilege, now)
        .await
        .map_err(|err| {
            // Fail closed. Not a failure of the caller's: no abuse limiter counts it.
            tracing::error!(error = %err, "forward-auth could not reach the store");
            Denial::unavailable()
        })?;
    match outcome {
        VerifyOutcome::Valid(verified) => {
            limits.verify_succeeded(client, key);
            Ok(answer::allow(
                &verified,
                policy.expose_metadata,
                &gateway.principals,
                &gateway.remove,
                now,
            ))
        }
        VerifyOutcome::RateLimited(report) => {
            Err(Denial::refused(Code::RateLimited, Some((now, report))))
        }
        VerifyOutcome::UsageExceeded(report) => {
            Err(Denial::refused(Code::UsageExceeded, Some((now, report))))
        }
        // The key is good; this request asks what it does not have, or it is paused.
        VerifyOutcome::InsufficientPermissions => {
            Err(Denial::refused(Code::InsufficientPermissions, None))
        }
        VerifyOutcome::Disabled => Err(Denial::refused(Code::Disabled, None)),
        VerifyOutcome::UnknownLimit(unknown) => Err(Denial::bad_request(
            "limits",
            format!(
                "no limit named {:?} on this key or its owner",
                unknown.name.as_str()
            ),
        )),
        refused @ (VerifyOutcome::InvalidKey
        | VerifyOutcome::InvalidHost
        | VerifyOutcome::Expired) => {
            enforce(limits, limits.verify_failed(client, Some(key)).await)
                .await
                .map_err(blocked_denial)?;
            let code = refused.code().unwrap_or(Code::NotFound);
            Err(Denial::refused(code, None))
        }
    }
}

/// The policy the query gives (each mistake named); its permission query parsed once per
/// distinct text, as the public route's are.
fn query_policy(params: &Params<'_>, state: &AppState) -> Result<Policy, Denial> {
    let text = PolicyText {
        privilege: params.privilege.as_deref(),
        permissions: None,
        cost: params.cost.as_deref(),
        limits: params.limits.as_deref(),
        expose_metadata: params.expose_metadata,
    };
    let mut policy = text.parse().map_err(|err| {
        let field = match &err {
            crate::domain::forward_auth::RuleError::Privilege => "privilege",
            crate::domain::forward_auth::RuleError::Cost => "cost",
            _ => "limits",
        };
        Denial::bad_request(field, err.to_string())
    })?;
    if let Some(raw) = params.permissions {
        let query = state
            .queries
            .parse(raw)
            .map_err(|err| Denial::bad_request("permissions", err.to_string()))?;
        policy.permissions = Some(query);
    }
    Ok(policy)
}

/// The key: `Authorization: Bearer <key>`, else the configured header. Bytes that are not
/// UTF-8 cannot be a key and verify as one that does not exist.
fn presented_key<'r>(req: &'r HttpRequest, header: &HeaderName) -> Option<&'r str> {
    let text = |value: &'r HeaderValue| {
        std::str::from_utf8(value.as_bytes())
            .map(str::trim)
            .unwrap_or("\u{fffd}")
    };
    let bearer = req.headers().get(AUTHORIZATION).and_then(|value| {
        let value = text(value);
        let (scheme, key) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
    });
    bearer
        .or_else(|| req.headers().get(header).map(text))
        .filter(|key| !key.is_empty())
}

/// An abuse limiter's 429, as forward-auth answers it.
fn blocked_denial(refusal: ApiError) -> Denial {
    match refusal {
        ApiError::TooManyRequests { retry } => Denial::blocked(retry),
        _ => Denial::blocked(None),
    }
}
