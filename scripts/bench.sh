#!/usr/bin/env bash
# Side-by-side load test on this machine, on both stores (MySQL, then the embedded SQLite):
# GET /health vs the counting GET /api/public/verify, vs the same verify with a 3-name permission
# query on a key holding a role (SPEC B4), vs the same verify of a key with two customer limits
# (one of the token, one of its owner) and credits (SPEC B5; set through the admin API, with an
# admin credential in a bench config file), then verify again with the cache off (each
# verification one point select), and with the cache off and synchronous counting (riavzon's
# way), next to mysqlslap's rate of the same point select on the same database (MySQL).
# Usage: scripts/bench.sh [seconds per run, default 10] [connections, default 64]
# RUNS=n (default 5) alternates n runs of each route and reports the medians (this machine is
# noisy: single 10 s runs of the same route differ by up to 15%). Next to req/s it prints the
# server's CPU time per request (user + system, from /proc), which noise moves less.
# BACKENDS="mysql sqlite" (default) picks the stores to measure. QUOTA=0 leaves out the key with
# limits and credits. Any answer other than 2xx under load is reported on stderr. BIN=<path>
# measures a binary already built (default: cargo build --release, then target/release/iam-tokens).
# INSTANCES=n (default 1; more only with IAM__REDIS__URL set, so that they share limits and
# credits) runs n servers on ports BENCH_PORT… on the server's CPU(s), each loaded by its own
# wrk with connections/n; req/s and CPU are summed over them. With IAM__REDIS__URL it also
# prints how long Redis took to answer the service's calls under that load (p50, p99, p99.9
# from iam_redis_call_duration_seconds, every instance's scrape summed): what redis.timeout is
# chosen from.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNECTIONS=${2:-64}
RUNS=${RUNS:-5}
BACKENDS=${BACKENDS:-mysql sqlite}
QUOTA=${QUOTA:-1}
INSTANCES=${INSTANCES:-1}
REDIS_PREFIX=${IAM__REDIS__KEY_PREFIX:-iam:}
PORT=${BENCH_PORT:-18181}
DB="iam_bench_$$"
SQLITE_DIR=$(mktemp -d)
if [ "$INSTANCES" -gt 1 ] && [ -z "${IAM__REDIS__URL:-}" ]; then
  echo "INSTANCES=$INSTANCES needs IAM__REDIS__URL: without Redis each instance has its own limits" >&2
  exit 2
fi

bash scripts/services.sh
if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# BIN=<path> measures that binary as it is (no build).
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=target/release/iam-tokens
fi

# An admin credential for the quota route's setup: only its digest is configured.
ADMIN_SECRET="iam_admin_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export IAM_CONFIG="$SQLITE_DIR/bench.toml"
printf '[auth]\nadmin_tokens = [{ name = "bench", digest = "%s" }]\n' \
  "$(printf '%s' "$ADMIN_SECRET" | sha256sum | cut -d' ' -f1)" >"$IAM_CONFIG"

cleanup() {
  [ ${#SERVERS[@]} -gt 0 ] && kill "${SERVERS[@]}" 2>/dev/null && wait "${SERVERS[@]}" 2>/dev/null || true
  mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null || true
  rm -rf "$SQLITE_DIR"
}
trap cleanup EXIT

# The load generator gets CPU 0 and the server the others, so that wrk parsing responses does not
# eat the server's CPU (on one core both share it).
CORES=$(nproc)
if [ "$CORES" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  SERVER_CPUS="1-$((CORES - 1))"; LOAD_CPUS=0; WORKERS=$((CORES - 1))
  PIN_SERVER=(taskset -c "$SERVER_CPUS"); PIN_LOAD=(taskset -c "$LOAD_CPUS")
else
  WORKERS=0; PIN_SERVER=(); PIN_LOAD=()
fi

SERVERS=()
# Starts INSTANCES servers (ports PORT, PORT+1, …) with the environment given as arguments.
start() {
  local i
  for ((i = 0; i < INSTANCES; i++)); do
    env IAM__SERVER__WORKERS="$WORKERS" IAM__SERVER__PORT=$((PORT + i)) "$@" \
      "${PIN_SERVER[@]}" "$BIN" serve 2>/dev/null &
    SERVERS+=($!)
  done
  for ((i = 0; i < INSTANCES; i++)); do
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:$((PORT + i))/health" >/dev/null 2>&1 && continue 2
      sleep 0.1
    done
    echo "server on port $((PORT + i)) did not start" >&2; exit 1
  done
}
stop() { kill "${SERVERS[@]}"; wait "${SERVERS[@]}" 2>/dev/null || true; SERVERS=(); }
cpu_ticks() {
  local pid
  for pid in "${SERVERS[@]}"; do cat "/proc/$pid/stat"; done | awk '{ sum += $14 + $15 } END { print sum }'
}
# rps [wrk options] <url on PORT>: prints "<req/s> <server CPU µs per request>", summed over
# the instances, each loaded by its own wrk at the same time.
rps() {
  local before after i url=${*: -1} loads=() out
  local options=("${@:1:$#-1}") outs
  outs=$(mktemp -d)
  before=$(cpu_ticks)
  for ((i = 0; i < INSTANCES; i++)); do
    "${PIN_LOAD[@]}" wrk -t1 -c"$((CONNECTIONS / INSTANCES))" -d"${DURATION}s" "${options[@]}" \
      "${url/:$PORT\//:$((PORT + i))/}" >"$outs/$i" &
    loads+=($!)
  done
  wait "${loads[@]}"
  after=$(cpu_ticks)
  out=$(cat "$outs"/*)
  rm -rf "$outs"
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ { n += $1 } /Requests\/sec/ { r += $2 } /Non-2xx/ { bad += $NF }
    END {
      printf "%.2f %.2f\n", r, ticks / hz / n * 1e6
      if (bad) printf "warning: %d of %d answers were not 2xx\n", bad, n > "/dev/stderr"
    }' <<<"$out"
}
# The admin API as the bench admin: admin <method> <path> [JSON body].
admin() {
  curl -fsS -X "$1" -H "Authorization: Bearer $ADMIN_SECRET" -H 'content-type: application/json' \
    "http://127.0.0.1:$PORT/api/admin$2" ${3:+-d "$3"}
}
# A customer limit that no run comes near: 10^9 uses a minute.
huge_limit() { printf '{"ratelimits": [{"name": "%s", "limit": 1000000000, "duration": 60000}]}' "$1"; }
MAX_CREDITS=9007199254740992 # 2^53
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Reads Prometheus scrapes (of every instance) on stdin and prints the Redis calls they answered
# with p50, p99 and p99.9 of iam_redis_call_duration_seconds (linear within a bucket), and the
# calls that failed (by kind) or were tried again.
redis_latency() {
  python3 -c '
import re, sys
buckets, failures, retries = {}, {}, 0.0
for line in sys.stdin:
    m = re.match(r"iam_redis_call_duration_seconds_bucket\{le=\"([^\"]+)\"\} (\S+)", line)
    if m:
        bound = float("inf") if m[1] == "+Inf" else float(m[1])
        buckets[bound] = buckets.get(bound, 0.0) + float(m[2])
    m = re.match(r"iam_redis_failures_total\{kind=\"(\w+)\"\} (\S+)", line)
    if m:
        failures[m[1]] = failures.get(m[1], 0.0) + float(m[2])
    if line.startswith("iam_redis_retries_total "):
        retries += float(line.split()[1])
bounds = sorted(buckets)
total = buckets.get(float("inf"), 0.0)
def quantile(q):
    rank, low, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return "> %.1f ms" % (low * 1e3)
            share = (rank - below) / max(buckets[bound] - below, 1e-9)
            return "%.3f ms" % ((low + share * (bound - low)) * 1e3)
        low, below = bound, buckets[bound]
    return "?"
failed = ", ".join("%s %d" % (k, v) for k, v in sorted(failures.items()))
print("%d calls: p50 %s, p99 %s, p99.9 %s; failed: %s; retried %d" % (
    total, quantile(0.5), quantile(0.99), quantile(0.999), failed or "none", retries))
'
}
VERIFY_URL="http://127.0.0.1:$PORT/api/public/verify?privilege=full"
# mysqlslap's rate (queries/s) of the point select a cache miss of the bench key makes, by its
# unique digest, with as many clients as wrk has connections, on the load CPU.
point_selects() {
  local digest queries=$((CONNECTIONS * 1000))
  digest=$(mysql --protocol=tcp -h127.0.0.1 -uroot -N \
    -e "SELECT api_token FROM \`$DB\`.api_tokens WHERE user_id = 1 LIMIT 1")
  "${PIN_LOAD[@]}" mysqlslap --protocol=tcp -h127.0.0.1 -uroot --create-schema="$DB" \
    --concurrency="$CONNECTIONS" --number-of-queries="$queries" --iterations=1 \
    --query="SELECT * FROM api_tokens WHERE api_token = '$digest'" 2>/dev/null \
    | awk -v q="$queries" '/Average number of seconds/ { printf "%.0f\n", q / $(NF - 1) }'
}
# Three names: projects.write AND billing.read AND NOT admin.delete
QUERY_URL="$VERIFY_URL&permissions=projects.write%20AND%20billing.read%20AND%20NOT%20admin.delete"

echo "duration ${DURATION}s x ${RUNS} alternating runs (medians), ${CONNECTIONS} connections, $CORES cores"
echo "$INSTANCES server(s) on CPU(s) ${SERVER_CPUS:-any} with $WORKERS worker(s) each, wrk on CPU ${LOAD_CPUS:-any}"

for BACKEND in $BACKENDS; do
  case "$BACKEND" in
    mysql) URL="mysql://root@127.0.0.1:3306/$DB" ;;
    sqlite) URL="sqlite://$SQLITE_DIR/bench.db" ;;
    *) echo "unknown backend $BACKEND" >&2; exit 2 ;;
  esac
  export IAM__DATABASE__URL="$URL" IAM__SERVER__PORT="$PORT" IAM__LOG__LEVEL=warn
  # With Redis, keys of this run's store only: limits and credits held in Redis belong to one
  # database, and a fresh one gives its tokens the same ids again.
  if [ -n "${IAM__REDIS__URL:-}" ]; then
    export IAM__REDIS__KEY_PREFIX="${REDIS_PREFIX}${BACKEND}_$$:"
  fi
  KEY=$("$BIN" token create --user 1 --name "bench-$BACKEND" --privilege full 2>/dev/null \
    | sed -n 's/.*"rawApiKey": "\([^"]*\)".*/\1/p')
  [ -n "$KEY" ] || { echo "could not create a token on $BACKEND" >&2; exit 1; }
  "$BIN" roles create bench_pro --permission 'projects.*' --permission billing.read \
    --permission reports.export >/dev/null
  ROLE_KEY=$("$BIN" token create --user 2 --name "bench-role-$BACKEND" --privilege full \
    --role bench_pro 2>/dev/null | sed -n 's/.*"rawApiKey": "\([^"]*\)".*/\1/p')

  start
  READY=$(curl -s "http://127.0.0.1:$PORT/ready" || true)
  if [ "$QUOTA" = 1 ]; then
    # User 3's key: a token limit, an owner limit of another name (the same name would be
    # shadowed by the token's) and 2^53 credits on the token.
    CREATED=$(admin POST /tokens "{\"userId\": 3, \"name\": \"bench-quota-$BACKEND\", \"privilege\": \"full\"}")
    QUOTA_KEY=$(sed -n 's/.*"rawApiKey":"\([^"]*\)".*/\1/p' <<<"$CREATED")
    QUOTA_ID=$(sed -n 's/.*"token":{"id":\([0-9]*\).*/\1/p' <<<"$CREATED")
    [ -n "$QUOTA_KEY" ] && [ -n "$QUOTA_ID" ] || { echo "could not create the quota token: $CREATED" >&2; exit 1; }
    admin PUT "/tokens/$QUOTA_ID/ratelimits" "$(huge_limit requests)" >/dev/null
    admin PUT /users/3/ratelimits "$(huge_limit owner_requests)" >/dev/null
    admin PATCH "/tokens/$QUOTA_ID/credits" "{\"remaining\": $MAX_CREDITS}" >/dev/null
    QUOTA_HEADERS=$(curl -s -o /dev/null -D - -H "x-api-key: $QUOTA_KEY" "$VERIFY_URL" \
      | tr -d '\r' | grep -iE '^(HTTP|ratelimit)' | tr '\n' ' ')
  fi
  # Alternate the two routes so that a change in the machine's load hits both alike.
  HEALTH_RUNS=() VERIFY_RUNS=() HEALTH_CPU=() VERIFY_CPU=() QUERY_RUNS=() QUERY_CPU=()
  QUOTA_RUNS=() QUOTA_CPU=()
  for _ in $(seq 1 "$RUNS"); do
    read -r r c < <(rps "http://127.0.0.1:$PORT/health"); HEALTH_RUNS+=("$r") HEALTH_CPU+=("$c")
    read -r r c < <(rps -H "x-api-key: $KEY" "$VERIFY_URL"); VERIFY_RUNS+=("$r") VERIFY_CPU+=("$c")
    read -r r c < <(rps -H "x-api-key: $ROLE_KEY" "$QUERY_URL"); QUERY_RUNS+=("$r") QUERY_CPU+=("$c")
    if [ "$QUOTA" = 1 ]; then
      read -r r c < <(rps -H "x-api-key: $QUOTA_KEY" "$VERIFY_URL"); QUOTA_RUNS+=("$r") QUOTA_CPU+=("$c")
    fi
  done
  if [ "$QUOTA" = 1 ]; then
    QUOTA_RPS=$(printf '%s\n' "${QUOTA_RUNS[@]}" | median)
    QUOTA_US=$(printf '%s\n' "${QUOTA_CPU[@]}" | median)
    # wrk stops with requests in flight, which the server still charges: let it finish them.
    sleep 1
    # Credits as the admin API shows them include those leased out and not yet spent.
    LEFT=$(admin GET "/tokens/$QUOTA_ID" | sed -n 's/.*"credits":{"remaining":\([0-9]*\).*/\1/p')
    SPENT=$((MAX_CREDITS - LEFT))
  fi
  if [ -n "${IAM__REDIS__URL:-}" ]; then
    REDIS_LATENCY=$(for ((i = 0; i < INSTANCES; i++)); do
      curl -s "http://127.0.0.1:$((PORT + i))/metrics"
    done | redis_latency)
  fi
  QUERY=$(printf '%s\n' "${QUERY_RUNS[@]}" | median)
  QUERY_US=$(printf '%s\n' "${QUERY_CPU[@]}" | median)
  QUERY_STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $ROLE_KEY" "$QUERY_URL")
  HEALTH=$(printf '%s\n' "${HEALTH_RUNS[@]}" | median)
  VERIFY=$(printf '%s\n' "${VERIFY_RUNS[@]}" | median)
  HEALTH_US=$(printf '%s\n' "${HEALTH_CPU[@]}" | median)
  VERIFY_US=$(printf '%s\n' "${VERIFY_CPU[@]}" | median)
  stop
  # The store's own speed, alternating: the cache off (every verification reads its row: one
  # statement for this plain key), the cache off with synchronous counting (riavzon's way: a
  # read and an UPDATE before answering), and on MySQL mysqlslap's rate of a point select of
  # the same row on the same database (the bound).
  MISS_RUNS=() MISS_CPU=() SYNC_RUNS=() SYNC_CPU=() SLAP_RUNS=()
  for _ in $(seq 1 "$RUNS"); do
    start IAM__VERIFY__CACHE_TTL=0s
    read -r r c < <(rps -H "x-api-key: $KEY" "$VERIFY_URL"); MISS_RUNS+=("$r") MISS_CPU+=("$c")
    stop
    start IAM__VERIFY__CACHE_TTL=0s IAM__USAGE__FLUSH_INTERVAL=0s
    read -r r c < <(rps -H "x-api-key: $KEY" "$VERIFY_URL"); SYNC_RUNS+=("$r") SYNC_CPU+=("$c")
    stop
    if [ "$BACKEND" = mysql ]; then SLAP_RUNS+=("$(point_selects)"); fi
  done
  MISS=$(printf '%s\n' "${MISS_RUNS[@]}" | median)
  MISS_US=$(printf '%s\n' "${MISS_CPU[@]}" | median)
  UNCACHED=$(printf '%s\n' "${SYNC_RUNS[@]}" | median)
  UNCACHED_US=$(printf '%s\n' "${SYNC_CPU[@]}" | median)
  COUNT=$("$BIN" token list --user 1 --json 2>/dev/null | sed -n 's/.*"usage_count": \([0-9]*\).*/\1/p')
  if [ "$QUOTA" = 1 ]; then
    QUOTA_COUNT=$("$BIN" token list --user 3 --json 2>/dev/null | sed -n 's/.*"usage_count": \([0-9]*\).*/\1/p')
  fi

  echo
  echo "[$BACKEND]   /ready: $READY"
  echo "health runs: ${HEALTH_RUNS[*]}   verify runs: ${VERIFY_RUNS[*]}"
  echo "GET /health                              ${HEALTH} req/s   ${HEALTH_US} µs server CPU/request"
  echo "GET /api/public/verify (cache, batched)  ${VERIFY} req/s   ${VERIFY_US} µs server CPU/request"
  echo "GET /api/public/verify (3-name query)    ${QUERY} req/s   ${QUERY_US} µs server CPU/request   (status ${QUERY_STATUS})"
  if [ "$QUOTA" = 1 ]; then
    echo "GET /api/public/verify (limits+credits)  ${QUOTA_RPS} req/s   ${QUOTA_US} µs server CPU/request   (${QUOTA_HEADERS% })"
  fi
  echo "GET /api/public/verify (no cache)        ${MISS} req/s   ${MISS_US} µs server CPU/request   (runs: ${MISS_RUNS[*]})"
  echo "GET /api/public/verify (no cache, sync)  ${UNCACHED} req/s   ${UNCACHED_US} µs server CPU/request   (runs: ${SYNC_RUNS[*]})"
  if [ "$BACKEND" = mysql ]; then
    SLAP=$(printf '%s\n' "${SLAP_RUNS[@]}" | median)
    echo "mysqlslap point select of the same row   ${SLAP} queries/s   (runs: ${SLAP_RUNS[*]}, $CONNECTIONS clients)"
    awk -v m="$MISS" -v u="$UNCACHED" -v b="$SLAP" \
      'BEGIN { printf "no cache / point select = %.2f   sync / point select = %.2f\n", m / b, u / b }'
  fi
  awk -v v="$VERIFY" -v h="$HEALTH" -v u="$UNCACHED" -v q="$QUERY" \
    'BEGIN { printf "verify / health = %.2f   query / health = %.2f   cached / uncached = %.1fx\n", v / h, q / h, v / u }'
  echo "uses recorded in the store: ${COUNT}"
  if [ "$QUOTA" = 1 ]; then
    echo "quota runs: ${QUOTA_RUNS[*]}"
    awk -v q="$QUOTA_RPS" -v h="$HEALTH" 'BEGIN { printf "quota verify / health = %.2f\n", q / h }'
    echo "quota key: uses recorded ${QUOTA_COUNT}, credits spent ${SPENT} (each counted use spends one)"
  fi
  if [ -n "${IAM__REDIS__URL:-}" ]; then
    echo "Redis calls under this load (every route above): ${REDIS_LATENCY}"
  fi
done
