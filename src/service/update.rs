//! Changes a user makes to one of their tokens: revoke, IP restriction, privilege.

use super::{
    Message, RevokeData, TokenService, PRIVILEGE_UPDATED_MSG, RESTRICTION_UPDATED_MSG, REVOKED_MSG,
};
use crate::domain::{Digest, IpRestriction, Privilege, UserId};
use crate::envelope::{Reason, Results};

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
        let revoked = self.store.revoke(digest, privilege, &self.audit()).await;
        self.invalidate(digest);
        match revoked {
            Ok(Some(record)) => self.success(RevokeData::Revoked {
                msg: REVOKED_MSG,
                invalided_token_id: record.id,
                user_id: record.user_id,
            }),
            Ok(None) => self.success(RevokeData::NothingToRevoke(REVOKED_MSG)),
            Err(err) => self.store_failure("revoke", &err, Reason::RevokeError),
        }
    }

    /// Replaces the IP restriction of the owner's token; an empty list removes it.
    pub async fn update_ip_restriction(
        &self,
        user_id: UserId,
        presented: &str,
        ips: IpRestriction,
    ) -> Results<Message> {
        let digest = Digest::of_presented(presented);
        let updated = self
            .store
            .update_ip_restriction(user_id, &digest, &ips, &self.audit())
            .await;
        self.invalidate(&digest);
        match updated {
            Ok(true) => self.success(Message {
                msg: RESTRICTION_UPDATED_MSG,
            }),
            Ok(false) => self.failure(Reason::NotFoundOrUnauthorized),
            Err(err) => {
                self.store_failure("ip-restriction-update", &err, Reason::InternalServerError)
            }
        }
    }

    /// Changes the privilege of the owner's token.
    pub async fn update_privilege(
        &self,
        user_id: UserId,
        presented: &str,
        privilege: Privilege,
    ) -> Results<Message> {
        let digest = Digest::of_presented(presented);
        let updated = self
            .store
            .update_privilege(user_id, &digest, privilege, &self.audit())
            .await;
        self.invalidate(&digest);
        match updated {
            Ok(true) => self.success(Message {
                msg: PRIVILEGE_UPDATED_MSG,
            }),
            Ok(false) => self.failure(Reason::NotFoundOrUnauthorized),
            Err(err) => self.store_failure("privilege-update", &err, Reason::InternalServerError),
        }
    }
}
