//! Customer quotas (SPEC B5), pure: named rate limits with costs, and usage credits with
//! refills at UTC boundaries. On tokens and on owners; enforced by `quotas/`.

mod change;
mod credits;
mod limit;
mod plan;

pub use change::{Changed, CreditChange, Remaining};
pub use credits::{Credits, CreditsError, Interval, Refill, MAX_CREDITS, MAX_LEASE};
pub use limit::{
    cost, LimitError, LimitName, RateLimit, RateLimits, MAX_COST, MAX_DURATION_MS, MAX_LIMIT,
    MAX_LIMITS, MIN_DURATION_MS,
};
pub use plan::{
    Charge, Charges, PlannedLimit, Quota, QuotaPlan, Scope, Subject, UnknownLimit, Usage,
};
