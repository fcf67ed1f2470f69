#!/usr/bin/env bash
# The reaction burst of docs/perf/2026-12-reactions.md: the release chat service and worker
# against PostgreSQL and Redis (the test servers by default, in a database of its own), then
# tests/node/bench-reactions.mjs: 1,000 members of one group each PUT one of a few emoji on
# one message at once while a few hundred of their sockets listen. Prints the driver's report
# and the `messages` table's n_tup_upd / n_tup_hot_upd before and after (a reaction must
# never write the message row).
#   scripts/bench-reactions.sh [MEMBERS=1000] [SOCKETS=300] [EMOJI_KINDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
MEMBERS="${1:-1000}"; SOCKETS="${2:-300}"; KINDS="${3:-3}"
ADMIN_URL="${BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:25432/postgres}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26379}"
DB="bench_reactions_$$"
PG_URL="${ADMIN_URL%/*}/$DB"
bin="${CARGO_TARGET_DIR:-target}/release"

deps_up "$ADMIN_URL" "$REDIS"
cargo build --release -q -p chat -p worker
(cd tests/node && npm ci --silent --no-audit --no-fund >/dev/null)
"$(pg_bin)/psql" -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
on_exit "$(pg_bin)/psql" -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
INTERNAL_SECRET="bench-$(random_secret)"
# Compat mode with a secret: the driver calls the chat service as the gateway does, and
# sockets say who they are with presence:join (no 1,000 password hashes to set up).
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="benchr$$"
export AUTH_MODE=compat INTERNAL_SECRET MAX_SOCKETS_PER_USER=100000
port=$(free_port)
PORT=$port HOST=127.0.0.1 "$bin/chat" & track_bg $!
PORT=$(free_port) "$bin/worker" & track_bg $!
wait_http "http://127.0.0.1:$port/readyz" 30

stats() {
  # The statistics are flushed by each backend within a second of its transactions.
  sleep 2
  "$(pg_bin)/psql" -qtA "$PG_URL" -c "SELECT sum(n_tup_upd) || ' ' || sum(n_tup_hot_upd) FROM pg_stat_user_tables WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'messages'::regclass)"
}
echo "machine: $(machine); load average before: $(load_average)"
# Nothing but the burst touches the table after this: the group, the one message (an
# INSERT) and the reactions.
echo "messages n_tup_upd n_tup_hot_upd before: $(stats)"
(
  cd tests/node
  CHAT_URL="http://127.0.0.1:$port" INTERNAL_SECRET="$INTERNAL_SECRET" RUN="b$$" \
    MEMBERS="$MEMBERS" SOCKETS="$SOCKETS" EMOJI_KINDS="$KINDS" node bench-reactions.mjs
)
echo "messages n_tup_upd n_tup_hot_upd after the burst: $(stats)"
echo "load average after: $(load_average)"
