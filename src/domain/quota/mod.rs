//! Customer quotas (SPEC B5), pure: named rate limits with costs, and usage credits with
//! refills at UTC boundaries. On tokens and on owners; enforced by the service.

mod credits;
mod limit;

pub use credits::{Credits, CreditsError, Interval, Refill, MAX_CREDITS};
pub use limit::{
    cost, LimitError, LimitName, RateLimit, RateLimits, MAX_COST, MAX_DURATION_MS, MAX_LIMIT,
    MAX_LIMITS, MIN_DURATION_MS,
};
