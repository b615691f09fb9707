#!/usr/bin/env bash
# Proves that API clients generated from the served OpenAPI document work, with no hand-written
# HTTP request anywhere. For each store (MySQL, then the embedded SQLite):
#   1. installs what is missing, pinned, from the package registries only: Node.js (Debian's
#      nodejs + npm, only when `node` is missing), clients/typescript/package-lock.json (npm ci:
#      openapi-typescript, openapi-fetch, typescript, @redocly/cli), clients/python/requirements.txt
#      (openapi-python-client, mypy) into clients/python/.venv, and promtool (taken out of Debian's
#      prometheus package into clients/.tools/, without installing the package: its postinst
#      would start a Prometheus server);
#   2. builds the service and copies the binary aside (another build in the same target directory
#      cannot swap it between the stores), starts it (`serve`) on a free port with a throw-away
#      admin credential (a fresh MySQL database, or a SQLite file), waits for /health and
#      downloads /openapi.json (kept as clients/typescript/generated/openapi-<store>.json);
#   3. generates a Python client (openapi-python-client; any generator warning fails) into
#      clients/python/generated/ and a TypeScript schema (openapi-typescript) into
#      clients/typescript/generated/ (both git-ignored). openapi-python-client ignores a query
#      parameter's `style` and sends an object's keys bare (plan=pro, upstream issue #1064): its
#      query-parameter template, patched here at generation time, sends `style: deepObject`
#      objects as name[key]=value, the only object style the document uses (checked);
#   4. type-checks clients/typescript/lifecycle.ts (tsc --strict) and clients/python/lifecycle.py
#      (mypy --strict, the generated package on the path);
#   5. runs both lifecycles against the live server (role, token with limits and credits, admin
#      verify, read, credits, filtered list, revoke, verify again, a typed 422);
#   6. lints the document (redocly, recommended rules: any error fails, warnings are listed) and
#      checks a /metrics scrape (promtool check metrics: any finding fails, and so does a missing
#      promtool);
#   7. cleans up (server, MySQL database, temp dirs), on failure too.
# The second store's document is compared with the first: when identical, steps 3, 4 and 6 (the
# lint) are not repeated.
#   bash scripts/clients.sh                  # both stores, stop at the first failure
#   STORES=sqlite bash scripts/clients.sh    # one store
#   KEEP_GOING=1 bash scripts/clients.sh     # record failures (generator warnings, type errors,
#                                            # lifecycle mismatches, lint errors, metrics
#                                            # findings), run every step, exit 1 at the end with
#                                            # the list
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STORES=${STORES:-mysql sqlite}
KEEP_GOING=${KEEP_GOING:-0}
TS_DIR=clients/typescript
PY_DIR=clients/python
VENV=$PY_DIR/.venv
TOOLS=clients/.tools
BIN=target/debug/iam-tokens   # built here, then run from a copy in $WORK
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 \
  npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
  PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive

WORK=$(mktemp -d -t iam-clients.XXXXXX)
SERVER_PID=
DB=
FAILURES=()
PROMTOOL=
START=$SECONDS

log() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# A failure: fatal at once, or (KEEP_GOING=1) remembered for the summary.
failure() {
  printf '   FAIL: %s\n' "$*" >&2
  FAILURES+=("$*")
  if [ "$KEEP_GOING" != 1 ]; then exit 1; fi
}

cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DB" ]; then
    timeout 30 mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- step 1: tools ----------------------------------------------------------------------------

APT_UPDATED=
apt_update_once() {
  if [ -z "$APT_UPDATED" ]; then
    timeout 300 apt-get update -qq
    APT_UPDATED=1
  fi
}

install_tools() {
  log "1. tools"
  if ! command -v node >/dev/null 2>&1; then
    note "installing Node.js from Debian (nodejs, npm)"
    apt_update_once
    timeout 900 apt-get install -y -qq nodejs npm >/dev/null
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  note "node $(node --version), npm $(npm --version)"
  if [ "$major" -lt 20 ]; then
    note "warning: @redocly/cli 2.x wants Node.js >= 20.19; the lint step may fail"
  fi

  # npm ci wipes node_modules: only when the lock changed since the last install.
  local lock_sum
  lock_sum=$(sha256sum "$TS_DIR/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$TS_DIR/node_modules/.clients-lock.sha256" 2>/dev/null)" != "$lock_sum" ]; then
    note "npm ci ($TS_DIR)"
    (cd "$TS_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$TS_DIR/node_modules/.clients-lock.sha256"
  fi
  note "$(cd "$TS_DIR" && npm ls --depth=0 2>/dev/null | tail -n +2 | sed 's/^[^a-z@]*//' | tr '\n' ' ')"

  local req_sum
  req_sum=$(sha256sum "$PY_DIR/requirements.txt" | cut -d' ' -f1)
  if [ "$(cat "$VENV/.clients-requirements.sha256" 2>/dev/null)" != "$req_sum" ]; then
    note "pip install -r $PY_DIR/requirements.txt into $VENV"
    rm -rf "$VENV"
    timeout 120 python3 -m venv "$VENV"
    timeout 600 "$VENV/bin/pip" install -q -r "$PY_DIR/requirements.txt"
    echo "$req_sum" >"$VENV/.clients-requirements.sha256"
  fi
  note "$("$VENV/bin/pip" freeze | grep -i -E '^(openapi-python-client|mypy)==' | tr '\n' ' ')"

  install_promtool
}

# promtool: on the PATH, or taken out of Debian's prometheus package (apt-get download, no
# install: the package's postinst would start a Prometheus server) into clients/.tools/.
install_promtool() {
  if command -v promtool >/dev/null 2>&1; then PROMTOOL=$(command -v promtool); return; fi
  PROMTOOL=$(ls "$TOOLS"/promtool-*/promtool 2>/dev/null | head -1 || true)
  if [ -n "$PROMTOOL" ]; then note "promtool: $PROMTOOL"; return; fi
  apt_update_once
  local candidate
  candidate=$(apt-cache policy prometheus | awk '/Candidate:/ { print $2 }')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    note "promtool: Debian has no prometheus package here"
    return
  fi
  note "promtool: taking it out of Debian's prometheus $candidate"
  local deb_dir="$WORK/deb"
  mkdir -p "$deb_dir"
  (cd "$deb_dir" && timeout 300 apt-get download -qq -o APT::Sandbox::User=root "prometheus=$candidate")
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/x"
  mkdir -p "$TOOLS/promtool-$candidate"
  install -m 0755 "$deb_dir/x/usr/bin/promtool" "$TOOLS/promtool-$candidate/promtool"
  PROMTOOL=$TOOLS/promtool-$candidate/promtool
}

# --- step 2: the service ----------------------------------------------------------------------

build_service() {
  log "2. cargo build (may wait for the other build's lock)"
  timeout 3600 cargo build -q --bin iam-tokens
  # Both stores run this very binary, even when another build replaces $BIN meanwhile.
  cp "$BIN" "$WORK/iam-tokens"
  bash scripts/services.sh
  ADMIN_SECRET="iam_admin_clients_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '[auth]\nadmin_tokens = [{ name = "clients", digest = "%s" }]\n' \
    "$(printf '%s' "$ADMIN_SECRET" | sha256sum | cut -d' ' -f1)" >"$WORK/config.toml"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
  local store=$1 url port
  case $store in
    mysql)
      DB="iam_clients_$$_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
      timeout 30 mysql --protocol=tcp -h127.0.0.1 -uroot -e "CREATE DATABASE \`$DB\`"
      url="mysql://root@127.0.0.1:3306/$DB" ;;
    sqlite)
      mkdir -p "$WORK/sqlite"
      url="sqlite://$WORK/sqlite/clients.db" ;;
    *) echo "unknown store: $store (mysql or sqlite)" >&2; exit 2 ;;
  esac
  port=$(free_port)
  BASE="http://127.0.0.1:$port"
  log "2. $store: serve on $BASE"
  IAM_CONFIG="$WORK/config.toml" IAM__DATABASE__URL="$url" IAM__SERVER__PORT="$port" \
    IAM__LOG__LEVEL=warn "$WORK/iam-tokens" serve >"$WORK/server-$store.log" 2>&1 &
  SERVER_PID=$!
  local _
  for _ in $(seq 1 300); do
    if curl -fs -m 2 "$BASE/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! curl -fs -m 2 "$BASE/health" >/dev/null 2>&1; then
    echo "the server did not answer /health within 30 s; its log:" >&2
    tail -30 "$WORK/server-$store.log" >&2
    exit 1
  fi
  curl -fsS -m 10 "$BASE/openapi.json" -o "$WORK/openapi-$store.json"
  mkdir -p "$TS_DIR/generated"
  cp "$WORK/openapi-$store.json" "$TS_DIR/generated/openapi-$store.json"
  note "GET /openapi.json: $(wc -c <"$WORK/openapi-$store.json") bytes ($TS_DIR/generated/openapi-$store.json)"
}

stop_server() {
  local store=$1
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  if [ -n "$DB" ]; then
    timeout 30 mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DB\`"
    DB=
  fi
  if grep -q -E ' (ERROR|WARN) ' "$WORK/server-$store.log"; then
    note "server log ($store), warnings and errors:"
    grep -E ' (ERROR|WARN) ' "$WORK/server-$store.log" | grep -v 'jwt_secret is the shipped' | tail -20 | sed 's/^/     /' || true
  fi
}

# --- step 3: generate -------------------------------------------------------------------------

# openapi-python-client (0.29) reads a parameter's `style` but no template uses it: an object
# query parameter is sent as its bare keys (`plan=pro`, style form), whatever the document says
# (openapi-generators/openapi-python-client#1064). Its endpoint_macros.py.jinja, copied from the
# installed generator into $WORK/py-templates and patched on the one line that sends such an
# object, sends it as deepObject (`meta[plan]=pro`). That is right only while every object query
# parameter of the document is `style: deepObject, explode: true`: checked first, and the patch
# fails loudly when the generator's template no longer has that line.
python_templates() {
  local doc=$1 objects
  objects=$(python3 - "$doc" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for path, item in doc["paths"].items():
    for method, op in item.items():
        if not isinstance(op, dict):
            continue
        for p in item.get("parameters", []) + op.get("parameters", []):
            p = p if "$ref" not in p else doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
            schema = p.get("schema", {})
            if "$ref" in schema:
                schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            if p.get("in") == "query" and schema.get("type") == "object":
                deep = p.get("style") == "deepObject" and p.get("explode", False) is True
                print(f"{'deepObject' if deep else 'OTHER'} {method.upper()} {path} {p['name']}")
PY
  )
  note "object query parameters: $(paste -sd ';' <<<"$objects")"
  if grep -q '^OTHER' <<<"$objects"; then
    failure "an object query parameter is not style: deepObject + explode: true; the patched template would misserialize it"
  fi
  local pkg
  pkg=$("$VENV/bin/python" -c 'import openapi_python_client, os; print(os.path.dirname(openapi_python_client.__file__))')
  mkdir -p "$WORK/py-templates"
  "$VENV/bin/python" - "$pkg/templates/endpoint_macros.py.jinja" "$WORK/py-templates/endpoint_macros.py.jinja" <<'PY'
import sys
source, target = sys.argv[1:]
text = open(source).read()
bare = '{{ guarded_statement(property, destination, "params.update(" + destination + ")") }}'
deep = ("{{ guarded_statement(property, destination, 'params.update({f\"' + (property.name | in_double_quote_literal)"
        " + '[{key}]\": value for key, value in ' + destination + '.items()})') }}")
if text.count(bare) != 1:
    sys.exit(f"{source}: the line sending an object query parameter is not there once; re-check the deepObject patch")
open(target, "w").write(text.replace(bare, deep))
PY
}

generate() {
  local doc=$1 out status=0
  log "3. generate the clients"
  # Python: openapi-python-client, with warnings as failures, deepObject query objects patched in.
  mkdir -p "$PY_DIR/generated"
  python_templates "$doc"
  out=$(PATH="$ROOT/$VENV/bin:$PATH" timeout 300 "$VENV/bin/openapi-python-client" generate \
    --path "$doc" --output-path "$PY_DIR/generated/iam-tokens-client" --overwrite \
    --custom-template-path "$WORK/py-templates" --fail-on-warning 2>&1) || status=$?
  if [ "$status" -ne 0 ] || grep -q -i 'warning' <<<"$out"; then
    printf '%s\n' "$out" | sed 's/^/   | /'
    failure "openapi-python-client: $(grep -c -E '^WARNING' <<<"$out" || true) warning block(s) (exit $status)"
  else
    note "openapi-python-client: no warning ($PY_DIR/generated/iam-tokens-client, $(ls "$PY_DIR/generated/iam-tokens-client/iam_tokens_client/models" | grep -c -v '^__init__') models)"
  fi
  if [ ! -d "$PY_DIR/generated/iam-tokens-client/iam_tokens_client" ]; then
    echo "openapi-python-client generated no package" >&2
    exit 1
  fi

  # TypeScript: openapi-typescript's schema.d.ts, read by openapi-fetch's createClient<paths>().
  mkdir -p "$TS_DIR/generated"
  status=0
  out=$(cd "$TS_DIR" && timeout 300 npx --no-install openapi-typescript "$doc" \
    -o generated/schema.d.ts 2>&1) || status=$?
  printf '%s\n' "$out" | grep -v -E '^(✨|🚀)' | sed 's/^/   | /' || true
  if [ "$status" -ne 0 ] || grep -q -i -E 'warn|error' <<<"$out"; then
    failure "openapi-typescript: exit $status or a warning"
  else
    note "openapi-typescript: no warning ($TS_DIR/generated/schema.d.ts, $(wc -l <"$TS_DIR/generated/schema.d.ts") lines)"
  fi
}

# --- step 4: type-check -----------------------------------------------------------------------

typecheck() {
  log "4. type-check"
  local status=0
  (cd "$TS_DIR" && timeout 300 npx --no-install tsc -p tsconfig.json --strict --noEmit) \
    >"$WORK/tsc.txt" 2>&1 || status=$?
  sed 's/^/   | /' "$WORK/tsc.txt"
  if [ "$status" -ne 0 ]; then
    failure "tsc --strict: $(grep -c 'error TS' "$WORK/tsc.txt" || true) error(s)"
  else
    note "tsc --strict lifecycle.ts: no error"
  fi
  # The program itself (tsc emits even past errors; noEmitOnError is off).
  (cd "$TS_DIR" && timeout 300 npx --no-install tsc -p tsconfig.json >/dev/null 2>&1) || true

  status=0
  MYPYPATH="$PY_DIR/generated/iam-tokens-client" timeout 600 "$VENV/bin/mypy" --strict \
    --cache-dir "$PY_DIR/generated/.mypy_cache" "$PY_DIR/lifecycle.py" >"$WORK/mypy.txt" 2>&1 || status=$?
  sed 's/^/   | /' "$WORK/mypy.txt"
  if [ "$status" -ne 0 ]; then
    failure "mypy --strict: $(grep -c ': error:' "$WORK/mypy.txt" || true) error(s)"
  else
    note "mypy --strict lifecycle.py: no error"
  fi
}

# --- step 5: lifecycles -----------------------------------------------------------------------

lifecycles() {
  local store=$1 status
  log "5. $store: lifecycles through the generated clients"
  status=0
  IAM_URL=$BASE IAM_ADMIN_SECRET=$ADMIN_SECRET \
    PYTHONPATH="$PY_DIR/generated/iam-tokens-client" \
    timeout 120 "$VENV/bin/python" "$PY_DIR/lifecycle.py" 2>&1 | sed 's/^/   /' || status=$?
  [ "$status" -eq 0 ] || { server_log_tail "$store"; failure "$store: Python lifecycle (exit $status)"; }
  status=0
  IAM_URL=$BASE IAM_ADMIN_SECRET=$ADMIN_SECRET \
    timeout 120 node "$TS_DIR/generated/out/lifecycle.js" 2>&1 | sed 's/^/   /' || status=$?
  [ "$status" -eq 0 ] || { server_log_tail "$store"; failure "$store: TypeScript lifecycle (exit $status)"; }
}

# On a lifecycle failure: what the server said.
server_log_tail() {
  note "server log ($1), last lines:"
  tail -20 "$WORK/server-$1.log" | sed 's/^/   | /'
}

# --- step 6: lint and metrics -----------------------------------------------------------------

lint_document() {
  local doc=$1 status=0
  log "6. redocly lint --extends recommended (an error fails, warnings are listed)"
  (cd "$TS_DIR" && timeout 300 npx --no-install redocly lint --extends recommended --format json "$doc") \
    >"$WORK/redocly.json" 2>"$WORK/redocly.err" || status=$?
  # The report, by rule; the error count goes to redocly.errors.
  python3 - "$WORK/redocly.json" "$WORK/redocly.errors" <<'PY' || true
import collections, json, sys
report = json.load(open(sys.argv[1]))
totals = report["totals"]
print(f"   redocly {report.get('version', '?')}: {totals['errors']} error(s), {totals['warnings']} warning(s)")
rules = collections.defaultdict(list)
for problem in report["problems"]:
    where = problem["location"][0]["pointer"] if problem.get("location") else "?"
    rules[(problem["severity"], problem["ruleId"], problem["message"])].append(where)
for (severity, rule, message), where in sorted(rules.items()):
    print(f"   {severity:7} {rule} x{len(where)}: {message}")
    for pointer in where:
        print(f"             {pointer}")
open(sys.argv[2], "w").write(f"{int(totals['errors'])}\n")
PY
  local errors
  errors=$(cat "$WORK/redocly.errors" 2>/dev/null || true)
  if [ -z "$errors" ]; then
    note "redocly gave no report (exit $status):"
    sed 's/^/   | /' "$WORK/redocly.err"
    failure "redocly lint: no report"
  elif [ "$errors" -gt 0 ]; then
    failure "redocly lint: $errors error(s) in the document"
  elif [ "$status" -ne 0 ]; then
    sed 's/^/   | /' "$WORK/redocly.err"
    failure "redocly lint: exit $status with no error reported"
  fi
}

check_metrics() {
  local store=$1
  log "6. $store: promtool check metrics on GET /metrics (any finding fails)"
  if [ -z "$PROMTOOL" ]; then failure "no promtool: the metrics check cannot run"; return; fi
  curl -fsS -m 10 "$BASE/metrics" -o "$WORK/metrics-$store.txt"
  note "scrape: $(grep -c -v '^#' "$WORK/metrics-$store.txt") samples, $(grep -c '^# TYPE' "$WORK/metrics-$store.txt") families"
  local out status=0
  out=$(timeout 60 "$PROMTOOL" check metrics <"$WORK/metrics-$store.txt" 2>&1) || status=$?
  if [ -z "$out" ] && [ "$status" -eq 0 ]; then
    note "promtool $("$PROMTOOL" --version 2>&1 | awk 'NR == 1 { print $3 }'): no finding"
  else
    printf '%s\n' "$out" | sed 's/^/   | /'
    failure "promtool check metrics ($store): $(grep -c . <<<"$out") finding(s) (exit $status)"
  fi
}

# --- main -------------------------------------------------------------------------------------

install_tools
build_service
GENERATED_FROM=
NEW_DOC=0
for store in $STORES; do
  start_server "$store"
  doc="$WORK/openapi-$store.json"
  if [ -n "$GENERATED_FROM" ] && cmp -s "$doc" "$WORK/openapi-$GENERATED_FROM.json"; then
    log "3-4. $store serves the same document as $GENERATED_FROM: clients reused, lint not repeated"
  else
    if [ -n "$GENERATED_FROM" ]; then note "the document differs from $GENERATED_FROM's"; fi
    generate "$doc"
    typecheck
    NEW_DOC=1
  fi
  lifecycles "$store"
  if [ "$NEW_DOC" = 1 ]; then lint_document "$doc"; GENERATED_FROM=$store; NEW_DOC=0; fi
  check_metrics "$store"
  stop_server "$store"
done

log "done in $((SECONDS - START)) s on: $STORES"
if [ ${#FAILURES[@]} -gt 0 ]; then
  printf '%d failure(s):\n' "${#FAILURES[@]}"
  printf '  - %s\n' "${FAILURES[@]}"
  exit 1
fi
echo "generated clients: all steps passed"
