//! Quota state in Redis (SPEC B6): the same rules as `local.rs`, each decision one script,
//! so N instances enforce every limit and spend every credit as one instance would.
//!
//! Every key of one owner carries its hash tag, `{q<user id>}`, so a token's and its owner's
//! limits and credits sit in one Cluster slot and one script decides them all:
//! - `<prefix>q:{q<user>}:l:<t|u><id>:<window>:<name>`: a window's count (expires with it);
//! - `<prefix>q:{q<user>}:c:<t|u><id>`: leased credits, a hash of `g` (generation), `b`
//!   (balance), `a` (refilled at, ms) and `x` (exhausted until, ms);
//! - `<prefix>q:{q<user>}:o:<operation id>`: what one charge, lease, take or drain did, kept
//!   for `RECORD_MS`, so that the operation applies once however often it is sent: a try
//!   whose answer timed out is sent again with the same id (`Redis::run_once`), and a charge
//!   that got no answer at all is voided (undone if it ran) in the background.

use std::sync::{Arc, LazyLock};

use redis::Script;

use super::local::Balance;
use super::spend::{Answer, Spend, EXHAUSTED_RECHECK_MS};
use crate::domain::quota::{LimitName, Subject};
use crate::domain::UserId;
use crate::shared::{Redis, Unanswered};
use crate::store::{Lease, StoreError};

/// Reads the integers of a record back (`ints("0,0,3")` = {0, 0, 3}). Records are written
/// from Redis's own strings, or with `%d` (Lua's `tostring` would write 2^53 as
/// `9.007199254741e+15`).
const INTS_LUA: &str = r"
local function ints(text)
  local list = {}
  for n in string.gmatch(text, '-?%d+') do list[#list + 1] = tonumber(n) end
  return list
end
";

/// KEYS: the limits' counters, then the pools, then the charge's record. ARGV: now, the
/// number of limits, how long the record is kept (ms), per limit (limit, cost, ms to keep the
/// counter), then per pool (cost, boundary).
/// Answers {0, 0, counts…, balances…} (charged), {1, i, count} (limit i refuses),
/// {2, j, 0} (pool j needs a lease), {3, j, 0} (pool j exhausted) or {4, 0, 0} (this charge
/// was voided). A charge applies once: its record holds the generations of the pools it
/// charged (`v` once voided); run again, it answers charged with the counts and balances as
/// they are now, and applies nothing. (The record is only that: writing the whole answer
/// cost Redis a quarter of this script's rate.)
const SPEND_LUA: &str = r"
local record = KEYS[#KEYS]
local n = tonumber(ARGV[2])
local m = #KEYS - 1 - n
local seen = redis.call('GET', record)
if seen then
  if seen == 'v' then
    return {4, 0, 0}
  end
  local out = {0, 0}
  for i = 1, n do out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') end
  for j = 1, m do out[#out + 1] = tonumber(redis.call('HGET', KEYS[n + j], 'b') or '0') end
  return out
end
local now = tonumber(ARGV[1])
local counts, balances, generations = {}, {}, {}
for i = 1, n do
  local at = 3 + (i - 1) * 3
  local limit, cost = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + math.max(cost, 1) > limit then
    return {1, i, count}
  end
  counts[i] = count
end
local base = 3 + n * 3
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
  generations[j] = held[1]
end
for i = 1, n do
  local at = 3 + (i - 1) * 3
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
redis.call('SET', record, table.concat(generations, ','), 'PX', ARGV[3])
return out
";

/// A charge whose answer was lost: the same KEYS and ARGV as the spend. Marks its record
/// void, so that a try still on its way changes nothing, and undoes it if it was applied
/// (counters of the same window, credits of the same generation). Answers 1 if it undid.
const VOID_LUA: &str = r"
local record = KEYS[#KEYS]
local seen = redis.call('GET', record)
redis.call('SET', record, 'v', 'PX', ARGV[3])
if not seen or seen == 'v' then
  return 0
end
local generations = ints(seen)
local n = tonumber(ARGV[2])
local m = #KEYS - 1 - n
for i = 1, n do
  local cost = tonumber(ARGV[3 + (i - 1) * 3 + 2])
  if cost > 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('DECRBY', KEYS[i], cost)
  end
end
local base = 3 + n * 3
for j = 1, m do
  local cost = tonumber(ARGV[base + (j - 1) * 2 + 1])
  local current = tonumber(redis.call('HGET', KEYS[n + j], 'g') or '-1')
  if cost > 0 and current == generations[j] then
    redis.call('HINCRBY', KEYS[n + j], 'b', cost)
  end
end
return 1
";

/// KEYS: a pool, the operation's record. ARGV: generation, refilled at, granted, exhausted
/// until (0: not), how long the record is kept (ms). Applies once per record.
const ADD_LEASE_LUA: &str = r"
if redis.call('GET', KEYS[2]) then
  return 1
end
redis.call('SET', KEYS[2], 'a', 'PX', ARGV[5])
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

/// KEYS: a pool, the operation's record. ARGV: generation, amount, how long the record is
/// kept (ms). Answers what it took (once per record: run again, the same).
const TAKE_LUA: &str = r"
local seen = redis.call('GET', KEYS[2])
if seen then
  return tonumber(seen)
end
local held = redis.call('HMGET', KEYS[1], 'g', 'b')
local taken = 0
if held[1] and held[1] == ARGV[1] then
  taken = math.min(tonumber(ARGV[2]), tonumber(held[2]))
  redis.call('HINCRBY', KEYS[1], 'b', -taken)
end
redis.call('SET', KEYS[2], string.format('%d', taken), 'PX', ARGV[3])
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

/// KEYS: a pool, the operation's record. ARGV: how long the record is kept (ms). Answers
/// {generation, balance, refilled at} and deletes it (once per record: run again, the same).
const DRAIN_LUA: &str = r"
local seen = redis.call('GET', KEYS[2])
if seen then
  return ints(seen)
end
local held = redis.call('HMGET', KEYS[1], 'g', 'b', 'a')
if not held[1] then
  redis.call('SET', KEYS[2], '', 'PX', ARGV[1])
  return {}
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], held[1] .. ',' .. held[2] .. ',' .. held[3], 'PX', ARGV[1])
return {tonumber(held[1]), tonumber(held[2]), tonumber(held[3])}
";

/// A script that writes or reads recorded answers: `INTS_LUA` first.
fn with_ints(body: &str) -> Script {
    Script::new(&format!("{INTS_LUA}{body}"))
}

static SPEND: LazyLock<Script> = LazyLock::new(|| with_ints(SPEND_LUA));
static VOID: LazyLock<Script> = LazyLock::new(|| with_ints(VOID_LUA));
static ADD_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(ADD_LEASE_LUA));
static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_LUA));
static REFRESH: LazyLock<Script> = LazyLock::new(|| Script::new(REFRESH_LUA));
static DRAIN: LazyLock<Script> = LazyLock::new(|| with_ints(DRAIN_LUA));

/// How long Redis keeps an operation's record (ms): a retry, or the void of a charge whose
/// answer was lost, must arrive within it to be recognised.
const RECORD_MS: i64 = 30_000;
/// How long a lost operation is settled in the background (the void of a charge, the landing
/// of a lease) before it is given up: well within `RECORD_MS`.
const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(25);

/// A counter outlives its window by this much (clock differences between instances).
const COUNTER_SLACK_MS: i64 = 5_000;

/// Quota state in Redis. Without an answer within `redis.timeout` a charge fails closed; a
/// charge whose answer was lost is voided in the background, so that it never costs a credit
/// or a window's use without serving.
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

/// A script's keys and arguments, owned: what a settlement in the background runs again.
struct Call {
    keys: Vec<String>,
    args: Vec<i64>,
}

impl Call {
    fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }
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

    /// A fresh operation's record, in the owner's slot (a retry names the same one).
    fn record_key(&self, owner: UserId) -> String {
        let id = rand::random::<u64>();
        self.redis.key(format_args!("q:{{q{owner}}}:o:{id:016x}"))
    }

    /// Runs `script` once for `call` (retried within the timeout); when no answer came, runs
    /// `settle` (the same script, or the charge's void) in the background until Redis answers.
    async fn once<T: redis::FromRedisValue>(
        &self,
        during: &'static str,
        script: &'static Script,
        call: Call,
        settle: &'static Script,
    ) -> Result<T, StoreError> {
        let answer = self
            .redis
            .run_once(during, script, &call.keys(), &call.args)
            .await;
        if matches!(answer, Err(Unanswered::Lost)) {
            self.settle_later(during, settle, call);
        }
        answer.map_err(|_| StoreError::SharedState)
    }

    fn settle_later(&self, during: &'static str, script: &'static Script, call: Call) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let redis = self.redis.clone();
        let voiding = std::ptr::eq(script, &*VOID);
        runtime.spawn(async move {
            let settled = redis
                .settle::<redis::Value>(during, script, &call.keys(), &call.args, SETTLE_WITHIN)
                .await;
            match settled {
                Ok(_) if voiding => redis.health().metrics().voided.increment(1),
                Ok(_) => {}
                Err(_) => tracing::error!(
                    during,
                    "Redis did not answer within 25 s: an operation whose answer was lost \
                     stays as Redis left it (a charge may have spent without serving, leased \
                     credits may be lost; none is ever granted twice)"
                ),
            }
        });
    }

    pub async fn spend(&self, spend: &Spend<'_>) -> Result<Answer, StoreError> {
        let mut keys = Vec::with_capacity(spend.limits.len() + spend.credits.len() + 1);
        let mut args = Vec::with_capacity(3 + spend.limits.len() * 3 + spend.credits.len() * 2);
        args.extend([spend.now_ms, spend.limits.len() as i64, RECORD_MS]);
        for step in &spend.limits {
            keys.push(self.counter_key(spend.owner, step.subject, step.window.index, step.name()));
            let keep = step.window.ends_ms - spend.now_ms + COUNTER_SLACK_MS;
            args.extend([int(step.limit()), int(step.cost), keep.max(1)]);
        }
        for step in &spend.credits {
            keys.push(self.pool_key(spend.owner, step.subject));
            args.extend([int(step.cost), step.boundary_ms]);
        }
        keys.push(self.record_key(spend.owner));
        let charged = keys.len() - 1;
        let answer: Vec<i64> = self
            .once("quota", &SPEND, Call { keys, args }, &VOID)
            .await?;
        let index = |at: i64| usize::try_from(at - 1).unwrap_or(0);
        let value = |v: i64| u64::try_from(v).unwrap_or(0);
        match answer.as_slice() {
            [0, _, rest @ ..] if rest.len() == charged => {
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

    /// Puts credits leased from the store into the shared balance. Without an answer the
    /// lease still lands, in the background (it left the store: never given twice).
    pub async fn add_lease(
        &self,
        owner: UserId,
        subject: Subject,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let exhausted_until = match lease.granted {
            0 => now_ms.saturating_add(EXHAUSTED_RECHECK_MS),
            _ => 0,
        };
        let call = Call {
            keys: vec![self.pool_key(owner, subject), self.record_key(owner)],
            args: vec![
                int(lease.generation),
                lease.refilled_at.timestamp_millis(),
                int(lease.granted),
                exhausted_until,
                RECORD_MS,
            ],
        };
        self.once::<i64>("quota lease", &ADD_LEASE, call, &ADD_LEASE)
            .await
            .map(drop)
    }

    /// Takes up to `amount` leased credits of `generation` out of the shared balance.
    pub async fn take(
        &self,
        owner: UserId,
        subject: Subject,
        generation: u64,
        amount: u64,
    ) -> Result<u64, StoreError> {
        let call = Call {
            keys: vec![self.pool_key(owner, subject), self.record_key(owner)],
            args: vec![int(generation), int(amount), RECORD_MS],
        };
        let taken: i64 = self.once("quota take", &TAKE, call, &TAKE).await?;
        Ok(u64::try_from(taken).unwrap_or(0))
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

    /// Empties a pool, answering what it held. Without an answer, what it held is lost (the
    /// caller deposits nothing): never given twice.
    pub async fn drain(
        &self,
        owner: UserId,
        subject: Subject,
    ) -> Result<Option<Balance>, StoreError> {
        let keys = [self.pool_key(owner, subject), self.record_key(owner)];
        let keys = [keys[0].as_str(), keys[1].as_str()];
        let held = self
            .redis
            .run_once("quota drain", &DRAIN, &keys, &[RECORD_MS]);
        let held: Vec<i64> = held.await.map_err(|_| StoreError::SharedState)?;
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
