//! The Lua scripts of quota state in Redis (see `shared.rs` for the keys): each decision one
//! script, all keys of one owner in one Cluster slot. Every script that changes state applies
//! at most once per operation record: sent again (a retry, a settlement), it changes nothing.

use std::sync::LazyLock;

use redis::Script;

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

pub(super) static SPEND: LazyLock<Script> = LazyLock::new(|| with_ints(SPEND_LUA));
pub(super) static VOID: LazyLock<Script> = LazyLock::new(|| with_ints(VOID_LUA));
pub(super) static ADD_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(ADD_LEASE_LUA));
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_LUA));
pub(super) static REFRESH: LazyLock<Script> = LazyLock::new(|| Script::new(REFRESH_LUA));
pub(super) static DRAIN: LazyLock<Script> = LazyLock::new(|| with_ints(DRAIN_LUA));

/// How long Redis keeps an operation's record (ms): a retry, or the void of a charge whose
/// answer was lost, must arrive within it to be recognised.
pub(super) const RECORD_MS: i64 = 30_000;
/// How long a lost operation is settled in the background (the void of a charge, the landing
/// of a lease) before it is given up: well within `RECORD_MS`.
pub(super) const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(25);
