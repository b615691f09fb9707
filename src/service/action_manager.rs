//! `privateActionManager`: a signed-in user acts on one of their tokens, addressed by the
//! five points (id, owner, name, public identifier, valid), never by the secret key.

use serde::Serialize;

use super::rotate::NewShape;
use super::{
    Decision, Message, MetadataSnapshot, Revocation, RevokeData, RotatedToken, RotationDecision,
    SnapshotDecision, TokenService, Update,
};
use crate::domain::{IpRestriction, Prefix, Privilege, PublicIdentifier, UserId};
use crate::envelope::{Reason, Results};
use crate::store::{StoreError, TokenRecord};

/// What to do with the addressed token.
#[derive(Debug, Clone)]
pub enum ManagerAction {
    Revoke,
    Metadata,
    /// The new key inherits name, privilege, prefix, IP list and the remaining lifetime.
    Rotate,
    IpRestrictionUpdate {
        new_ip_address: IpRestriction,
    },
    PrivilegeUpdate {
        new_privileges: Privilege,
    },
}

/// The sub-operation's data, unchanged.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ManagerData {
    Revoke(RevokeData),
    Metadata(MetadataSnapshot),
    Rotate(RotatedToken),
    Updated(Message),
}

/// What the private action manager decided: a refusal of the address, or the sub-operation's
/// own decision.
#[derive(Debug, Clone)]
pub enum ManagerDecision {
    /// The public identifier is not one (its shape or checksum).
    InvalidIdentity,
    /// The five points match no valid row (which point failed is not said).
    NoMatch,
    Revoke(Revocation),
    Metadata(SnapshotDecision),
    Rotate(RotationDecision),
    Updated(Update),
}

impl Decision for ManagerDecision {
    type Data = ManagerData;
    fn into_data(self) -> Result<ManagerData, Reason> {
        match self {
            Self::InvalidIdentity => Err(Reason::InvalidIdentity),
            Self::NoMatch => Err(Reason::BadRequest),
            Self::Revoke(decided) => decided.into_data().map(ManagerData::Revoke),
            Self::Metadata(decided) => decided.into_data().map(ManagerData::Metadata),
            Self::Rotate(decided) => decided.into_data().map(ManagerData::Rotate),
            Self::Updated(decided) => decided.into_data().map(ManagerData::Updated),
        }
    }
}

impl TokenService {
    /// riavzon's `privateActionManager`, taking the public identifier as any text (a
    /// `PublicIdentifier` or a `&str`):
    /// 1. it must be an identifier whose checksum holds (`Invalid identity`, no query — a
    ///    wrong length included);
    /// 2. the five points must match one valid row (`Bad Request`, never saying which failed);
    /// 3. dispatch with the stored digest and privilege, returning the sub-operation's result,
    ///    whose store failure has the sub-operation's reason.
    pub async fn private_action_manager(
        &self,
        user_id: UserId,
        token_id: u64,
        public_identifier: impl AsRef<str>,
        name: &str,
        action: ManagerAction,
    ) -> Results<ManagerData> {
        let addressed = self
            .addressed(user_id, token_id, public_identifier.as_ref(), name)
            .await;
        let record = match addressed {
            Ok(Ok(record)) => record,
            Ok(Err(refused)) => return self.envelope("manager", Ok(refused), Reason::BadRequest),
            Err(err) => return self.store_failure("manager", &err, Reason::ManagerServerError),
        };
        let digest = record.digest.as_str();
        match action {
            ManagerAction::Revoke => self
                .revoke(digest, record.privilege)
                .await
                .map(ManagerData::Revoke),
            ManagerAction::Metadata => self
                .metadata_snapshot(digest, record.privilege)
                .await
                .map(ManagerData::Metadata),
            ManagerAction::Rotate => {
                let decided = self.rotate_in_place(&record).await;
                self.envelope("rotate", decided, Reason::RotateServerError)
                    .map(ManagerData::Rotate)
            }
            ManagerAction::IpRestrictionUpdate { new_ip_address } => self
                .update_ip_restriction(user_id, digest, new_ip_address)
                .await
                .map(ManagerData::Updated),
            ManagerAction::PrivilegeUpdate { new_privileges } => self
                .update_privilege(user_id, digest, new_privileges)
                .await
                .map(ManagerData::Updated),
        }
    }

    /// `private_action_manager` as a typed decision; `Err` when the store could not answer
    /// (at the lookup or in the sub-operation).
    pub async fn private_action_manager_outcome(
        &self,
        user_id: UserId,
        token_id: u64,
        public_identifier: impl AsRef<str>,
        name: &str,
        action: ManagerAction,
    ) -> Result<ManagerDecision, StoreError> {
        let record = match self
            .addressed(user_id, token_id, public_identifier.as_ref(), name)
            .await?
        {
            Ok(record) => record,
            Err(refused) => return Ok(refused),
        };
        let digest = record.digest.as_str();
        Ok(match action {
            ManagerAction::Revoke => ManagerDecision::Revoke(
                self.revoke_outcome(&record.digest, Some(record.privilege))
                    .await?,
            ),
            ManagerAction::Metadata => ManagerDecision::Metadata(
                self.metadata_snapshot_outcome(digest, record.privilege)
                    .await?,
            ),
            ManagerAction::Rotate => ManagerDecision::Rotate(self.rotate_in_place(&record).await?),
            ManagerAction::IpRestrictionUpdate { new_ip_address } => ManagerDecision::Updated(
                self.update_ip_restriction_outcome(user_id, digest, new_ip_address)
                    .await?,
            ),
            ManagerAction::PrivilegeUpdate { new_privileges } => ManagerDecision::Updated(
                self.update_privilege_outcome(user_id, digest, new_privileges)
                    .await?,
            ),
        })
    }

    /// Steps 1 and 2: the valid row the five points address, or why there is none.
    async fn addressed(
        &self,
        user_id: UserId,
        token_id: u64,
        public_identifier: &str,
        name: &str,
    ) -> Result<Result<TokenRecord, ManagerDecision>, StoreError> {
        let public_identifier = match PublicIdentifier::parse_shape(public_identifier) {
            Ok(parsed) if parsed.checksum_holds() => parsed,
            _ => return Ok(Err(ManagerDecision::InvalidIdentity)),
        };
        let found = self.store.find_for_owner(user_id, token_id).await?;
        // SPEC B3: names and identifiers match byte for byte on every store (no collation's
        // padding, folding or normalisation), so the comparison is ours, not the database's.
        let matches = |record: &TokenRecord| {
            record.name.as_bytes() == name.as_bytes()
                && record.public_identifier.as_str().as_bytes()
                    == public_identifier.as_str().as_bytes()
        };
        Ok(found.filter(matches).ok_or(ManagerDecision::NoMatch))
    }

    /// The new key inherits name, privilege, prefix, IP list and the remaining lifetime.
    async fn rotate_in_place(&self, old: &TokenRecord) -> Result<RotationDecision, StoreError> {
        // A stored prefix that is not one of ours (a row copied from elsewhere) gives way to
        // the default, so that the new key has our format.
        let prefix = Prefix::parse(&old.prefix).unwrap_or_default();
        let shape = NewShape {
            name: &old.name,
            prefix: &prefix,
            ips: old.ip_restriction.clone(),
            expires_at: old.expires_at,
        };
        self.decide_rotation(&old.digest, old.privilege, false, shape)
            .await
    }
}
