//! Quota state in Redis (SPEC B6): the same rules as `local.rs`, each decision one script,
//! so N instances enforce every limit and spend every credit as one instance would.
//!
//! Every key of one owner carries its hash tag, `{q<user id>}`, so a token's and its owner's
//! limits and credits sit in one Cluster slot and one script decides them all:
//! - `<prefix>q:{q<user>}:l:<t|u><id>:<window>:<name>`: a window's count (expires with it);
//! - `<prefix>q:{q<user>}:c:<t|u><id>`: leased credits, a hash of `g` (generation), `b`
//!   (balance), `a` (refilled at, ms) and `x` (exhausted until, ms).

use std::sync::{Arc, LazyLock};

use redis::Script;

use super::local::Balance;
use super::spend::{Answer, Spend, EXHAUSTED_RECHECK_MS};
use crate::domain::quota::{LimitName, Subject};
use crate::domain::UserId;
use crate::shared::Redis;
use crate::store::{Lease, StoreError};

/// KEYS: the limits' counters, then the pools. ARGV: now, the number of limits, per limit
/// (limit, cost, ms to keep the counter), then per pool (cost, boundary).
/// Answers {0, 0, counts…, balances…} (charged), {1, i, count} (limit i refuses),
/// {2, j, 0} (pool j needs a lease) or {3, j, 0} (pool j exhausted).
const SPEND_LUA: &str = r"
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local m = #KEYS - n
local counts, balances = {}, {}
for i = 1, n do
  local at = 2 + (i - 1) * 3
  local limit, cost = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + math.max(cost, 1) > limit then
    return {1, i, count}
  end
  counts[i] = count
end
local base = 2 + n * 3
for j = 1, m do
  local cost = tonumber(ARGV[base + (j - 1) * 2 + 1])
  local boundary = tonumber(ARGV[base + (j - 1) * 2 + 2])
  local held = redis.call('HMGET', KEYS[n + j], 'g', 'b', 'a', 'x')
  if not held[1] or tonumber(held[3]) < boundary then
    return {2, j, 0}
  end
  local balance = tonumber(held[2])
  if balance < math.max(cost, 1) then
    if tonumber(held[4] or '0') > now then
      return {3, j, 0}
    end
    return {2, j, 0}
  end
  balances[j] = balance
end
for i = 1, n do
  local at = 2 + (i - 1) * 3
  local cost = tonumber(ARGV[at + 2])
  if cost > 0 then
    counts[i] = redis.call('INCRBY', KEYS[i], cost)
    if counts[i] == cost then
      redis.call('PEXPIRE', KEYS[i], ARGV[at + 3])
    end
  end
end
for j = 1, m do
  local cost = tonumber(ARGV[base + (j - 1) * 2 + 1])
  if cost > 0 then
    balances[j] = redis.call('HINCRBY', KEYS[n + j], 'b', -cost)
  end
end
local out = {0, 0}
for i = 1, n do out[#out + 1] = counts[i] end
for j = 1, m do out[#out + 1] = balances[j] end
return out
";

/// KEYS: a pool. ARGV: generation, refilled at, granted, exhausted until (0: not).
const ADD_LEASE_LUA: &str = r"
local held = redis.call('HMGET', KEYS[1], 'g', 'a')
local generation = tonumber(ARGV[1])
local current = tonumber(held[1] or '-1')
if generation < current then
  return 0
end
if generation > current then
  redis.call('HSET', KEYS[1], 'g', ARGV[1], 'b', ARGV[3], 'a', ARGV[2], 'x', ARGV[4])
else
  redis.call('HINCRBY', KEYS[1], 'b', ARGV[3])
  if tonumber(ARGV[2]) > tonumber(held[2]) then
    redis.call('HSET', KEYS[1], 'a', ARGV[2])
  end
  redis.call('HSET', KEYS[1], 'x', ARGV[4])
end
return 1
";

/// KEYS: a pool. ARGV: generation, amount. Answers what it took.
const TAKE_LUA: &str = r"
local held = redis.call('HMGET', KEYS[1], 'g', 'b')
if not held[1] or held[1] ~= ARGV[1] then
  return 0
end
local taken = math.min(tonumber(ARGV[2]), tonumber(held[2]))
redis.call('HINCRBY', KEYS[1], 'b', -taken)
return taken
";

/// KEYS: a pool. ARGV: generation.
const REFRESH_LUA: &str = r"
local current = redis.call('HGET', KEYS[1], 'g')
if not current then
  return 0
end
if tonumber(ARGV[1]) > tonumber(current) then
  redis.call('HSET', KEYS[1], 'g', ARGV[1], 'b', 0)
end
redis.call('HSET', KEYS[1], 'x', 0)
return 1
";

/// KEYS: a pool. Answers {generation, balance, refilled at} and deletes it.
const DRAIN_LUA: &str = r"
local held = redis.call('HMGET', KEYS[1], 'g', 'b', 'a')
if not held[1] then
  return {}
end
redis.call('DEL', KEYS[1])
return {tonumber(held[1]), tonumber(held[2]), tonumber(held[3])}
";

static SPEND: LazyLock<Script> = LazyLock::new(|| Script::new(SPEND_LUA));
static ADD_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(ADD_LEASE_LUA));
static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_LUA));
static REFRESH: LazyLock<Script> = LazyLock::new(|| Script::new(REFRESH_LUA));
static DRAIN: LazyLock<Script> = LazyLock::new(|| Script::new(DRAIN_LUA));

/// A counter outlives its window by this much (clock differences between instances).
const COUNTER_SLACK_MS: i64 = 5_000;

/// Quota state in Redis. Without an answer within `redis.timeout` a charge fails closed.
#[derive(Clone)]
pub struct SharedHolder {
    redis: Arc<Redis>,
}

fn unavailable<T>(_: crate::shared::Unavailable) -> Result<T, StoreError> {
    Err(StoreError::SharedState)
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SharedHolder {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn subject_code(subject: Subject) -> String {
        format!("{}{}", subject.scope().code(), subject.id())
    }

    fn counter_key(
        &self,
        owner: UserId,
        subject: Subject,
        window: u64,
        name: &LimitName,
    ) -> String {
        let code = Self::subject_code(subject);
        self.redis
            .key(format_args!("q:{{q{owner}}}:l:{code}:{window}:{name}"))
    }

    fn pool_key(&self, owner: UserId, subject: Subject) -> String {
        let code = Self::subject_code(subject);
        self.redis.key(format_args!("q:{{q{owner}}}:c:{code}"))
    }

    pub async fn spend(&self, spend: &Spend<'_>) -> Result<Answer, StoreError> {
        let mut keys = Vec::with_capacity(spend.limits.len() + spend.credits.len());
        let mut args = Vec::with_capacity(2 + spend.limits.len() * 3 + spend.credits.len() * 2);
        args.extend([spend.now_ms, spend.limits.len() as i64]);
        for step in &spend.limits {
            keys.push(self.counter_key(spend.owner, step.subject, step.window.index, step.name()));
            let keep = step.window.ends_ms - spend.now_ms + COUNTER_SLACK_MS;
            args.extend([int(step.limit()), int(step.cost), keep.max(1)]);
        }
        for step in &spend.credits {
            keys.push(self.pool_key(spend.owner, step.subject));
            args.extend([int(step.cost), step.boundary_ms]);
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let answer: Vec<i64> = match self.redis.run("quota", &SPEND, &keys, &args).await {
            Ok(answer) => answer,
            Err(err) => return unavailable(err),
        };
        let index = |at: i64| usize::try_from(at - 1).unwrap_or(0);
        let value = |v: i64| u64::try_from(v).unwrap_or(0);
        match answer.as_slice() {
            [0, _, rest @ ..] if rest.len() == keys.len() => {
                let (counts, balances) = rest.split_at(spend.limits.len());
                Ok(Answer::Done {
                    counts: counts.iter().copied().map(value).collect(),
                    balances: balances.iter().copied().map(value).collect(),
                    ahead: None,
                })
            }
            [1, at, count] => Ok(Answer::Limited {
                index: index(*at),
                count: value(*count),
            }),
            [2, at, _] => Ok(Answer::NeedLease { index: index(*at) }),
            [3, at, _] => Ok(Answer::Exhausted { index: index(*at) }),
            _ => Err(StoreError::SharedState),
        }
    }

    pub async fn add_lease(
        &self,
        owner: UserId,
        subject: Subject,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let key = self.pool_key(owner, subject);
        let exhausted_until = match lease.granted {
            0 => now_ms.saturating_add(EXHAUSTED_RECHECK_MS),
            _ => 0,
        };
        let args = [
            int(lease.generation),
            lease.refilled_at.timestamp_millis(),
            int(lease.granted),
            exhausted_until,
        ];
        match self
            .redis
            .run::<i64>("quota lease", &ADD_LEASE, &[&key], &args)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => unavailable(err),
        }
    }

    pub async fn take(
        &self,
        owner: UserId,
        subject: Subject,
        generation: u64,
        amount: u64,
    ) -> Result<u64, StoreError> {
        let key = self.pool_key(owner, subject);
        let args = [int(generation), int(amount)];
        match self
            .redis
            .run::<i64>("quota take", &TAKE, &[&key], &args)
            .await
        {
            Ok(taken) => Ok(u64::try_from(taken).unwrap_or(0)),
            Err(err) => unavailable(err),
        }
    }

    pub async fn refresh(
        &self,
        owner: UserId,
        subject: Subject,
        generation: u64,
    ) -> Result<(), StoreError> {
        let key = self.pool_key(owner, subject);
        let args = [int(generation)];
        match self
            .redis
            .run::<i64>("quota refresh", &REFRESH, &[&key], &args)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => unavailable(err),
        }
    }

    pub async fn balance(
        &self,
        owner: UserId,
        subject: Subject,
    ) -> Result<Option<Balance>, StoreError> {
        let key = self.pool_key(owner, subject);
        let read = redis::cmd("HMGET")
            .arg(&key)
            .arg("g")
            .arg("b")
            .arg("a")
            .clone();
        let held: Vec<Option<i64>> = match self.redis.query("quota balance", &read).await {
            Ok(held) => held,
            Err(err) => return unavailable(err),
        };
        Ok(balance_of(subject, &held))
    }

    pub async fn drain(
        &self,
        owner: UserId,
        subject: Subject,
    ) -> Result<Option<Balance>, StoreError> {
        let key = self.pool_key(owner, subject);
        let held: Vec<i64> = match self.redis.run("quota drain", &DRAIN, &[&key], &[]).await {
            Ok(held) => held,
            Err(err) => return unavailable(err),
        };
        let held: Vec<Option<i64>> = held.into_iter().map(Some).collect();
        Ok(balance_of(subject, &held))
    }

    pub async fn count(
        &self,
        owner: UserId,
        subject: Subject,
        name: &LimitName,
        window: u64,
    ) -> Result<u64, StoreError> {
        let key = self.counter_key(owner, subject, window, name);
        let read = redis::cmd("GET").arg(&key).clone();
        match self.redis.query::<Option<u64>>("quota count", &read).await {
            Ok(count) => Ok(count.unwrap_or(0)),
            Err(err) => unavailable(err),
        }
    }
}

fn balance_of(subject: Subject, held: &[Option<i64>]) -> Option<Balance> {
    match held {
        [Some(generation), Some(balance), Some(refilled_at), ..] => Some(Balance {
            subject,
            generation: u64::try_from(*generation).unwrap_or(0),
            refilled_at_ms: *refilled_at,
            balance: u64::try_from(*balance).unwrap_or(0),
            exhausted_until_ms: 0,
            leased: 0,
            ahead_until_ms: 0,
        }),
        _ => None,
    }
}
