//! `ratelimit.exceeded` (SPEC B12): the first refusal of a limit in its window. The limit's
//! holder decides the refusal; this process remembers the last window it reported per limit,
//! so a flood of refusals costs one write, and the dedupe key (limit, subject, window) makes
//! the event one row whichever instances report it. The verification never waits for the
//! write: it is queued (bounded) and written in the background.

use std::sync::Arc;

use dashmap::DashMap;
use serde_json::json;
use tokio::sync::mpsc;

use crate::domain::actor::job;
use crate::domain::quota::Subject;
use crate::domain::webhook::{EventType, OutboxEvent};
use crate::domain::{Actor, UserId};
use crate::store::TokenStore;

/// Events waiting for the store; more are dropped (and logged) until it catches up.
const QUEUE: usize = 10_000;
/// Limits whose last reported window this process remembers.
const MAX_REMEMBERED: usize = 100_000;

/// A refusal to report.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub subject: Subject,
    pub owner: UserId,
    pub limit: String,
    pub max: u64,
    pub window_index: u64,
    pub duration_ms: u64,
    pub resets_at_ms: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The reporter of first refusals.
pub struct RateLimitAlerts {
    /// Per limit: the window length and the last window reported (a limit changed to another
    /// length starts over).
    reported: DashMap<(Subject, String), (u64, u64), foldhash::fast::RandomState>,
    queue: mpsc::Sender<OutboxEvent>,
}

impl RateLimitAlerts {
    /// A reporter writing through `store`, on the current runtime; `None` outside one.
    pub fn start(store: Arc<dyn TokenStore>) -> Option<Arc<Self>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (queue, mut events) = mpsc::channel::<OutboxEvent>(QUEUE);
        runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                let mut wait = std::time::Duration::from_millis(100);
                while let Err(err) = store.write_threshold_event(&event).await {
                    tracing::warn!(error = %err, "could not write a ratelimit.exceeded event; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(10));
                }
            }
        });
        Some(Arc::new(Self {
            reported: DashMap::default(),
            queue,
        }))
    }

    /// Reports a refusal unless this process reported its limit's window already.
    pub fn refused(&self, refusal: Refusal) {
        // Bounded memory: forgetting only costs a write the dedupe key then absorbs.
        if self.reported.len() > MAX_REMEMBERED {
            self.reported.clear();
        }
        let key = (refusal.subject, refusal.limit.clone());
        let window = (refusal.duration_ms, refusal.window_index);
        match self.reported.get(&key) {
            Some(seen) if seen.0 == window.0 && seen.1 >= window.1 => return,
            _ => {}
        }
        self.reported.insert(key, window);
        let (token_id, user_id) = match refusal.subject {
            Subject::Token(token) => (Some(token), None),
            Subject::Owner(user) => (None, Some(user)),
        };
        let scope = refusal.subject.scope().as_str();
        let event = OutboxEvent {
            kind: EventType::RateLimitExceeded,
            dedupe_key: Some(format!(
                "{}:{scope}:{}:{}:{}:{}",
                EventType::RateLimitExceeded.as_str(),
                refusal.subject.id(),
                refusal.limit,
                refusal.duration_ms,
                refusal.window_index
            )),
            token_id,
            user_id: user_id.or(Some(refusal.owner)),
            actor: Actor::system(job::LIMITER),
            detail: json!({
                "limit": refusal.limit,
                "scope": scope,
                "max": refusal.max,
                "durationMs": refusal.duration_ms,
                "resetsAt": chrono::DateTime::from_timestamp_millis(refusal.resets_at_ms),
            }),
            at: refusal.at,
        };
        if self.queue.try_send(event).is_err() {
            tracing::warn!("the ratelimit.exceeded queue is full; an event was dropped");
        }
    }
}
