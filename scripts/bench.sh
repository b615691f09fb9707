#!/usr/bin/env bash
# Side-by-side load test on this machine, on both stores (MySQL, then the embedded SQLite):
# GET /health vs the counting GET /api/public/verify, vs the same verify with a 3-name permission
# query on a key holding a role (SPEC B4), then verify again with the cache off and synchronous
# counting (riavzon's way).
# Usage: scripts/bench.sh [seconds per run, default 10] [connections, default 64]
# RUNS=n (default 5) alternates n runs of each route and reports the medians (this machine is
# noisy: single 10 s runs of the same route differ by up to 15%). Next to req/s it prints the
# server's CPU time per request (user + system, from /proc), which noise moves less.
# BACKENDS="mysql sqlite" (default) picks the stores to measure.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNECTIONS=${2:-64}
RUNS=${RUNS:-5}
BACKENDS=${BACKENDS:-mysql sqlite}
PORT=${BENCH_PORT:-18181}
DB="iam_bench_$$"
SQLITE_DIR=$(mktemp -d)

bash scripts/services.sh
if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q
BIN=target/release/iam-tokens

cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
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

start() {
  env IAM__SERVER__WORKERS="$WORKERS" "$@" "${PIN_SERVER[@]}" "$BIN" serve 2>/dev/null &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
# Prints "<req/s> <server CPU µs per request>".
rps() {
  local before after out
  before=$(cpu_ticks)
  out=$("${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$@")
  after=$(cpu_ticks)
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ { n = $1 } /Requests\/sec/ { r = $2 }
    END { printf "%s %.2f\n", r, ticks / hz / n * 1e6 }' <<<"$out"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
VERIFY_URL="http://127.0.0.1:$PORT/api/public/verify?privilege=full"
# Three names: projects.write AND billing.read AND NOT admin.delete
QUERY_URL="$VERIFY_URL&permissions=projects.write%20AND%20billing.read%20AND%20NOT%20admin.delete"

echo "duration ${DURATION}s x ${RUNS} alternating runs (medians), ${CONNECTIONS} connections, $CORES cores"
echo "server on CPU(s) ${SERVER_CPUS:-any} with $WORKERS worker(s), wrk on CPU ${LOAD_CPUS:-any}"

for BACKEND in $BACKENDS; do
  case "$BACKEND" in
    mysql) URL="mysql://root@127.0.0.1:3306/$DB" ;;
    sqlite) URL="sqlite://$SQLITE_DIR/bench.db" ;;
    *) echo "unknown backend $BACKEND" >&2; exit 2 ;;
  esac
  export IAM__DATABASE__URL="$URL" IAM__SERVER__PORT="$PORT" IAM__LOG__LEVEL=warn
  KEY=$("$BIN" token create --user 1 --name "bench-$BACKEND" --privilege full 2>/dev/null \
    | sed -n 's/.*"rawApiKey": "\([^"]*\)".*/\1/p')
  [ -n "$KEY" ] || { echo "could not create a token on $BACKEND" >&2; exit 1; }
  "$BIN" roles create bench_pro --permission 'projects.*' --permission billing.read \
    --permission reports.export >/dev/null
  ROLE_KEY=$("$BIN" token create --user 2 --name "bench-role-$BACKEND" --privilege full \
    --role bench_pro 2>/dev/null | sed -n 's/.*"rawApiKey": "\([^"]*\)".*/\1/p')

  start
  READY=$(curl -s "http://127.0.0.1:$PORT/ready" || true)
  # Alternate the two routes so that a change in the machine's load hits both alike.
  HEALTH_RUNS=() VERIFY_RUNS=() HEALTH_CPU=() VERIFY_CPU=() QUERY_RUNS=() QUERY_CPU=()
  for _ in $(seq 1 "$RUNS"); do
    read -r r c < <(rps "http://127.0.0.1:$PORT/health"); HEALTH_RUNS+=("$r") HEALTH_CPU+=("$c")
    read -r r c < <(rps -H "x-api-key: $KEY" "$VERIFY_URL"); VERIFY_RUNS+=("$r") VERIFY_CPU+=("$c")
    read -r r c < <(rps -H "x-api-key: $ROLE_KEY" "$QUERY_URL"); QUERY_RUNS+=("$r") QUERY_CPU+=("$c")
  done
  QUERY=$(printf '%s\n' "${QUERY_RUNS[@]}" | median)
  QUERY_US=$(printf '%s\n' "${QUERY_CPU[@]}" | median)
  QUERY_STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $ROLE_KEY" "$QUERY_URL")
  HEALTH=$(printf '%s\n' "${HEALTH_RUNS[@]}" | median)
  VERIFY=$(printf '%s\n' "${VERIFY_RUNS[@]}" | median)
  HEALTH_US=$(printf '%s\n' "${HEALTH_CPU[@]}" | median)
  VERIFY_US=$(printf '%s\n' "${VERIFY_CPU[@]}" | median)
  stop
  start IAM__VERIFY__CACHE_TTL=0s IAM__USAGE__FLUSH_INTERVAL=0s
  read -r UNCACHED UNCACHED_US < <(rps -H "x-api-key: $KEY" "$VERIFY_URL")
  stop
  COUNT=$("$BIN" token list --user 1 --json 2>/dev/null | sed -n 's/.*"usage_count": \([0-9]*\).*/\1/p')

  echo
  echo "[$BACKEND]   /ready: $READY"
  echo "health runs: ${HEALTH_RUNS[*]}   verify runs: ${VERIFY_RUNS[*]}"
  echo "GET /health                              ${HEALTH} req/s   ${HEALTH_US} µs server CPU/request"
  echo "GET /api/public/verify (cache, batched)  ${VERIFY} req/s   ${VERIFY_US} µs server CPU/request"
  echo "GET /api/public/verify (3-name query)    ${QUERY} req/s   ${QUERY_US} µs server CPU/request   (status ${QUERY_STATUS})"
  echo "GET /api/public/verify (no cache, sync)  ${UNCACHED} req/s   ${UNCACHED_US} µs server CPU/request"
  awk -v v="$VERIFY" -v h="$HEALTH" -v u="$UNCACHED" -v q="$QUERY" \
    'BEGIN { printf "verify / health = %.2f   query / health = %.2f   cached / uncached = %.1fx\n", v / h, q / h, v / u }'
  echo "uses recorded in the store: ${COUNT}"
done
