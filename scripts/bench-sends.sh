#!/usr/bin/env bash
# The durable-send benchmark of BENCHMARKS.md: the release stack (gateway, chat, worker) on
# private ports against its own PostgreSQL and Redis, and the load generator with 64
# concurrent senders posting through the gateway. Prints the figures; stops everything.
#   scripts/bench-sends.sh [--signed-in] [SECONDS] [SENDERS]
# Without --signed-in the generator sends no tokens (AUTH_MODE=compat, which still checks the
# per-address send limit at the gateway); with it every sender registers and sends with its
# bearer token (AUTH_MODE=token). Either way the limits are raised far above the rate reached.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
SIGNED_IN=""
if [ "${1:-}" = "--signed-in" ]; then SIGNED_IN="--signed-in"; shift; fi
SECONDS_RUN="${1:-20}"; SENDERS="${2:-64}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"
bin="${CARGO_TARGET_DIR:-target}/release"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; deps_down; }
trap cleanup EXIT
deps_up "$PG_URL" "$REDIS"
cargo build --release -q -p chat -p worker -p gateway -p loadtest
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="bench$$"
export RATE_SENDS_PER_ADDRESS=1000000000 RATE_SENDS_PER_USER=1000000000 RATE_REGISTRATIONS_PER_ADDRESS=1000000000
if [ -n "$SIGNED_IN" ]; then
  export AUTH_MODE=token INTERNAL_SECRET="bench-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
else
  export AUTH_MODE=compat
fi
PORT=3201 HOST=127.0.0.1 "$bin/chat" & pids+=($!)
PORT=3203 "$bin/worker" & pids+=($!)
PORT=3200 HOST=127.0.0.1 CHAT_SERVICE_URL=http://127.0.0.1:3201 CALL_SERVICE_URL=http://127.0.0.1:3202 "$bin/gateway" & pids+=($!)
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:3201/readyz >/dev/null && curl -fs http://127.0.0.1:3203/readyz >/dev/null \
    && curl -fs http://127.0.0.1:3200/healthz >/dev/null && break
  sleep 0.2
done
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/sends" --target 127.0.0.1:3200 --senders "$SENDERS" --seconds "$SECONDS_RUN" --warmup 3 $SIGNED_IN
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
