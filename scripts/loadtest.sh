#!/usr/bin/env bash
# The goose load tests (loadtest/goose) against the gateway, and the realtime peer comparison
# (the chat service's sockets both straight to it and through the gateway).
# Starts everything itself: PostgreSQL and Redis on private ports (scripts/deps.sh), the
# release gateway, chat, worker and call services, and the peers (minimal relay, Node
# socket.io from npm, socketioxide); stops all of it at the end. Reports go to
# target/loadtest/: goose's HTML and JSON per run (<run>.html, <run>.json), the socket-side
# HDR percentiles and service memory beside them (<run>-extra.{json,html}, <run>-memory.csv),
# and summary.md with the REST table and the peer comparison.
#
#   scripts/loadtest.sh [SECONDS]          REST mix, realtime scenarios, peer comparison
#                                          (SECONDS per measured run, default 15; ~6 min)
#   scripts/loadtest.sh --soak MINUTES [PER_SECOND]
#                                          REST mix + broadcast + typing at a fixed rate
#                                          (default 200 transactions/s in all), memory sampled
#
# Environment: HTTP (sends history; empty skips them): goose runs of one request each through
# the gateway, HTTP_USERS (64) users sending durable messages as fast as answered, or reading
# the newest page of 100 of a conversation they filled first. ROOMS (10) and MEMBERS (20): the realtime conversations; PACE_MS (100): the
# pause after each event in the paced runs (one sender per room); SENDERS (4): senders per
# room in the saturation runs, each with one event in the air; REST_USERS (32; 0 skips the
# REST mix). A subset of the realtime runs (e.g. for an A/B of one change): TARGETS
# (chat-direct chat-gateway minimal node socketioxide), SCENARIOS (typing broadcast), PHASES
# (paced saturation); SCENARIOS= (empty) runs none of them. ROUNDS (1): the realtime runs are repeated, in turn, this many times
# (rounds after the first are named <run>-r<N>; summary.md lists every round). GATEWAY_B: a
# second gateway binary (e.g. a build of another commit), started on port 5004 beside the
# first and measured as the target chat-gateway-b, so that an A/B of a gateway change
# alternates between the two under the same conditions. LOADTEST_RECOVERY=1: the chat
# sockets ask for connection state recovery (`"recovery": true` in their CONNECT auth), so
# that every recorded event carries its offset; with RECOVERY_WINDOW_SECS=0 (passed to the
# services like any of their settings) nothing is recorded: the two give recovery's cost,
# e.g. TARGETS=chat-direct SCENARIOS=broadcast with each. LOADTEST_BIN_DIR: run the binaries
# found there (services, loadtest-goose, peers) instead of building them; LOADTEST_PORT and
# SOCKET_DIR: below.
#
# Identity: every load-test user registers (POST /auth/register) and sends its bearer token
# with each request and in the Socket.IO CONNECT payload. The per-user and per-address
# limits (sends, registrations, sign-in failures) are raised far above what one run does,
# so that they do not shape what is measured: all the load comes from one address.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh

MODE=normal; SECS=15; SOAK_MIN=0; RATE=200
if [ "${1:-}" = "--soak" ]; then
  MODE=soak; SOAK_MIN="${2:?--soak MINUTES [PER_SECOND]}"; RATE="${3:-200}"
elif [ -n "${1:-}" ]; then
  SECS="$1"
fi
GATEWAY_B="${GATEWAY_B:-}"
TARGETS="${TARGETS:-chat-direct chat-gateway${GATEWAY_B:+ chat-gateway-b} minimal node socketioxide}"
ROUNDS="${ROUNDS:-1}"
if [[ " $TARGETS " == *" chat-gateway-b "* && -z "$GATEWAY_B" ]]; then
  echo "TARGETS has chat-gateway-b: set GATEWAY_B to a gateway binary" >&2; exit 2
fi
HTTP="${HTTP-sends history}"; HTTP_USERS="${HTTP_USERS:-64}"
SCENARIOS="${SCENARIOS-typing broadcast}"; PHASES="${PHASES:-paced saturation}"
ROOMS="${ROOMS:-10}"; MEMBERS="${MEMBERS:-20}"; PACE_MS="${PACE_MS:-100}"; SENDERS="${SENDERS:-4}"; REST_USERS="${REST_USERS:-32}"
PG_URL="${LOADTEST_DATABASE_URL:-postgres://postgres@127.0.0.1:55432/loadtest}"
REDIS="${LOADTEST_REDIS_URL:-redis://127.0.0.1:56379}"
# LOADTEST_PORT moves every port of the run (default 5000: gateway, +1 chat, +2 call, +3 worker,
# +4 the second gateway, +10..+12 the peers; the services' metrics ports from +20), so two
# runs can share the machine.
P="${LOADTEST_PORT:-5000}"
GATEWAY=127.0.0.1:$P; GATEWAY_B_ADDR=127.0.0.1:$((P + 4)); CHAT_PORT=$((P + 1)); CALL_PORT=$((P + 2)); WORKER_PORT=$((P + 3))
MINIMAL=127.0.0.1:$((P + 10)); NODE=127.0.0.1:$((P + 11)); SIOXIDE=127.0.0.1:$((P + 12))
METRICS_BASE=$((P + 20))
T="${CARGO_TARGET_DIR:-$PWD/target}"
OUT="$PWD/target/loadtest"
mkdir -p "$OUT"
# A full run replaces the reports of the last one; a soak only its own.
if [ "$MODE" = normal ]; then rm -f "$OUT"/*; fi

deps_up "$PG_URL" "$REDIS"
step "building (release)"
if [ -n "${LOADTEST_BIN_DIR:-}" ]; then
  B="$LOADTEST_BIN_DIR"
else
  cargo build --release -q -p chat -p worker -p call -p gateway -p loadtest --target-dir "$T"
  cargo build --release -q --manifest-path loadtest/goose/Cargo.toml --target-dir "$T"
  B="$T/release"
fi

export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="load$$"
# Identity: a shared secret between the gateway and the services, and limits raised so that
# one address driving thousands of users is not throttled (see the comment at the top).
INTERNAL_SECRET="loadtest-$(random_secret)"
export INTERNAL_SECRET
export "${LOADTEST_LIMITS[@]}"

# The stack is co-located as scripts/run-stack.sh runs it: chat and the gateway meet over Unix
# sockets (WebSockets handed to chat). SOCKET_DIR= (empty) keeps them on TCP.
if [ -z "${SOCKET_DIR+set}" ]; then SOCKET_DIR="${TMPDIR:-/tmp}/loadtest-run-$$"; fi
export SOCKET_DIR

METRICS_PORT=$METRICS_BASE PORT=$CHAT_PORT HOST=127.0.0.1 "$B/chat" & chat_pid=$!; track_bg "$chat_pid"
METRICS_PORT=$((METRICS_BASE + 1)) PORT=$WORKER_PORT "$B/worker" & worker_pid=$!; track_bg "$worker_pid"
METRICS_PORT=$((METRICS_BASE + 2)) PORT=$CALL_PORT HOST=127.0.0.1 "$B/call" & call_pid=$!; track_bg "$call_pid"
METRICS_PORT=$((METRICS_BASE + 3)) PORT="${GATEWAY##*:}" HOST=127.0.0.1 CHAT_SERVICE_URL="http://127.0.0.1:$CHAT_PORT" \
  CALL_SERVICE_URL="http://127.0.0.1:$CALL_PORT" "$B/gateway" & gateway_pid=$!; track_bg "$gateway_pid"
if [ -n "$GATEWAY_B" ]; then
  METRICS_PORT=$((METRICS_BASE + 4)) PORT="${GATEWAY_B_ADDR##*:}" HOST=127.0.0.1 CHAT_SERVICE_URL="http://127.0.0.1:$CHAT_PORT" \
    CALL_SERVICE_URL="http://127.0.0.1:$CALL_PORT" "$GATEWAY_B" & gateway_b_pid=$!; track_bg "$gateway_b_pid"
fi
redis_pid="$(cat "$DEPS_DIR/redis/redis.pid" 2>/dev/null || true)"

wait_http "http://$GATEWAY/readyz"
[ -z "$GATEWAY_B" ] || wait_http "http://$GATEWAY_B_ADDR/readyz"
wait_http "http://127.0.0.1:$WORKER_PORT/readyz"

SERVICE_PIDS="gateway=$gateway_pid,chat=$chat_pid,worker=$worker_pid,call=$call_pid${redis_pid:+,redis=$redis_pid}"
machine_line="$(machine)"
echo "machine: $machine_line; load average before: $(load_average)"

# goose NAME USERS SECONDS [loadtest-goose options...]: one goose run, its output in NAME.log.
goose() {
  local name="$1" users="$2" secs="$3"; shift 3
  step "$name ($users users, ${secs}s; load average $(cut -d' ' -f1 /proc/loadavg))"
  if ! "$B/loadtest-goose" --name "$name" --out "$OUT" "$@" -- \
      --users "$users" --increase-rate "$users" --run-time "${secs}s" \
      --report-file "$OUT/$name.html" --report-file "$OUT/$name.json" --error-log "$OUT/$name-errors.log" >"$OUT/$name.log" 2>&1; then
    tail -20 "$OUT/$name.log" >&2; return 1
  fi
  grep -E "^$name: " "$OUT/$name.log" || true
}

if [ "$MODE" = soak ]; then
  goose soak $((REST_USERS + 2 * ROOMS)) $((SOAK_MIN * 60)) --target "$GATEWAY" --kind chat \
    --scenarios rest,broadcast,typing --rooms "$ROOMS" --members "$MEMBERS" --rate "$RATE" \
    --pids "$SERVICE_PIDS" --sample-ms 5000
  echo "reports: $OUT/soak.html, soak.json, soak-extra.html, soak-extra.json, soak-memory.csv"
  exit 0
fi

[ "$REST_USERS" = 0 ] || goose rest "$REST_USERS" "$SECS" --target "$GATEWAY" --kind chat --scenarios rest --pids "$SERVICE_PIDS"
for scenario in $HTTP; do
  goose "$scenario" "$HTTP_USERS" "$SECS" --target "$GATEWAY" --kind chat --scenarios "$scenario" --pids "$SERVICE_PIDS"
done

if [ -n "$SCENARIOS" ]; then
  step "peers"
  wants() { [[ " $TARGETS " == *" $1 "* ]]; }
  if wants minimal; then
    "$B/minimal_relay" --listen "$MINIMAL" >/dev/null & minimal_pid=$!; track_bg "$minimal_pid"
    wait_tcp "$MINIMAL"
  fi
  if wants node; then
    (cd loadtest/peers/node-socketio && npm ci --silent --no-audit --no-fund >/dev/null)
    (cd loadtest/peers/node-socketio && PORT="${NODE##*:}" exec node server.mjs >/dev/null) & node_pid=$!; track_bg "$node_pid"
    wait_http "http://$NODE/socket.io/?EIO=4&transport=polling"
  fi
  if wants socketioxide; then
    [ -n "${LOADTEST_BIN_DIR:-}" ] || cargo build --release -q --manifest-path loadtest/peers/socketioxide/Cargo.toml --target-dir "$T"
    "$B/relay-peer-socketioxide" --listen "$SIOXIDE" >/dev/null & sioxide_pid=$!; track_bg "$sioxide_pid"
    wait_http "http://$SIOXIDE/socket.io/?EIO=4&transport=polling"
  fi
fi

# Each realtime scenario against each server: paced (latency) and unpaced (throughput).
# The chat stack twice: chat-direct (sockets straight to the chat service, like the peers;
# HTTP through the gateway, as the chat service takes API requests from the gateway only)
# and chat-gateway (sockets tunnelled by the gateway too, as browsers reach it).
for round in $(seq "$ROUNDS"); do
  suffix=""; [ "$round" = 1 ] || suffix="-r$round"
  for scenario in $SCENARIOS; do
    for target in "chat-direct $GATEWAY chat $SERVICE_PIDS --socket-target 127.0.0.1:$CHAT_PORT" \
        "chat-gateway $GATEWAY chat $SERVICE_PIDS" \
        "chat-gateway-b $GATEWAY_B_ADDR chat ${SERVICE_PIDS/gateway=$gateway_pid/gateway=${gateway_b_pid:-0}}" \
        "minimal $MINIMAL peer minimal=${minimal_pid:-0}" "node $NODE peer node=${node_pid:-0}" \
        "socketioxide $SIOXIDE peer socketioxide=${sioxide_pid:-0}"; do
      # shellcheck disable=SC2086 # split on purpose: name, address, kind, pids, extra options
      set -- $target
      name="$1" addr="$2" kind="$3" pidlist="$4"; shift 4
      [[ " $TARGETS " == *" $name "* ]] || continue
      for phase in $PHASES; do
        pace="$PACE_MS"; users="$ROOMS"
        [ "$phase" = saturation ] && pace=0 && users=$((ROOMS * SENDERS))
        goose "$scenario-$phase-$name$suffix" "$users" "$SECS" --target "$addr" --kind "$kind" \
          --scenarios "$scenario" --rooms "$ROOMS" --members "$MEMBERS" --pace-ms "$pace" --pids "$pidlist" "$@"
      done
    done
  done
done

python3 - "$OUT" "$machine_line" "$ROOMS" "$MEMBERS" "$PACE_MS" "$SECS" "$ROUNDS" <<'PY' | tee "$OUT/summary.md"
import json, sys, os, statistics
out, machine, rooms, members, pace, secs, rounds = sys.argv[1:]
rounds = int(rounds)
def load(name):
    try:
        return json.load(open(os.path.join(out, name + "-extra.json")))
    except OSError:
        return None
targets = ["chat-direct", "chat-gateway", "minimal", "node", "socketioxide"]
heads = ["chat direct", "chat via gateway", "minimal relay", "Node socket.io", "socketioxide"]
if load("typing-saturation-chat-gateway-b") or load("broadcast-saturation-chat-gateway-b") \
        or load("typing-paced-chat-gateway-b") or load("broadcast-paced-chat-gateway-b"):
    targets.append("chat-gateway-b"); heads.append("chat via gateway B")
# (numerator, denominator) column indexes of each ratio column.
ratios = [(0, 2, "direct/minimal"), (0, 3, "direct/node"), (0, 4, "direct/socketioxide"), (1, 0, "gateway/direct")]
print(f"# Load test summary\n\nmachine: {machine}; {rooms} rooms of {members} members; {secs} s per run; paced runs wait {pace} ms after each event.\n")
print("chat direct: sockets straight to the chat service, HTTP through the gateway; chat via gateway: sockets tunnelled by the gateway too. Peers are hit directly.\n")
rest = load("rest")
try:
    g = json.load(open(os.path.join(out, "rest.json")))
except OSError:
    g = None
if rest and g:
    print(f"## REST mix through the gateway (goose, ms; load average {rest['loadavg']['start']} → {rest['loadavg']['end']})\n")
    print("| request | count | failures | req/s | p50 | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    pct = {(r["method"], r["name"]): r for r in g["raw_response_metrics"]}
    for r in g["raw_request_metrics"]:
        p = pct.get((r["method"], r["name"]), {})
        print(f"| {r['method']} {r['name']} | {r['number_of_requests']:,} | {r['number_of_failures']:,} | {r['requests_per_second']:,.0f} | "
              f"{p.get('percentile_50', '–')} | {p.get('percentile_90', '–')} | {p.get('percentile_99', '–')} | {p.get('percentile_100', '–')} |")
    for m in rest.get("memory", []):
        print(f"\nmemory {m['name']}: start {m['start_kib']:,} KiB, peak {m['peak_kib']:,} KiB, end {m['end_kib']:,} KiB", end="")
    print("\n")
for name, what in (("sends", "durable sends, as fast as answered"), ("history", "the newest page of 100, again and again")):
    extra, g = load(name), None
    try:
        g = json.load(open(os.path.join(out, name + ".json")))
    except OSError:
        pass
    if not (extra and g):
        continue
    pct = {(r["method"], r["name"]): r for r in g["raw_response_metrics"]}
    for r in g["raw_request_metrics"]:
        if r["name"] in ("Aggregated", "/auth/register", "/conversations") or r["method"] == "POST" and name == "history":
            continue
        p = pct.get((r["method"], r["name"]), {})
        cpu = sum(v for k, v in extra.get("cpu_seconds", {}).items() if k != "loadtest client")
        per = f"{cpu * 1e6 / r['number_of_requests']:.0f}" if r["number_of_requests"] else "–"
        print(f"## {name} through the gateway ({what}; goose, load average {extra['loadavg']['start']} → {extra['loadavg']['end']})\n")
        print("| request | count | failures | req/s | p50 ms | p99 ms | server CPU µs per request (not PostgreSQL) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(f"| {r['method']} {r['name']} | {r['number_of_requests']:,} | {r['number_of_failures']:,} | {r['requests_per_second']:,.0f} | "
              f"{p.get('percentile_50', '–')} | {p.get('percentile_99', '–')} | {per} |\n")
for scen, event in (("typing", "typing:update"), ("broadcast", "message:created")):
    if not any(load(f"{scen}-{p}-{t}") for t in targets for p in ("paced", "saturation")):
        continue  # not run this time (SCENARIOS)
    print(f"## {scen} ({event}; time until every {'other ' if scen == 'typing' else ''}member's socket had it)\n")
    def path(*keys):
        def get(d):
            try:
                for k in keys:
                    d = d[k]
                return d
            except (TypeError, KeyError):
                return None
        return get
    CLIENT = "loadtest client"
    def cpu_per_delivery(names):
        # CPU µs of the named processes (None: every server sampled) per delivery over the run.
        def get(d):
            try:
                used = d["cpu_seconds"]
                n = d["sockets"]["events"][event]["deliveries"]
                mine = [v for k, v in used.items() if (k != CLIENT if names is None else k in names)]
                return sum(mine) * 1e6 / n if n and mine else None
            except (TypeError, KeyError):
                return None
        return get
    def cpu_busy(d):
        # Every measured process (servers and load client) as a share of the machine's cores.
        try:
            return 100 * sum(d["cpu_seconds"].values()) / (d["cpu_window_seconds"] * os.cpu_count())
        except (TypeError, KeyError, ZeroDivisionError):
            return None
    ev = lambda *k: path("sockets", "events", event, *k)
    rows = [
        ("paced: p50 ms, every member", "paced", ev("every_member_ms", "p50"), "{:.2f}"),
        ("paced: p99 ms, every member", "paced", ev("every_member_ms", "p99"), "{:.2f}"),
        ("paced: p99 ms, each delivery", "paced", ev("delivery_ms", "p99"), "{:.2f}"),
        ("saturation: deliveries/s", "saturation", ev("events_per_s"), "{:,.0f}"),
        ("saturation: p99 ms, every member", "saturation", ev("every_member_ms", "p99"), "{:.2f}"),
        ("saturation: events sent/s", "saturation", ev("sends_per_s"), "{:,.0f}"),
        ("saturation: server CPU µs per delivery", "saturation", cpu_per_delivery(None), "{:.1f}"),
        ("saturation: gateway CPU µs per delivery", "saturation", cpu_per_delivery(["gateway"]), "{:.1f}"),
        ("saturation: load client CPU µs per delivery", "saturation", cpu_per_delivery([CLIENT]), "{:.1f}"),
        ("saturation: CPU busy, servers + client, % of all cores", "saturation", cpu_busy, "{:.0f}"),
    ]
    def run(phase, t, r=1):
        return load(f"{scen}-{phase}-{t}" + ("" if r == 1 else f"-r{r}"))
    def median(phase, t, get):
        vals = [x for x in (get(run(phase, t, r)) for r in range(1, rounds + 1)) if x is not None]
        return statistics.median(vals) if vals else None
    if rounds > 1:
        print(f"Each cell is the median of {rounds} rounds (every round is listed below).\n")
    print("| | " + " | ".join(heads) + " | " + " | ".join(r[2] for r in ratios) + " |")
    print("|---|" + "---:|" * (len(targets) + len(ratios)))
    for label, phase, get, f in rows:
        v = [median(phase, t, get) for t in targets]
        if all(x is None for x in v):
            continue
        def ratio(a, b):
            if v[a] is None or v[b] in (None, 0):
                return "–"
            return f"{v[a] / v[b]:.2f}"
        fmt = lambda x: "–" if x is None else f.format(x)
        print(f"| {label} | " + " | ".join(fmt(x) for x in v) + " | " + " | ".join(ratio(a, b) for a, b, _ in ratios) + " |")
    done = [(t, p) for t in targets for p in ("paced", "saturation") if run(p, t)]
    timeouts = ", ".join(f"{t}/{p} {ev('timeouts')(run(p, t))}" for t, p in done)
    loads = ", ".join(f"{t}/{p} {path('loadavg', 'start')(run(p, t))}" for t, p in done)
    print(f"\nTimeouts (events that did not reach everyone): {timeouts}.\n\nLoad average (1, 5, 15 min) at the start of each run: {loads}.\n")
    print("Server CPU: every sampled process (chat stack: gateway, chat, worker, call, Redis; not PostgreSQL; a peer: itself); the load client is counted apart.\n")
    if rounds > 1:
        print(f"Every round ({rounds}), run in turn; median last:\n")
        print("| | " + " | ".join(heads) + " |")
        print("|---|" + "---:|" * len(targets))
        for label, phase, get, f in rows:
            cols = []
            for t in targets:
                vals = [x for x in (get(run(phase, t, r)) for r in range(1, rounds + 1)) if x is not None]
                cols.append(" / ".join(f.format(x) for x in vals) + (f"; **{f.format(statistics.median(vals))}**" if vals else "–"))
            if any(c != "–" for c in cols):
                print(f"| {label} | " + " | ".join(cols) + " |")
        print()
PY
echo "reports: $OUT (goose: <run>.html/.json; sockets and memory: <run>-extra.html/.json; summary.md)"
