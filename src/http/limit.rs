//! Turning limiter decisions into 429s.

use crate::limits::{Decision, Limits};

use super::ApiError;

/// `Ok` when allowed; else the 429 with the seconds left (rounded up) or `permanent`.
/// A decision that banned a key writes the ban to the store before answering.
pub async fn enforce(limits: &Limits, decision: Decision) -> Result<(), ApiError> {
    match decision {
        Decision::Allowed => Ok(()),
        Decision::Limited { retry_after } => {
            let millis = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
            Err(ApiError::TooManyRequests {
                retry: Some(millis.div_ceil(1000).max(1)),
            })
        }
        Decision::Banned => {
            if let Err(err) = limits.persist_new_bans().await {
                tracing::error!(error = %err, "could not store a ban; it is enforced in memory");
            }
            Err(ApiError::TooManyRequests { retry: None })
        }
    }
}
