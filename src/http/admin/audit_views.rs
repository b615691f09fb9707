//! JSON shapes of who acts (SPEC B9): actors, audit events and pages of the log, stored admin
//! credentials (never a secret or a digest).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::credential::CredentialRecord;
use crate::domain::{Actor, ActorKind, UserId};
use crate::envelope::iso_time;
use crate::store::AuditEvent;

/// Who acted (SPEC B9).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "credential")]
    pub kind: ActorType,
    /// Who within the type: a configured admin's name, a credential's id, a user id; `null`
    /// for the CLI and the system.
    pub id: Option<String>,
    /// What a person reads: a credential's name, the OS user of a CLI run, a system job
    /// (`expiry`, `limiter`, `library`).
    pub name: Option<String>,
}

/// The kinds of actor.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    Config,
    Credential,
    User,
    Cli,
    System,
}

impl From<Actor> for ActorView {
    fn from(actor: Actor) -> Self {
        let kind = match actor.kind {
            ActorKind::Config => ActorType::Config,
            ActorKind::Credential => ActorType::Credential,
            ActorKind::User => ActorType::User,
            ActorKind::Cli => ActorType::Cli,
            ActorKind::System => ActorType::System,
        };
        Self {
            kind,
            id: actor.id,
            name: actor.name,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: u64,
    /// What happened (`created`, `revoked`, `credential_created`, …).
    pub kind: String,
    /// The same as `kind` (the name per-token events have always had).
    pub event: String,
    pub actor: ActorView,
    /// The token it is about, if any.
    pub token_id: Option<u64>,
    /// The owner of that token, or the owner whose limits or credits changed.
    pub user_id: Option<UserId>,
    /// What changed, by event kind (an object whose keys depend on `kind`).
    #[schema(schema_with = crate::http::openapi::schemas::free_object)]
    pub detail: serde_json::Value,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
}

impl From<AuditEvent> for EventView {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: event.id,
            kind: event.event.clone(),
            event: event.event,
            actor: event.actor.into(),
            token_id: event.token_id,
            user_id: event.user_id,
            detail: event.detail,
            created_at: event.created_at,
        }
    }
}

/// A stored admin credential (never its secret or digest).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    pub id: u64,
    pub name: String,
    /// Its scope grants as given, sorted.
    #[schema(example = json!(["*.read", "tokens.revoke"]))]
    pub scopes: Vec<String>,
    /// The admin scopes they grant, in catalogue order.
    pub effective_scopes: Vec<&'static str>,
    #[serde(with = "iso_time")]
    pub created_at: DateTime<Utc>,
    pub created_by: ActorView,
    #[serde(with = "iso_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Written behind (every `usage.flush_interval`, at least every second), not per request.
    #[serde(with = "iso_time::option")]
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    #[serde(with = "iso_time::option")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Neither revoked nor expired at the time of the answer.
    pub active: bool,
}

impl CredentialView {
    pub fn new(record: CredentialRecord, now: DateTime<Utc>) -> Self {
        Self {
            active: record.is_active_at(now),
            id: record.id,
            effective_scopes: record.scopes.scopes().granted(),
            scopes: record.scopes.texts().to_vec(),
            name: record.name,
            created_at: record.created_at,
            created_by: record.created_by.into(),
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            last_used_ip: record.last_used_ip,
            revoked_at: record.revoked_at,
        }
    }
}

/// A credential just created, with its secret: shown here and never again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialCreatedView {
    /// `iam_admin_<64 hex>_<checksum>`: send it as `Authorization: Bearer <secret>`.
    #[schema(example = "iam_admin_3f…_9c1d2e4a")]
    pub secret: String,
    #[serde(flatten)]
    pub credential: CredentialView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialsView {
    pub credentials: Vec<CredentialView>,
}

/// A page of the audit log, newest first; `nextCursor` fetches the next (null: the last page).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPageView {
    pub events: Vec<EventView>,
    /// The `cursor` of the next page: the last event's id.
    pub next_cursor: Option<u64>,
}
