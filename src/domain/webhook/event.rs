//! An event as the outbox holds it: what happened, to which token or owner, by whom.

use chrono::{DateTime, Utc};

use super::EventType;
use crate::domain::{Actor, UserId};

/// An event to write. A threshold event carries a dedupe key (unique in the outbox), so that
/// however many instances see the crossing, one row is written.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub kind: EventType,
    pub dedupe_key: Option<String>,
    pub token_id: Option<u64>,
    /// The owner; else the owner of `token_id`, read in the same statement.
    pub user_id: Option<UserId>,
    pub actor: Actor,
    /// The event's own fields (merged into `data`).
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// An event as stored, with the token's name and metadata as they were when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: u64,
    pub kind: String,
    pub token_id: Option<u64>,
    pub user_id: Option<u64>,
    pub name: Option<String>,
    /// The token's metadata (a JSON object's text), sent only to endpoints that include it.
    pub metadata: Option<String>,
    pub actor: Actor,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An outbox row as stored, whole (`iam-tokens copy`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub event: StoredEvent,
    pub dedupe_key: Option<String>,
    /// Turned into deliveries already.
    pub fanned: bool,
}

/// A delivery a dispatcher claimed: its event and how many attempts it had.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: u64,
    pub endpoint_id: u64,
    pub attempts: u32,
    pub event: StoredEvent,
}
