#!/usr/bin/env bash
# Runs the whole platform on this machine: PostgreSQL and Redis (started here unless they
# already answer at CHAT_DATABASE_URL / REDIS_URL), the chat service, the message worker,
# the call service and the gateway, built in release mode, and the browser UI (built with npm,
# served by `web` on WEB_PORT, 8080).
#
# Data: PostgreSQL's cluster and Redis's append-only file live in CHAT_DATA_DIR (default
# ./data at the repository root, git-ignored; as root in a checkout other users cannot
# reach, /var/lib/chat-platform), created on the first start and reused on every
# later one. Stopping never deletes it; to start from nothing, stop the stack and remove it.
#
# Supervision: each service runs under a supervisor that restarts it when it exits (a crash,
# a kill -9), after 1 s, doubling up to 30 s while it keeps failing, back to 1 s once a run
# lasted a minute; every restart is logged with the exit status. The others keep serving
# meanwhile. Ctrl-C (or TERM) stops the supervisors, the services and the servers started here.
#
# Overrides, for tests and development: BIN_DIR (default target/release; SKIP_BUILD=1 uses
# the binaries there as they are), SKIP_WEB_BUILD=1 (serve STATIC_DIR as it is, default
# frontend/dist), CHAT_PORT, WORKER_PORT, CALL_PORT, GATEWAY_PORT, WEB_PORT, SOCKET_DIR (below); STORAGE=s3 (attachments
# on an S3 server started here, s3s-fs on S3_PORT, 9000; or the one S3_ENDPOINT names).
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
BIN_DIR="${BIN_DIR:-target/release}"
STATIC_DIR="${STATIC_DIR:-frontend/dist}"
if [ -z "${CHAT_DATA_DIR:-}" ]; then
  CHAT_DATA_DIR="$PWD/data"
  # As root, PostgreSQL runs as its own user, which cannot reach a checkout under a private
  # home (/root is 0700): then the data goes to the system's usual place instead.
  if [ "$(id -u)" = 0 ] && ! runuser -u nobody -- test -x "$PWD" 2>/dev/null; then
    CHAT_DATA_DIR=/var/lib/chat-platform
  fi
fi
# Uploaded files (the local storage back end) live with the rest of the data.
export ATTACHMENT_DIR="${ATTACHMENT_DIR:-$CHAT_DATA_DIR/attachments}"
# Chat and the gateway share this machine: they meet over Unix sockets in SOCKET_DIR (API
# requests over chat.sock; Socket.IO WebSockets handed to chat over handoff.sock, so no
# gateway hop per frame). SOCKET_DIR= (empty) keeps them on TCP. A socket path holds 107
# bytes: a data folder deep in the tree puts the sockets under /tmp instead.
if [ -z "${SOCKET_DIR+set}" ]; then
  SOCKET_DIR="$CHAT_DATA_DIR/run"
  [ "${#SOCKET_DIR}" -le 80 ] || SOCKET_DIR="${TMPDIR:-/tmp}/chat-platform-run-$(id -u)"
fi
export SOCKET_DIR
# Backoff of the supervisors, in seconds.
RESTART_MAX_DELAY="${RESTART_MAX_DELAY:-30}"
RESTART_RESET_AFTER="${RESTART_RESET_AFTER:-60}"

# supervise NAME COMMAND...: runs COMMAND in the background and restarts it whenever it
# exits, until this supervisor gets TERM (then it stops COMMAND with TERM and waits for it).
# Its pid goes to track_bg, so the script's exit stops it.
supervise() {
  local name="$1"; shift
  (
    trap - EXIT
    child=""; stopping=""
    trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM
    log() { printf '[supervise %s] %s %s\n' "$(date +%H:%M:%S)" "$name" "$*" >&2; }
    delay=1; restarts=0
    while :; do
      started=$SECONDS
      "$@" & child=$!
      # A TERM that came between the start and `child=$!` found no child to stop.
      if [ -n "$stopping" ]; then kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0; fi
      status=0; wait "$child" || status=$?
      # A trapped TERM interrupts `wait`: the child may still be stopping.
      if [ -n "$stopping" ]; then wait "$child" 2>/dev/null; exit 0; fi
      child=""
      [ $((SECONDS - started)) -lt "$RESTART_RESET_AFTER" ] || delay=1
      restarts=$((restarts + 1))
      reason="status $status"; [ "$status" -le 128 ] || reason="$reason (signal $((status - 128)))"
      log "exited with $reason after $((SECONDS - started))s; restart $restarts in ${delay}s"
      sleep "$delay" & child=$!
      wait "$child" 2>/dev/null || true
      [ -z "$stopping" ] || exit 0
      child=""
      delay=$((delay * 2)); [ "$delay" -le "$RESTART_MAX_DELAY" ] || delay=$RESTART_MAX_DELAY
    done
  ) &
  track_bg $!
}

step "PostgreSQL and Redis (data in $CHAT_DATA_DIR)"
DEPS_DIR="$CHAT_DATA_DIR"
deps_up "$CHAT_DATABASE_URL" "$REDIS_URL"

# Attachments: a local directory by default; STORAGE=s3 stores them on S3 instead, on an
# S3-compatible server started here (s3s-fs, buckets in $CHAT_DATA_DIR/s3, kept like the
# rest) unless S3_ENDPOINT names one that answers.
if [ "${STORAGE:-local}" = s3 ]; then
  step "S3 server for attachments (buckets in $CHAT_DATA_DIR/s3)"
  export S3_ENDPOINT="${S3_ENDPOINT:-http://127.0.0.1:${S3_PORT:-9000}}" S3_BUCKET="${S3_BUCKET:-attachments}"
  export S3_ACCESS_KEY_ID="${S3_ACCESS_KEY_ID:-chat-local}" S3_SECRET_ACCESS_KEY="${S3_SECRET_ACCESS_KEY:-$(random_secret)}"
  mkdir -p "$CHAT_DATA_DIR/s3/$S3_BUCKET"
  s3_up "$S3_ENDPOINT" "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY" "$CHAT_DATA_DIR/s3"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
  step "build"
  cargo build --release -p chat -p worker -p call -p gateway -p web
fi
if [ -z "${SKIP_WEB_BUILD:-}" ]; then
  step "browser UI build"
  (cd frontend && npm ci --no-audit --no-fund --silent && npm run --silent build)
fi
bin="$BIN_DIR"

step "services"
supervise chat env PORT="$CHAT_PORT" "$bin/chat"
supervise worker env PORT="$WORKER_PORT" "$bin/worker"
supervise call env PORT="$CALL_PORT" "$bin/call"
supervise gateway env PORT="$GATEWAY_PORT" \
  CHAT_SERVICE_URL="http://127.0.0.1:$CHAT_PORT" CALL_SERVICE_URL="http://127.0.0.1:$CALL_PORT" "$bin/gateway"
wait_http "http://127.0.0.1:$CHAT_PORT/readyz"
wait_http "http://127.0.0.1:$WORKER_PORT/readyz"
wait_http "http://127.0.0.1:$CALL_PORT/readyz"
supervise web env PORT="$WEB_PORT" STATIC_DIR="$STATIC_DIR" \
  GATEWAY_PUBLIC_URL="${GATEWAY_PUBLIC_URL:-http://localhost:$GATEWAY_PORT}" "$bin/web"
wait_http "http://127.0.0.1:$GATEWAY_PORT/readyz"
wait_http "http://127.0.0.1:$WEB_PORT/healthz"

cat <<MSG

  The platform is up. Ctrl-C stops it (the data stays in $CHAT_DATA_DIR).
    web UI    http://localhost:$WEB_PORT   (the browser app)
    gateway   http://localhost:$GATEWAY_PORT   (public API and /socket.io/)
    chat      http://localhost:$CHAT_PORT
    call      http://localhost:$CALL_PORT
    worker    http://127.0.0.1:$WORKER_PORT/healthz
    postgres  $CHAT_DATABASE_URL
    redis     $REDIS_URL

MSG
# The supervisors run until the exit trap stops them; a trapped Ctrl-C interrupts this wait.
wait
