#!/usr/bin/env bash
# The durable-send benchmark of BENCHMARKS.md: the release stack (gateway, chat, worker) on
# private ports against its own PostgreSQL and Redis, and the load generator with 64
# concurrent senders posting through the gateway. Prints the figures; stops everything.
#   scripts/bench-sends.sh [SECONDS] [SENDERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
SECONDS_RUN="${1:-20}"; SENDERS="${2:-64}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; deps_down; }
trap cleanup EXIT
deps_up "$PG_URL" "$REDIS"
cargo build --release -q -p chat -p worker -p gateway -p loadtest
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="bench$$"
# The generator sends without tokens (compat mode) and faster than the default per-address
# limit: this measures the message path itself; the goose load tests run signed in.
export AUTH_MODE=compat RATE_SENDS_PER_ADDRESS=1000000000
PORT=3201 HOST=127.0.0.1 target/release/chat & pids+=($!)
PORT=3203 target/release/worker & pids+=($!)
PORT=3200 HOST=127.0.0.1 CHAT_SERVICE_URL=http://127.0.0.1:3201 target/release/gateway & pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:3201/readyz >/dev/null && curl -fs http://127.0.0.1:3203/readyz >/dev/null && break; sleep 0.2; done
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
target/release/sends --target 127.0.0.1:3200 --senders "$SENDERS" --seconds "$SECONDS_RUN" --warmup 3
