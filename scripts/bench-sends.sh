#!/usr/bin/env bash
# The durable-send benchmark of BENCHMARKS.md: the release stack (gateway, chat, worker) on
# private ports against its own PostgreSQL and Redis, and the load generator with 64
# concurrent senders posting through the gateway. Prints the figures; stops everything.
#   scripts/bench-sends.sh [--wrk] [--signed-in] [SECONDS] [SENDERS]
# --wrk: the load comes from `wrk -t2 -c$SENDERS` (Debian's wrk, installed if missing) with
# scripts/wrk/sends.lua instead of the project's generator, after 3 s of warm-up; the rows
# stored during the run are counted against the 201s answered, and the ceiling is measured in
# the same run: PostgreSQL alone inserting the same rows in batches of 100 (`pgbench -c8 -j2`,
# 10 s), into the same table and into a copy of it without indexes.
# Without --signed-in the generator sends no tokens (AUTH_MODE=compat, which still checks the
# per-address send limit at the gateway); with it every sender registers and sends with its
# bearer token (AUTH_MODE=token). Either way the limits are raised far above the rate reached.
# BENCH_BIN_DIR: run the chat, worker, gateway and sends binaries found there instead of
# building this checkout (to alternate builds of two commits, e.g. before/after a change).
# SOCKET_DIR: the gateway reaches chat over Unix sockets there, as scripts/run-stack.sh runs
# them (default: a fresh folder); SOCKET_DIR= (empty) keeps them on TCP.
# BENCH_PORT: the gateway's port (default 3200); chat, call and worker take the next three.
# BENCH_RUST_LOG: the services' RUST_LOG (default warn; `info` adds the access log, a line per
# request on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
SIGNED_IN=""; WRK=""
while true; do
  case "${1:-}" in
    --signed-in) SIGNED_IN="--signed-in"; shift ;;
    --wrk) WRK=1; shift ;;
    *) break ;;
  esac
done
SECONDS_RUN="${1:-20}"; SENDERS="${2:-64}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"
bin="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
GW="${BENCH_PORT:-3200}"

deps_up "$PG_URL" "$REDIS"
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release -q -p chat -p worker -p gateway -p loadtest
fi
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG="${BENCH_RUST_LOG:-warn}" CHAT_NAMESPACE="bench$$"
export RATE_SENDS_PER_ADDRESS=1000000000 RATE_SENDS_PER_USER=1000000000 RATE_REGISTRATIONS_PER_ADDRESS=1000000000
if [ -n "$SIGNED_IN" ]; then
  INTERNAL_SECRET="bench-$(random_secret)"
  export AUTH_MODE=token INTERNAL_SECRET
else
  export AUTH_MODE=compat
fi
bench_stack "$bin" "$GW"
echo "machine: $(machine); load average before: $(load_average)"
if [ -z "$WRK" ]; then
  "$bin/sends" --target 127.0.0.1:$GW --senders "$SENDERS" --seconds "$SECONDS_RUN" --warmup 3 $SIGNED_IN
  echo "load average after: $(load_average)"
  exit 0
fi

command -v wrk >/dev/null || { deps_log "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
psql=("$(pg_bin)/psql" -qtA "$PG_URL")
targets="$(mktemp)"; on_exit rm -f "$targets"
"$bin/sends" --target 127.0.0.1:$GW --senders "$SENDERS" $SIGNED_IN --targets-to "$targets"
# rows_now: messages stored so far, once the queue has drained (the worker's batches).
rows_now() {
  local last=-1 n
  while true; do
    n="$("${psql[@]}" -c "SELECT count(*) FROM messages")"
    [ "$n" = "$last" ] && { echo "$n"; return; }
    last="$n"; sleep 1
  done
}
wrk -t2 -c"$SENDERS" -d3s -s scripts/wrk/sends.lua "http://127.0.0.1:$GW" -- "$targets" >/dev/null
before="$(rows_now)"
out="$(wrk -t2 -c"$SENDERS" -d"${SECONDS_RUN}s" --latency -s scripts/wrk/sends.lua "http://127.0.0.1:$GW" -- "$targets")"
echo "$out"
stored=$(( $(rows_now) - before ))
answered="$(sed -n 's/^answered 201: //p' <<<"$out")"
echo "stored during the run: $stored; answered 201: $answered (a send cut off at the end may be stored unanswered: at most $SENDERS)"
[ "$stored" -ge "$answered" ] && [ "$stored" -le $((answered + SENDERS)) ] \
  || echo "MISMATCH: a 201 without its row, or rows without answers beyond the cut-off" >&2
echo "load average after: $(load_average)"

# The ceilings: PostgreSQL alone inserting the same rows, 100 per statement, into the same
# table (its indexes, foreign key and search index included) and into a plain copy of it
# without any index (what the issue's first figure measured).
conv="$("${psql[@]}" -c "SELECT conversation_id FROM messages LIMIT 1")"
"${psql[@]}" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_plain; CREATE TABLE bench_plain (LIKE messages INCLUDING DEFAULTS INCLUDING IDENTITY)"
bench_sql="$(mktemp)"; on_exit rm -f "$bench_sql"
for table in messages bench_plain; do
  cat >"$bench_sql" <<SQL
INSERT INTO $table (id, conversation_id, sender_id, body, sent_at)
SELECT gen_random_uuid(), '$conv', 'pgbench', 'pgbench message ' || g, now() FROM generate_series(1, 100) g;
SQL
  tps="$("$(pg_bin)/pgbench" -n -c8 -j2 -T10 -f "$bench_sql" "$PG_URL" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')"
  echo "ceiling ($table): PostgreSQL alone, pgbench -c8 -j2 -T10, 100 rows per INSERT: $(python3 -c "print(round($tps * 100))") rows/s; load average after: $(load_average)"
done
"${psql[@]}" -c "DROP TABLE bench_plain"