//! Changes a user makes to one of their tokens: revoke, IP restriction, privilege.

use super::{
    Message, Revocation, RevokeData, TokenService, Update, PRIVILEGE_UPDATED_MSG,
    RESTRICTION_UPDATED_MSG,
};
use crate::domain::{Digest, IpRestriction, Privilege, UserId};
use crate::envelope::{Reason, Results};
use crate::store::StoreError;

impl TokenService {
    /// Revokes the valid token `presented` (raw key or digest) with this privilege. Idempotent:
    /// an unknown or already invalid token is a success whose data is the bare message.
    pub async fn revoke(&self, presented: &str, privilege: Privilege) -> Results<RevokeData> {
        self.revoke_digest(&Digest::of_presented(presented), Some(privilege))
            .await
    }

    /// Revokes by digest, with or without a privilege check (the CLI revokes whatever it is).
    pub async fn revoke_digest(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
    ) -> Results<RevokeData> {
        let decided = self.revoke_outcome(digest, privilege).await;
        self.envelope("revoke", decided, Reason::RevokeError)
    }

    /// `revoke_digest` as a typed decision; `Err` only when the store could not answer.
    pub async fn revoke_outcome(
        &self,
        digest: &Digest,
        privilege: Option<Privilege>,
    ) -> Result<Revocation, StoreError> {
        let revoked = self.store.revoke(digest, privilege, &self.audit()).await;
        self.invalidate(digest);
        Ok(match revoked? {
            Some(record) => Revocation::Revoked {
                token_id: record.id,
                user_id: record.user_id,
            },
            None => Revocation::NothingToRevoke,
        })
    }

    /// Replaces the IP restriction of the owner's token; an empty list removes it.
    pub async fn update_ip_restriction(
        &self,
        user_id: UserId,
        presented: &str,
        ips: IpRestriction,
    ) -> Results<Message> {
        let decided = self
            .update_ip_restriction_outcome(user_id, presented, ips)
            .await;
        self.envelope(
            "ip-restriction-update",
            decided,
            Reason::InternalServerError,
        )
    }

    /// `update_ip_restriction` as a typed decision.
    pub async fn update_ip_restriction_outcome(
        &self,
        user_id: UserId,
        presented: &str,
        ips: IpRestriction,
    ) -> Result<Update, StoreError> {
        let digest = Digest::of_presented(presented);
        let updated = self
            .store
            .update_ip_restriction(user_id, &digest, &ips, &self.audit())
            .await;
        self.invalidate(&digest);
        Ok(decided(updated?, RESTRICTION_UPDATED_MSG))
    }

    /// Changes the privilege of the owner's token.
    pub async fn update_privilege(
        &self,
        user_id: UserId,
        presented: &str,
        privilege: Privilege,
    ) -> Results<Message> {
        let decided = self
            .update_privilege_outcome(user_id, presented, privilege)
            .await;
        self.envelope("privilege-update", decided, Reason::InternalServerError)
    }

    /// `update_privilege` as a typed decision.
    pub async fn update_privilege_outcome(
        &self,
        user_id: UserId,
        presented: &str,
        privilege: Privilege,
    ) -> Result<Update, StoreError> {
        let digest = Digest::of_presented(presented);
        let updated = self
            .store
            .update_privilege(user_id, &digest, privilege, &self.audit())
            .await;
        self.invalidate(&digest);
        Ok(decided(updated?, PRIVILEGE_UPDATED_MSG))
    }
}

fn decided(updated: bool, msg: &'static str) -> Update {
    if updated {
        Update::Updated(msg)
    } else {
        Update::NotFound
    }
}
