//! `create`: a new token for a user, refused at the per-user limit.

use chrono::{DateTime, Utc};

use super::{CreatedToken, Decision, TokenService};
use crate::domain::access::{AccessLimit, RoleName, TokenAccess};
use crate::domain::quota::Quota;
use crate::domain::{
    GeneratedKey, IpRestriction, Lifetime, Metadata, Prefix, Privilege, PublicIdentifier,
    TokenName, UserId,
};
use crate::envelope::{Reason, Results};
use crate::store::{CreateOutcome, StoreError, TokenDraft};

/// The inputs of `create`, parsed: prefix `api`, no expiry, no IP restriction unless set.
#[derive(Debug, Clone)]
pub struct CreateToken {
    pub user_id: UserId,
    pub privilege: Privilege,
    pub name: TokenName,
    pub prefix: Prefix,
    /// `None` = never expires.
    pub lifetime: Option<Lifetime>,
    pub ips: IpRestriction,
    /// Admin-only metadata (SPEC B1).
    pub metadata: Metadata,
    /// Roles (which must exist) and direct grants (SPEC B4).
    pub access: TokenAccess,
    /// Its own rate limits and credits (SPEC B5).
    pub quota: Quota,
}

impl CreateToken {
    pub fn new(user_id: UserId, privilege: Privilege, name: TokenName) -> Self {
        Self {
            user_id,
            privilege,
            name,
            prefix: Prefix::default(),
            lifetime: None,
            ips: IpRestriction::unrestricted(),
            metadata: Metadata::default(),
            access: TokenAccess::default(),
            quota: Quota::default(),
        }
    }

    /// Its own rate limits and credits (`Credits::new` made at any time: they start now).
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// Roles (which must exist) and direct grants: at most 100 roles and 1,000 grants.
    pub fn access(mut self, access: TokenAccess) -> Self {
        self.access = access;
        self
    }

    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    pub fn prefix(mut self, prefix: Prefix) -> Self {
        self.prefix = prefix;
        self
    }

    /// `None` = never expires.
    pub fn lifetime(mut self, lifetime: impl Into<Option<Lifetime>>) -> Self {
        self.lifetime = lifetime.into();
        self
    }

    pub fn ips(mut self, ips: IpRestriction) -> Self {
        self.ips = ips;
        self
    }
}

/// A fresh key and identifier, not yet owned nor stored.
pub(super) fn new_token(
    privilege: Privilege,
    name: &str,
    prefix: &Prefix,
    ips: IpRestriction,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> (GeneratedKey, TokenDraft) {
    let key = GeneratedKey::generate(prefix);
    let new = TokenDraft {
        digest: key.digest.clone(),
        public_identifier: PublicIdentifier::generate(),
        prefix: prefix.as_str().to_owned(),
        name: name.to_owned(),
        created_at,
        expires_at,
        ip_restriction: ips,
        privilege,
    };
    (key, new)
}

/// What a creation decided. Anything but `Created` stored nothing.
#[derive(Debug, Clone)]
pub enum Creation {
    Created(CreatedToken),
    /// The owner already holds `limit` valid tokens (checked atomically with the insert).
    LimitReached {
        limit: u32,
    },
    /// One of its roles does not exist.
    UnknownRole(RoleName),
    /// It was to hold more roles or grants than a token may.
    TooMuchAccess(AccessLimit),
}

impl Decision for Creation {
    type Data = CreatedToken;
    fn into_data(self) -> Result<CreatedToken, Reason> {
        match self {
            Self::Created(created) => Ok(created),
            Self::LimitReached { limit } => Err(Reason::TooManyTokens { limit }),
            // Not reachable through the BFF, which gives a token no roles.
            Self::UnknownRole(_) | Self::TooMuchAccess(_) => Err(Reason::BadRequest),
        }
    }
}

impl TokenService {
    /// Creates a token. Fails with `You cannot have more then N valid tokens at a time` when the
    /// owner is at the limit (checked atomically with the insert). A store failure answers
    /// `Server error`. riavzon's reserved-prefix reason is `PrefixError::ReservedUnderscore`'s
    /// text, answered where the prefix is parsed.
    pub async fn create(&self, request: CreateToken) -> Results<CreatedToken> {
        let decided = self.create_outcome(request).await;
        self.envelope("create", decided, Reason::ListServerError)
    }

    /// `create` as a typed decision; `Err` only when the store could not answer.
    pub async fn create_outcome(&self, request: CreateToken) -> Result<Creation, StoreError> {
        if let Err(limit) = request.access.within_limits() {
            return Ok(Creation::TooMuchAccess(limit));
        }
        let now = self.clock.now();
        let expires_at = request.lifetime.map(|lifetime| lifetime.expiry_from(now));
        let (key, draft) = new_token(
            request.privilege,
            request.name.as_str(),
            &request.prefix,
            request.ips,
            now,
            expires_at,
        );
        let mut new = draft.owned_by(request.user_id, request.metadata, request.access);
        new.quota = request.quota;
        if let Some(credits) = &mut new.quota.credits {
            credits.refilled_at = now;
            credits.generation = 0;
        }
        let created = self
            .store
            .create_token(&new, self.limit_tokens_per_user, &self.audit())
            .await?;
        Ok(match created {
            CreateOutcome::Created(record) => Creation::Created(CreatedToken {
                raw_api_key: key.raw.expose().to_owned(),
                raw_public_id: record.public_identifier.as_str().to_owned(),
                expires_at: record.expires_at,
                token_id: record.id,
            }),
            CreateOutcome::LimitReached => Creation::LimitReached {
                limit: self.limit_tokens_per_user,
            },
            CreateOutcome::UnknownRole(role) => Creation::UnknownRole(role),
        })
    }
}
