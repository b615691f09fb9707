//! `verify`: the hot path of SPEC A6, steps in order.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cache::{Cached, Lookup};
use super::{CachedToken, TokenService, VerifiedToken};
use crate::clock::Moment;
use crate::domain::access::Query;
use crate::domain::analytics::{Code, Tags};
use crate::domain::quota::{QuotaPlan, UnknownLimit, Usage};
use crate::domain::{Digest, Privilege, RawKey};
use crate::envelope::{Reason, Results};
use crate::quotas::{QuotaDecision, QuotaReport};
use crate::store::StoreError;
use crate::telemetry::metrics::CacheResult;

/// One use, charged to every auto-applied limit and to the credits.
static ONE_USE: std::sync::LazyLock<Usage> = std::sync::LazyLock::new(Usage::default);

/// How to verify. The defaults are the public route's: count the use and check the IP.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'q> {
    pub privilege: Privilege,
    /// Do not count this use (`usage_count`, `last_used` unchanged).
    pub skip_count_updates: bool,
    /// Ignore the token's IP restriction.
    pub bypass_ip_check: bool,
    /// The presented value is the 64-hex digest, not a raw key (no checksum step).
    pub is_internal_hash: bool,
    /// The caller's address, for the IP restriction.
    pub ip: Option<IpAddr>,
    /// A permission query the token's effective permissions must satisfy (SPEC B4).
    pub permissions: Option<&'q Query>,
    /// What a counting verification costs against the token's and its owner's limits and
    /// credits (SPEC B5); `None`: one use, no named limits.
    pub usage: Option<&'q Usage>,
    /// Count this verification in the analytics (SPEC B11): a counting verification does by
    /// default, one that skips counting does not (a snapshot, a peek).
    pub analytics: bool,
    /// The verification's analytics tags (checked; admitted under `analytics.max_tag_values`
    /// when it is counted).
    pub tags: Option<&'q Tags>,
}

impl<'q> VerifyOptions<'q> {
    /// The public route's verification: counted, IP-checked against `ip`, a raw key.
    pub fn new(privilege: Privilege, ip: Option<IpAddr>) -> Self {
        Self {
            privilege,
            skip_count_updates: false,
            bypass_ip_check: false,
            is_internal_hash: false,
            ip,
            permissions: None,
            usage: None,
            analytics: true,
            tags: None,
        }
    }

    /// Counted in the analytics or not (a verification a caller asked for is).
    pub fn analytics(mut self, analytics: bool) -> Self {
        self.analytics = analytics;
        self
    }

    /// The tags it is counted under in the analytics.
    pub fn tags(mut self, tags: impl Into<Option<&'q Tags>>) -> Self {
        self.tags = tags.into();
        self
    }

    /// What this verification costs against limits and credits (a counting one only).
    pub fn usage(mut self, usage: impl Into<Option<&'q Usage>>) -> Self {
        self.usage = usage.into();
        self
    }

    /// The token must satisfy `query`; failing it is `InsufficientPermissions`, not a use.
    pub fn permissions(mut self, query: impl Into<Option<&'q Query>>) -> Self {
        self.permissions = query.into();
        self
    }

    /// Do not count this use (nor, unless `analytics(true)` follows, the verification).
    pub fn skip_count_updates(mut self, skip: bool) -> Self {
        self.skip_count_updates = skip;
        self.analytics = !skip;
        self
    }

    /// Ignore the token's IP restriction.
    pub fn bypass_ip_check(mut self, bypass: bool) -> Self {
        self.bypass_ip_check = bypass;
        self
    }

    /// The presented value is the 64-hex digest, not a raw key.
    pub fn internal_hash(mut self, is_internal_hash: bool) -> Self {
        self.is_internal_hash = is_internal_hash;
        self
    }
}

/// What verification decided. Storage failures are not outcomes: they are `Err`.
#[derive(Debug, Clone, PartialEq)]
pub enum VerifyOutcome {
    Valid(Verified),
    /// Malformed, bad checksum, unknown, revoked, expired earlier, or another privilege.
    InvalidKey,
    InvalidHost,
    /// The token or its owner is disabled (SPEC B10): not a use, nothing charged.
    Disabled,
    /// Expired now; the token has just been marked invalid.
    Expired,
    /// Valid, but its effective permissions do not satisfy the query (not counted as a use).
    InsufficientPermissions,
    /// Valid, but a limit of the token or its owner is used up (nothing consumed, no use).
    RateLimited(QuotaReport),
    /// Valid, but the token or its owner has no credits left (nothing consumed, no use).
    UsageExceeded(QuotaReport),
    /// The caller named a limit that neither the token nor its owner has (nothing consumed).
    UnknownLimit(UnknownLimit),
}

impl VerifyOutcome {
    /// The code it is answered and counted under (SPEC B2, B11); `None` for a limit the caller
    /// named wrongly (a bad request, not a verification).
    pub fn code(&self) -> Option<Code> {
        Some(match self {
            Self::Valid(_) => Code::Valid,
            Self::InvalidKey => Code::NotFound,
            Self::InvalidHost => Code::IpNotAllowed,
            Self::Disabled => Code::Disabled,
            Self::Expired => Code::Expired,
            Self::InsufficientPermissions => Code::InsufficientPermissions,
            Self::RateLimited(_) => Code::RateLimited,
            Self::UsageExceeded(_) => Code::UsageExceeded,
            Self::UnknownLimit(_) => return None,
        })
    }

    /// The verified token, or the riavzon reason of the rejection.
    pub fn into_token(self) -> Result<VerifiedToken, Reason> {
        self.into_verified().map(|verified| verified.token())
    }

    /// Like `into_token`, without copying the token's record out of the cache.
    pub fn into_verified(self) -> Result<Verified, Reason> {
        match self {
            Self::Valid(verified) => Ok(verified),
            Self::InvalidKey => Err(Reason::InvalidKey),
            Self::InvalidHost => Err(Reason::InvalidHost),
            Self::Disabled => Err(Reason::TokenDisabled),
            Self::Expired => Err(Reason::TokenExpired),
            Self::InsufficientPermissions => Err(Reason::InsufficientPermissions),
            Self::RateLimited(_) => Err(Reason::RateLimitExceeded),
            Self::UsageExceeded(_) => Err(Reason::UsageExceeded),
            Self::UnknownLimit(_) => Err(Reason::BadRequest),
        }
    }
}

/// A verification that passed: the token's record as cached, with its counts after this use.
/// Making one copies nothing; `token()` builds the caller-facing payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub record: Arc<CachedToken>,
    pub usage_count: u64,
    pub last_used: Option<DateTime<Utc>>,
    /// The limits it was charged against, when the token or its owner has any.
    pub quota: Option<QuotaReport>,
}

impl Verified {
    pub fn token(&self) -> VerifiedToken {
        VerifiedToken::new(&self.record, self.usage_count, self.last_used)
    }
}

impl TokenService {
    /// Verifies `presented` (a raw key, or the digest when `is_internal_hash`). Fails with
    /// `Invalid key`, `Invalid Host`, `Token expired`, or `Server error validating token.` when
    /// the store cannot answer (fail closed).
    pub async fn verify(
        &self,
        presented: &str,
        options: VerifyOptions<'_>,
    ) -> Results<VerifiedToken> {
        match self.verify_outcome(presented, options).await {
            Ok(outcome) => Results {
                date: self.clock.now(),
                outcome: outcome.into_token(),
            },
            Err(err) => self.store_failure("verify", &err, Reason::VerifyServerError),
        }
    }

    /// The decision itself, for callers that map outcomes on their own (HTTP, admin verify).
    pub async fn verify_outcome(
        &self,
        presented: &str,
        options: VerifyOptions<'_>,
    ) -> Result<VerifyOutcome, StoreError> {
        let privilege = Some(options.privilege);
        Ok(self.check(presented, options, privilege, None).await?.0)
    }

    /// `verify_outcome` as of `now`, for a caller that has just read the clock (the HTTP route
    /// stamps its answer with the same instant; one clock read per request, not two).
    pub(crate) async fn verify_outcome_at(
        &self,
        presented: &str,
        options: VerifyOptions<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let privilege = Some(options.privilege);
        Ok(self
            .check(presented, options, privilege, Some(now))
            .await?
            .0)
    }

    /// A gateway's verification (SPEC B13) as of `now`: `privilege: None` accepts a token of
    /// any privilege (a forward-auth rule need not name one).
    pub(crate) async fn verify_outcome_for_gateway(
        &self,
        presented: &str,
        options: VerifyOptions<'_>,
        privilege: Option<Privilege>,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        Ok(self
            .check(presented, options, privilege, Some(now))
            .await?
            .0)
    }

    /// Verification with the token it found, if any; `privilege: None` accepts any privilege
    /// (trusted callers asking "what is this key?"). `at: None` reads the clock once the key has
    /// passed its shape check (garbage is then counted for the analytics at a clock read of its
    /// own, only when they count it). Every answered verification is counted when
    /// `options.analytics`.
    pub(super) async fn check(
        &self,
        presented: &str,
        options: VerifyOptions<'_>,
        privilege: Option<Privilege>,
        at: Option<DateTime<Utc>>,
    ) -> Result<(VerifyOutcome, Lookup), StoreError> {
        let (checked, now) = self
            .look_and_decide(presented, options, privilege, at)
            .await;
        if let (Ok((outcome, token)), true) = (&checked, options.analytics) {
            let now = now.unwrap_or_else(|| self.clock.now());
            self.count_verification(outcome, token.as_deref(), options.tags, now);
        }
        checked
    }

    /// Steps 1–6; with the moment read, if it was (garbage is refused before the clock).
    async fn look_and_decide(
        &self,
        presented: &str,
        options: VerifyOptions<'_>,
        privilege: Option<Privilege>,
        at: Option<DateTime<Utc>>,
    ) -> (
        Result<(VerifyOutcome, Lookup), StoreError>,
        Option<DateTime<Utc>>,
    ) {
        // 1–2. Shape and checksum (no I/O), then the digest.
        let digest = if options.is_internal_hash {
            Digest::parse(presented).map(|digest| digest.to_bytes())
        } else {
            RawKey::digest_of_valid(presented).ok()
        };
        let Some(digest) = digest else {
            return (Ok((VerifyOutcome::InvalidKey, None)), at);
        };
        // 3. A valid token with that digest (cache, else store) and exactly that privilege.
        let now = Moment::at(at.unwrap_or_else(|| self.clock.now()), &*self.clock);
        let checked = async {
            let loaded = self.load(&digest, now).await.inspect_err(|_| {
                self.metrics.store_error("verify");
            });
            let Some(token) = loaded? else {
                return Ok((VerifyOutcome::InvalidKey, None));
            };
            if privilege.is_some_and(|p| p != token.privilege) {
                return Ok((VerifyOutcome::InvalidKey, None));
            }
            let outcome = self.decide(&digest, &token, options, now).await?;
            Ok((outcome, Some(token)))
        };
        (checked.await, Some(now.wall))
    }

    /// Counts a verification answered with `outcome` in the analytics (SPEC B11).
    fn count_verification(
        &self,
        outcome: &VerifyOutcome,
        token: Option<&CachedToken>,
        tags: Option<&Tags>,
        now: DateTime<Utc>,
    ) {
        let Some(analytics) = &self.analytics else {
            return;
        };
        let Some(code) = outcome.code() else {
            return;
        };
        let credits = match outcome {
            VerifyOutcome::Valid(verified) => {
                verified.quota.as_ref().map_or(0, |q| q.credits_spent)
            }
            _ => 0,
        };
        let token = match code {
            Code::NotFound => None,
            _ => token.map(|t| (t.id, t.user_id.get())),
        };
        analytics.count(now.timestamp(), token, code, credits, tags);
    }

    /// The token behind a digest: a fresh cache entry, else the store (filling the cache), else
    /// — when the store is down — a stale entry young enough to serve.
    async fn load(&self, digest: &[u8; 32], now: Moment) -> Result<Lookup, StoreError> {
        let Some(cache) = &self.cache else {
            let record = self
                .store
                .find_by_digest(&Digest::from_bytes(digest))
                .await?;
            return Ok(record.and_then(CachedToken::from_record).map(Arc::new));
        };
        let now_ms = now.monotonic_ms;
        if let Cached::Fresh(lookup) = cache.get(digest, now_ms) {
            self.metrics.cache(match lookup {
                Some(_) => CacheResult::Hit,
                None => CacheResult::NegativeHit,
            });
            return Ok(lookup);
        }
        self.metrics.cache(CacheResult::Miss);
        let generation = cache.generation();
        match self.store.find_by_digest(&Digest::from_bytes(digest)).await {
            Ok(record) => {
                let lookup = record.and_then(CachedToken::from_record).map(Arc::new);
                if let (Some(token), Some(usage)) = (&lookup, &self.usage) {
                    usage.observe(token.id, token.usage_count, token.last_used, now);
                }
                cache.put(*digest, lookup.clone(), now_ms, generation);
                Ok(lookup)
            }
            Err(err) => match cache.usable_while_down(digest, now_ms) {
                Some(token) => {
                    self.metrics.cache(CacheResult::Stale);
                    self.metrics.store_error("verify");
                    tracing::warn!(error = %err, "store unavailable: verifying from a stale cache entry");
                    Ok(Some(token))
                }
                None => Err(err),
            },
        }
    }

    /// Steps 4–6 on a loaded token of the right privilege.
    async fn decide(
        &self,
        digest: &[u8; 32],
        token: &Arc<CachedToken>,
        options: VerifyOptions<'_>,
        moment: Moment,
    ) -> Result<VerifyOutcome, StoreError> {
        let now = moment.wall;
        // 3½. State (SPEC B10): a presented key of a disabled token or owner is refused before
        // anything else is checked or charged. The owner managing it through the BFF (by its
        // digest, riavzon's internal hash) still reaches it: disabled is not revoked.
        if !token.enabled && !options.is_internal_hash {
            return Ok(VerifyOutcome::Disabled);
        }
        // 4. IP restriction.
        if !options.bypass_ip_check && !token.ip_restriction.allows(options.ip) {
            return Ok(VerifyOutcome::InvalidHost);
        }
        // 5. Expiry: the first sight of an expired token invalidates it.
        if token.is_expired_at(now) {
            let invalidated = self.store.expire(token.id, now).await;
            self.forget(*digest);
            if let Err(err) = invalidated {
                // Still expired: answering so is safe; the next sight tries again.
                tracing::error!(error = %err, "could not mark an expired token invalid");
            }
            return Ok(VerifyOutcome::Expired);
        }
        // 5½. Permissions (SPEC B4): checked against the cached grants, before the count.
        if options
            .permissions
            .is_some_and(|query| !query.holds(&token.grants))
        {
            return Ok(VerifyOutcome::InsufficientPermissions);
        }
        // 5¾. Customer limits and credits (SPEC B5), all or nothing, before the count. A limit
        // the caller names must exist, counted or not.
        let unknown = options
            .usage
            .and_then(|usage| QuotaPlan::unknown_in(token.plan.as_deref(), usage));
        if let Some(unknown) = unknown {
            return Ok(VerifyOutcome::UnknownLimit(unknown));
        }
        let mut quota = None;
        if let (false, Some(plan)) = (options.skip_count_updates, &token.plan) {
            let usage = options.usage.unwrap_or(&ONE_USE);
            match self
                .quotas
                .charge(token.quota_subject(), token.user_id, plan, usage, now)
                .await?
            {
                QuotaDecision::Allowed(report) => quota = Some(report),
                QuotaDecision::RateLimited(report) => {
                    return Ok(VerifyOutcome::RateLimited(report))
                }
                QuotaDecision::UsageExceeded(report) => {
                    return Ok(VerifyOutcome::UsageExceeded(report))
                }
                QuotaDecision::UnknownLimit(unknown) => {
                    return Ok(VerifyOutcome::UnknownLimit(unknown))
                }
            }
        }
        let mut verified = Verified {
            record: Arc::clone(token),
            usage_count: token.usage_count,
            last_used: token.last_used,
            quota,
        };
        if options.skip_count_updates {
            // Uses counted but not yet written are part of the answer.
            if let Some((count, last_used)) = self.usage.as_ref().and_then(|u| u.current(token.id))
            {
                verified.usage_count = count;
                verified.last_used = last_used;
            }
        } else {
            // 6. Count this use; the answer includes it.
            let batched = self.usage.as_ref().filter(|_| self.batch_usage);
            let (count, last_used) = match batched {
                Some(usage) => usage.record(token.id, token.usage_count, token.last_used, moment),
                None => {
                    let read = self.store.record_usage(token.id, 1, now).await?;
                    let (count, last_used) = read.unwrap_or((token.usage_count + 1, now));
                    if let Some(cache) = &self.cache {
                        cache.note_usage(digest, count, last_used);
                    }
                    (count, last_used)
                }
            };
            verified.usage_count = count;
            verified.last_used = Some(last_used);
        }
        Ok(VerifyOutcome::Valid(verified))
    }
}
