#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up MariaDB and Redis (installing them if
# needed), then runs every test on both stores: unit tests, benches in test mode and the
# integration suite on MySQL, the documentation examples, then the integration suite again on
# the embedded SQLite store
# (the store conformance suite runs both backends in either pass), then schemathesis against the
# live service on each store (scripts/fuzz.sh), then clients generated from the served document
# complete an admin lifecycle on each store, the document is linted and a scrape is checked
# (scripts/clients.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
echo "== integration suite on MySQL (plus unit tests and benches in test mode)"
IAM_TEST_STORE=mysql cargo test --all-targets "$@"
echo "== documentation examples"
cargo test --doc "$@"
echo "== integration suite on the embedded SQLite store"
IAM_TEST_STORE=sqlite cargo test --test api "$@"
echo "== the OpenAPI document, validated, and the live service fuzzed against it on both stores"
bash scripts/fuzz.sh
echo "== clients generated from the document (Python, TypeScript), type-checked and run on both stores; the document linted, a metrics scrape checked"
bash scripts/clients.sh
