//! The expiry sweep (SPEC B12): a token whose expiry passed gets `token.expired`, and a token
//! whose remaining lifetime fell below an offset gets `token.expiring_soon` (not one created
//! already inside it), within one sweep interval, whether or not anyone verifies it. Each
//! event has a dedupe key, so any number of sweeping instances write it once; `token.expired`
//! shares its key with the event the verification writes when it finds the token expired.
//!
//! The sweep only tells: it leaves marking the token invalid to its next verification, which
//! answers "Token expired" once, as riavzon does.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::clock::Clock;
use crate::domain::actor::job;
use crate::domain::webhook::{expired_key, EventType, OutboxEvent};
use crate::domain::Actor;
use crate::store::{StoreError, TokenStore};

/// Rows read at a time.
const PAGE: u32 = 500;

pub struct Sweep {
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) offsets: Vec<Duration>,
    /// How far back the first sweep of a process looks for expiries it may have missed.
    pub(super) lookback: Duration,
    /// When the last sweep ran (none yet: the first looks at everything in reach).
    pub(super) swept_until: Option<DateTime<Utc>>,
}

fn millis(duration: Duration) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

impl Sweep {
    /// One sweep: how many events it wrote (expired, expiring).
    pub async fn run(&mut self) -> Result<(u64, u64), StoreError> {
        let now = self.clock.now();
        let expired = self.crossings(now, Duration::ZERO).await?;
        let mut warned = 0;
        for offset in self.offsets.clone() {
            warned += self.crossings(now, offset).await?;
        }
        self.swept_until = Some(now);
        Ok((expired, warned))
    }

    /// Tokens whose expiry minus `offset` passed since the last sweep (`offset` 0: expired).
    async fn crossings(&self, now: DateTime<Utc>, offset: Duration) -> Result<u64, StoreError> {
        let expiring = !offset.is_zero();
        let offset = millis(offset);
        let lower = match (self.swept_until, expiring) {
            (Some(last), _) => last + offset,
            (None, true) => now,
            (None, false) => now - millis(self.lookback),
        };
        // Expiring: only tokens not expired yet.
        let lower = if expiring { lower.max(now) } else { lower };
        let mut after = (lower, i64::MAX as u64);
        let mut written = 0;
        loop {
            let page = self
                .store
                .tokens_expiring(after, now + offset, PAGE)
                .await?;
            for &(token, created_at, expires_at) in &page {
                if expiring && expires_at - offset <= created_at {
                    continue;
                }
                let event = match expiring {
                    true => OutboxEvent {
                        kind: EventType::TokenExpiringSoon,
                        dedupe_key: Some(format!(
                            "{}:{token}:{}:{}",
                            EventType::TokenExpiringSoon.as_str(),
                            offset.num_seconds(),
                            expires_at.timestamp_millis()
                        )),
                        token_id: Some(token),
                        user_id: None,
                        actor: Actor::system(job::EXPIRY),
                        detail: json!({
                            "expiresAt": expires_at,
                            "offsetSeconds": offset.num_seconds(),
                        }),
                        at: now,
                    },
                    false => OutboxEvent {
                        kind: EventType::TokenExpired,
                        dedupe_key: Some(expired_key(token)),
                        token_id: Some(token),
                        user_id: None,
                        actor: Actor::system(job::EXPIRY),
                        detail: json!({}),
                        at: now,
                    },
                };
                written += u64::from(self.store.write_threshold_event(&event).await?);
            }
            match page.last() {
                Some(&(token, _, expires_at)) if page.len() == PAGE as usize => {
                    after = (expires_at, token);
                }
                _ => return Ok(written),
            }
        }
    }
}
