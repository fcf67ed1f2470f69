#!/usr/bin/env bash
# Runs the whole platform on this machine: PostgreSQL and Redis (started here unless they
# already answer at CHAT_DATABASE_URL / REDIS_URL), the chat service, the message worker and
# the call service and the gateway, built in release mode, and the browser UI (built with npm,
# served by `web` on WEB_PORT, 8080). Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh

export CHAT_DATABASE_URL="${CHAT_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/chat}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
# The gateway proves itself to the services with this; a fresh one per run unless given.
export INTERNAL_SECRET="${INTERNAL_SECRET:-$(random_secret)}"
CHAT_PORT="${CHAT_PORT:-3001}"; CALL_PORT="${CALL_PORT:-3002}"; GATEWAY_PORT="${GATEWAY_PORT:-3000}"; WORKER_PORT="${WORKER_PORT:-3003}"
WEB_PORT="${WEB_PORT:-8080}"

deps_up "$CHAT_DATABASE_URL" "$REDIS_URL"
cargo build --release -p chat -p worker -p call -p gateway -p web
(cd frontend && npm ci --no-audit --no-fund --silent && npm run --silent build)
bin=target/release

PORT="$CHAT_PORT" "$bin/chat" & track_bg $!
PORT="$WORKER_PORT" "$bin/worker" & track_bg $!
PORT="$CALL_PORT" "$bin/call" & track_bg $!
# glibc keeps each freed 19 MiB password-hash block in its arena once its mmap threshold has
# grown past that size (about 250 MiB after a burst of sign-ins); a fixed threshold returns
# them to the system.
MALLOC_MMAP_THRESHOLD_=131072 \
  PORT="$GATEWAY_PORT" CHAT_SERVICE_URL="http://127.0.0.1:$CHAT_PORT" CALL_SERVICE_URL="http://127.0.0.1:$CALL_PORT" "$bin/gateway" & track_bg $!
wait_http "http://127.0.0.1:$CHAT_PORT/readyz"
wait_http "http://127.0.0.1:$WORKER_PORT/readyz"
wait_http "http://127.0.0.1:$CALL_PORT/readyz"
PORT="$WEB_PORT" STATIC_DIR=frontend/dist GATEWAY_PUBLIC_URL="${GATEWAY_PUBLIC_URL:-http://localhost:$GATEWAY_PORT}" "$bin/web" & track_bg $!
wait_http "http://127.0.0.1:$GATEWAY_PORT/readyz"
wait_http "http://127.0.0.1:$WEB_PORT/healthz"

cat <<MSG

  The platform is up. Ctrl-C stops it.
    web UI    http://localhost:$WEB_PORT   (the browser app)
    gateway   http://localhost:$GATEWAY_PORT   (public API and /socket.io/)
    chat      http://localhost:$CHAT_PORT
    call      http://localhost:$CALL_PORT
    worker    http://127.0.0.1:$WORKER_PORT/healthz
    postgres  $CHAT_DATABASE_URL
    redis     $REDIS_URL

MSG
wait -n "${BG_PIDS[@]}"
echo "a service exited; stopping the rest" >&2
exit 1
