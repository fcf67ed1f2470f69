#!/usr/bin/env bash
# The durable-send benchmark of BENCHMARKS.md: the release stack (gateway, chat, worker) on
# private ports against its own PostgreSQL and Redis, and the load generator with 64
# concurrent senders posting through the gateway. Prints the figures; stops everything.
#   scripts/bench-sends.sh [--signed-in] [SECONDS] [SENDERS]
# Without --signed-in the generator sends no tokens (AUTH_MODE=compat, which still checks the
# per-address send limit at the gateway); with it every sender registers and sends with its
# bearer token (AUTH_MODE=token). Either way the limits are raised far above the rate reached.
# BENCH_BIN_DIR: run the chat, worker, gateway and sends binaries found there instead of
# building this checkout (to alternate builds of two commits, e.g. before/after a change).
# BENCH_PORT: the gateway's port (default 3200); chat, call and worker take the next three.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
SIGNED_IN=""
if [ "${1:-}" = "--signed-in" ]; then SIGNED_IN="--signed-in"; shift; fi
SECONDS_RUN="${1:-20}"; SENDERS="${2:-64}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"
bin="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
GW="${BENCH_PORT:-3200}"; CHAT=$((GW + 1)); CALL=$((GW + 2)); WORKER=$((GW + 3))

deps_up "$PG_URL" "$REDIS"
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release -q -p chat -p worker -p gateway -p loadtest
fi
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="bench$$"
export RATE_SENDS_PER_ADDRESS=1000000000 RATE_SENDS_PER_USER=1000000000 RATE_REGISTRATIONS_PER_ADDRESS=1000000000
if [ -n "$SIGNED_IN" ]; then
  INTERNAL_SECRET="bench-$(random_secret)"
  export AUTH_MODE=token INTERNAL_SECRET
else
  export AUTH_MODE=compat
fi
PORT=$CHAT HOST=127.0.0.1 "$bin/chat" & track_bg $!
PORT=$WORKER "$bin/worker" & track_bg $!
PORT=$GW HOST=127.0.0.1 CHAT_SERVICE_URL=http://127.0.0.1:$CHAT CALL_SERVICE_URL=http://127.0.0.1:$CALL "$bin/gateway" & track_bg $!
wait_http http://127.0.0.1:$CHAT/readyz 20
wait_http http://127.0.0.1:$WORKER/readyz 20
wait_http http://127.0.0.1:$GW/healthz 20
echo "machine: $(machine); load average before: $(load_average)"
"$bin/sends" --target 127.0.0.1:$GW --senders "$SENDERS" --seconds "$SECONDS_RUN" --warmup 3 $SIGNED_IN
echo "load average after: $(load_average)"
