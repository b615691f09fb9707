//! Layered rate limits with escalating bans (SPEC A8): which limiter guards what, keyed how.

mod clock;
mod key_states;
mod limiter;
#[cfg(test)]
mod tests;

pub use clock::GovernorClock;
pub use limiter::{Decision, Limiter, LimiterConfig, NewBans};

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::config::{LimiterSettings, RateLimitersSettings};
use crate::domain::{Actor, UserId};
use crate::store::{Audit, BanRecord, BanStore, StoreError};
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
        }
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
    pub fn management(&self, ip: &str, is_list: bool) -> Decision {
        if !self.enabled {
            return Decision::Allowed;
        }
        let key = if is_list {
            format!("{ip}_list-metadata")
        } else {
            ip.to_owned()
        };
        self.union(&key)
    }

    /// burst ∪ slow: both consume, either rejects.
    fn union(&self, key: &str) -> Decision {
        self.burst.check(key).and(self.slow.check(key))
    }

    /// The action's own limiter, after body validation, keyed `<ip>_<userId>`.
    pub fn operation(&self, operation: Operation, ip: &str, user_id: UserId) -> Decision {
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
        limiter.check(&format!("{ip}_{user_id}"))
    }

    /// A successful (non-list) action resets the union for that IP.
    pub fn management_succeeded(&self, ip: &str) {
        if self.enabled {
            self.burst.reset(ip);
            self.slow.reset(ip);
        }
    }

    /// Before verifying: the union, when `rate_limit_on_successful_request` is on. The
    /// consumption limiter is not consulted here: it guards failures only (SPEC A8), so a
    /// verification that succeeds is served whatever blocks or bans its key or IP has.
    pub fn before_verify(&self, ip: Option<IpAddr>) -> Decision {
        if !self.enabled || !self.union_on_verify {
            return Decision::Allowed;
        }
        self.union(&format!("{}_verify", ip_key(ip)))
    }

    /// A failed verification consumes from the consumption limiter for the key and the IP;
    /// during a block it is a strike, and the last strike bans.
    pub fn verify_failed(&self, ip: Option<IpAddr>, presented: Option<&str>) -> Decision {
        if !self.enabled {
            return Decision::Allowed;
        }
        consumption_keys(&ip_key(ip), presented)
            .iter()
            .fold(Decision::Allowed, |d, key| {
                d.and(self.consumption.check(key))
            })
    }

    /// A successful verification resets the failure count of its key and IP; a block (or
    /// ban) already in force stays, with its strikes.
    pub fn verify_succeeded(&self, ip: Option<IpAddr>, presented: &str) {
        if self.enabled && !self.consumption.is_idle() {
            for key in consumption_keys(&ip_key(ip), Some(presented)) {
                self.consumption.forget_points(&key);
            }
        }
    }

    /// Writes bans made since the last call to the store. A failed write is retried on the
    /// next call and by the refresh timer; the ban is enforced here meanwhile.
    pub async fn persist_new_bans(&self) -> Result<(), StoreError> {
        let pending: Vec<BanRecord> = match self.new_bans.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue),
            Err(_) => return Ok(()),
        };
        for (index, ban) in pending.iter().enumerate() {
            if let Err(err) = self.store.insert_ban(ban).await {
                if let Ok(mut queue) = self.new_bans.lock() {
                    queue.extend(pending[index..].iter().cloned());
                }
                return Err(err);
            }
            if let Some(limiter) = self.limiter(&ban.limiter) {
                limiter.mark_persisted(&ban.key);
            }
        }
        Ok(())
    }

    /// Re-reads every ban from the store: bans made by other instances start applying here,
    /// bans lifted elsewhere stop.
    pub async fn refresh_bans(&self) -> Result<(), StoreError> {
        self.persist_new_bans().await?;
        let stored = self.store.list_bans().await?;
        for limiter in self.all() {
            let mine: Vec<BanRecord> = stored
                .iter()
                .filter(|ban| ban.limiter == limiter.name())
                .cloned()
                .collect();
            limiter.reconcile_bans(&mine);
        }
        Ok(())
    }

    /// Lifts a ban everywhere: in the store (other instances follow at their next refresh)
    /// and here at once. False when neither had it.
    pub async fn lift(&self, limiter: &str, key: &str, actor: Actor) -> Result<bool, StoreError> {
        let audit = Audit {
            actor,
            at: self.clock.0.now(),
        };
        let stored = self.store.delete_ban(limiter, key, &audit).await?;
        let here = self.limiter(limiter).is_some_and(|l| l.lift(key));
        Ok(stored || here)
    }

    /// Every ban in the store (what all instances enforce).
    pub async fn stored_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        self.store.list_bans().await
    }

    /// Bans enforced by this instance now.
    pub fn bans(&self) -> Vec<BanRecord> {
        self.all().into_iter().flat_map(Limiter::bans).collect()
    }

    /// Drops idle keys from every limiter.
    pub fn prune(&self) {
        for limiter in self.all() {
            limiter.prune();
        }
    }
}

/// The client IP as a limiter key part (`unknown` when the peer address is not known).
pub fn ip_key(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
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
