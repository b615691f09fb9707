//! `PUT /api/admin/tokens/{id}/state` and `PUT /api/admin/users/{user_id}/state` (SPEC B10).

use utoipa::openapi::path::Operation;

use super::common::{admin, admin_body, body_of, no_token, token_id};
use super::describe::{path_parameter, Describe};
use crate::domain::UserId;
use crate::http::admin::bulk::BulkView;
use crate::http::admin::rotate::RotatedView;
use crate::http::admin::state::StateView;
use crate::http::admin::{BulkRequest, RotateRequest, StateRequest};

const INVALID: &str = "A reason of more than 200 characters, only spaces or control characters.";

pub fn admin_token_state(d: Describe) -> Operation {
    let body = d.components.of::<StateRequest>();
    let view = d.components.of::<StateView>();
    let d = admin_body(admin(d), body)
        .parameter(token_id())
        .json(
            200,
            "The state asked for, and whether this call changed it.",
            view,
        )
        .problem(422, INVALID, &["invalid_reason"]);
    no_token(d).build()
}

pub fn admin_user_state(d: Describe) -> Operation {
    let body = d.components.of::<StateRequest>();
    let view = d.components.of::<StateView>();
    let user = d.components.of::<UserId>();
    admin_body(admin(d), body)
        .parameter(path_parameter("user_id", "The owner.", user))
        .json(
            200,
            "The state asked for, and whether this call changed it.",
            view,
        )
        .problem(422, INVALID, &["invalid_reason"])
        .build()
}

pub fn admin_bulk(d: Describe) -> Operation {
    let body = d.components.of::<BulkRequest>();
    let view = d.components.of::<BulkView>();
    admin_body(
        admin(d.explain(
            "`revoke` needs `tokens.revoke`; `disable` and `enable` need `tokens.disable`. Each \
             chunk of 100 tokens is one transaction; each token that changes is one audit event.",
        )),
        body,
    )
    .json(200, "A result per token.", view)
    .problem(
        422,
        "Empty, over 1,000 or repeated ids (naming `ids[i]`), or a bad reason.",
        &["invalid_ids", "invalid_reason"],
    )
    .build()
}

pub fn admin_rotate(d: Describe) -> Operation {
    use super::describe::query;
    let body = d.components.of::<RotateRequest>();
    let view = d.components.of::<RotatedView>();
    let d = admin(d.explain(
        "Rotating either key of a lineage whose grace still runs is 409 `rotation_in_progress`; \
         on the newer key, `force=true` ends the older key's grace now.",
    ));
    let d = body_of(d, body, false)
        .parameter(token_id())
        .parameter(query(
            "force",
            false,
            "End the grace of an older key of the lineage now.",
            super::super::schemas::one_of_strings(["true", "false"]),
        ))
        .json(
            201,
            "The new key (shown once), its token and the old key's grace.",
            view,
        )
        .problem(
            409,
            "The token is revoked or expired, a rotation is in progress, or the owner holds the \
             most valid tokens.",
            &[
                "token_revoked",
                "token_expired",
                "rotation_in_progress",
                "token_limit",
            ],
        )
        .problem(
            422,
            "A grace over 7 days or negative, or a bad reason.",
            &["invalid_grace", "invalid_reason"],
        );
    no_token(d).build()
}
