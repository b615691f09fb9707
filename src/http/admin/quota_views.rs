//! JSON shapes of customer limits and credits (SPEC B5) in admin answers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::quota::{Refill, Scope};
use crate::domain::UserId;
use crate::envelope::iso_time;
use crate::quotas::{CreditsView, LimitState, QuotaView};

/// Whose limit or credits: the token's own, or its owner's (shared by all its tokens).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeView {
    Token,
    Owner,
}

impl From<Scope> for ScopeView {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Token => Self::Token,
            Scope::Owner => Self::Owner,
        }
    }
}

/// A named limit and where its current window stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitView {
    pub name: String,
    pub scope: ScopeView,
    /// Uses per window.
    pub limit: u64,
    /// The window, in ms (windows are aligned to the Unix epoch).
    pub duration: u64,
    /// Uses left in the current window.
    pub remaining: u64,
    /// When the current window ends.
    #[serde(with = "iso_time")]
    pub reset: DateTime<Utc>,
}

impl From<&LimitState> for RateLimitView {
    fn from(state: &LimitState) -> Self {
        Self {
            name: state.name.as_str().to_owned(),
            scope: state.scope.into(),
            limit: state.limit,
            duration: state.duration_ms,
            remaining: state.remaining,
            reset: state.reset,
        }
    }
}

/// A limit as configured, with its current window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfiguredLimitView {
    #[serde(flatten)]
    pub state: RateLimitView,
    /// Charged by every counting verification (else only when a verification names it).
    pub auto_apply: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefillView {
    /// `daily` (each UTC midnight) or `monthly` (on `refillDay`, 1 by default).
    #[schema(pattern = "^(daily|monthly)$")]
    pub interval: String,
    /// What `remaining` is set to at each refill.
    pub amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 31)]
    pub refill_day: Option<u8>,
}

impl From<Refill> for RefillView {
    fn from(refill: Refill) -> Self {
        Self {
            interval: refill.interval().as_str().to_owned(),
            amount: refill.amount(),
            refill_day: refill.day(),
        }
    }
}

/// Credits as they stand: what the store holds plus what instances leased and did not spend.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditsJson {
    pub remaining: u64,
    pub refill: Option<RefillView>,
    #[serde(with = "iso_time")]
    pub refilled_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub next_refill_at: Option<DateTime<Utc>>,
}

impl From<CreditsView> for CreditsJson {
    fn from(view: CreditsView) -> Self {
        Self {
            remaining: view.remaining,
            refill: view.refill.map(RefillView::from),
            refilled_at: view.refilled_at,
            next_refill_at: view.next_refill,
        }
    }
}

/// The limits of one subject, as configured, with their current windows.
pub fn configured(view: &QuotaView) -> Vec<ConfiguredLimitView> {
    view.limits
        .iter()
        .map(|state| ConfiguredLimitView {
            auto_apply: state.auto_apply,
            state: state.into(),
        })
        .collect()
}

/// `PUT /api/admin/tokens/{id}/ratelimits`: the token's limits now.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenLimitsView {
    pub ratelimits: Vec<ConfiguredLimitView>,
}

/// `PATCH /api/admin/tokens/{id}/credits`: the token's credits now.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreditsView {
    pub credits: Option<CreditsJson>,
}

/// An owner's limits and credits (shared by all its tokens).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerQuotaView {
    pub user_id: UserId,
    pub ratelimits: Vec<ConfiguredLimitView>,
    pub credits: Option<CreditsJson>,
}

/// The credits left after an admin verification, of the token and of its owner.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditsLeftView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<u64>,
}

impl CreditsLeftView {
    /// `None` when neither has credits.
    pub fn of(left: &[(Scope, u64)]) -> Option<Self> {
        let find = |wanted| {
            left.iter()
                .find(|(scope, _)| *scope == wanted)
                .map(|(_, n)| *n)
        };
        (!left.is_empty()).then(|| Self {
            token: find(Scope::Token),
            owner: find(Scope::Owner),
        })
    }
}
