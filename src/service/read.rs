//! What a user reads about their tokens: the metadata snapshot, the list, the counts.

use super::{
    MetadataSnapshot, TokenList, TokenListRow, TokenService, UserTokenCounts, VerifyOptions,
};
use crate::domain::{Digest, Privilege, UserId};
use crate::envelope::{Reason, Results};

impl TokenService {
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
