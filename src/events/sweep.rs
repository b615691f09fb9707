//! The expiry sweep (SPEC B12): tokens past their expiry are marked expired (each a
//! `token.expired`, in the expiry's transaction), and tokens whose remaining lifetime fell below
//! an offset get one `token.expiring_soon` (a dedupe key per token, offset and expiry: once
//! across instances). Not for a token created already inside the offset.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::clock::Clock;
use crate::domain::actor::job;
use crate::domain::webhook::{EventType, OutboxEvent};
use crate::domain::Actor;
use crate::store::{StoreError, TokenStore};

/// Rows read at a time.
const PAGE: u32 = 500;

pub struct Sweep {
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) offsets: Vec<Duration>,
    /// Up to when each offset's crossings were looked at (none yet: every token inside it).
    pub(super) swept_until: Option<DateTime<Utc>>,
}

impl Sweep {
    /// One sweep: how many tokens it expired and how many warnings it wrote.
    pub async fn run(&mut self) -> Result<(u64, u64), StoreError> {
        let now = self.clock.now();
        let expired = self.expire(now).await?;
        let mut warned = 0;
        for offset in self.offsets.clone() {
            warned += self.expiring(now, offset).await?;
        }
        self.swept_until = Some(now);
        Ok((expired, warned))
    }

    async fn expire(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut expired = 0;
        loop {
            let page = self
                .store
                .tokens_expiring(DateTime::UNIX_EPOCH, now, PAGE)
                .await?;
            let mut this_page = 0;
            for (token, _, _) in &page {
                this_page += u64::from(self.store.expire(*token, now).await?);
            }
            expired += this_page;
            // A full page of which none changed would come back the same: stop there.
            if page.len() < PAGE as usize || this_page == 0 {
                return Ok(expired);
            }
        }
    }

    /// Tokens whose expiry minus `offset` passed since the last sweep.
    async fn expiring(&self, now: DateTime<Utc>, offset: Duration) -> Result<u64, StoreError> {
        let offset_ms = i64::try_from(offset.as_millis()).unwrap_or(i64::MAX);
        let offset = chrono::Duration::milliseconds(offset_ms);
        let until = now + offset;
        let mut after = match self.swept_until {
            Some(last) => (last + offset).max(now),
            None => now,
        };
        let mut warned = 0;
        loop {
            let page = self.store.tokens_expiring(after, until, PAGE).await?;
            for &(token, created_at, expires_at) in &page {
                if expires_at - offset <= created_at {
                    continue;
                }
                let event = OutboxEvent {
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
                };
                warned += u64::from(self.store.write_threshold_event(&event).await?);
            }
            // The next page starts just before the last expiry seen (rows seen twice are
            // deduplicated); a page of one instant moves on past it.
            let step = chrono::Duration::milliseconds(1);
            match page.last() {
                Some(&(_, _, last)) if page.len() == PAGE as usize => {
                    after = match last - step > after {
                        true => last - step,
                        false => after + step,
                    };
                }
                _ => return Ok(warned),
            }
        }
    }
}
