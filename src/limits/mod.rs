//! Layered rate limits with escalating bans (SPEC A8): which limiter guards what, keyed how.

mod bans;
mod clock;
mod key_states;
mod limiter;
mod shared;
#[cfg(test)]
mod tests;

pub use clock::GovernorClock;
pub use limiter::{Decision, Limiter, LimiterConfig, NewBans};
pub use shared::{Answer as SharedAnswer, SharedState};

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::config::{LimiterSettings, RateLimitersSettings};
use crate::domain::UserId;
use crate::shared::{Notice, Notices};
use crate::store::BanStore;
use crate::telemetry::metrics::Metrics;

/// The per-operation limiters of `/api/manage/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    NewToken,
    Revoke,
    Metadata,
    Rotate,
    IpRestrictionUpdate,
    PrivilegeUpdate,
}

/// Every limiter of the service, wired as SPEC A8 says.
pub struct Limits {
    enabled: bool,
    union_on_verify: bool,
    burst: Limiter,
    slow: Limiter,
    new_token: Limiter,
    revoke: Limiter,
    metadata: Limiter,
    rotate: Limiter,
    ip_update: Limiter,
    privilege_update: Limiter,
    consumption: Limiter,
    new_bans: NewBans,
    store: Arc<dyn BanStore>,
    clock: GovernorClock,
    ban_after_strikes: u32,
    /// With Redis: the state every instance shares, and the channel bans and lifts are told on.
    shared: Option<Shared>,
}

/// Consumption keys remembered as having failures in Redis, at most (about 60 bytes each).
const MAX_FAILED_KEYS: usize = 100_000;

struct Shared {
    state: SharedState,
    notices: Arc<Notices>,
    /// Consumption keys with a failure counted in Redis (by this instance or, as told, another),
    /// with when that count has drained anyway (ms): a success resets these in Redis, and pays
    /// no round trip otherwise.
    failed: dashmap::DashMap<Box<str>, i64, foldhash::fast::RandomState>,
}

impl Limits {
    pub fn new(
        settings: &RateLimitersSettings,
        union_on_verify: bool,
        clock: Arc<dyn Clock>,
        store: Arc<dyn BanStore>,
    ) -> Self {
        let clock = GovernorClock(clock);
        let hasher = RandomState::new();
        let new_bans = NewBans::default();
        let strikes = settings.ban_after_strikes;
        let make = |name, config: LimiterSettings| {
            Limiter::new(
                name,
                limiter_config(config),
                strikes,
                clock.clone(),
                hasher.clone(),
                new_bans.clone(),
            )
        };
        let limits = &settings.api_tokens_limiters;
        let ops = &limits.operation_rate_limits;
        let union = &limits.general_union_limiter;
        Self {
            enabled: settings.enabled,
            union_on_verify,
            burst: make("burst_limiter", union.burst_limiter),
            slow: make("slow_limiter", union.slow_limiter),
            new_token: make("new_token_creation_limiter", ops.new_token_creation_limiter),
            revoke: make("revoke_tokens_limiter", ops.revoke_tokens_limiter),
            metadata: make("get_metadata_token_limiter", ops.get_metadata_token_limiter),
            rotate: make("rotation_rate_limiter", ops.rotation_rate_limiter),
            ip_update: make("ip_restriction_update", ops.ip_restriction_update),
            privilege_update: make("privilege_update", ops.privilege_update),
            consumption: make("consumption_rate_limiter", limits.consumption_rate_limiter),
            new_bans,
            store,
            clock,
            ban_after_strikes: strikes.max(1),
            shared: None,
        }
    }

    /// The same limits, deciding in Redis (one script per decision) and telling other
    /// instances about bans and lifts on `notices`. This instance's own state stays as the
    /// fallback while Redis is down, and as the cache of known bans.
    pub fn shared_through(mut self, notices: Arc<Notices>) -> Self {
        self.shared = Some(Shared {
            state: SharedState::new(notices.redis().clone()),
            notices,
            failed: dashmap::DashMap::default(),
        });
        self
    }

    /// Whether decisions are taken in Redis (when it answers).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The same limits, counting rejections and bans into `metrics`, by limiter.
    pub fn observed_by(mut self, metrics: &Metrics) -> Self {
        for limiter in [
            &mut self.burst,
            &mut self.slow,
            &mut self.new_token,
            &mut self.revoke,
            &mut self.metadata,
            &mut self.rotate,
            &mut self.ip_update,
            &mut self.privilege_update,
            &mut self.consumption,
        ] {
            limiter.observe(metrics.limiter(limiter.name()));
        }
        self
    }

    fn all(&self) -> [&Limiter; 9] {
        [
            &self.burst,
            &self.slow,
            &self.new_token,
            &self.revoke,
            &self.metadata,
            &self.rotate,
            &self.ip_update,
            &self.privilege_update,
            &self.consumption,
        ]
    }

    /// The limiter called `name` (its config name, e.g. `rotation_rate_limiter`).
    pub fn limiter(&self, name: &str) -> Option<&Limiter> {
        self.all().into_iter().find(|l| l.name() == name)
    }

    /// The general union in front of every management action, before body validation.
    pub async fn management(&self, ip: &str, is_list: bool) -> Decision {
        if !self.enabled {
            return Decision::Allowed;
        }
        let key = if is_list {
            format!("{ip}_list-metadata")
        } else {
            ip.to_owned()
        };
        self.decide(&[&self.burst, &self.slow], &key).await
    }

    /// The action's own limiter, after body validation, keyed `<ip>_<userId>`.
    pub async fn operation(&self, operation: Operation, ip: &str, user_id: UserId) -> Decision {
        if !self.enabled {
            return Decision::Allowed;
        }
        let limiter = match operation {
            Operation::NewToken => &self.new_token,
            Operation::Revoke => &self.revoke,
            Operation::Metadata => &self.metadata,
            Operation::Rotate => &self.rotate,
            Operation::IpRestrictionUpdate => &self.ip_update,
            Operation::PrivilegeUpdate => &self.privilege_update,
        };
        self.decide(&[limiter], &format!("{ip}_{user_id}")).await
    }

    /// A successful (non-list) action resets the union for that IP (before the answer goes
    /// out, so that the client's next action finds it reset on every instance).
    pub async fn management_succeeded(&self, ip: &str) {
        if !self.enabled {
            return;
        }
        self.burst.reset(ip);
        self.slow.reset(ip);
        if let Some(shared) = &self.shared {
            let _ = shared
                .state
                .reset(&[self.burst.name(), self.slow.name()], ip, false)
                .await;
        }
    }

    /// Before verifying: the union, when `rate_limit_on_successful_request` is on. The
    /// consumption limiter is not consulted here: it guards failures only (SPEC A8), so a
    /// verification that succeeds is served whatever blocks or bans its key or IP has.
    pub async fn before_verify(&self, ip: Option<IpAddr>) -> Decision {
        if !self.enabled || !self.union_on_verify {
            return Decision::Allowed;
        }
        let key = format!("{}_verify", ip_key(ip));
        self.decide(&[&self.burst, &self.slow], &key).await
    }

    /// A failed verification consumes from the consumption limiter for the key and the IP;
    /// during a block it is a strike, and the last strike bans.
    pub async fn verify_failed(&self, ip: Option<IpAddr>, presented: Option<&str>) -> Decision {
        if !self.enabled {
            return Decision::Allowed;
        }
        let keys = consumption_keys(&ip_key(ip), presented);
        let consumption = [&self.consumption];
        let decisions = keys.iter().map(|key| self.decide(&consumption, key));
        let decisions = futures_util::future::join_all(decisions).await;
        if let Some(shared) = &self.shared {
            let drained = self.consumption_drained();
            for (key, decision) in keys.into_iter().zip(&decisions) {
                if *decision == Decision::Banned {
                    continue;
                }
                // The first failure of a key here in its window is told to the others, so
                // that a success on any instance resets it (SPEC A8, as on one instance).
                if shared.failed.len() >= MAX_FAILED_KEYS && !shared.failed.contains_key(&*key) {
                    continue; // a flood: these counts drain with the limiter's rate instead
                }
                let first = shared.failed.insert(key.clone().into_boxed_str(), drained);
                if first.is_none() && shared.notices.redis().is_up() {
                    shared.notices.publish(Notice::Failed { key });
                }
            }
        }
        decisions.into_iter().fold(Decision::Allowed, Decision::and)
    }

    /// A successful verification resets the failure count of its key and IP; a block (or
    /// ban) already in force stays, with its strikes. In Redis, the reset runs in the
    /// background, and only for keys some instance told a failure of: a success never waits on
    /// Redis, and most never ask it anything.
    pub fn verify_succeeded(&self, ip: Option<IpAddr>, presented: &str) {
        if !self.enabled {
            return;
        }
        let local = !self.consumption.is_idle();
        let shared = self.shared.as_ref().filter(|s| !s.failed.is_empty());
        if !local && shared.is_none() {
            return;
        }
        for key in consumption_keys(&ip_key(ip), Some(presented)) {
            if local {
                self.consumption.forget_points(&key);
            }
            if let Some(shared) = shared {
                if shared.failed.remove(key.as_str()).is_some() {
                    self.reset_in_background(key);
                }
            }
        }
    }

    /// When a failure counted now has drained from the consumption limiter anyway (ms).
    fn consumption_drained(&self) -> i64 {
        let window = duration_ms(self.consumption.config().duration);
        self.clock.now_ms().saturating_add(window)
    }

    fn reset_in_background(&self, key: String) {
        let Some(shared) = &self.shared else { return };
        let state = shared.state.clone();
        let limiter = self.consumption.name();
        tokio::spawn(async move {
            let _ = state.reset(&[limiter], &key, true).await;
        });
    }

    /// One decision of `limiters` for `key`: in Redis when shared and up, else here. A ban
    /// this instance knows of answers at once, with no round trip.
    async fn decide(&self, limiters: &[&Limiter], key: &str) -> Decision {
        let local = || {
            limiters
                .iter()
                .fold(Decision::Allowed, |d, l| d.and(l.check(key)))
        };
        let Some(shared) = &self.shared else {
            return local();
        };
        if let Some(banned) = limiters.iter().find(|l| l.is_banned(key)) {
            banned.count_rejection();
            return Decision::Banned;
        }
        // Wall time (every instance reads the same, given NTP), not the monotonic clock,
        // whose origin is each process's own.
        let now_ms = self.clock.0.now().timestamp_millis();
        let answers = shared
            .state
            .decide(limiters, key, now_ms, self.ban_after_strikes)
            .await;
        let Ok(answers) = answers else {
            shared
                .notices
                .redis()
                .health()
                .metrics()
                .fallbacks
                .increment(1);
            return local();
        };
        let mut decision = Decision::Allowed;
        for (limiter, answer) in limiters.iter().zip(answers) {
            decision = decision.and(match answer {
                SharedAnswer::Allowed => Decision::Allowed,
                SharedAnswer::Blocked { left_ms } => {
                    limiter.count_rejection();
                    Decision::Limited {
                        retry_after: std::time::Duration::from_millis(left_ms),
                    }
                }
                SharedAnswer::Banned => {
                    limiter.count_rejection();
                    limiter.know_ban(key, self.clock.0.now());
                    Decision::Banned
                }
                SharedAnswer::BannedNow => {
                    limiter.count_rejection();
                    limiter.ban_key(key);
                    shared.notices.publish(Notice::Banned {
                        limiter: limiter.name().to_owned(),
                        key: key.to_owned(),
                    });
                    Decision::Banned
                }
            });
        }
        decision
    }

    /// What another instance told: a ban to enforce here too, or a lift.
    pub fn apply_notice(&self, notice: &Notice) {
        match notice {
            Notice::Banned { limiter, key } => {
                if let Some(limiter) = self.limiter(limiter) {
                    limiter.know_ban(key, self.clock.0.now());
                }
            }
            Notice::Lifted { limiter, key } => {
                if let Some(limiter) = self.limiter(limiter) {
                    limiter.lift(key);
                }
            }
            Notice::Failed { key } => {
                if let Some(shared) = self
                    .shared
                    .as_ref()
                    .filter(|s| s.failed.len() < MAX_FAILED_KEYS)
                {
                    let drained = self.consumption_drained();
                    shared.failed.insert(key.as_str().into(), drained);
                }
            }
            _ => {}
        }
    }

    /// Drops idle keys from every limiter.
    pub fn prune(&self) {
        for limiter in self.all() {
            limiter.prune();
        }
        if let Some(shared) = &self.shared {
            let now = self.clock.now_ms();
            shared.failed.retain(|_, drained| *drained > now);
        }
    }
}

/// The client IP as a limiter key part (`unknown` when the peer address is not known).
pub fn ip_key(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn limiter_config(settings: LimiterSettings) -> LimiterConfig {
    LimiterConfig {
        points: NonZeroU32::new(settings.points).unwrap_or(NonZeroU32::MIN),
        duration: settings.duration,
        block_duration: settings.block_duration,
    }
}

/// `<ip>_verify` when no key was sent; else the key (as a short hash: raw keys are secrets
/// and must not reach the bans table or the logs) and the IP.
fn consumption_keys(ip: &str, presented: Option<&str>) -> Vec<String> {
    match presented {
        None => vec![format!("{ip}_verify")],
        Some(key) => {
            let hash = Sha256::digest(key.as_bytes());
            vec![format!("key:{}", hex::encode(&hash[..8])), ip.to_owned()]
        }
    }
}
