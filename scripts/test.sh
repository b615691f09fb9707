#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up MariaDB and Redis (installing them if
# needed), then runs every unit and integration test against them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
exec cargo test --all-targets "$@"
