//! What a user reads about their tokens: the metadata snapshot, the list, the counts.

use super::{
    MetadataSnapshot, SnapshotDecision, TokenList, TokenListRow, TokenService, UserTokenCounts,
    VerifyOptions, VerifyOutcome,
};
use crate::domain::{Digest, Privilege, UserId};
use crate::envelope::{Reason, Results};
use crate::store::StoreError;

impl TokenService {
    /// Verifies without counting, IP check or checksum step, then adds the owner's counts.
    /// Fails with verify's reasons (never `Invalid Host`) or `Error getting metadata`.
    pub async fn metadata_snapshot(
        &self,
        presented: &str,
        privilege: Privilege,
    ) -> Results<MetadataSnapshot> {
        // Each step's store failure has its riavzon reason: verify's, then the snapshot's.
        let verified = match self.verify_for_snapshot(presented, privilege).await {
            Ok(verified) => verified,
            Err(err) => return self.store_failure("metadata", &err, Reason::VerifyServerError),
        };
        let decided = self.snapshot_of(verified).await;
        self.envelope("metadata", decided, Reason::MetadataError)
    }

    /// `metadata_snapshot` as a typed decision; `Err` when the store could not answer.
    pub async fn metadata_snapshot_outcome(
        &self,
        presented: &str,
        privilege: Privilege,
    ) -> Result<SnapshotDecision, StoreError> {
        let verified = self.verify_for_snapshot(presented, privilege).await?;
        self.snapshot_of(verified).await
    }

    async fn verify_for_snapshot(
        &self,
        presented: &str,
        privilege: Privilege,
    ) -> Result<VerifyOutcome, StoreError> {
        let options = VerifyOptions {
            privilege,
            skip_count_updates: true,
            bypass_ip_check: true,
            is_internal_hash: true,
            ip: None,
            permissions: None,
            usage: None,
            // A management lookup, not a verification a caller asked for.
            analytics: false,
            tags: None,
        };
        let digest = Digest::of_presented(presented);
        self.verify_outcome(digest.as_str(), options).await
    }

    async fn snapshot_of(&self, verified: VerifyOutcome) -> Result<SnapshotDecision, StoreError> {
        let token = match verified {
            VerifyOutcome::Valid(verified) => verified.token(),
            VerifyOutcome::Expired => return Ok(SnapshotDecision::Expired),
            // A snapshot does not count: limits and credits are never charged by it.
            VerifyOutcome::InvalidKey
            | VerifyOutcome::Disabled
            | VerifyOutcome::InvalidHost
            | VerifyOutcome::InsufficientPermissions
            | VerifyOutcome::RateLimited(_)
            | VerifyOutcome::UsageExceeded(_)
            | VerifyOutcome::UnknownLimit(_) => return Ok(SnapshotDecision::InvalidKey),
        };
        let counts = self.store.counts(token.user_id, self.clock.now()).await?;
        if counts.total() == 0 {
            return Ok(SnapshotDecision::NoRows);
        }
        Ok(SnapshotDecision::Found(MetadataSnapshot {
            token_meta: token,
            counts: counts.into(),
        }))
    }

    /// The owner's counts and valid tokens (`tokenList` left out when there are none).
    pub async fn list_valid_tokens(&self, user_id: UserId) -> Results<TokenList> {
        match self.list_valid_tokens_outcome(user_id).await {
            Ok(list) => self.success(list),
            Err(err) => self.store_failure("list", &err, Reason::ListServerError),
        }
    }

    /// `list_valid_tokens` typed; `Err` when the store could not answer.
    pub async fn list_valid_tokens_outcome(
        &self,
        user_id: UserId,
    ) -> Result<TokenList, StoreError> {
        let now = self.clock.now();
        let counts = self.store.counts(user_id, now).await?;
        let rows = self.store.list_valid(user_id, now).await?;
        Ok(TokenList {
            total: counts.total(),
            total_invalid_tokens: counts.invalid,
            total_valid_tokens: counts.valid,
            token_list: (!rows.is_empty()).then(|| {
                rows.into_iter()
                    .map(|row| TokenListRow::from(&self.with_unwritten_uses(row)))
                    .collect()
            }),
        })
    }

    /// The owner's counts over every row (`Server error` when the store cannot answer;
    /// riavzon names no reason for it).
    pub async fn total_user_tokens_count(&self, user_id: UserId) -> Results<UserTokenCounts> {
        match self.total_user_tokens_count_outcome(user_id).await {
            Ok(counts) => self.success(counts),
            Err(err) => self.store_failure("count", &err, Reason::ListServerError),
        }
    }

    /// `total_user_tokens_count` typed; `Err` when the store could not answer.
    pub async fn total_user_tokens_count_outcome(
        &self,
        user_id: UserId,
    ) -> Result<UserTokenCounts, StoreError> {
        let counts = self.store.counts(user_id, self.clock.now()).await?;
        Ok(UserTokenCounts {
            user_id,
            total_valid_tokens: counts.valid,
            total_invalid_tokens: counts.invalid,
            total: counts.total(),
        })
    }
}
