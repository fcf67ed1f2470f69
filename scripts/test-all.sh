#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the end-to-end tests against real
# PostgreSQL and Redis (started here on private ports unless E2E_DATABASE_URL /
# E2E_REDIS_URL point at running servers; stopped again on exit) and an S3 server (s3s-fs,
# E2E_S3_*), and the Socket.IO interop
# tests with the official JavaScript client (installed from npm here), and schemathesis
# against the gateway's OpenAPI document (installed from PyPI into target/), the end-to-end
# tests again against a Redis Cluster started here (E2E_REDIS_CLUSTER_PORT, default 27001 to
# 27006), cargo-deny's
# licence and ban checks (deny.toml; cargo-deny built into target/tools), the goose crate's
# unit tests, the run command (scripts/test-run-stack.sh), the services on several hosts
# behind HAProxy (scripts/test-cluster.sh: network namespaces, so root), then a bounded
# cargo-fuzz run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh

export E2E_DATABASE_URL="${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:25432/postgres}"
export E2E_REDIS_URL="${E2E_REDIS_URL:-redis://127.0.0.1:26379}"
export E2E_BIN_DIR="$PWD/target/debug"
export STEPS_STARTED="${STEPS_STARTED:-$(date +%s)}"
# One build of everything per run: incremental state would only cost disk and time here.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "formatting"
cargo fmt --all -- --check

step "PostgreSQL and Redis"
deps_up "$E2E_DATABASE_URL" "$E2E_REDIS_URL"

step "S3 server (s3s-fs) for the attachment store"
# A fresh folder per run; each test makes its own bucket in it (E2E_S3_DIR).
export E2E_S3_ENDPOINT="${E2E_S3_ENDPOINT:-http://127.0.0.1:$(free_port)}"
export E2E_S3_ACCESS_KEY_ID="${E2E_S3_ACCESS_KEY_ID:-e2e-access}"
export E2E_S3_SECRET_ACCESS_KEY="${E2E_S3_SECRET_ACCESS_KEY:-e2e-secret-0123456789}"
if [ -z "${E2E_S3_DIR:-}" ]; then
  s3_tmp="$(mktemp -d /tmp/chat-s3.XXXXXX)"
  on_exit rm -rf "$s3_tmp"
  E2E_S3_DIR="$s3_tmp/buckets"
fi
export E2E_S3_DIR
s3_up "$E2E_S3_ENDPOINT" "$E2E_S3_ACCESS_KEY_ID" "$E2E_S3_SECRET_ACCESS_KEY" "$E2E_S3_DIR"

step "build"
# Every cargo command here selects the whole workspace (--workspace, then targets by name),
# never a package (-p): features are unified over what is selected, so a -p build would build
# many crates again with other features.
cargo build --workspace --bins --examples

step "JavaScript test dependencies"
(cd tests/node && npm ci --no-audit --no-fund --silent)

step "schemathesis (PyPI) for the contract test"
venv="$PWD/target/schemathesis-venv"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
export SCHEMATHESIS_BIN="$venv/bin/st"

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "dependency licences and bans (cargo-deny, deny.toml)"
# Built from crates.io into target/ once (no prebuilt binary is reachable here), as a debug
# build: a few seconds slower to run, minutes quicker to build on a fresh machine. Only
# `licenses bans`: the advisory database is fetched from GitHub, which these machines cannot
# reach.
deny="$PWD/target/tools/bin/cargo-deny"
if [ ! -x "$deny" ]; then
  CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug --root "$PWD/target/tools" cargo-deny --version 0.20.2
fi
deny_log="$(mktemp)"; on_exit rm -f "$deny_log"
# Duplicate versions are warnings (deny.toml): the log is shown whole only on failure.
"$deny" --color never check licenses bans >"$deny_log" 2>&1 || { cat "$deny_log"; fail "cargo-deny"; }
tail -n 1 "$deny_log"

step "unit and end-to-end tests; beside them, the end-to-end tests against a Redis Cluster"
# The second run: every e2e file but those that run their own servers (faults), build
# single-Redis pools of their own (recovery_store) or only check the HTTP contract
# (contract), against a Redis Cluster of 3 masters with a replica each. The two runs go side
# by side: each file runs alone within its run as before (a file that disturbs its Redis
# disturbs only its own run), and most of their time is spent waiting on timeouts and
# reconnections, not on the CPU. The cluster run's output follows the first's.
redis_cluster_up 127.0.0.1 "${E2E_REDIS_CLUSTER_PORT:-27001}"
cluster_tests=()
for f in tests/e2e/tests/*.rs; do
  case "$(basename "$f" .rs)" in faults | recovery_store | contract) continue ;; esac
  cluster_tests+=(--test "$(basename "$f" .rs)")
done
cargo test --workspace --no-run --quiet
cluster_log="$(mktemp /tmp/e2e-cluster.XXXXXX)"
on_exit rm -f "$cluster_log"
E2E_REDIS_CLUSTER_NODES="$REDIS_CLUSTER_SEEDS" cargo test --workspace "${cluster_tests[@]}" >"$cluster_log" 2>&1 &
cluster_run=$!
track_bg "$cluster_run"
status=0
cargo test --workspace || status=$?
cluster_status=0
wait "$cluster_run" || cluster_status=$?
step "the end-to-end tests against the Redis Cluster (run beside the others): their output"
cat "$cluster_log"
[ "$status" = 0 ] || fail "unit and end-to-end tests (exit $status)"
[ "$cluster_status" = 0 ] || fail "end-to-end tests against the Redis Cluster (exit $cluster_status)"
# The goose load tests are a workspace of their own (goose is a heavy build the root
# workspace leaves out); their unit tests run here.
cargo test --manifest-path loadtest/goose/Cargo.toml

step "the run command: supervision and persistent data"
RUN_STACK_BIN_DIR="$E2E_BIN_DIR" bash scripts/test-run-stack.sh

# Every criterion benchmark runs once, unmeasured (criterion's test mode, a debug build; the
# costly setups are made small: bench::test_mode). Figures come from `cargo bench -p bench`
# or scripts/bench-quick.sh, not from here.
step "benchmarks, each once (criterion's test mode)"
cargo test --workspace --bench '*'

step "Socket.IO interop with the official client"
(cd tests/node && SIO_SERVER_BIN="$PWD/../../target/debug/examples/socketio_conformance" \
  node --test --test-concurrency=1 interop.test.mjs)

UI_BIN_DIR="$E2E_BIN_DIR" bash scripts/test-ui.sh  # the browser UI: Vitest, its build, then Chromium end to end
COMPOSE_BIN_DIR="$E2E_BIN_DIR" bash scripts/test-compose.sh  # compose files (no Docker engine here) and the stack smoke test
bash scripts/test-cluster.sh  # many hosts (network namespaces) behind HAProxy, and host losses
CLUSTER_TOPOLOGY=colocated bash scripts/test-cluster.sh  # the same, a gateway beside each chat instance

step "fuzzing (each parser and the router, bounded)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
step "done"
