#!/usr/bin/env bash
# Tests the browser UI: the typed client it is built on (clients/typescript: its generated
# files must be what the contract's documents give, it and the UI must type-check, and a
# contract change the UI does not follow must fail the UI's type check), its component tests
# (Vitest, jsdom), its production build, then the end-to-end test: Debian's Chromium
# (installed with apt-get when missing and run as root), driven by playwright-core, against
# the real stack started here on free ports (chat, worker, call, gateway and web from
# target/debug or $UI_BIN_DIR, PostgreSQL and Redis via scripts/deps.sh: the servers at
# E2E_DATABASE_URL / E2E_REDIS_URL when they answer, with a database and namespace of its
# own, else private ones), all stopped at the end. Screenshots of the main screens go to
# target/ui-artifacts/.
#
# UI_AUTH_MODE=compat runs the stack without accounts (the UI then joins by user id).
# UI_TEST_PATTERN runs only the Chromium scenarios whose names match it (node --test-name-pattern).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
STEP_PREFIX="[ui] "

artifacts="$PWD/target/ui-artifacts"
logs="$artifacts/logs"
bin="${UI_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/debug}"
# Last at exit, after everything stopped: on failure, where the services' logs are.
show_logs_on_failure() {
  if [ "$EXIT_STATUS" != 0 ] && [ -d "$logs" ]; then
    echo "[ui] failed; service logs are in $logs" >&2
    tail -n 15 "$logs"/*.log >&2 || true
  fi
}
on_exit show_logs_on_failure

step "frontend dependencies (npm ci)"
(cd frontend && npm ci --no-audit --no-fund --silent)

step "typed client: generated files up to date with the contract, client and UI type-checked"
(cd clients/typescript && npm ci --no-audit --no-fund --silent && npm run --silent check)
(cd frontend && npx tsc --noEmit)

step "typed client: a contract change the UI does not follow fails its type check"
(cd clients/typescript && npm test --silent)

step "component tests (Vitest)"
(cd frontend && npx vitest run)

step "production build"
(cd frontend && npm run --silent build)

step "Chromium"
chromium_bin="${CHROMIUM_BIN:-/usr/bin/chromium}"
[ -x "$chromium_bin" ] || deps_install chromium chromium

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
# A server this script did not start keeps running: leave no database behind on it (this
# runs before deps_down, which deps_up registered).
drop_ui_database() {
  [ -z "$DEPS_STARTED_PG" ] || return 0
  "$(pg_bin)/dropdb" --if-exists -h "$(url_part "$database_url" host)" -p "$(url_part "$database_url" port)" \
    -U "$(url_part "$database_url" user)" "$(url_part "$database_url" db)" 2>/dev/null
}
on_exit drop_ui_database

step "the stack"
rm -rf "$artifacts"; mkdir -p "$logs"
chat_port=$(free_port); worker_port=$(free_port); call_port=$(free_port); gateway_port=$(free_port); web_port=$(free_port)
export CHAT_DATABASE_URL="$database_url" REDIS_URL="$redis_url" CHAT_NAMESPACE="ui_$suffix" HOST=127.0.0.1
export AUTH_MODE="${UI_AUTH_MODE:-token}"
export INTERNAL_SECRET="${INTERNAL_SECRET:-$(random_secret)}"
export RUST_LOG="${UI_LOG:-info}"
# Uploaded files go to a directory of this run's own, removed at the end.
ATTACHMENT_DIR="$(mktemp -d)"
export ATTACHMENT_DIR
remove_attachment_dir() { rm -rf "$ATTACHMENT_DIR"; }
on_exit remove_attachment_dir
PORT=$chat_port "$bin/chat" >"$logs/chat.log" 2>&1 & track_bg $!
PORT=$worker_port "$bin/worker" >"$logs/worker.log" 2>&1 & track_bg $!
PORT=$call_port "$bin/call" >"$logs/call.log" 2>&1 & track_bg $!
PORT=$gateway_port CHAT_SERVICE_URL="http://127.0.0.1:$chat_port" CALL_SERVICE_URL="http://127.0.0.1:$call_port" \
  "$bin/gateway" >"$logs/gateway.log" 2>&1 & track_bg $!
PORT=$web_port STATIC_DIR=frontend/dist GATEWAY_PUBLIC_URL="http://127.0.0.1:$gateway_port" \
  "$bin/web" >"$logs/web.log" 2>&1 & track_bg $!
for port in $chat_port $worker_port $call_port $gateway_port; do wait_http "http://127.0.0.1:$port/readyz"; done
wait_http "http://127.0.0.1:$web_port/healthz"

step "end-to-end in Chromium (playwright-core)"
(cd frontend && WEB_URL="http://127.0.0.1:$web_port" GATEWAY_URL="http://127.0.0.1:$gateway_port" \
  CHROMIUM_BIN="$chromium_bin" UI_ARTIFACTS="$artifacts" node --test --test-concurrency=1 ${UI_TEST_PATTERN:+--test-name-pattern="$UI_TEST_PATTERN"} e2e/ui.test.mjs)

echo "[ui] screenshots: $artifacts"
