//! Creating, reading, changing and revoking stored credentials. The rule that guards them: a
//! caller hands out, changes or revokes only credentials whose every scope it holds itself (no
//! escalation). A change is seen at once here and, through the B6 channel, on every other
//! instance.

use chrono::{DateTime, Utc};

use super::{Admins, Caller};
use crate::domain::access::scope::ScopeList;
use crate::domain::credential::{
    AdminSecret, CredentialChange, CredentialName, CredentialRecord, NewCredential,
};
use crate::store::{Audit, CredentialOutcome, StoreError};

/// A credential to create.
#[derive(Debug, Clone)]
pub struct CreateCredential {
    pub name: CredentialName,
    pub scopes: ScopeList,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a change of credentials was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("the caller does not hold the scope {0}")]
    Forbidden(&'static str),
    #[error("no such credential")]
    NotFound,
    #[error("the credential is revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// New secrets drawn before giving up on a digest collision (never happens: 2^-256).
const DRAWS: usize = 3;

impl Admins {
    /// Creates a credential; its secret is answered here and never again.
    pub async fn create(
        &self,
        by: &Caller,
        request: CreateCredential,
    ) -> Result<(CredentialRecord, AdminSecret), ManageError> {
        within(by, &request.scopes)?;
        let audit = self.audit(by);
        for _ in 0..DRAWS {
            let secret = AdminSecret::generate();
            let new = NewCredential {
                digest: secret.digest(),
                name: request.name.clone(),
                scopes: request.scopes.clone(),
                created_at: audit.at,
                created_by: by.actor.clone(),
                expires_at: request.expires_at,
            };
            if let Some(record) = self.store.create_credential(&new, &audit).await? {
                return Ok((record, secret));
            }
        }
        Err(StoreError::CorruptRow("admin credential digests collided".into()).into())
    }

    /// Every stored credential, revoked ones included, oldest first.
    pub async fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        self.store.credentials().await
    }

    pub async fn credential(&self, id: u64) -> Result<Option<CredentialRecord>, StoreError> {
        self.store.credential(id).await
    }

    /// Changes a credential's name, scopes or expiry.
    pub async fn change(
        &self,
        by: &Caller,
        id: u64,
        change: &CredentialChange,
    ) -> Result<CredentialRecord, ManageError> {
        if let Some(scopes) = &change.scopes {
            within(by, scopes)?;
        }
        let outcome = self
            .store
            .change_credential(id, change, &by.scopes, &self.audit(by))
            .await?;
        self.settled(outcome)
    }

    /// Revokes a credential: refused at once here, within 100 ms on the other instances. It
    /// stays readable, with `revokedAt`. Revoking a revoked one answers it as it is.
    pub async fn revoke(&self, by: &Caller, id: u64) -> Result<CredentialRecord, ManageError> {
        let outcome = self
            .store
            .revoke_credential(id, &by.scopes, &self.audit(by))
            .await?;
        self.settled(outcome)
    }

    fn settled(&self, outcome: CredentialOutcome) -> Result<CredentialRecord, ManageError> {
        match outcome {
            CredentialOutcome::Done(record) => {
                self.changed((*record).clone());
                Ok(*record)
            }
            CredentialOutcome::NotFound => Err(ManageError::NotFound),
            CredentialOutcome::Revoked => Err(ManageError::Revoked),
            CredentialOutcome::Forbidden(scope) => Err(ManageError::Forbidden(scope)),
        }
    }

    fn audit(&self, by: &Caller) -> Audit {
        Audit {
            actor: by.actor.clone(),
            at: self.clock.now(),
        }
    }
}

/// Refuses scopes the caller does not hold, naming the first in catalogue order.
fn within(by: &Caller, scopes: &ScopeList) -> Result<(), ManageError> {
    match by.scopes.first_missing(scopes.scopes().granted()) {
        Some(missing) => Err(ManageError::Forbidden(missing)),
        None => Ok(()),
    }
}
