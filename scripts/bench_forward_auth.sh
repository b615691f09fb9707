#!/usr/bin/env bash
# Forward-auth through nginx (SPEC B13), on this machine, on both stores: one nginx (one worker)
# and one iam-tokens (one worker) share the server CPU, wrk loads from the other. Measured in
# one run, alternating, RUNS times (medians):
#   ours     GET / through the shipped snippets (deploy/nginx): auth_request to iam-tokens'
#            /api/forward-auth, then proxy_pass to the upstream
#   bound    the same, auth_request proxied to a server that answers 200 at once (the cost of
#            the pattern with an auth service doing nothing)
#   inline   the same, auth_request to a location that is `return 200` inside nginx (no auth
#            hop at all)
#   endpoint GET /api/forward-auth on iam-tokens directly, next to GET /health
# The upstream is an nginx server answering 200 at once, the same for all three. Prints req/s
# and the ratios ours/bound, ours/inline and endpoint/health.
# Usage: scripts/bench_forward_auth.sh [seconds per run, default 10] [connections, default 64]
# RUNS=n (default 3), BACKENDS="sqlite mysql" (default), BIN=<path> (default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNECTIONS=${2:-64}
RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-sqlite mysql}
PORT=${BENCH_PORT:-18281}
OURS=$((PORT + 1)) BOUND=$((PORT + 2)) INLINE=$((PORT + 3)) API=$((PORT + 4)) NOOP=$((PORT + 5))
DB="iam_bench_fa_$$"
WORK=$(mktemp -d)

bash scripts/services.sh
if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=target/release/iam-tokens
fi

SERVER=""
NGINX=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -n "$NGINX" ] && kill "$NGINX" 2>/dev/null && wait "$NGINX" 2>/dev/null || true
  mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

CORES=$(nproc)
if [ "$CORES" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  PIN_SERVER=(taskset -c "1-$((CORES - 1))"); PIN_LOAD=(taskset -c 0)
else
  PIN_SERVER=(); PIN_LOAD=()
fi

# Shared by the three fronts: keep-alive to every upstream, as a production nginx would.
KEEP='proxy_http_version 1.1; proxy_set_header Connection "";'
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi; uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream iam_tokens { server 127.0.0.1:$PORT; keepalive 128; }
  upstream api { server 127.0.0.1:$API; keepalive 128; }
  upstream noop_auth { server 127.0.0.1:$NOOP; keepalive 128; }
  server { listen 127.0.0.1:$API; location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:$NOOP; location / { return 200; } }
  server {
    listen 127.0.0.1:$OURS;
    include $PWD/deploy/nginx/iam-tokens-server.conf;
    location / {
      include $PWD/deploy/nginx/iam-tokens-protect.conf;
      $KEEP
      proxy_pass http://api;
    }
  }
  server {
    listen 127.0.0.1:$BOUND;
    location = /_auth {
      internal;
      proxy_pass http://noop_auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      $KEEP
    }
    location / { auth_request /_auth; $KEEP proxy_pass http://api; }
  }
  server {
    listen 127.0.0.1:$INLINE;
    location = /_auth { internal; return 200; }
    location / { auth_request /_auth; $KEEP proxy_pass http://api; }
  }
}
EOF
"${PIN_SERVER[@]}" nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX=$!

# rps <url> [header]: requests per second of one wrk run (non-2xx answers reported).
rps() {
  local out
  out=$("${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" ${2:+-H "$2"} "$1")
  awk '/Requests\/sec/ { r = $2 } /Non-2xx/ { bad = $NF } /requests in/ { n = $1 }
    END { printf "%.0f\n", r; if (bad) printf "warning: %d of %d answers were not 2xx\n", bad, n > "/dev/stderr" }' <<<"$out"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "duration ${DURATION}s x ${RUNS} alternating runs (medians), ${CONNECTIONS} connections, $CORES cores"
echo "nginx (1 worker) and iam-tokens (1 worker) on CPU(s) ${PIN_SERVER[*]:-any}, wrk on ${PIN_LOAD[*]:-any}"
for BACKEND in $BACKENDS; do
  case "$BACKEND" in
    mysql) URL="mysql://root@127.0.0.1:3306/$DB" ;;
    sqlite) URL="sqlite://$WORK/bench.db" ;;
    *) echo "unknown backend $BACKEND" >&2; exit 2 ;;
  esac
  export IAM__DATABASE__URL="$URL" IAM__SERVER__PORT="$PORT" IAM__LOG__LEVEL=warn
  export IAM__SERVER__WORKERS=1 IAM__SERVER__TRUSTED_PROXIES=127.0.0.1/32
  KEY=$("$BIN" token create --user 1 --name "bench-fa-$BACKEND" --privilege full 2>/dev/null \
    | sed -n 's/.*"rawApiKey": "\([^"]*\)".*/\1/p')
  [ -n "$KEY" ] || { echo "could not create a token on $BACKEND" >&2; exit 1; }
  "${PIN_SERVER[@]}" "$BIN" serve 2>/dev/null &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # Warm both paths (and nginx's keep-alive pools) before measuring.
  for url in "http://127.0.0.1:$OURS/" "http://127.0.0.1:$BOUND/" "http://127.0.0.1:$INLINE/"; do
    curl -fs -H "x-api-key: $KEY" "$url" >/dev/null
  done
  declare -a R_OURS=() R_BOUND=() R_INLINE=() R_END=() R_HEALTH=()
  for ((run = 1; run <= RUNS; run++)); do
    R_OURS+=("$(rps "http://127.0.0.1:$OURS/" "x-api-key: $KEY")")
    R_BOUND+=("$(rps "http://127.0.0.1:$BOUND/" "x-api-key: $KEY")")
    R_INLINE+=("$(rps "http://127.0.0.1:$INLINE/" "x-api-key: $KEY")")
    R_END+=("$(rps "http://127.0.0.1:$PORT/api/forward-auth" "x-api-key: $KEY")")
    R_HEALTH+=("$(rps "http://127.0.0.1:$PORT/health")")
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
  m() { printf '%s\n' "$@" | median; }
  ours=$(m "${R_OURS[@]}") bound=$(m "${R_BOUND[@]}") inline=$(m "${R_INLINE[@]}")
  endpoint=$(m "${R_END[@]}") health=$(m "${R_HEALTH[@]}")
  echo "== $BACKEND"
  echo "through nginx: ours $ours req/s, bound (auth to a 200 server) $bound, inline (return 200) $inline"
  echo "  runs: ours ${R_OURS[*]} | bound ${R_BOUND[*]} | inline ${R_INLINE[*]}"
  awk -v o="$ours" -v b="$bound" -v i="$inline" \
    'BEGIN { printf "  ratio ours/bound %.2f, ours/inline %.2f\n", o / b, o / i }'
  echo "direct: /api/forward-auth $endpoint req/s, /health $health req/s"
  echo "  runs: endpoint ${R_END[*]} | health ${R_HEALTH[*]}"
  awk -v e="$endpoint" -v h="$health" 'BEGIN { printf "  ratio endpoint/health %.2f\n", e / h }'
done
