//! Operations for trusted operators (SPEC B2): tokens by id, metadata, listings, the audit
//! log, and verification with full detail. Failures to reach the store are the `Err`.

use std::sync::Arc;

use super::{CachedToken, TokenService, VerifiedToken, VerifyOptions, VerifyOutcome};
use crate::domain::analytics::Code;
use crate::domain::quota::{Scope, UnknownLimit};
use crate::domain::Privilege;
use crate::quotas::QuotaReport;
use crate::store::{
    AuditEvent, AuditQuery, MetadataChange, MetadataOutcome, StoreError, TokenQuery, TokenRecord,
};

/// What an admin verification found.
#[derive(Debug, Clone)]
pub struct AdminVerification {
    /// One of `Code::ANSWERED`. Unknown keys and a privilege mismatch are both `NotFound`, so
    /// existence never leaks.
    pub code: Code,
    /// The token, for every code but `NotFound`.
    pub token: Option<Arc<CachedToken>>,
    /// For every code but `NotFound`: the verify data with the token's counts, including this
    /// use when it was counted (only a `Valid` verification counts one).
    pub verified: Option<VerifiedToken>,
    /// The limits charged (`Valid`) or the one that refused (`RateLimited`), and when a refused
    /// caller may try again.
    pub quota: Option<QuotaReport>,
    /// The credits left after this verification, of the token and of its owner (those that
    /// have credits), for every code but `NotFound`.
    pub credits: Vec<(Scope, u64)>,
}

impl TokenService {
    /// Verifies for a trusted caller: any privilege when `privilege` is `None` (else a token of
    /// another privilege is `NotFound`), as `options` say (their `privilege` is ignored; the
    /// admin route asks for `analytics(true)`: counted whether or not it counts a use).
    pub async fn verify_for_admin(
        &self,
        key: &str,
        privilege: Option<Privilege>,
        options: VerifyOptions<'_>,
    ) -> Result<Result<AdminVerification, UnknownLimit>, StoreError> {
        let options = VerifyOptions {
            privilege: privilege.unwrap_or_default(),
            is_internal_hash: false,
            ..options
        };
        let (outcome, token) = self.check(key, options, privilege, None).await?;
        let Some(code) = outcome.code() else {
            let VerifyOutcome::UnknownLimit(unknown) = outcome else {
                unreachable!("every other outcome has a code");
            };
            return Ok(Err(unknown));
        };
        let quota = match &outcome {
            VerifyOutcome::Valid(verified) => verified.quota.clone(),
            VerifyOutcome::RateLimited(report) | VerifyOutcome::UsageExceeded(report) => {
                Some(report.clone())
            }
            _ => None,
        };
        let token = (code != Code::NotFound).then_some(token).flatten();
        let verified = match outcome {
            VerifyOutcome::Valid(verified) => Some(verified.token()),
            // Refused: the counts as they are, uses counted and not yet written included.
            _ => token.as_ref().map(|token| {
                let (count, last_used) = self
                    .usage
                    .as_ref()
                    .and_then(|usage| usage.current(token.id))
                    .unwrap_or((token.usage_count, token.last_used));
                VerifiedToken::new(token, count, last_used)
            }),
        };
        let credits = match &token {
            Some(token) => self.credits_left(token).await?,
            None => Vec::new(),
        };
        Ok(Ok(AdminVerification {
            code,
            token,
            verified,
            quota,
            credits,
        }))
    }

    /// The token with this id, valid or not, with its metadata.
    pub async fn token_by_id(&self, token_id: u64) -> Result<Option<TokenRecord>, StoreError> {
        let found = self.store.find_by_id(token_id).await?;
        Ok(found.map(|record| self.with_unwritten_uses(record)))
    }

    /// Changes a token's metadata (merge-patch or replace-all); the next verification sees it.
    pub async fn change_metadata(
        &self,
        token_id: u64,
        change: MetadataChange,
    ) -> Result<MetadataOutcome, StoreError> {
        let Some(record) = self.store.find_by_id(token_id).await? else {
            return Ok(MetadataOutcome::NotFound);
        };
        let outcome = self
            .store
            .update_metadata(token_id, &change, &self.audit())
            .await;
        self.invalidate(&record.digest);
        outcome
    }

    /// Revokes by id: `None` for an unknown id, else the token as it is now and whether this
    /// call revoked it (false when it already was invalid).
    pub async fn revoke_by_id(
        &self,
        token_id: u64,
    ) -> Result<Option<(TokenRecord, bool)>, StoreError> {
        let revoked = self.store.revoke_by_id(token_id, &self.audit()).await?;
        Ok(revoked.map(|(record, changed)| {
            self.invalidate(&record.digest);
            let mut record = self.with_unwritten_uses(record);
            record.valid = false;
            (record, changed)
        }))
    }

    /// A page of a user's tokens.
    pub async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenRecord>, StoreError> {
        let records = self.store.list_tokens(query).await?;
        Ok(records
            .into_iter()
            .map(|record| self.with_unwritten_uses(record))
            .collect())
    }

    /// The audit log of a token.
    pub async fn token_events(&self, token_id: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.store.events(token_id).await
    }

    /// A page of the whole audit log, newest first (SPEC B9).
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.store.audit(query).await
    }
}
