//! `privateActionManager`: a signed-in user acts on one of their tokens, addressed by the
//! five points (id, owner, name, public identifier, valid), never by the secret key.

use serde::Serialize;

use super::rotate::NewExpiry;
use super::{Message, MetadataSnapshot, RevokeData, RotatedToken, TokenService};
use crate::domain::{IpRestriction, Privilege, PublicIdentifier, UserId};
use crate::envelope::{Reason, Results};
use crate::store::TokenRecord;

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

impl TokenService {
    /// riavzon's `privateActionManager`, taking the public identifier as any text (a
    /// `PublicIdentifier` or a `&str`):
    /// 1. it must be an identifier whose checksum holds (`Invalid identity`, no query — a
    ///    wrong length included);
    /// 2. the five points must match one valid row (`Bad Request`, never saying which failed);
    /// 3. dispatch with the stored digest and privilege, returning the sub-operation's result.
    pub async fn private_action_manager(
        &self,
        user_id: UserId,
        token_id: u64,
        public_identifier: impl AsRef<str>,
        name: &str,
        action: ManagerAction,
    ) -> Results<ManagerData> {
        let public_identifier = match PublicIdentifier::parse_shape(public_identifier.as_ref()) {
            Ok(parsed) if parsed.checksum_holds() => parsed,
            _ => return self.failure(Reason::InvalidIdentity),
        };
        let found = self.store.find_for_owner(user_id, token_id).await;
        // SPEC B3: names and identifiers match byte for byte on every store (no collation's
        // padding, folding or normalisation), so the comparison is ours, not the database's.
        let matches = |record: &TokenRecord| {
            record.name.as_bytes() == name.as_bytes()
                && record.public_identifier.as_str().as_bytes()
                    == public_identifier.as_str().as_bytes()
        };
        let record = match found {
            Ok(Some(record)) if matches(&record) => record,
            Ok(_) => return self.failure(Reason::BadRequest),
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
            ManagerAction::Rotate => self
                .rotate_with(
                    &record.digest,
                    record.privilege,
                    &record.name,
                    false,
                    record.ip_restriction.clone(),
                    NewExpiry::Inherit(record.expires_at),
                    &record.prefix,
                )
                .await
                .map(ManagerData::Rotate),
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
}
