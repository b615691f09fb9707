//! State shared by every instance of a deployment, through Redis (SPEC B6): the link and its
//! health, and the channel on which instances tell each other what changed. The abuse limiters
//! (`limits`) and the HMAC replay ids (`http::hmac_guard`) keep their shared state through it.
//!
//! Without `redis.url` none of this exists and every part keeps its state in the process.
//! With it, Redis failing is never an error a request sees: each caller has its fallback
//! (per-instance limiters and replay window, the cache TTL for invalidation), and no request
//! waits longer than `redis.timeout` — only those that find Redis freshly dead wait at all.

mod breaker;
mod calls;
mod connection;
mod health;
mod notices;

pub use breaker::{Admission, BreakerSettings, State as BreakerState};
pub use calls::{Unanswered, Unavailable};
pub use connection::{seed_urls, Redis};
pub use health::{Failure, Health};
pub use notices::{Notice, NoticeSink, Notices, MAX_PENDING};
