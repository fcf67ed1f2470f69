#!/usr/bin/env bash
# Tests the browser UI: its component tests (Vitest, jsdom), its production build, then the
# end-to-end test: Debian's Chromium (installed with apt-get when missing and run as root),
# driven by playwright-core, against the real stack started here on free ports (chat,
# worker, call, gateway and web from target/debug or $UI_BIN_DIR, PostgreSQL and Redis via
# scripts/deps.sh: the servers at E2E_DATABASE_URL / E2E_REDIS_URL when they answer, with a
# database and namespace of its own, else private ones), all stopped at the end. Screenshots
# of the main screens go to target/ui-artifacts/.
#
# UI_AUTH_MODE=compat runs the stack without accounts (the UI then joins by user id).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

step() { printf '\n==> [ui] %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

artifacts="$PWD/target/ui-artifacts"
logs="$artifacts/logs"
bin="${UI_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/debug}"
pids=()
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${database_url:-}" ] && [ -z "$DEPS_STARTED_PG" ]; then
    # A server this script did not start keeps running: leave no database behind on it.
    "$(pg_bin)/dropdb" --if-exists -h "$(url_part "$database_url" host)" -p "$(url_part "$database_url" port)" \
      -U "$(url_part "$database_url" user)" "$(url_part "$database_url" db)" 2>/dev/null || true
  fi
  deps_down
  if [ "$status" != 0 ] && [ -d "$logs" ]; then
    echo "[ui] failed; service logs are in $logs" >&2
    tail -n 15 "$logs"/*.log >&2 || true
  fi
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

step "frontend dependencies (npm ci)"
(cd frontend && npm ci --no-audit --no-fund --silent)

step "component tests (Vitest)"
(cd frontend && npx vitest run)

step "production build"
(cd frontend && npm run --silent build)

step "Chromium"
chromium_bin="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[ui] installing chromium with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[ui] missing Chromium: install it with: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

step "service binaries"
if [ -z "${UI_BIN_DIR:-}" ]; then
  cargo build -p chat -p worker -p call -p gateway -p web
fi

step "PostgreSQL and Redis"
suffix="$(date +%s)_$$"
if [ -n "${E2E_DATABASE_URL:-}" ] && pg_answers "$(url_part "$E2E_DATABASE_URL" host)" "$(url_part "$E2E_DATABASE_URL" port)"; then
  pg_server="${E2E_DATABASE_URL%/*}"
else
  pg_server="postgres://postgres@127.0.0.1:$(free_port)"
fi
if [ -n "${E2E_REDIS_URL:-}" ] && redis_answers "$(url_part "$E2E_REDIS_URL" host)" "$(url_part "$E2E_REDIS_URL" port)"; then
  redis_url="$E2E_REDIS_URL"
else
  redis_url="redis://127.0.0.1:$(free_port)"
fi
database_url="$pg_server/ui_e2e_$suffix"
deps_up "$database_url" "$redis_url"

step "the stack"
rm -rf "$artifacts"; mkdir -p "$logs"
chat_port=$(free_port); worker_port=$(free_port); call_port=$(free_port); gateway_port=$(free_port); web_port=$(free_port)
export CHAT_DATABASE_URL="$database_url" REDIS_URL="$redis_url" CHAT_NAMESPACE="ui_$suffix" HOST=127.0.0.1
export AUTH_MODE="${UI_AUTH_MODE:-token}"
export INTERNAL_SECRET="${INTERNAL_SECRET:-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')}"
export RUST_LOG="${UI_LOG:-info}"
PORT=$chat_port "$bin/chat" >"$logs/chat.log" 2>&1 & pids+=($!)
PORT=$worker_port "$bin/worker" >"$logs/worker.log" 2>&1 & pids+=($!)
PORT=$call_port "$bin/call" >"$logs/call.log" 2>&1 & pids+=($!)
PORT=$gateway_port CHAT_SERVICE_URL="http://127.0.0.1:$chat_port" CALL_SERVICE_URL="http://127.0.0.1:$call_port" \
  "$bin/gateway" >"$logs/gateway.log" 2>&1 & pids+=($!)
PORT=$web_port STATIC_DIR=frontend/dist GATEWAY_PUBLIC_URL="http://127.0.0.1:$gateway_port" \
  "$bin/web" >"$logs/web.log" 2>&1 & pids+=($!)
wait_ok() {
  for _ in $(seq 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "[ui] not ready: $1" >&2; return 1
}
for port in $chat_port $worker_port $call_port $gateway_port; do wait_ok "http://127.0.0.1:$port/readyz"; done
wait_ok "http://127.0.0.1:$web_port/healthz"

step "end-to-end in Chromium (playwright-core)"
(cd frontend && WEB_URL="http://127.0.0.1:$web_port" GATEWAY_URL="http://127.0.0.1:$gateway_port" \
  CHROMIUM_BIN="$chromium_bin" UI_ARTIFACTS="$artifacts" node --test --test-concurrency=1 e2e/ui.test.mjs)

echo "[ui] screenshots: $artifacts"
