//! JSON shapes of the admin API (camelCase; never the digest).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use super::audit_views::{
    ActorView, AuditPageView, CredentialCreatedView, CredentialView, CredentialsView, EventView,
};
use super::quota_views::{
    configured, ConfiguredLimitView, CreditsJson, CreditsLeftView, RateLimitView,
};
use crate::domain::access::{sorted_texts, RoleDescription, RoleRecord};
use crate::domain::analytics::Code;
use crate::domain::state::Disabled;
use crate::domain::{Metadata, Privilege, UserId};
use crate::envelope::iso_time;
use crate::quotas::QuotaView;
use crate::service::CachedToken;
use crate::store::{BanRecord, TokenRecord};

/// A token as operators see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: u64,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub public_identifier: String,
    pub privilege: Privilege,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time::option")]
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    /// Not revoked, not rotated away and not expired at the time of the answer (riavzon's
    /// meaning: a disabled token is still valid).
    pub valid: bool,
    /// Neither the token nor its owner is disabled (SPEC B10): it verifies only while enabled.
    pub enabled: bool,
    /// Who disabled the token, when and why; `null` while it is enabled.
    pub disabled: Option<DisabledView>,
    /// Who disabled its owner (every token of it), when and why; `null` while enabled.
    pub owner_disabled: Option<DisabledView>,
    pub ip_restriction: Option<Vec<String>>,
    pub metadata: Metadata,
    /// Its roles, sorted.
    pub roles: Vec<String>,
    /// Its direct grants, sorted.
    pub permissions: Vec<String>,
    /// Direct grants ∪ its roles' grants, sorted: what a permission query is checked against.
    pub effective_permissions: Vec<String>,
    /// Its own rate limits with the current window (answers about one token; not in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<Vec<ConfiguredLimitView>>,
    /// Its credits, `null` when it has none (answers about one token; not in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CreditsJson>, nullable)]
    pub credits: Option<Option<CreditsJson>>,
    /// Its verifications in the last 24 hours, every code (SPEC B11; in reads and listings).
    #[serde(rename = "usage24h", skip_serializing_if = "Option::is_none")]
    pub usage_24h: Option<u64>,
}

impl TokenView {
    pub fn new(record: TokenRecord, now: DateTime<Utc>) -> Self {
        Self {
            valid: record.valid && !record.is_expired_at(now),
            enabled: record.state.enabled(),
            disabled: record.state.token.map(DisabledView::from),
            owner_disabled: record.state.owner.map(DisabledView::from),
            id: record.id,
            user_id: record.user_id,
            name: record.name,
            prefix: record.prefix,
            public_identifier: record.public_identifier.as_str().to_owned(),
            privilege: record.privilege,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used: record.last_used,
            usage_count: record.usage_count,
            ip_restriction: (!record.ip_restriction.is_unrestricted())
                .then(|| record.ip_restriction.entries()),
            metadata: record.metadata,
            roles: record.access.role_texts(),
            permissions: record.access.permission_texts(),
            effective_permissions: record.access.effective().texts(),
            ratelimits: None,
            credits: None,
            usage_24h: None,
        }
    }

    /// With its limits and credits as they stand.
    pub fn with_quota(mut self, quota: &QuotaView) -> Self {
        self.ratelimits = Some(configured(quota));
        self.credits = Some(quota.credits.map(CreditsJson::from));
        self
    }
}

/// A token as verification saw it (what the cache holds).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedView {
    pub id: u64,
    pub user_id: UserId,
    pub name: String,
    pub privilege: Privilege,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "iso_time::option")]
    pub last_used: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub ip_restriction: Option<Vec<String>>,
    pub metadata: Metadata,
    /// Its roles, sorted.
    pub roles: Vec<String>,
    /// Its effective permissions (direct ∪ its roles'), sorted.
    pub permissions: Vec<String>,
}

impl VerifiedView {
    pub fn new(token: &CachedToken) -> Self {
        Self {
            id: token.id,
            user_id: token.user_id,
            name: token.name.to_string(),
            privilege: token.privilege,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used: token.last_used,
            usage_count: token.usage_count,
            ip_restriction: (!token.ip_restriction.is_unrestricted())
                .then(|| token.ip_restriction.entries()),
            metadata: token.metadata.clone(),
            roles: token.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            permissions: token.grants.texts(),
        }
    }
}

/// A disabled state (SPEC B10).
#[derive(Debug, Serialize, ToSchema)]
pub struct DisabledView {
    #[serde(with = "iso_time")]
    pub at: DateTime<Utc>,
    pub by: ActorView,
    pub reason: Option<String>,
}

impl From<Disabled> for DisabledView {
    fn from(disabled: Disabled) -> Self {
        Self {
            at: disabled.at,
            by: disabled.by.into(),
            reason: disabled.reason.map(|r| r.as_str().to_owned()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanView {
    pub limiter: String,
    pub key: String,
    pub reason: String,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
}

impl From<BanRecord> for BanView {
    fn from(ban: BanRecord) -> Self {
        Self {
            limiter: ban.limiter,
            key: ban.key,
            reason: ban.reason,
            created_at: ban.created_at,
        }
    }
}

/// `POST /api/admin/tokens`: the raw key, shown once, and the stored token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedView {
    pub raw_api_key: String,
    pub raw_public_id: String,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    pub token: TokenView,
}

/// A token's metadata after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetadataView {
    pub metadata: Metadata,
}

/// An admin revocation: `revoked` says whether this call did it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedView {
    pub revoked: bool,
    pub token: TokenView,
}

/// A token's audit log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsView {
    pub events: Vec<EventView>,
}

/// One page of an owner's tokens, newest first; `nextCursor` is `null` on the last page.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// The `cursor` of the next page: the last token's id.
    pub next_cursor: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BansView {
    pub bans: Vec<BanView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LiftedView {
    pub lifted: bool,
    pub limiter: String,
    pub key: String,
}

/// An admin verification: `{valid, code}` and, for every code but `NOT_FOUND`, the token.
#[derive(Debug, Serialize)]
pub struct AdminVerifyView {
    pub valid: bool,
    pub code: Code,
    /// The limits charged (or the one that refused), when the token or its owner has limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<Vec<RateLimitView>>,
    /// Credits left, when the token or its owner has credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<CreditsLeftView>,
    /// Seconds until a refused verification may pass (`RATE_LIMITED`, `USAGE_EXCEEDED`).
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// While the key is the old one of a rotation in grace (SPEC B10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationView>,
    #[serde(flatten)]
    pub token: Option<VerifiedView>,
}

/// The old key of a rotation in grace: its replacement and when it stops verifying.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationView {
    pub replaced_by: u64,
    #[serde(with = "iso_time")]
    pub grace_ends_at: DateTime<Utc>,
}

/// The two shapes of an admin verification, each a named component: a generator names one
/// type per shape instead of an anonymous union member.
const NOT_FOUND: &str = "AdminVerifyNotFound";
const FOUND: &str = "AdminVerifyFound";

impl AdminVerifyView {
    /// `{"valid":false,"code":"NOT_FOUND"}` alone.
    fn not_found_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("valid", crate::http::openapi::schemas::exactly(false))
            .property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["NOT_FOUND"])),
            )
            .required("valid")
            .required("code")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .into()
    }

    /// `{valid, code, ratelimits?, credits?, retryAfter?}` with the token's fields; `code` is
    /// any but `NOT_FOUND`, so that the code alone tells the two shapes apart.
    fn found_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
        use utoipa::openapi::Ref;
        let found = Code::ANSWERED
            .into_iter()
            .filter(|code| *code != Code::NotFound)
            .filter_map(|code| serde_json::to_value(code).ok())
            .filter_map(|name| name.as_str().map(str::to_owned));
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(found));
        let limits = utoipa::openapi::schema::ArrayBuilder::new()
            .items(Ref::from_schema_name(RateLimitView::name()));
        let head = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("valid", ObjectBuilder::new().schema_type(Type::Boolean))
            .property("code", code)
            .property("ratelimits", limits)
            .property("credits", Ref::from_schema_name(CreditsLeftView::name()))
            .property(
                "retryAfter",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .property("rotation", rotation_schema())
            .required("valid")
            .required("code");
        AllOfBuilder::new()
            .item(head)
            .item(Ref::from_schema_name(VerifiedView::name()))
            .into()
    }
}

/// `{replacedBy, graceEndsAt}` of the old key of a rotation in grace.
fn rotation_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let format = |known| Some(SchemaFormat::KnownFormat(known));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "replacedBy",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(format(KnownFormat::Int64)),
        )
        .property(
            "graceEndsAt",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(format(KnownFormat::DateTime)),
        )
        .required("replacedBy")
        .required("graceEndsAt")
        .build()
}

/// `AdminVerifyNotFound` or `AdminVerifyFound`.
impl utoipa::PartialSchema for AdminVerifyView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        use utoipa::openapi::Ref;
        OneOfBuilder::new()
            .item(Ref::from_schema_name(NOT_FOUND))
            .item(Ref::from_schema_name(FOUND))
            .into()
    }
}

impl ToSchema for AdminVerifyView {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((NOT_FOUND.to_owned(), Self::not_found_schema()));
        schemas.push((FOUND.to_owned(), Self::found_schema()));
        schemas.push((VerifiedView::name().into_owned(), VerifiedView::schema()));
        VerifiedView::schemas(schemas);
        schemas.push((RateLimitView::name().into_owned(), RateLimitView::schema()));
        RateLimitView::schemas(schemas);
        schemas.push((
            CreditsLeftView::name().into_owned(),
            CreditsLeftView::schema(),
        ));
    }
}

/// A role as operators see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub name: String,
    pub description: Option<String>,
    /// What it grants, sorted.
    pub permissions: Vec<String>,
    /// Valid tokens holding it.
    pub tokens: u64,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "iso_time")]
    pub updated_at: DateTime<Utc>,
}

impl From<RoleRecord> for RoleView {
    fn from(role: RoleRecord) -> Self {
        Self {
            permissions: sorted_texts(&role.permissions),
            name: role.name.as_str().to_owned(),
            description: role
                .description
                .as_ref()
                .map(RoleDescription::as_str)
                .map(str::to_owned),
            tokens: role.tokens,
            created_at: role.created_at,
            updated_at: role.updated_at,
        }
    }
}

/// Every role, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolesView {
    pub roles: Vec<RoleView>,
}

/// A deleted role, and from how many valid tokens it was taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDeletedView {
    pub deleted: String,
    pub tokens: u64,
}
