//! Roles and what tokens hold (SPEC B4), for trusted operators. A role change bumps the
//! verification cache's role generation after it commits, so that every cached token holding a
//! role is read again at its next verification; a token's own change drops its entry.

use super::TokenService;
use crate::domain::access::{AccessChange, NewRole, RoleChange, RoleName, RoleRecord};
use crate::store::{AccessOutcome, RoleCreation, RoleDeletion, RoleUpdate, StoreError};

impl TokenService {
    pub async fn create_role(&self, role: NewRole) -> Result<RoleCreation, StoreError> {
        self.store.create_role(&role, &self.audit()).await
    }

    /// Every role, by name, with how many valid tokens hold each.
    pub async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.store.roles().await
    }

    pub async fn role(&self, name: &RoleName) -> Result<Option<RoleRecord>, StoreError> {
        self.store.role(name).await
    }

    /// Changes a role; the next verification of every token holding it sees the change.
    pub async fn update_role(
        &self,
        name: &RoleName,
        change: RoleChange,
    ) -> Result<RoleUpdate, StoreError> {
        let updated = self.store.update_role(name, &change, &self.audit()).await;
        self.roles_changed();
        updated
    }

    /// Deletes a role; while valid tokens hold it, only when `force`.
    pub async fn delete_role(
        &self,
        name: &RoleName,
        force: bool,
    ) -> Result<RoleDeletion, StoreError> {
        let deleted = self.store.delete_role(name, force, &self.audit()).await;
        self.roles_changed();
        deleted
    }

    /// Changes the roles and direct grants of one token; its next verification sees them.
    pub async fn change_access(
        &self,
        token_id: u64,
        change: AccessChange,
    ) -> Result<AccessOutcome, StoreError> {
        let Some(record) = self.store.find_by_id(token_id).await? else {
            return Ok(AccessOutcome::NotFound);
        };
        let outcome = self
            .store
            .change_access(token_id, &change, &self.audit())
            .await;
        self.invalidate(&record.digest);
        outcome.map(|outcome| match outcome {
            AccessOutcome::Updated(record) => {
                AccessOutcome::Updated(Box::new(self.with_unwritten_uses(*record)))
            }
            other => other,
        })
    }

    /// After a role change (even one that failed: it may have committed before the error).
    fn roles_changed(&self) {
        if let Some(cache) = &self.cache {
            cache.roles_changed();
        }
        if let Some(notices) = &self.notices {
            notices.publish(crate::shared::Notice::Roles);
        }
    }
}
