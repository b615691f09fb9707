//! `/api/admin/…/ratelimits`, `/api/admin/…/credits` and `/api/admin/users/{user_id}/quota`
//! (SPEC B5).

use utoipa::openapi::path::Operation;

use super::common::{admin, admin_body, no_token, token_id, INVALID_QUOTA, QUOTA_CODES};
use super::describe::{path_parameter, Describe};
use crate::domain::UserId;
use crate::http::admin::quota_views::{OwnerQuotaView, TokenCreditsView, TokenLimitsView};
use crate::http::admin::{CreditsPatch, RateLimitsRequest};

fn user_id(d: &mut Describe) -> utoipa::openapi::path::Parameter {
    let user = d.components.of::<UserId>();
    path_parameter("user_id", "The owner.", user)
}

fn bad_owner(d: Describe) -> Describe {
    d.problem(
        400,
        "An owner id out of range, naming `userId`.",
        &["bad_request"],
    )
}

pub fn admin_token_ratelimits(d: Describe) -> Operation {
    let body = d.components.of::<RateLimitsRequest>();
    let view = d.components.of::<TokenLimitsView>();
    let d = admin_body(admin(d).parameter(token_id()), body)
        .json(
            200,
            "The token's limits now, with their current windows.",
            view,
        )
        .problem(422, INVALID_QUOTA, QUOTA_CODES);
    no_token(d).build()
}

pub fn admin_token_credits(d: Describe) -> Operation {
    let body = d.components.of::<CreditsPatch>();
    let view = d.components.of::<TokenCreditsView>();
    let d = admin_body(admin(d).parameter(token_id()), body)
        .json(200, "The token's credits now.", view)
        .problem(422, INVALID_QUOTA, QUOTA_CODES);
    no_token(d).build()
}

pub fn admin_user_ratelimits(mut d: Describe) -> Operation {
    let user = user_id(&mut d);
    let body = d.components.of::<RateLimitsRequest>();
    let view = d.components.of::<OwnerQuotaView>();
    let d = admin_body(admin(d).parameter(user), body)
        .json(200, "The owner's limits and credits now.", view)
        .problem(422, INVALID_QUOTA, QUOTA_CODES);
    bad_owner(d).build()
}

pub fn admin_user_credits(mut d: Describe) -> Operation {
    let user = user_id(&mut d);
    let body = d.components.of::<CreditsPatch>();
    let view = d.components.of::<OwnerQuotaView>();
    let d = admin_body(admin(d).parameter(user), body)
        .json(200, "The owner's limits and credits now.", view)
        .problem(422, INVALID_QUOTA, QUOTA_CODES);
    bad_owner(d).build()
}

pub fn admin_user_quota(mut d: Describe) -> Operation {
    let user = user_id(&mut d);
    let view = d.components.of::<OwnerQuotaView>();
    let d = admin(d).parameter(user).json(
        200,
        "The owner's limits (with their current windows) and credits.",
        view,
    );
    bad_owner(d).build()
}
