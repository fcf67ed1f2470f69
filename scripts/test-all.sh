#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, and the end-to-end tests against real
# PostgreSQL and Redis (started here on private ports unless E2E_DATABASE_URL /
# E2E_REDIS_URL point at running servers; stopped again on exit).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

export E2E_DATABASE_URL="${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:55432/postgres}"
export E2E_REDIS_URL="${E2E_REDIS_URL:-redis://127.0.0.1:56379}"
export E2E_BIN_DIR="$PWD/target/debug"
trap deps_down EXIT

step() { printf '\n==> %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "PostgreSQL and Redis"
deps_up "$E2E_DATABASE_URL" "$E2E_REDIS_URL"

step "build"
cargo build --workspace --bins

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "unit and end-to-end tests"
cargo test --workspace

# Each criterion benchmark runs once (test mode, debug build) so none can rot; the timed
# short mode is scripts/bench-quick.sh.
step "benchmarks, once each"
cargo test -p bench --benches
