//! `create`: a new token for a user, refused at the per-user limit.

use chrono::{DateTime, Duration, Utc};

use super::{CreatedToken, Decision, TokenService, MAX_LIFETIME_MS};
use crate::domain::{
    GeneratedKey, IpRestriction, Metadata, Prefix, PrefixError, Privilege, PublicIdentifier,
    TokenName, UserId,
};
use crate::envelope::{Reason, Results};
use crate::store::{CreateOutcome, StoreError, TokenDraft};

/// The inputs of `create`. `prefix` defaults to `api`, no expiry, no IP restriction.
#[derive(Debug, Clone)]
pub struct CreateToken {
    pub user_id: UserId,
    pub privilege: Privilege,
    pub name: TokenName,
    pub prefix: String,
    /// Lifetime in milliseconds from now; `None` = never expires.
    pub expires_ms: Option<u64>,
    pub ips: IpRestriction,
    /// Admin-only metadata (SPEC B1).
    pub metadata: Metadata,
}

impl CreateToken {
    pub fn new(user_id: UserId, privilege: Privilege, name: TokenName) -> Self {
        Self {
            user_id,
            privilege,
            name,
            prefix: Prefix::default().as_str().to_owned(),
            expires_ms: None,
            ips: IpRestriction::unrestricted(),
            metadata: Metadata::default(),
        }
    }

    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn expires_ms(mut self, expires_ms: Option<u64>) -> Self {
        self.expires_ms = expires_ms;
        self
    }

    pub fn ips(mut self, ips: IpRestriction) -> Self {
        self.ips = ips;
        self
    }
}

/// `now + ms`, or `None` when the lifetime is out of range.
pub(super) fn expiry_after(now: DateTime<Utc>, ms: u64) -> Option<DateTime<Utc>> {
    if ms == 0 || ms > MAX_LIFETIME_MS {
        return None;
    }
    now.checked_add_signed(Duration::milliseconds(i64::try_from(ms).ok()?))
}

/// Checks the prefix and the lifetime, the failures `create` and `rotate` share.
pub(super) fn parse_prefix_and_expiry(
    prefix: &str,
    expires_ms: Option<u64>,
    now: DateTime<Utc>,
) -> Result<(Prefix, Option<DateTime<Utc>>), Reason> {
    let prefix = Prefix::parse(prefix).map_err(|err| match err {
        PrefixError::ReservedUnderscore => Reason::ReservedPrefix,
        PrefixError::Invalid => Reason::BadRequest,
    })?;
    let expires_at = match expires_ms {
        None => None,
        Some(ms) => Some(expiry_after(now, ms).ok_or(Reason::BadRequest)?),
    };
    Ok((prefix, expires_at))
}

/// A fresh key and identifier, unrestricted, not yet owned nor stored.
pub(super) fn new_token(
    privilege: Privilege,
    name: &str,
    prefix: &Prefix,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> (GeneratedKey, TokenDraft) {
    let key = GeneratedKey::generate(prefix);
    let new = TokenDraft {
        digest: key.digest.clone(),
        public_identifier: PublicIdentifier::generate(),
        prefix: prefix.as_str().to_owned(),
        name: name.to_owned(),
        created_at: now,
        expires_at,
        ip_restriction: IpRestriction::unrestricted(),
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
    /// The prefix contains `_`.
    ReservedPrefix,
    /// The prefix is otherwise invalid, or the lifetime is out of range.
    Invalid,
}

impl Decision for Creation {
    type Data = CreatedToken;
    fn into_data(self) -> Result<CreatedToken, Reason> {
        match self {
            Self::Created(created) => Ok(created),
            Self::LimitReached { limit } => Err(Reason::TooManyTokens { limit }),
            Self::ReservedPrefix => Err(Reason::ReservedPrefix),
            Self::Invalid => Err(Reason::BadRequest),
        }
    }
}

impl TokenService {
    /// Creates a token. Fails with `You cannot have more then N valid tokens at a time` when the
    /// owner is at the limit (checked atomically with the insert), or with the reserved-prefix
    /// reason. A store failure answers `Server error`.
    pub async fn create(&self, request: CreateToken) -> Results<CreatedToken> {
        let decided = self.create_outcome(request).await;
        self.envelope("create", decided, Reason::ListServerError)
    }

    /// `create` as a typed decision; `Err` only when the store could not answer.
    pub async fn create_outcome(&self, request: CreateToken) -> Result<Creation, StoreError> {
        let now = self.clock.now();
        let (prefix, expires_at) =
            match parse_prefix_and_expiry(&request.prefix, request.expires_ms, now) {
                Ok(parsed) => parsed,
                Err(Reason::ReservedPrefix) => return Ok(Creation::ReservedPrefix),
                Err(_) => return Ok(Creation::Invalid),
            };
        let (key, mut draft) = new_token(
            request.privilege,
            request.name.as_str(),
            &prefix,
            now,
            expires_at,
        );
        draft.ip_restriction = request.ips;
        let new = draft.owned_by(request.user_id, request.metadata);
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
        })
    }
}
