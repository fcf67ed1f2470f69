#!/usr/bin/env bash
# The storing stage alone: how fast WORKERS release workers drain MESSAGES sends queued in a
# send stream of PARTITIONS partitions into PostgreSQL (rows/s), with nothing else running.
#   scripts/bench-drain.sh [MESSAGES] [PARTITIONS] [WORKERS]   (defaults 200000 1 1)
# The sends (64 conversations, round robin, 40-byte bodies) are written to the streams first,
# as the chat service queues them (same entry format, same partition function), then the
# workers start and the clock runs until every row is stored. Its own PostgreSQL and Redis
# (those of scripts/bench-sends.sh), a fresh Redis namespace per run. BENCH_BIN_DIR: the
# worker and chatctl found there instead of building this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
MESSAGES="${1:-200000}"; PARTITIONS="${2:-1}"; WORKERS="${3:-1}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"
bin="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
deps_up "$PG_URL" "$REDIS"
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release -q -p worker -p chatctl
fi
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG="${BENCH_RUST_LOG:-warn}"
export CHAT_NAMESPACE="drain$$" STREAM_PARTITIONS="$PARTITIONS"
"$bin/chatctl" migrate >/dev/null
psql=("$(pg_bin)/psql" -qtA "$PG_URL")
redis_host="$(sed -E 's#^redis://([^:/]+).*#\1#' <<<"$REDIS")"
redis_port="$(sed -E 's#^redis://[^:]+:([0-9]+).*#\1#' <<<"$REDIS")"

convs="$("${psql[@]}" -c "INSERT INTO conversations (id, name, type, created_at)
  SELECT gen_random_uuid(), 'drain', 'group', now() FROM generate_series(1, 64)
  RETURNING id")"
# The entries, as RESP for redis-cli --pipe: XADD <partition's stream> * d <entry>.
python3 - "$MESSAGES" "$PARTITIONS" "$CHAT_NAMESPACE" $convs <<'PY' |
import sys, uuid, json
n, parts, ns, convs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def stream(conv):
    # platform_core::stream::partition_of: the id's last four bytes, big-endian, modulo.
    p = int(conv.replace('-', '')[-8:], 16) % parts
    return f"{ns}:messages" if p == 0 else f"{ns}:messages:{p}"
out = sys.stdout.buffer
for i in range(n):
    c = convs[i % len(convs)]
    entry = json.dumps({"op": "create", "id": str(uuid.uuid4()), "conversationId": c,
                        "senderId": "drain", "body": f"drain message {i:08d} xxxxxxxxxxxxxxxx",
                        "sentAt": "2026-12-07T10:00:00.000Z"}, separators=(",", ":"))
    args = [b"XADD", stream(c).encode(), b"*", b"d", entry.encode()]
    out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
PY
  redis-cli -h "$redis_host" -p "$redis_port" --pipe >/dev/null
before="$("${psql[@]}" -c "SELECT count(*) FROM messages")"
echo "machine: $(machine); queued $MESSAGES sends in $PARTITIONS partition(s); load average before: $(load_average)"
start="$(date +%s.%N)"
for ((i = 1; i <= WORKERS; i++)); do
  PORT=$(free_port) METRICS_PORT=$(free_port) "$bin/worker" & track_bg $!
done
while true; do
  stored=$(( $("${psql[@]}" -c "SELECT count(*) FROM messages") - before ))
  [ "$stored" -ge "$MESSAGES" ] && break
  sleep 0.1
done
end="$(date +%s.%N)"
python3 -c "s=$end-$start; print(f'stored $stored rows in {s:.2f} s with $WORKERS worker(s): {$stored/s:,.0f} rows/s')"
echo "load average after: $(load_average)"
