//! The optional HMAC guard of `/api/public/verify` (riavzon `service.Hmac`): a signed,
//! fresh, never-replayed request from the one configured client.

use std::time::Duration;

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::replay::{digest_of, Refusal, ReplayWindow};
use crate::config::HmacSettings;
use crate::shared::Redis;

/// Every plain reason the guard answers with 401, word for word.
pub mod refusal {
    pub const MISSING_HEADERS: &str = "Missing signature headers";
    pub const UNKNOWN_CLIENT: &str = "Unknown client";
    pub const INVALID_REQUEST_ID: &str = "Invalid request id";
    pub const INVALID_TIMESTAMP: &str = "Invalid timestamp";
    pub const OUTSIDE_WINDOW: &str = "Request timestamp outside the allowed window";
    pub const INVALID_SIGNATURE: &str = "Invalid signature";
    pub const REPLAYED: &str = "Request id already used";
    pub const WINDOW_FULL: &str = "Too many signed requests in the replay window";

    pub const ALL: [&str; 8] = [
        MISSING_HEADERS,
        UNKNOWN_CLIENT,
        INVALID_REQUEST_ID,
        INVALID_TIMESTAMP,
        OUTSIDE_WINDOW,
        INVALID_SIGNATURE,
        REPLAYED,
        WINDOW_FULL,
    ];
}

pub struct HmacGuard {
    client_id: String,
    secret: Vec<u8>,
    max_skew: Duration,
    seen: ReplayWindow,
    /// With Redis: request ids are remembered there (every instance refuses a replay), and in
    /// `seen` only while Redis is down.
    shared: Option<std::sync::Arc<Redis>>,
}

impl HmacGuard {
    pub fn new(settings: &HmacSettings) -> Self {
        Self {
            client_id: settings.client_id.clone(),
            secret: settings.shared_secret.expose().as_bytes().to_vec(),
            max_skew: settings.max_clock_skew,
            seen: ReplayWindow::new(settings.max_remembered_ids),
            shared: None,
        }
    }

    /// The same guard, remembering request ids in Redis.
    pub fn shared_through(mut self, redis: std::sync::Arc<Redis>) -> Self {
        self.shared = Some(redis);
        self
    }

    /// Request ids remembered now (for tests and benchmarks).
    pub fn remembered_ids(&self) -> usize {
        self.seen.remembered()
    }

    /// `X-Signature` must be hex HMAC-SHA256 of `clientId:timestamp:METHOD:path?query:requestId`;
    /// `X-Timestamp` (Unix ms, or s) within the allowed skew; each `X-Request-Id` used once.
    /// The error is the plain reason answered with 401.
    pub async fn check(&self, req: &HttpRequest, now: DateTime<Utc>) -> Result<(), &'static str> {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let (Some(client_id), Some(timestamp), Some(request_id), Some(signature)) = (
            header("x-client-id"),
            header("x-timestamp"),
            header("x-request-id"),
            header("x-signature"),
        ) else {
            return Err(refusal::MISSING_HEADERS);
        };
        if !bool::from(client_id.as_bytes().ct_eq(self.client_id.as_bytes())) {
            return Err(refusal::UNKNOWN_CLIENT);
        }
        if request_id.is_empty() || request_id.len() > 128 {
            return Err(refusal::INVALID_REQUEST_ID);
        }
        let sent_at = parse_timestamp(timestamp).ok_or(refusal::INVALID_TIMESTAMP)?;
        let skew = (now - sent_at).abs().to_std().unwrap_or(Duration::MAX);
        if skew > self.max_skew {
            return Err(refusal::OUTSIDE_WINDOW);
        }
        let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let message = format!(
            "{client_id}:{timestamp}:{}:{path_and_query}:{request_id}",
            req.method().as_str()
        );
        let signature = hex::decode(signature).map_err(|_| refusal::INVALID_SIGNATURE)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).map_err(|_| refusal::INVALID_SIGNATURE)?;
        mac.update(message.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| refusal::INVALID_SIGNATURE)?;
        // A replay is refused by the timestamp check once `sent_at + max_skew` has passed:
        // the id is remembered until then, and no longer.
        let skew = chrono::Duration::from_std(self.max_skew).unwrap_or(chrono::Duration::MAX);
        let until = sent_at
            .checked_add_signed(skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if let Some(redis) = &self.shared {
            if let Ok(first) = remember_in(redis, request_id, until, now).await {
                return if first {
                    Ok(())
                } else {
                    Err(refusal::REPLAYED)
                };
            }
        }
        self.seen
            .accept(request_id, until, now)
            .map_err(|refusal| match refusal {
                Refusal::Replayed => refusal::REPLAYED,
                Refusal::Full => refusal::WINDOW_FULL,
            })
    }
}

/// `SET NX PX`: true the first time an id is seen within its window, on any instance.
async fn remember_in(
    redis: &Redis,
    request_id: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, crate::shared::Unavailable> {
    let key = redis.key(format_args!("replay:{:032x}", digest_of(request_id)));
    let left_ms = (until - now).num_milliseconds().max(1);
    let set = redis::cmd("SET")
        .arg(key)
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(left_ms)
        .clone();
    let answer: Option<String> = redis.query("replay id", &set).await?;
    Ok(answer.is_some())
}

/// Unix time in milliseconds (`Date.now()`), or in seconds when the number is that small.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let value: i64 = text.parse().ok()?;
    if value >= 1_000_000_000_000 {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    }
}
