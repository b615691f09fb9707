//! `PUT /api/admin/tokens/{id}/state` and `PUT /api/admin/users/{user_id}/state` (SPEC B10).

use utoipa::openapi::path::Operation;

use super::common::{admin, admin_body, no_token, token_id};
use super::describe::{path_parameter, Describe};
use crate::domain::UserId;
use crate::http::admin::bulk::BulkView;
use crate::http::admin::state::StateView;
use crate::http::admin::{BulkRequest, StateRequest};

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
