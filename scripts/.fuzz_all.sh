#!/usr/bin/env bash
# Fuzzes the live service against its own OpenAPI document with schemathesis, once on each store
# (SQLite, then MySQL), rate limiters off. Fails on any 5xx, any response that breaks the document
# (status, content type, headers, body) and on a document that is not valid OpenAPI 3.1.
#   bash scripts/fuzz.sh                 # both stores
#   STORES=sqlite bash scripts/fuzz.sh   # one
#   MAX_EXAMPLES=200 bash scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.7.2
STORES=${STORES:-"sqlite mysql"}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
VENV=target/fuzz-venv

installed() { "$VENV/bin/pip" freeze 2>/dev/null | grep -qix "$1"; }
if ! installed "schemathesis==$SCHEMATHESIS_VERSION" \
  || ! installed "openapi-spec-validator==$VALIDATOR_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator $VALIDATOR_VERSION"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$VALIDATOR_VERSION"
fi
cargo build -q --bin iam-tokens
BIN=target/debug/iam-tokens

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "${FUZZ_DB:-}" ]; then mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $FUZZ_DB" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
ADMIN_DIGEST=$(printf '%s' "$ADMIN_SECRET" | sha256sum | cut -d' ' -f1)
JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
# An HS256 access token for user 42, valid for a day, as the BFF would send.
BFF_JWT=$(JWT_SECRET=$JWT_SECRET python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "42", "exp": int(time.time()) + 86400}).encode())
mac = hmac.new(os.environ["JWT_SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256)
print(f"{head}.{body}.{b64(mac.digest())}")
PY
)
export ADMIN_SECRET BFF_JWT
cat > "$WORK/schemathesis.toml" <<'TOML'
[auth.openapi.admin_bearer]
bearer = "${ADMIN_SECRET}"

[auth.openapi.bff_jwt]
bearer = "${BFF_JWT}"
TOML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

fuzz() {
  local store=$1 url
  case $store in
    sqlite) url="sqlite://$WORK/fuzz.db" ;;
    mysql)
      FUZZ_DB="iam_fuzz_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE $FUZZ_DB"
      url="mysql://root@127.0.0.1:3306/$FUZZ_DB" ;;
  esac
  local port
  port=$(free_port)
  cat > "$WORK/config.toml" <<TOML
[server]
port = $port
[database]
url = "$url"
[auth]
jwt_secret = "$JWT_SECRET"
admin_tokens = [{ name = "fuzz", digest = "$ADMIN_DIGEST" }]
[api_tokens]
limit_tokens_per_user = 1000
[rate_limiters]
enabled = false
[log]
level = "warn"
TOML
  "$BIN" --config "$WORK/config.toml" serve > "$WORK/server-$store.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/health" > /dev/null && break
    sleep 0.1
  done
  local base="http://127.0.0.1:$port"
  echo "== $store: the document is valid OpenAPI 3.1"
  curl -fs "$base/openapi.json" > "$WORK/openapi.json"
  "$VENV/bin/openapi-spec-validator" "$WORK/openapi.json"
  echo "== $store: schemathesis ($MAX_EXAMPLES examples per operation)"
  (cd "$WORK" && "$OLDPWD/$VENV/bin/schemathesis" run "$base/openapi.json" \
    --checks all --exclude-checks unsupported_method,ignored_auth \
    --max-examples "$MAX_EXAMPLES" --seed 1 --generation-deterministic \
    --request-timeout 10 --workers 2 --no-color) || {
      echo "-- server log ($store):"; tail -50 "$WORK/server-$store.log"; exit 1; }
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

for store in $STORES; do fuzz "$store"; done
echo "== fuzzing passed on: $STORES"
