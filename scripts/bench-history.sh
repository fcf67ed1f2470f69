#!/usr/bin/env bash
# The history-page benchmark: the release stack (gateway, chat, worker) on private ports
# against its own PostgreSQL and Redis, a conversation of 2,000 messages, and
# `wrk -t2 -c$CONNS` (Debian's wrk, installed if missing) reading its newest page of 100,
# through the gateway and straight to the chat service, then the ceiling: PostgreSQL alone
# running the same page's SELECT (`pgbench -M prepared -c$CONNS -j2`). Prints each run's
# requests/s, latency percentiles, non-2xx answers, and the CPU time of the whole server
# side (gateway, chat, worker, PostgreSQL, Redis: utime+stime from /proc over the measured
# window) per request, with the load average.
#   scripts/bench-history.sh [--signed-in] [SECONDS] [CONNS]
# Without --signed-in: AUTH_MODE=compat, anonymous reads. With it: AUTH_MODE=token, eight
# registered members read with their bearer tokens through the gateway, and with the
# gateway's identity headers straight to chat.
# HISTORY_REACTIONS=1: every fifth message is a reply and every message has reactions (as
# `cargo bench -p bench --bench history`). HISTORY_CACHE_BYTES (passed to chat): 0 turns the
# page cache off. BENCH_DATABASE_URL may carry `?options=-c%20plan_cache_mode%3Dauto` to give
# the history pool PostgreSQL's default plan choice back (the build before the change).
# BENCH_BIN_DIR: run the binaries found there instead of building this checkout.
# BENCH_PORT: the gateway's port (default 3200); chat, call and worker take the next three.
# SOCKET_DIR: the gateway reaches chat over Unix sockets there, as scripts/run-stack.sh runs
# them (default: a fresh folder); SOCKET_DIR= (empty) keeps them on TCP.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
SIGNED_IN=""
if [ "${1:-}" = "--signed-in" ]; then SIGNED_IN=1; shift; fi
SECONDS_RUN="${1:-15}"; CONNS="${2:-64}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
PG_PLAIN="${PG_URL%%\?*}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"
bin="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
GW="${BENCH_PORT:-3200}"; CHAT=$((GW + 1)); CALL=$((GW + 2)); WORKER=$((GW + 3))

deps_up "$PG_PLAIN" "$REDIS"
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release -q -p chat -p worker -p gateway
fi
command -v wrk >/dev/null || { deps_log "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
INTERNAL_SECRET="bench-$(random_secret)"
# METRICS_PORT=0: a port of the kernel's choice, so runs beside other stacks never collide.
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="bench$$" METRICS_PORT=0
export RATE_REGISTRATIONS_PER_ADDRESS=1000000000 RATE_READS_PER_USER=1000000000 RATE_READS_PER_ADDRESS=1000000000
if [ -n "$SIGNED_IN" ]; then
  export AUTH_MODE=token INTERNAL_SECRET
else
  export AUTH_MODE=compat
fi
bench_stack "$bin" "$GW"

psql=("$(pg_bin)/psql" -qtA -v ON_ERROR_STOP=1 "$PG_PLAIN")
conv="$(python3 -c 'import uuid; print(uuid.uuid4())')"
"${psql[@]}" <<SQL
INSERT INTO conversations (id, name, type, created_at) VALUES ('$conv', 'history', 'group', now() - interval '30 days');
INSERT INTO conversation_members (conversation_id, user_id, display_name, position)
SELECT '$conv', 'user-' || j, 'User ' || j, j + 100 FROM generate_series(0, 49) j;
INSERT INTO messages (id, conversation_id, sender_id, body, sent_at)
SELECT gen_random_uuid(), '$conv', 'user-' || (k % 50),
       'message ' || k || ': see you at the stand-up, I will bring the notes',
       now() - make_interval(mins => 2000 - k)
FROM generate_series(1, 2000) k ORDER BY k;
SQL
if [ "${HISTORY_REACTIONS:-}" = "1" ]; then
  "${psql[@]}" <<SQL
WITH numbered AS (SELECT id, row_number() OVER (ORDER BY seq) k FROM messages WHERE conversation_id = '$conv')
UPDATE messages m SET reply_to_id = o.id FROM numbered r, numbered o
WHERE m.id = r.id AND r.k % 5 = 0 AND o.k = r.k - 3;
WITH numbered AS (SELECT id, row_number() OVER (ORDER BY seq) k FROM messages WHERE conversation_id = '$conv')
INSERT INTO message_reactions (message_id, emoji, user_id, reacted_at)
SELECT n.id, (ARRAY['👍', '❤️', '😂'])[e], 'user-' || u, now() + make_interval(secs => e * 20 + u)
FROM numbered n, generate_series(1, 3) e, generate_series(1, 12) u
WHERE e <= 1 + n.k % 3 AND u <= 1 + (n.k * e) % 12;
SQL
fi
"${psql[@]}" -c "ANALYZE messages; ANALYZE message_reactions; ANALYZE attachments"

# Who reads: through the gateway (bearer tokens) and straight to chat (the gateway's headers).
via_gateway=""; via_chat=""
if [ -n "$SIGNED_IN" ]; then
  via_gateway="$(mktemp)"; via_chat="$(mktemp)"; on_exit rm -f "$via_gateway" "$via_chat"
  for i in 0 1 2 3 4 5 6 7; do
    user="reader$$-$i"
    token="$(curl -fsS -H 'content-type: application/json' \
      -d "{\"userId\":\"$user\",\"displayName\":\"Reader $i\",\"password\":\"password-$user\"}" \
      "http://127.0.0.1:$GW/auth/register" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
    "${psql[@]}" -c "INSERT INTO conversation_members (conversation_id, user_id, display_name, position) VALUES ('$conv', '$user', 'Reader $i', $i)"
    printf 'authorization: Bearer %s\n' "$token" >>"$via_gateway"
    printf 'x-user-id: %s\tx-internal-secret: %s\n' "$user" "$INTERNAL_SECRET" >>"$via_chat"
  done
fi
page="/conversations/$conv/messages?limit=100"
bytes="$(curl -fsS "http://127.0.0.1:$CHAT$page" ${SIGNED_IN:+-H "x-user-id: reader$$-0" -H "x-internal-secret: $INTERNAL_SECRET"} | wc -c)"

# The server side's processes: the services, PostgreSQL (the postmaster and its children),
# Redis.
listener() { ss -Hltnp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1; }
pg_port="$(url_part "$PG_PLAIN" port)"; redis_port="$(url_part "$REDIS" port)"
server_pids() {
  local pm
  pm="$(listener "$pg_port")"
  echo "$(listener "$GW") $(listener "$CHAT") $(listener "$WORKER") $(listener "$redis_port") $pm $(pgrep -P "$pm" | tr '\n' ' ')"
}
# cpu_ticks PID...: utime+stime summed (clock ticks); a process gone meanwhile counts 0.
cpu_ticks() {
  local t=0 p f
  for p in "$@"; do
    f="$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null)" || continue
    set -- $f
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
hz="$(getconf CLK_TCK)"

echo "machine: $(machine); page of 100: $bytes bytes; load average before: $(load_average)"
mode=compat; [ -n "$SIGNED_IN" ] && mode="signed in"
echo "settings: $mode, HISTORY_CACHE_BYTES=${HISTORY_CACHE_BYTES:-default}, reactions=${HISTORY_REACTIONS:-0}"
for target in gateway chat; do
  if [ "$target" = gateway ]; then url="http://127.0.0.1:$GW"; ids="$via_gateway"; else url="http://127.0.0.1:$CHAT"; ids="$via_chat"; fi
  args=("$page"); [ -n "$ids" ] && args+=("$ids")
  wrk -t2 -c"$CONNS" -d3s -s scripts/wrk/history.lua "$url" -- "${args[@]}" >/dev/null
  pids="$(server_pids)"
  # shellcheck disable=SC2086
  before="$(cpu_ticks $pids)"
  out="$(wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" -s scripts/wrk/history.lua "$url" -- "${args[@]}")"
  # shellcheck disable=SC2086
  after="$(cpu_ticks $pids)"
  reqs="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")"
  rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")"
  pct="$(sed -n 's/^p50\/p99\/p99.9 ms: //p' <<<"$out")"
  bad="$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' <<<"$out")"
  cpu="$(python3 -c "print(round(($after - $before) * 1e6 / $hz / max($reqs, 1), 1))")"
  echo "$target: $rps req/s; p50/p99/p99.9 ms: $pct; non-2xx: ${bad:-0}; server CPU per request: $cpu µs; load average: $(load_average)"
done
chat_pid="$(listener "$CHAT")"
metrics="$(ss -Hltnp | grep "pid=$chat_pid," | awk '{print $4}' | sed 's/.*://' | grep -vx "$CHAT" | head -n 1)"
curl -fsS "http://127.0.0.1:$metrics/metrics" 2>/dev/null | grep '^chat_history_cache' || true

# The ceiling: PostgreSQL alone answering the same page's SELECT (hydrate's statement not
# included).
sql="$(mktemp)"; on_exit rm -f "$sql"
cat >"$sql" <<SQL
SELECT m.id, m.conversation_id, m.sender_id, m.body, m.sent_at, m.edited_at, m.client_message_id, m.reply_to_id
FROM messages m WHERE m.conversation_id = '$conv' AND m.seq < 9223372036854775807 AND m.deleted_at IS NULL
ORDER BY m.seq DESC LIMIT 101;
SQL
tps="$("$(pg_bin)/pgbench" -n -M prepared -c"$CONNS" -j2 -T10 -f "$sql" "$PG_PLAIN" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')"
echo "ceiling: PostgreSQL alone, the page's SELECT, pgbench -M prepared -c$CONNS -j2 -T10: $tps/s; load average after: $(load_average)"
