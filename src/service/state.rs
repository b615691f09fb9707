//! Disabling and enabling tokens and owners (SPEC B10). A change is seen at once here and,
//! through the B6 channel, on every other instance, like a revocation.

use super::TokenService;
use crate::domain::UserId;
use crate::store::{StateChange, StateChanged, StoreError};

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
