//! Customer limits and credits for operators (SPEC B5): replace a token's or an owner's
//! limits, change their credits, and read them as they stand. Every change is audited by the
//! store and dropped from the verification caches of every instance.

use std::collections::HashMap;
use std::sync::Arc;

use super::{CachedToken, TokenService};
use crate::domain::quota::{CreditChange, RateLimits, Scope, Subject};
use crate::domain::UserId;
use crate::quotas::{CreditsView, QuotaView};
use crate::store::{QuotaChange, StoreError};

impl TokenService {
    /// Replaces the limits of a token (`NotFound` when there is no such token) or of an owner;
    /// the tokens concerned see them at their next verification, on every instance.
    pub async fn set_ratelimits(
        &self,
        subject: Subject,
        limits: &RateLimits,
    ) -> Result<QuotaChange<QuotaView>, StoreError> {
        let changed = self
            .quotas
            .set_limits(subject, limits, &self.audit())
            .await?;
        self.settle(subject, None, changed).await
    }

    /// Changes (or starts) the credits of a token or an owner; answers them as they stand.
    pub async fn change_credits(
        &self,
        subject: Subject,
        change: &CreditChange,
    ) -> Result<QuotaChange<QuotaView>, StoreError> {
        let Some(owner) = self.owner_of(subject).await? else {
            return Ok(QuotaChange::NotFound);
        };
        let changed = self
            .quotas
            .change_credits(subject, owner, change, &self.audit())
            .await?;
        self.settle(subject, Some(owner), changed).await
    }

    /// After a committed change: the tokens it concerns are dropped from every cache, and the
    /// subject (of `owner`, when known) is read back as it stands.
    async fn settle<T>(
        &self,
        subject: Subject,
        owner: Option<UserId>,
        changed: QuotaChange<T>,
    ) -> Result<QuotaChange<QuotaView>, StoreError> {
        let QuotaChange::Changed { tokens, .. } = changed else {
            return Ok(QuotaChange::NotFound);
        };
        for digest in &tokens {
            self.invalidate(digest);
        }
        let view = match owner {
            Some(owner) => self.view_of(subject, owner).await?,
            None => self.quota_view(subject).await?,
        };
        Ok(QuotaChange::Changed {
            value: view.unwrap_or_default(),
            tokens,
        })
    }

    /// A token's (`None` when there is no such token) or an owner's limits, with this window's
    /// remaining and reset, and credits, with what is leased out and unspent.
    pub async fn quota_view(&self, subject: Subject) -> Result<Option<QuotaView>, StoreError> {
        match subject {
            Subject::Owner(user) => self.view_of(subject, user).await,
            // The owner is needed to find the token's state: the record has both.
            Subject::Token(id) => match self.store.find_by_id(id).await? {
                Some(record) => Ok(Some(self.quota_view_of(&record).await?)),
                None => Ok(None),
            },
        }
    }

    /// The view of a subject whose owner is known.
    async fn view_of(
        &self,
        subject: Subject,
        owner: UserId,
    ) -> Result<Option<QuotaView>, StoreError> {
        let Some(quota) = self.store.quota(subject).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        Ok(Some(self.quotas.view(subject, owner, &quota, now).await?))
    }

    /// `quota_view` of a token whose record is at hand (admin reads).
    pub async fn quota_view_of(
        &self,
        record: &crate::store::TokenRecord,
    ) -> Result<QuotaView, StoreError> {
        let subject = Subject::Token(record.id);
        let now = self.clock.now();
        self.quotas
            .view(subject, record.user_id, &record.quota, now)
            .await
    }

    /// The credits of each of `records` that has its own, as they stand (what is leased out and
    /// unspent included): one read of the store for all, then the leases of those with credits.
    pub async fn token_credits(
        &self,
        records: &[crate::store::TokenRecord],
    ) -> Result<HashMap<u64, CreditsView>, StoreError> {
        let ids: Vec<u64> = records.iter().map(|record| record.id).collect();
        let stored = self.store.token_credits(&ids).await?;
        let now = self.clock.now();
        let views = records.iter().filter_map(|record| {
            let credits = *stored.get(&record.id)?;
            Some(async move {
                let subject = Subject::Token(record.id);
                let view = self
                    .quotas
                    .credits_view(subject, record.user_id, credits, now)
                    .await?;
                Ok::<_, StoreError>((record.id, view))
            })
        });
        Ok(futures_util::future::try_join_all(views)
            .await?
            .into_iter()
            .collect())
    }

    /// The credits left of a verified token and of its owner (those that have credits).
    pub(super) async fn credits_left(
        &self,
        token: &Arc<CachedToken>,
    ) -> Result<Vec<(Scope, u64)>, StoreError> {
        let Some(plan) = &token.plan else {
            return Ok(Vec::new());
        };
        let mut left = Vec::new();
        for (scope, _) in plan.credit_pools() {
            let subject = match scope {
                Scope::Token => Subject::Token(token.id),
                Scope::Owner => Subject::Owner(token.user_id),
            };
            // The credits only: their limits' windows are in the verification's own report.
            let stored = self.store.quota(subject).await?.and_then(|q| q.credits);
            if let Some(stored) = stored {
                let now = self.clock.now();
                let view = self
                    .quotas
                    .credits_view(subject, token.user_id, stored, now)
                    .await?;
                left.push((scope, view.remaining));
            }
        }
        Ok(left)
    }

    /// The owner of a subject: itself, or the token's (`None`: no such token).
    async fn owner_of(&self, subject: Subject) -> Result<Option<UserId>, StoreError> {
        match subject {
            Subject::Owner(user) => Ok(Some(user)),
            Subject::Token(id) => Ok(self.store.find_by_id(id).await?.map(|r| r.user_id)),
        }
    }
}
