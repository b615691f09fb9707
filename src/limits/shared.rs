//! The abuse limiters' state in Redis (SPEC B6): counters, blocks, strikes and bans of every
//! key, so that N instances enforce each limit as one would.
//!
//! One key per limiter and limited key, `<prefix>rl:{<key>}:<limiter>`, a hash of `tat` (the
//! GCRA's theoretical arrival time, ms), `until` and `strikes` (a block in force) and `ban`.
//! The limited key is the hash tag, so the limiters of one decision (burst ∪ slow) sit in one
//! Cluster slot and one script decides them all: one round trip, atomic. The rule is the one
//! [`Limiter::check`](super::Limiter::check) applies in memory, step for step (a test runs
//! both on the same sequence), with time passed in by the caller's clock.

use std::sync::{Arc, LazyLock};

use redis::Script;

use super::limiter::Limiter;
use crate::shared::{Redis, Unavailable};

/// ARGV: now (ms), strikes to ban, then per key: interval (µs), points, block (ms).
/// Answers per key: code (0 allowed, 1 blocked, 2 banned before, 3 banned now) and ms left.
const DECIDE_LUA: &str = r"
local now = tonumber(ARGV[1])
local ban_after = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 3
  local interval = tonumber(ARGV[at + 1]) / 1000
  local points = tonumber(ARGV[at + 2])
  local block = tonumber(ARGV[at + 3])
  local state = redis.call('HMGET', key, 'ban', 'until', 'strikes', 'tat')
  local code, retry = 0, 0
  if state[1] then
    code = 2
  else
    local blocked = tonumber(state[2])
    local strikes = tonumber(state[3]) or 0
    local tat = tonumber(state[4]) or now
    if blocked and blocked <= now then
      redis.call('HDEL', key, 'until', 'strikes')
      blocked, strikes = nil, 0
    end
    if not blocked then
      local next_tat = math.max(tat, now) + interval
      if next_tat - now <= interval * points then
        redis.call('HSET', key, 'tat', string.format('%.3f', next_tat))
        redis.call('PEXPIRE', key, math.max(1, math.ceil(next_tat - now)))
      else
        blocked = now + block
        strikes = 0
      end
    end
    if blocked then
      strikes = strikes + 1
      if strikes >= ban_after then
        redis.call('HDEL', key, 'until', 'strikes', 'tat')
        redis.call('HSET', key, 'ban', now)
        redis.call('PERSIST', key)
        code = 3
      else
        redis.call('HSET', key, 'until', blocked, 'strikes', strikes)
        redis.call('PEXPIRE', key, math.max(1, math.ceil(math.max(blocked, tat) - now)))
        code, retry = 1, blocked - now
      end
    end
  end
  out[#out + 1] = code
  out[#out + 1] = retry
end
return out
";

/// ARGV[1]: 1 forgets the points only (a block stays), 0 the points and the block.
const RESET_LUA: &str = r"
for _, key in ipairs(KEYS) do
  if ARGV[1] == '1' then
    redis.call('HDEL', key, 'tat')
  else
    redis.call('HDEL', key, 'tat', 'until', 'strikes')
  end
end
return 0
";

static DECIDE: LazyLock<Script> = LazyLock::new(|| Script::new(DECIDE_LUA));
static RESET: LazyLock<Script> = LazyLock::new(|| Script::new(RESET_LUA));

/// What Redis decided for one limiter of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    Blocked {
        left_ms: u64,
    },
    /// Banned by an earlier decision (perhaps another instance's).
    Banned,
    /// This decision made the ban.
    BannedNow,
}

/// The limiters' link to Redis.
#[derive(Clone)]
pub struct SharedState {
    redis: Arc<Redis>,
}

impl SharedState {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    pub fn redis(&self) -> &Arc<Redis> {
        &self.redis
    }

    fn key(&self, limiter: &str, key: &str) -> String {
        self.redis.key(format_args!("rl:{{{key}}}:{limiter}"))
    }

    /// One point of `key` from each of `limiters`, decided together in one script.
    pub async fn decide(
        &self,
        limiters: &[&Limiter],
        key: &str,
        now_ms: i64,
        ban_after_strikes: u32,
    ) -> Result<Vec<Answer>, Unavailable> {
        let keys: Vec<String> = limiters.iter().map(|l| self.key(l.name(), key)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut args = vec![now_ms, i64::from(ban_after_strikes)];
        for limiter in limiters {
            let config = limiter.config();
            let interval = config.duration.as_micros() / u128::from(config.points.get());
            args.push(i64::try_from(interval.max(1)).unwrap_or(i64::MAX));
            args.push(i64::from(config.points.get()));
            args.push(i64::try_from(config.block_duration.as_millis()).unwrap_or(i64::MAX));
        }
        let answer: Vec<i64> = self.redis.run("limiter", &DECIDE, &keys, &args).await?;
        if answer.len() != limiters.len() * 2 {
            return Err(Unavailable);
        }
        Ok(answer
            .chunks_exact(2)
            .map(|pair| match pair[0] {
                0 => Answer::Allowed,
                1 => Answer::Blocked {
                    left_ms: u64::try_from(pair[1]).unwrap_or(0),
                },
                3 => Answer::BannedNow,
                _ => Answer::Banned,
            })
            .collect())
    }

    /// Forgets the points of `key` in `limiters` (and its block too unless `points_only`).
    pub async fn reset(
        &self,
        limiters: &[&str],
        key: &str,
        points_only: bool,
    ) -> Result<(), Unavailable> {
        let keys: Vec<String> = limiters.iter().map(|name| self.key(name, key)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let args = [i64::from(points_only)];
        self.redis
            .run::<i64>("limiter reset", &RESET, &keys, &args)
            .await?;
        Ok(())
    }

    /// Forgets everything of `key` in `limiter`, its ban included.
    pub async fn lift(&self, limiter: &str, key: &str) -> Result<(), Unavailable> {
        let delete = redis::cmd("DEL").arg(self.key(limiter, key)).clone();
        self.redis.query::<i64>("limiter lift", &delete).await?;
        Ok(())
    }
}
