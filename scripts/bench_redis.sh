#!/usr/bin/env bash
# The Redis-backed parts (SPEC B6) on this machine, Redis on 127.0.0.1:6379:
#  (a) the physical bound of one limiter decision: redis-benchmark running the decide script of
#      src/limits/shared.rs (extracted from DECIDE_LUA, not copied) as EVALSHA, one limiter and
#      the union of two on one key, with 1 and with 50 clients, next to PING; and the same for
#      one customer-quota charge (SPEC B5): the spend script
#      (SPEND_LUA of src/quotas/scripts.rs) over two limits and one credit pool, as bench.sh's quota key charges;
#  (b) cargo bench --bench shared_limits: the decision through the crate (Redis vs memory);
#  (c) cargo bench --bench revocation: how fast a revocation on one instance reaches two others;
#  (d) scripts/bench.sh on MySQL with redis.url set: GET /api/public/verify (also of a key with
#      two limits and credits, each verification one spend script in Redis) vs GET /health;
#  (e) the same with three instances sharing Redis (INSTANCES=3 scripts/bench.sh).
# Usage: scripts/bench_redis.sh [seconds per bench.sh run, default 8]
# REDIS_BENCH_N (default 200000) calls per redis-benchmark run; RUNS (default 3) for bench.sh;
# CRITERION_ARGS (e.g. "--quick") passed to the shared_limits bench; COMPARE=1 also runs (d)
# without Redis, right after, for a same-session baseline; SKIP="a b c d e" skips parts. BIN=<path>
# is passed on to bench.sh (measure a binary already built).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-8}
N=${REDIS_BENCH_N:-200000}
RUNS=${RUNS:-3}
SKIP=${SKIP:-}
REDIS_URL=redis://127.0.0.1:6379
PREFIX="iam_bench_sh_$$:"
rcli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }
skip() { case " $SKIP " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

bash scripts/services.sh
if ! command -v redis-benchmark >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null
fi

cleanup() {
  local keys
  keys=$(rcli --scan --pattern "${PREFIX}*" 2>/dev/null || true)
  [ -n "$keys" ] && printf '%s\n' "$keys" | xargs redis-cli -h 127.0.0.1 -p 6379 del >/dev/null || true
}
trap cleanup EXIT

echo "Redis $(rcli info server | sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p') on 127.0.0.1:6379, $(nproc) cores (redis-benchmark shares them with redis-server)"

# (a) --------------------------------------------------------------------------------------------
if ! skip a; then
  LUA=$(sed -n '/^const DECIDE_LUA: &str = r"$/,/^";$/p' src/limits/shared.rs | sed '1d;$d')
  [ -n "$LUA" ] || { echo "DECIDE_LUA not found in src/limits/shared.rs" >&2; exit 1; }
  SHA=$(rcli script load "$LUA")
  # ARGV as SharedState::decide sends them for a generous limiter (u32::MAX points per second:
  # 1 µs interval, as the shared_limits bench uses): now (ms), strikes to ban, then per key
  # interval (µs), points, block (ms). `now` stays fixed, so each call moves the key's tat 1 µs
  # ahead: millions of calls stay allowed (the bound is 4,294,967 s ahead).
  NOW=$(date +%s%3N)
  PER_KEY=(1 4294967295 60000)
  ONE=(1 "${PREFIX}rl:{203.0.113.7_42}:burst_limiter" "$NOW" 2 "${PER_KEY[@]}")
  UNION=(2 "${PREFIX}rl:{203.0.113.7_42}:burst_limiter" "${PREFIX}rl:{203.0.113.7_42}:slow_limiter"
    "$NOW" 2 "${PER_KEY[@]}" "${PER_KEY[@]}")
  ANSWER=$(rcli evalsha "$SHA" "${UNION[@]}" | tr '\n' ' ')
  [ "$ANSWER" = "0 0 0 0 " ] || { echo "the decide script did not allow: $ANSWER" >&2; exit 1; }

  QLUA=$(sed -n '/^const INTS_LUA: &str = r"$/,/^";$/p;/^const SPEND_LUA: &str = r"$/,/^";$/p' \
    src/quotas/scripts.rs | sed '/^const /d;/^";$/d')
  QMS=$(sed -n 's/^pub(super) const RECORD_MS: i64 = \([0-9_]*\);$/\1/p' src/quotas/scripts.rs | tr -d _)
  [ -n "$QLUA" ] && [ -n "$QMS" ] || { echo "SPEND_LUA not found in src/quotas/scripts.rs" >&2; exit 1; }
  QSHA=$(rcli script load "$QLUA")
  # KEYS and ARGV as SharedHolder::spend sends them for bench.sh's quota key (user 3; token id
  # 1 here): the counters of the token's limit "requests" and the owner's "owner_requests" in
  # this minute's window, the token's credit pool, and the charge's record (a fresh operation id
  # per call: redis-benchmark replaces __rand_int__); now, two limits, how long the record is
  # kept, per limit (limit 10^9, cost 1, ms to keep the counter), per pool (cost 1, boundary
  # i64::MIN: no refill). The pool starts with 2^53 credits, as if leased; every call is allowed
  # and charges all three.
  WINDOW=$((NOW / 60000))
  KEEP=$(((WINDOW + 1) * 60000 - NOW + 5000))
  POOL="${PREFIX}q:{q3}:c:t1"
  rcli hset "$POOL" g 1 b 9007199254740992 a "$NOW" x 0 >/dev/null
  quota_call() {
    echo 4 "${PREFIX}q:{q3}:l:t1:$WINDOW:requests" "${PREFIX}q:{q3}:l:u3:$WINDOW:owner_requests" \
      "$POOL" "${PREFIX}q:{q3}:o:$1" "$NOW" 2 "$QMS" 1000000000 1 "$KEEP" 1000000000 1 "$KEEP" \
      1 -9223372036854775808
  }
  read -r -a QUOTA < <(quota_call __rand_int__)
  read -r -a FIRST < <(quota_call first)
  ANSWER=$(rcli evalsha "$QSHA" "${FIRST[@]}" | tr '\n' ' ')
  [ "$ANSWER" = "0 0 1 1 9007199254740991 " ] || { echo "the spend script did not charge: $ANSWER" >&2; exit 1; }
  ANSWER=$(rcli evalsha "$QSHA" "${FIRST[@]}" | tr '\n' ' ')
  [ "$ANSWER" = "0 0 1 1 9007199254740991 " ] || { echo "the same charge applied twice: $ANSWER" >&2; exit 1; }

  # Prints "<req/s> <avg ms> <p50 ms> <p99 ms>" of one redis-benchmark run.
  rb() {
    local clients=$1
    shift
    redis-benchmark -h 127.0.0.1 -p 6379 -n "$N" -c "$clients" -P 1 -r 1000000000 --csv "$@" 2>/dev/null \
      | awk -F, 'NR == 2 { gsub(/"/, ""); print $(NF - 6), $(NF - 5), $(NF - 3), $(NF - 1) }'
  }
  echo
  echo "(a) redis-benchmark, $N calls per run, no pipelining (script sha $SHA, quota $QSHA)"
  printf '%-36s %7s %12s %12s %9s %9s %9s\n' what clients "req/s" "µs/call" "avg ms" "p50 ms" "p99 ms"
  for CLIENTS in 1 50; do
    for WHAT in ping one union quota; do
      case $WHAT in
        ping) LABEL="PING"; read -r R A P50 P99 < <(rb "$CLIENTS" PING) ;;
        one) LABEL="EVALSHA decide, one limiter"; read -r R A P50 P99 < <(rb "$CLIENTS" EVALSHA "$SHA" "${ONE[@]}") ;;
        union) LABEL="EVALSHA decide, union of two"; read -r R A P50 P99 < <(rb "$CLIENTS" EVALSHA "$SHA" "${UNION[@]}") ;;
        quota) LABEL="EVALSHA quota spend, 2 limits+pool"; read -r R A P50 P99 < <(rb "$CLIENTS" EVALSHA "$QSHA" "${QUOTA[@]}") ;;
      esac
      # With 1 client µs/call is the latency of a call; with 50 it is Redis's time per call.
      awk -v l="$LABEL" -v c="$CLIENTS" -v r="$R" -v a="$A" -v p="$P50" -v q="$P99" \
        'BEGIN { printf "%-36s %7d %12.0f %12.2f %9.3f %9.3f %9.3f\n", l, c, r, 1e6 / r, a, p, q }'
    done
  done
  ANSWER=$(rcli evalsha "$SHA" "${UNION[@]}" | tr '\n' ' ')
  echo "decision after the runs: $ANSWER(0 = allowed)"
  ANSWER=$(rcli evalsha "$QSHA" "${QUOTA[@]}" | tr '\n' ' ')
  echo "quota spend after the runs: $ANSWER(0 0, then the two counts and the credits left)"
fi

# (b) --------------------------------------------------------------------------------------------
if ! skip b; then
  echo
  echo "(b) cargo bench --bench shared_limits ${CRITERION_ARGS:-}"
  # shellcheck disable=SC2086 # CRITERION_ARGS is a list of options
  cargo bench -q --bench shared_limits -- ${CRITERION_ARGS:-} 2>&1 \
    | grep -E '^(redis|memory):|time:|cleanup' || true
fi

# (c) --------------------------------------------------------------------------------------------
if ! skip c; then
  echo
  echo "(c) cargo bench --bench revocation"
  cargo bench -q --bench revocation 2>&1 | grep -v '^\s*$\|Running\|Finished\|Compiling' || true
fi

# (d) --------------------------------------------------------------------------------------------
if ! skip d; then
  echo
  echo "(d) IAM__REDIS__URL=$REDIS_URL BACKENDS=mysql RUNS=$RUNS bash scripts/bench.sh $DURATION"
  IAM__REDIS__URL=$REDIS_URL IAM__REDIS__KEY_PREFIX="$PREFIX" BACKENDS=mysql RUNS=$RUNS \
    bash scripts/bench.sh "$DURATION"
  if [ "${COMPARE:-0}" = 1 ]; then
    echo
    echo "(d, baseline) the same without Redis: BACKENDS=mysql RUNS=$RUNS bash scripts/bench.sh $DURATION"
    env -u IAM__REDIS__URL BACKENDS=mysql RUNS=$RUNS bash scripts/bench.sh "$DURATION"
  fi
fi

# (e) --------------------------------------------------------------------------------------------
if ! skip e; then
  echo
  echo "(e) IAM__REDIS__URL=$REDIS_URL INSTANCES=3 BACKENDS=mysql RUNS=$RUNS bash scripts/bench.sh $DURATION"
  IAM__REDIS__URL=$REDIS_URL IAM__REDIS__KEY_PREFIX="$PREFIX" INSTANCES=3 BACKENDS=mysql \
    RUNS=$RUNS bash scripts/bench.sh "$DURATION"
fi
