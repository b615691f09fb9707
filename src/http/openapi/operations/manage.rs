//! The seven BFF actions of `/api/manage/{action}`, each at its own path.

use utoipa::openapi::path::Operation;

use super::super::schemas;
use super::describe::Describe;
use crate::http::body::MANAGE_BODY_LIMIT;
use serde_json::json;

use super::super::context::BFF_SCHEME;
use crate::envelope::Reason;
use crate::http::bff::{Action, NewTokenRequest, TokenActionRequest};
use crate::service::{
    CreatedToken, Message, MetadataSnapshot, RevokeData, RotatedToken, TokenList,
};

pub fn manage(d: Describe, action: Action) -> Operation {
    let limit = d.ctx.token_limit;
    let manager = [
        Reason::InvalidIdentity,
        Reason::BadRequest,
        Reason::ManagerServerError,
    ];
    let with_manager = |more: &[Reason]| {
        let mut reasons = manager.to_vec();
        reasons.extend_from_slice(more);
        reasons
    };
    let d = d
        .security(BFF_SCHEME)
        .json(
            401,
            "No, a bad or an expired access token.",
            schemas::bearer_refused(),
        )
        .too_many();
    let d = if action == Action::ListMetadata {
        d
    } else {
        let d = match action {
            Action::NewToken => {
                let body = d.components.of::<NewTokenRequest>();
                d.body(body, true)
            }
            _ => {
                let body = d.components.of::<TokenActionRequest>();
                d.body(body, true)
            }
        };
        d.json(
            403,
            "Not `application/json`, or an empty body.",
            schemas::error(&["not allowed."]),
        )
        .json(
            408,
            "The body did not arrive in time.",
            schemas::error(&["Request timeout"]),
        )
        .json(
            413,
            &format!("The body is over {} KiB.", MANAGE_BODY_LIMIT / 1024),
            schemas::error(&["Payload too large"]),
        )
    };
    match action {
        Action::NewToken => {
            let data = d.components.of::<CreatedToken>();
            let refused = [
                Reason::BadRequest,
                Reason::ReservedPrefix,
                Reason::TooManyTokens { limit },
                Reason::ListServerError,
            ];
            d.success(201, "Created: the raw key is shown here once.", data)
                .refused(400, "Malformed, or refused with create's reason.", &refused)
                .link(
                    201,
                    "verifyKey",
                    &[("header.x-api-key", "$response.body#/data/rawApiKey")],
                    None,
                )
        }
        Action::ListMetadata => {
            let data = d.components.of::<TokenList>();
            let mut d = d
                .success(200, "The owner's counts and valid tokens.", data)
                .refused(
                    500,
                    "The store could not answer.",
                    &[Reason::ListServerError],
                );
            // The newest valid token addresses every action on one token.
            let first = json!({
                "tokenId": "$response.body#/data/tokenList/0/id",
                "publicIdentifier": "$response.body#/data/tokenList/0/public_identifier",
                "name": "$response.body#/data/tokenList/0/name",
            });
            for to in Action::ALL.into_iter().filter(|a| a.addresses_a_token()) {
                let (id, ..) = super::catalogue::action(to.as_str());
                d = d.link(200, &id, &[], Some(first.clone()));
            }
            d
        }
        Action::Revoke => {
            let data = d.components.of::<RevokeData>();
            d.success(200, "Revoked (idempotent).", data)
                .refused(400, "A malformed body.", &[Reason::BadRequest])
                .refused(
                    401,
                    "Refused with the manager's reason.",
                    &with_manager(&[Reason::RevokeError]),
                )
        }
        Action::Metadata => {
            let data = d.components.of::<MetadataSnapshot>();
            let more = [
                Reason::InvalidKey,
                Reason::TokenExpired,
                Reason::VerifyServerError,
                Reason::MetadataInvalidToken,
                Reason::MetadataError,
            ];
            d.success(200, "The token and its owner's counts.", data)
                .refused(400, "A malformed body.", &[Reason::BadRequest])
                .refused(
                    401,
                    "Refused with the manager's reason.",
                    &with_manager(&more),
                )
        }
        Action::Rotate => {
            let data = d.components.of::<RotatedToken>();
            let more = [
                Reason::RotateRevoked,
                Reason::RotateNotNow,
                Reason::RotateCreateFailed,
                Reason::RotateServerError,
                Reason::TooManyTokens { limit },
            ];
            d.success(200, "Rotated: the new raw key is shown here once.", data)
                .refused(
                    400,
                    "Malformed, or refused with the manager's reason.",
                    &with_manager(&more),
                )
        }
        Action::IpRestrictionUpdate | Action::PrivilegeUpdate => {
            let data = d.components.of::<Message>();
            let more = [Reason::NotFoundOrUnauthorized, Reason::InternalServerError];
            d.success(200, "Updated.", data).refused(
                400,
                "Malformed, or refused with the manager's reason.",
                &with_manager(&more),
            )
        }
    }
    .build()
}
