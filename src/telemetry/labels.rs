//! The label values of the hot series, each a slot of the tally: statuses, verification routes
//! and outcomes, cache results. (The other labels are route patterns and limiter and operation
//! names: all bounded, none from a request.)

/// Statuses counted under their own label; any other is `other`.
pub(super) const STATUSES: [u16; 16] = [
    200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503,
];

/// Request series per route: the known statuses and `other`.
pub(super) const STATUS_SLOTS: usize = STATUSES.len() + 1;
pub(super) const VERIFICATION_SLOTS: usize = VerifyRoute::ALL.len() * VerifyResult::ALL.len();
pub(super) const CACHE_SLOTS: usize = CacheResult::ALL.len();

/// The place of `status` in `STATUSES` (`STATUSES.len()` for any other).
pub(super) fn status_slot(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        204 => 2,
        400 => 3,
        401 => 4,
        403 => 5,
        404 => 6,
        405 => 7,
        408 => 8,
        409 => 9,
        413 => 10,
        415 => 11,
        422 => 12,
        429 => 13,
        500 => 14,
        503 => 15,
        _ => STATUSES.len(),
    }
}

/// Which verification route answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyRoute {
    Public = 0,
    Admin = 1,
    /// `/api/forward-auth` (SPEC B13).
    ForwardAuth = 2,
}

impl VerifyRoute {
    pub(super) const ALL: [Self; 3] = [Self::Public, Self::Admin, Self::ForwardAuth];

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Admin => "admin",
            Self::ForwardAuth => "forward_auth",
        }
    }
}

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyResult {
    Valid,
    InvalidKey,
    InvalidHost,
    Expired,
    RateLimited,
    ServerError,
    /// Valid, but not satisfying the permission query.
    InsufficientPermissions,
    /// Valid, but over one of its customer rate limits (SPEC B5).
    LimitExceeded,
    /// Valid, but out of credits (SPEC B5).
    UsageExceeded,
    /// The token or its owner is disabled (SPEC B10).
    Disabled,
}

impl VerifyResult {
    pub(super) const ALL: [Self; 10] = [
        Self::Valid,
        Self::InvalidKey,
        Self::InvalidHost,
        Self::Expired,
        Self::RateLimited,
        Self::ServerError,
        Self::InsufficientPermissions,
        Self::LimitExceeded,
        Self::UsageExceeded,
        Self::Disabled,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::InvalidKey => "invalid_key",
            Self::InvalidHost => "invalid_host",
            Self::Expired => "expired",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::InsufficientPermissions => "insufficient_permissions",
            Self::LimitExceeded => "limit_exceeded",
            Self::UsageExceeded => "usage_exceeded",
            Self::Disabled => "disabled",
        }
    }
}

impl From<crate::domain::analytics::Code> for VerifyResult {
    /// The outcome a verification answered with `code` is counted under.
    fn from(code: crate::domain::analytics::Code) -> Self {
        use crate::domain::analytics::Code;
        match code {
            Code::Valid => Self::Valid,
            Code::NotFound => Self::InvalidKey,
            Code::Disabled => Self::Disabled,
            Code::Expired => Self::Expired,
            Code::IpNotAllowed => Self::InvalidHost,
            Code::InsufficientPermissions => Self::InsufficientPermissions,
            Code::RateLimited => Self::LimitExceeded,
            Code::UsageExceeded => Self::UsageExceeded,
            // An abuse limiter's refusal.
            Code::Blocked => Self::RateLimited,
        }
    }
}

/// What the verification cache answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    NegativeHit,
    Miss,
    /// A stale entry served while the store could not answer.
    Stale,
}

impl CacheResult {
    pub(super) const ALL: [Self; 4] = [Self::Hit, Self::NegativeHit, Self::Miss, Self::Stale];

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::NegativeHit => "negative_hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
        }
    }
}

/// Why a call got no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailure {
    /// No answer within the time given (or every connection is waiting on one given up).
    Timeout,
    /// The connection was refused, reset or dropped: Redis is gone, the breaker opens at once.
    Refused,
    /// Redis answered with an error (a script error, out of memory, read-only replica).
    Error,
}

impl RedisFailure {
    pub const ALL: [Self; 3] = [Self::Timeout, Self::Refused, Self::Error];

    pub fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}
