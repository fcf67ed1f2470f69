#!/usr/bin/env bash
# The realtime relay benchmark of BENCHMARKS.md, side by side in one run with one load client
# (loadtest/src/bin/relay.rs): the chat service (release, with its worker, PostgreSQL and
# Redis on private ports), the minimal fastwebsockets relay (the ceiling) and the Node
# socket.io peer. For each: server RSS per idle connection, then `typing:update` relayed to
# the 999 other members of one conversation at a fixed rate (p50/p99 delivery latency) and at
# saturation (delivered events/s), then overload: `typing:update` offered at OVERLOAD_RATE/s
# with no window (delivered events/s, p50/p99 of what was delivered, receivers disconnected
# as slow clients). Prints a table with the issue's ratios; stops everything.
#   scripts/bench-relay.sh [SECONDS]          (per measured phase; default 10)
# Environment: CLIENTS (1000), RATE (100 relays/s), IDLE (10000 connections; 0 skips the
# idle phase), WINDOW (32), OVERLOAD_RATE (2400 relays/s).
# Loopback only; every phase is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
RUN_SECS="${1:-10}"; CLIENTS="${CLIENTS:-1000}"; RATE="${RATE:-100}"; IDLE="${IDLE:-10000}"; WINDOW="${WINDOW:-32}"
OVERLOAD_RATE="${OVERLOAD_RATE:-2400}"
# Ports below the ephemeral range (32768+): the 10,000 client sockets of the idle phase
# would otherwise leave TIME_WAIT sockets on them and a rerun could not bind.
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:15434/benchrelay}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:16381}"
CHAT=127.0.0.1:3311; WORKER_PORT=3313; MINIMAL=127.0.0.1:3312; NODE=127.0.0.1:3314
T="${CARGO_TARGET_DIR:-target}/release"
OUT="$(mktemp /tmp/bench-relay.XXXXXX)"

# The idle phase holds IDLE sockets in the client and as many in each server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((IDLE + 200)) ]; then
  echo "open files limit $(ulimit -n) is below IDLE+200; lower IDLE or raise the hard limit" >&2; exit 1
fi

on_exit rm -f "$OUT"
deps_up "$PG_URL" "$REDIS"
cargo build --release -q -p chat -p worker -p loadtest
(cd loadtest/peers/node-socketio && npm ci --silent --no-audit --no-fund >/dev/null)

export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="relay$$"
# The relay clients connect without tokens, as the peers' clients do: compat mode.
export AUTH_MODE=compat
# One sender emits every relay: the per-socket and per-user event limits (5/s after a burst
# of 20, 1,200/min) would cap it at a few relays a second, far below what is measured.
export SOCKET_EVENT_BURST=100000 SOCKET_EVENTS_PER_SEC=100000 SOCKET_EVENTS_PER_USER_PER_MIN=10000000
PORT="${CHAT##*:}" HOST=127.0.0.1 "$T/chat" & chat_pid=$!; track_bg "$chat_pid"
PORT="$WORKER_PORT" "$T/worker" & track_bg $!
"$T/minimal_relay" --listen "$MINIMAL" >/dev/null & minimal_pid=$!; track_bg "$minimal_pid"
(cd loadtest/peers/node-socketio && PORT="${NODE##*:}" exec node server.mjs >/dev/null) & node_pid=$!; track_bg "$node_pid"
wait_http "http://$CHAT/readyz"
wait_http "http://127.0.0.1:$WORKER_PORT/readyz"
wait_http "http://$NODE/socket.io/?EIO=4&transport=polling"
wait_tcp "$MINIMAL"

# One group of CLIENTS members, relay-0 .. relay-(CLIENTS-1), created over HTTP.
body="$(python3 -c 'import json,sys; n=int(sys.argv[1]); print(json.dumps({"type":"group","name":"relay bench","members":[{"userId":f"relay-{i}","displayName":f"Relay {i}"} for i in range(n)]}))' "$CLIENTS")"
conv="$(curl -fs -X POST -H 'content-type: application/json' --data "$body" "http://$CHAT/conversations" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"

echo "machine: $(machine); node $(node --version); load average $(load_average)"
echo "conversation $conv with $CLIENTS members; $RUN_SECS s per phase"
relay() { timeout 300 "$T/relay" "$@" | tee -a "$OUT"; }
# Idle memory first, on fresh servers, so that no earlier load inflates the baseline.
[ "$IDLE" -gt 0 ] && for t in "minimal $MINIMAL $minimal_pid" "chat $CHAT $chat_pid" "node $NODE $node_pid"; do
  read -r name addr pid <<<"$t"
  # Chat's clients say who they are (presence:join), as a browser does: relay-0..999 are the
  # conversation's members, the others no one's contacts.
  join=(); [ "$name" = chat ] && join=(--conversation "$conv")
  timeout 300 "$T/relay" --mode idle --target "$addr" --pid "$pid" --clients "$IDLE" --settle 3 "${join[@]}" \
    | sed "s/^RESULT idle/RESULT idle name=$name/" | tee -a "$OUT"
  sleep 2
done
common=(--mode load --clients "$CLIENTS" --rate "$RATE" --seconds "$RUN_SECS" --warmup 2 --window "$WINDOW")
relay "${common[@]}" --target "$MINIMAL" --settle 2
relay "${common[@]}" --target "$CHAT" --conversation "$conv" --users relay- --settle 5
relay "${common[@]}" --target "$NODE" --settle 2
# Overload last: a receiver it disconnects stays gone, so nothing after it would be fair.
over=(--mode overload --clients "$CLIENTS" --rate "$OVERLOAD_RATE" --seconds "$RUN_SECS")
relay "${over[@]}" --target "$MINIMAL" --settle 2
relay "${over[@]}" --target "$CHAT" --conversation "$conv" --users relay- --settle 5
relay "${over[@]}" --target "$NODE" --settle 2
echo "load average after: $(load_average)"

python3 - "$OUT" "$MINIMAL" "$CHAT" "$NODE" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    kind, *kv = line.split()[1:]
    d = dict(x.split("=", 1) for x in kv)
    rows[(kind, d.get("target"))] = d
names = {}
for (kind, target), d in rows.items():
    if kind == "idle":
        names[target] = d["name"]
# Without the idle phase the names come from the known addresses.
names.setdefault(sys.argv[2], "minimal"); names.setdefault(sys.argv[3], "chat"); names.setdefault(sys.argv[4], "node")
def get(kind, name, key):
    for (k, t), d in rows.items():
        if k == kind and names.get(t) == name:
            return float(d[key])
    return float("nan")
print()
print(f"{'':34}{'minimal':>12}{'chat':>12}{'node':>12}   ratio (aim)")
p99 = [get("rate", n, "p99_ms") for n in ("minimal", "chat", "node")]
p50 = [get("rate", n, "p50_ms") for n in ("minimal", "chat", "node")]
eps = [get("saturation", n, "events_per_s") for n in ("minimal", "chat", "node")]
kib = [get("idle", n, "kib_per_conn") for n in ("minimal", "chat", "node")]
ach = [get("rate", n, "relays_per_s") for n in ("minimal", "chat", "node")]
print(f"{'relays/s achieved (fixed rate)':34}" + "".join(f"{v:12.1f}" for v in ach))
print(f"{'p50 ms at rate':34}" + "".join(f"{v:12.2f}" for v in p50))
print(f"{'p99 ms at rate':34}" + "".join(f"{v:12.2f}" for v in p99) + f"   chat/minimal {p99[1]/p99[0]:.2f} (<= 1.2)")
print(f"{'delivered events/s, saturation':34}" + "".join(f"{v:12.0f}" for v in eps)
      + f"   chat/minimal {eps[1]/eps[0]:.2f} (>= 0.8), chat/node {eps[1]/eps[2]:.2f} (>= 3)")
print(f"{'server KiB per idle connection':34}" + "".join(f"{v:12.2f}" for v in kib) + "   chat < 16")
kern = [get("idle", n, "kernel_kib_per_conn_both_ends") for n in ("minimal", "chat", "node")]
print(f"{'kernel KiB per connection (2 ends)':34}" + "".join(f"{v:12.2f}" for v in kern))
off = [get("overload", n, "offered_per_s") for n in ("minimal", "chat", "node")]
oeps = [get("overload", n, "events_per_s") for n in ("minimal", "chat", "node")]
ofr = [get("overload", n, "delivered_fraction") for n in ("minimal", "chat", "node")]
o50 = [get("overload", n, "p50_ms") for n in ("minimal", "chat", "node")]
o99 = [get("overload", n, "p99_ms") for n in ("minimal", "chat", "node")]
odis = [get("overload", n, "disconnected") for n in ("minimal", "chat", "node")]
print(f"{'overload: offered relays/s':34}" + "".join(f"{v:12.1f}" for v in off))
print(f"{'overload: delivered events/s':34}" + "".join(f"{v:12.0f}" for v in oeps)
      + f"   chat/minimal {oeps[1]/oeps[0]:.2f} (>= 0.8)")
print(f"{'overload: fraction delivered':34}" + "".join(f"{v:12.3f}" for v in ofr))
print(f"{'overload: p50 ms delivered':34}" + "".join(f"{v:12.2f}" for v in o50))
print(f"{'overload: p99 ms delivered':34}" + "".join(f"{v:12.2f}" for v in o99))
print(f"{'overload: receivers disconnected':34}" + "".join(f"{v:12.0f}" for v in odis)
      + f"   chat {'none' if odis[1] == 0 else int(odis[1])} (aim: none)")
PY
