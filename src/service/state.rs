//! Disabling and enabling tokens and owners (SPEC B10). A change is seen at once here and,
//! through the B6 channel, on every other instance, like a revocation.

use super::TokenService;
use crate::domain::state::StateReason;
use crate::domain::UserId;
use crate::store::{BulkOp, StateChange, StateChanged, StoreError};

impl TokenService {
    /// Disables or enables the token with this id; whether it changed, `None` when there is
    /// no such token. Asking for the state it has changes nothing.
    pub async fn set_token_state(
        &self,
        token_id: u64,
        change: &StateChange,
    ) -> Result<Option<bool>, StoreError> {
        let changed = self
            .store
            .set_token_state(token_id, change, &self.audit())
            .await?;
        Ok(changed.map(|changed| self.settled(changed)))
    }

    /// Disables or enables every token of the owner, present and future; whether it changed.
    pub async fn set_owner_state(
        &self,
        user: UserId,
        change: &StateChange,
    ) -> Result<bool, StoreError> {
        let changed = self
            .store
            .set_owner_state(user, change, &self.audit())
            .await?;
        Ok(self.settled(changed))
    }

    fn settled(&self, changed: StateChanged) -> bool {
        for digest in &changed.tokens {
            self.invalidate(digest);
        }
        changed.changed
    }
}

/// Most tokens one bulk action names (SPEC B10).
pub const BULK_MAX: usize = 1_000;
/// Tokens changed per transaction of a bulk action: each chunk commits on its own, so a long
/// action never holds a thousand row locks at once.
const BULK_CHUNK: usize = 100;

/// Which tokens a bulk action takes.
#[derive(Debug, Clone)]
pub enum BulkTarget {
    Ids(Vec<u64>),
    /// Every valid token of the owner.
    Owner(UserId),
}

impl TokenService {
    /// Revokes, disables or enables each token, one audit event per token that changed; per
    /// token, in order, whether it exists. Asking a token for the state it has is a success that
    /// writes nothing.
    pub async fn bulk(
        &self,
        op: BulkOp,
        target: BulkTarget,
        reason: Option<StateReason>,
    ) -> Result<Vec<(u64, bool)>, StoreError> {
        let ids = match target {
            BulkTarget::Ids(ids) => ids,
            BulkTarget::Owner(user) => {
                let tokens = self.store.list_valid(user, self.clock.now()).await?;
                tokens.into_iter().map(|token| token.id).rev().collect()
            }
        };
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BULK_CHUNK) {
            let done = self
                .store
                .bulk(op, chunk, reason.clone(), &self.audit())
                .await?;
            for (&id, changed) in chunk.iter().zip(done) {
                let found = changed.is_some();
                if let Some(changed) = changed {
                    self.settled(changed);
                }
                results.push((id, found));
            }
        }
        Ok(results)
    }
}
