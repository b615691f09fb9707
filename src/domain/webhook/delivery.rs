//! A delivery of one event to one endpoint, and when it is tried again.

use chrono::{DateTime, Duration, Utc};

/// The waits after each failed attempt (SPEC B12): the first attempt is at once, then these;
/// after the last, the delivery has failed.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(14),
    Duration::hours(20),
    Duration::hours(24),
];

/// A receiver's `Retry-After` is honoured up to this.
pub fn retry_after_cap() -> Duration {
    Duration::hours(24)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or for its endpoint to be enabled again).
    Pending,
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: u64,
    pub event_id: u64,
    pub endpoint_id: u64,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last response's status code, when there was a response.
    pub response_status: Option<u16>,
    /// Up to 2 KiB of the last response's body.
    pub response_body: Option<String>,
    /// Why the last attempt got no response (refused, timed out, a blocked address).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A page of the delivery log, newest first; every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub endpoint: Option<u64>,
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only deliveries with a smaller id (the next page).
    pub before: Option<u64>,
    pub limit: u32,
}

/// What one attempt left on its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub status: DeliveryStatus,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}
