//! The management operations: revoke, metadata snapshot, IP and privilege updates, listing.

use super::{
    Message, MetadataSnapshot, RevokeData, TokenList, TokenListRow, TokenService, UserTokenCounts,
    VerifyOptions, PRIVILEGE_UPDATED_MSG, RESTRICTION_UPDATED_MSG, REVOKED_MSG,
};
use crate::envelope::{Reason, Results};
use crate::token::{Digest, IpRestriction, Privilege, UserId};

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

    /// Verifies without counting, IP check or checksum step, then adds the owner's counts.
    /// Fails with verify's reasons (never `Invalid Host`) or `Error getting metadata`.
    pub async fn metadata_snapshot(
        &self,
        presented: &str,
        privilege: Privilege,
    ) -> Results<MetadataSnapshot> {
        let options = VerifyOptions {
            privilege,
            skip_count_updates: true,
            bypass_ip_check: true,
            is_internal_hash: true,
            ip: None,
        };
        let digest = Digest::of_presented(presented);
        let token = match self.verify_outcome(digest.as_str(), options).await {
            Ok(outcome) => match outcome.into_token() {
                Ok(token) => token,
                Err(reason) => return self.failure(reason),
            },
            Err(err) => return self.store_failure("metadata", &err, Reason::VerifyServerError),
        };
        match self.store.counts(token.user_id, self.clock.now()).await {
            Ok(counts) if counts.total() == 0 => self.failure(Reason::MetadataInvalidToken),
            Ok(counts) => self.success(MetadataSnapshot {
                token_meta: token,
                counts: counts.into(),
            }),
            Err(err) => self.store_failure("metadata", &err, Reason::MetadataError),
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

    /// The owner's counts and valid tokens (`tokenList` left out when there are none).
    pub async fn list_valid_tokens(&self, user_id: UserId) -> Results<TokenList> {
        let now = self.clock.now();
        let listed = async {
            let counts = self.store.counts(user_id, now).await?;
            let rows = self.store.list_valid(user_id, now).await?;
            Ok::<_, crate::store::StoreError>((counts, rows))
        };
        match listed.await {
            Ok((counts, rows)) => self.success(TokenList {
                total: counts.total(),
                total_invalid_tokens: counts.invalid,
                total_valid_tokens: counts.valid,
                token_list: (!rows.is_empty()).then(|| {
                    rows.into_iter()
                        .map(|row| TokenListRow::from(&self.with_unwritten_uses(row)))
                        .collect()
                }),
            }),
            Err(err) => self.store_failure("list", &err, Reason::ListServerError),
        }
    }

    /// The owner's counts over every row (`Server error` when the store cannot answer;
    /// riavzon names no reason for it).
    pub async fn total_user_tokens_count(&self, user_id: UserId) -> Results<UserTokenCounts> {
        match self.store.counts(user_id, self.clock.now()).await {
            Ok(counts) => self.success(UserTokenCounts {
                user_id,
                total_valid_tokens: counts.valid,
                total_invalid_tokens: counts.invalid,
                total: counts.total(),
            }),
            Err(err) => self.store_failure("count", &err, Reason::ListServerError),
        }
    }
}
