#!/usr/bin/env bash
# The drops benchmark of docs/perf/2026-12-recovery.md: the harness of the drops test
# (tests/node/drops.mjs, the shape of AnyCable's published test) at a larger size, against
# the chat service (release, one instance, with its worker and the gateway for sign-up and
# sends; clients connect straight to chat and ask for recovery) and against the Node
# socket.io peer with its own connection state recovery on (RECOVERY=1, one instance,
# in-memory adapter). Each client goes through its own TCP proxy, cut for CUT_MS at random
# moments; a steady stream of RATE messages/s for DURATION seconds. Prints a table; stops
# everything.
#   scripts/bench-drops.sh
# Environment: CLIENTS (200), DURATION (60 s), RATE (50 messages/s), CUT_MS (2000), CUT_EVERY
# (5: mean seconds between a client's cuts), RECOVERY_WINDOW_SECS (300, both servers).
# Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
export CLIENTS="${CLIENTS:-200}" DURATION="${DURATION:-60}" RATE="${RATE:-50}" CUT_MS="${CUT_MS:-2000}" CUT_EVERY="${CUT_EVERY:-5}"
export RECOVERY_WINDOW_SECS="${RECOVERY_WINDOW_SECS:-300}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:15435/benchdrops}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:16382}"
CHAT=127.0.0.1:3321; WORKER_PORT=3323; GATEWAY=127.0.0.1:3320; NODE=127.0.0.1:3324
T="${CARGO_TARGET_DIR:-target}/release"
OUT="$(mktemp /tmp/bench-drops.XXXXXX)"
on_exit rm -f "$OUT"

deps_up "$PG_URL" "$REDIS"
# The same package set as bench-relay.sh first (another set unifies features differently and
# rebuilds chat), then the gateway on its own.
cargo build --release -q -p chat -p worker -p loadtest
cargo build --release -q -p gateway
(cd loadtest/peers/node-socketio && npm ci --silent --no-audit --no-fund >/dev/null)
(cd tests/node && npm ci --silent --no-audit --no-fund >/dev/null)

export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="drops$$"
INTERNAL_SECRET="drops-$(random_secret)"
export INTERNAL_SECRET AUTH_MODE=token
# One address registers and sends for everyone: the per-address and per-user limits would
# otherwise shape what is measured.
export RATE_SENDS_PER_USER=1000000 RATE_SENDS_PER_ADDRESS=1000000 RATE_REGISTRATIONS_PER_ADDRESS=1000000 \
  RATE_CONNECTS_PER_ADDRESS=1000000 MAX_CONNECTIONS_PER_ADDRESS=1000000 RATE_CONVERSATIONS_PER_ADDRESS=1000000
PORT="${CHAT##*:}" HOST=127.0.0.1 "$T/chat" & track_bg $!
PORT="$WORKER_PORT" "$T/worker" & track_bg $!
PORT="${GATEWAY##*:}" HOST=127.0.0.1 CHAT_SERVICE_URL="http://$CHAT" CALL_SERVICE_URL=http://127.0.0.1:9 \
  "$T/gateway" & track_bg $!
(cd loadtest/peers/node-socketio && PORT="${NODE##*:}" RECOVERY=1 exec node server.mjs >/dev/null) & track_bg $!
wait_http "http://$CHAT/readyz"
wait_http "http://127.0.0.1:$WORKER_PORT/readyz"
wait_http "http://$GATEWAY/healthz"
wait_http "http://$NODE/socket.io/?EIO=4&transport=polling"

echo "machine: $(machine); node $(node --version); load average $(load_average)"
echo "$CLIENTS clients, $RATE messages/s for $DURATION s, cuts of $CUT_MS ms every $CUT_EVERY s on average per client"
drops() {
  (cd tests/node && timeout $((DURATION + 300)) env SECONDS="$DURATION" SETTLE_MS=60000 node drops.mjs) \
    | grep '^RESULT' | tee -a "$OUT"
}
TARGET=chat SOCKET_URLS="http://$CHAT" GATEWAY_URL="http://$GATEWAY" RUN="drops$$" drops
TARGET=node SOCKET_URLS="http://$NODE" PEER_URL="http://$NODE" RUN="drops$$" drops
echo "load average after: $(load_average)"

python3 - "$OUT" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    kind, *kv = line.split()[1:]
    d = dict(x.split("=", 1) for x in kv)
    rows[d["target"]] = d
keys = [("messages", "messages sent"), ("sendRate", "messages/s achieved"), ("cuts", "cuts"),
        ("reconnects", "reconnects"), ("recovered", "recovered"), ("notRecovered", "new session (not recovered)"),
        ("complete", "clients with every message once"), ("duplicates", "duplicates"), ("gaps", "missing"),
        ("outOfOrder", "out of order"), ("neverCaughtUp", "reconnects never caught up"),
        ("catchUpP50Ms", "attempt to caught up p50 ms"), ("catchUpP99Ms", "attempt to caught up p99 ms"),
        ("catchUpMaxMs", "attempt to caught up max ms")]
print()
print(f"{'':34}{'chat':>12}{'node':>12}")
for k, label in keys:
    print(f"{label:34}" + "".join(f"{rows.get(t, {}).get(k, '-'):>12}" for t in ("chat", "node")))
PY
