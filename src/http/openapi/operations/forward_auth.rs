//! `ANY /api/forward-auth[/{tail}]` (SPEC B13), documented as `GET`: gateways send the
//! original request's method, which the route accepts whatever it is.

use utoipa::openapi::path::Operation;

use super::super::context::API_KEY_SCHEME;
use super::describe::{header, path_parameter, query, string, Describe};

/// Every denial's `X-Auth-Code`, by status.
const UNAUTHORIZED: &[&str] = &["MISSING_KEY", "NOT_FOUND", "EXPIRED", "DISABLED"];
const FORBIDDEN: &[&str] = &[
    "IP_NOT_ALLOWED",
    "INSUFFICIENT_PERMISSIONS",
    "NO_ROUTE",
    "BAD_REQUEST",
    "RATE_LIMITED",
    "USAGE_EXCEEDED",
    "BLOCKED",
    "UNAVAILABLE",
];

/// The answers both forms share.
fn answers(d: Describe) -> Describe {
    d.security(API_KEY_SCHEME)
        .parameter(header(
            "Authorization",
            "`Bearer <key>`: the key, read before `forward_auth.key_header`.",
        ))
        .parameter(header(
            "X-Forwarded-For",
            "The client chain (trusted peers only); else `X-Real-IP`.",
        ))
        .empty(200, "The request may pass; counted as a use (empty body).")
        .headers(
            200,
            &[
                ("X-Auth-Token-Id", "The token's id."),
                ("X-Auth-User-Id", "Its owner's id."),
                (
                    "X-Auth-Principal",
                    "base64url (no padding) of JSON `{tokenId, userId, name, roles, \
                     permissions, metadata?}`; `metadata` only when the policy exposes it.",
                ),
                (
                    "x-envoy-auth-headers-to-remove",
                    "`authorization, <forward_auth.key_header>`: Envoy strips the credential \
                     from the upstream request.",
                ),
            ],
        )
        .limit_headers(200)
        .problem(
            400,
            "A parameter or a forwarded header is malformed, given twice or contradicts \
             another; `field` names it",
            &["BAD_REQUEST"],
        )
        .problem(
            401,
            "No key, or a key that is unknown, expired or disabled (`WWW-Authenticate`)",
            UNAUTHORIZED,
        )
        .problem(
            403,
            "A valid key from an IP it may not be used from, or without the permissions asked, \
             or no rule covers the request under `forward_auth.default = \"deny\"`; with \
             `dialect=nginx` also the 400, 429 and 503 denials, told apart by `X-Auth-Code`",
            FORBIDDEN,
        )
        .problem(
            429,
            "A rate limit or the credits are used up, or an abuse limiter blocks the client \
             (`Retry-After`)",
            &["RATE_LIMITED", "USAGE_EXCEEDED", "BLOCKED"],
        )
        .limit_headers(429)
        .problem(
            503,
            "The token store cannot answer: fail closed",
            &["UNAVAILABLE"],
        )
        .headers(
            401,
            &[("X-Auth-Code", "Why, for the gateway and its logs.")],
        )
        .headers(
            403,
            &[("X-Auth-Code", "Why, for the gateway and its logs.")],
        )
        .headers(
            429,
            &[
                ("X-Auth-Code", "Why, for the gateway and its logs."),
                ("Retry-After", "Seconds until a retry can pass."),
            ],
        )
        .headers(400, &[("X-Auth-Code", "`BAD_REQUEST`.")])
        .headers(503, &[("X-Auth-Code", "`UNAVAILABLE`.")])
}

pub fn forward_auth(d: Describe) -> Operation {
    let d = answers(d)
        .parameter(header(
            "X-Forwarded-Method",
            "The original method (also `X-Original-Method`); trusted peers only.",
        ))
        .parameter(header(
            "X-Forwarded-Uri",
            "The original path and query (also `X-Original-URI`); trusted peers only.",
        ))
        .parameter(header(
            "X-Forwarded-Host",
            "The original host; trusted peers only.",
        ))
        .parameter(query(
            "dialect",
            false,
            "`nginx` sends the 400, 429 and 503 denials as 403 with `X-Auth-Code`; `caddy`, \
             `traefik` and `envoy` change nothing.",
            string(),
        ));
    let policy = [
        (
            "privilege",
            "The privilege the key must have (default: any).",
        ),
        ("permissions", "A permission query the key must satisfy."),
        (
            "cost",
            "Credits and auto-applied limits this request costs (default 1).",
        ),
        ("limits", "Named limits charged: `name:cost,…`."),
        (
            "expose_metadata",
            "`true`: put the token's metadata in `X-Auth-Principal`.",
        ),
    ];
    policy
        .into_iter()
        .fold(d, |d, (name, description)| {
            let description = format!(
                "{description} With any policy parameter, the query gives the policy instead \
                 of the rules (from a trusted peer only)."
            );
            d.parameter(query(name, false, &description, string()))
        })
        .build()
}

pub fn forward_auth_tail(d: Describe) -> Operation {
    answers(d)
        .parameter(path_parameter(
            "tail",
            "The original path, without its leading `/`.",
            string(),
        ))
        .build()
}
