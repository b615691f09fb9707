//! The operations of SPEC A5: the in-process API trusted code calls, and that the HTTP
//! handlers adapt. Every operation answers a `Results<T>` envelope; none authenticates.

mod create;
mod manage;
mod manager;
mod payloads;
mod rotate;
mod verify;

pub use create::CreateToken;
pub use manager::{ManagerAction, ManagerData};
pub use payloads::*;
pub use rotate::RotateToken;
pub use verify::{VerifyOptions, VerifyOutcome};

use std::sync::Arc;

use crate::clock::Clock;
use crate::envelope::{Reason, Results};
use crate::store::{StoreError, TokenStore};

/// Longest lifetime a token may be given (100 years), so that expiry arithmetic never overflows.
pub const MAX_LIFETIME_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// The token service. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct TokenService {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    limit_tokens_per_user: u32,
}

impl TokenService {
    pub fn new(
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        limit_tokens_per_user: u32,
    ) -> Self {
        Self {
            store,
            clock,
            limit_tokens_per_user,
        }
    }

    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn success<T>(&self, data: T) -> Results<T> {
        Results::success(self.clock.now(), data)
    }

    fn failure<T>(&self, reason: Reason) -> Results<T> {
        Results::failure(self.clock.now(), reason)
    }

    /// Logs a store failure once, with its cause, and answers `reason` instead.
    fn store_failure<T>(
        &self,
        operation: &'static str,
        err: &StoreError,
        reason: Reason,
    ) -> Results<T> {
        tracing::error!(operation, error = %err, "token store failed");
        self.failure(reason)
    }
}
