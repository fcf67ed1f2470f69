#!/usr/bin/env bash
# The capacity model checked on many hosts (issue 19, docs/capacity.md): the hosts of
# scripts/cluster-hosts.sh (release binaries), then goose's broadcast scenario through
# HAProxy: ROOMS conversations of MEMBERS signed-in users, every member's socket through the
# balancer and a gateway to one of the three chat instances, one sender per room, paced at
# each of RATES sends/s for SECONDS (`max`: SENDERS senders a room, unpaced). Every process
# of every host is read from /proc as each run's measured window opens (users registered,
# sockets connected) and as it closes (PostgreSQL's backends and both Redis servers of a
# host included); the CPU time is printed per role as µs per send beside the model's figure,
# with the chat instances' memory per connection (their RSS before the sockets connect, and
# their peak while open) and the namespace master's costliest commands.
#
#   scripts/bench-cluster.sh [SECONDS=20]
#
# Environment: CLUSTER_TOPOLOGY (tunnel; colocated: a gateway beside each chat instance, as
# scripts/cluster-hosts.sh says), SOCKETS (gateway; direct: the sockets go through the balancer's internal port
# straight to the chat instances, to price the gateway's tunnel), ROOMS (50), MEMBERS (20),
# RATES ("sends 200 400 max"; `sends`: durable sends and no sockets, `wrk -t2 -c64` through
# the balancer, the window closing once the queue is drained), SENDERS (4), CLUSTER_BIN_DIR
# (the services, `sends` and loadtest-goose; default: a release build into target/release).
# Reports: target/loadtest/cluster-*.{html,json,log} and the table in
# target/loadtest/cluster-summary-<topology>-<sockets>.md. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
STEP_PREFIX="bench-cluster: "

SECS="${1:-20}"
ROOMS="${ROOMS:-50}"; MEMBERS="${MEMBERS:-20}"; RATES="${RATES:-sends 200 400 max}"; SENDERS="${SENDERS:-4}"
OUT="$PWD/target/loadtest"
mkdir -p "$OUT"
if [ -z "${CLUSTER_BIN_DIR:-}" ]; then
  step "building (release)"
  cargo build --release -q -p chat -p worker -p call -p gateway -p loadtest
  cargo build --release -q --manifest-path loadtest/goose/Cargo.toml --target-dir "$PWD/target"
  CLUSTER_BIN_DIR="$PWD/target/release"
fi
export CLUSTER_BIN_DIR
# The load comes from one address; heartbeats and claims at the services' defaults, not the
# fault tests' short ones.
CLUSTER_SERVICE_ENV="${LOADTEST_LIMITS[*]}" CLUSTER_FAST_FAULTS=0
source scripts/cluster-hosts.sh

# The Redis server that holds the namespace's slot, and its replica (labelled apart from the
# other masters and replicas, which carry nothing of this deployment).
slot="$(redis-cli -h "${addr[r1]}" -p 7001 cluster keyslot '{cluster}')"
home="$(redis-cli -h "${addr[r1]}" -p 7001 cluster nodes | awk -v s="$slot" '
  $3 ~ /master/ { for (i = 9; i <= NF; i++) { split($i, r, "-"); if (s >= r[1] && s <= (r[2] == "" ? r[1] : r[2])) { split($2, a, "@"); print $1, a[1] } } }')"
home_id="${home%% *}"; home_addr="${home##* }"
home_replica="$(redis-cli -h "${addr[r1]}" -p 7001 cluster nodes | awk -v m="$home_id" '$4 == m { split($2, a, "@"); print a[1] }')"
echo "the namespace's slot $slot: master $home_addr, replica $home_replica"

# snapshot FILE: every process of every host: host, pid, label, CPU ticks, RSS in KiB.
snapshot() {
  local h
  for h in "${!ns[@]}"; do
    ip netns pids "${ns[$h]}" 2>/dev/null | sed "s/^/$h /"
  done | python3 -c '
import sys
home, replica = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    host, pid = line.split()
    try:
        stat = open(f"/proc/{pid}/stat").read()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat[stat.rindex(")") + 2:].split()
    ticks = int(f[11]) + int(f[12])
    if comm.startswith("redis"):
        label = "redis: namespace master" if home in cmd else "redis: its replica" if replica in cmd else "redis: other nodes"
    elif comm in ("postgres", "postmaster"):
        label = "postgresql"
    else:
        label = comm
    print(host, pid, label.replace(" ", "_"), ticks, rss)
' "$home_addr" "$home_replica" >"$1"
}

step "idle: the chat instances' memory before any socket"
snapshot "$work/idle.snap"
awk '$3 == "chat" { print $1 ": chat " $5 " KiB" }' "$work/idle.snap" | sort

SOCKETS="${SOCKETS:-gateway}"
socket_target=()
[ "$SOCKETS" != direct ] || socket_target=(--socket-target "${addr[lb]}:3001")
rt_pids="$(awk '$3 == "chat" { printf "%schat-%s=%s", sep, $1, $2; sep = "," }' "$work/idle.snap")"
# redis-cli on the namespace's master.
redis_home() { redis-cli -h "${home_addr%:*}" -p "${home_addr##*:}" "$@"; }
# window NAME COMMAND...: the run's measured window is COMMAND (every host read before and after).
# Its status is COMMAND's.
window() {
  local name="$1" t0 status=0; shift
  snapshot "$work/$name.before"
  t0="$(date +%s.%N)"
  "$@" || status=$?
  snapshot "$work/$name.after"
  echo "$t0 $(date +%s.%N)" >"$work/$name.window"
  return "$status"
}

# broadcast NAME RATE: goose's broadcast scenario, its window opening once the users are
# registered and their sockets connected (setup, password hashing included, is not what a
# send costs) and closing with goose.
broadcast() {
  local name="$1" rate="$2" users="$ROOMS" per_s="$2" goose_pid
  # `max`: SENDERS senders a room, each sending as soon as its last message reached everyone.
  [ "$rate" != max ] || { users=$((ROOMS * SENDERS)); per_s=0; }
  "$CLUSTER_BIN_DIR/loadtest-goose" --name "$name" --out "$OUT" --target "${addr[lb]}:80" "${socket_target[@]}" --kind chat \
    --scenarios broadcast --rooms "$ROOMS" --members "$MEMBERS" --rate "$per_s" --pids "$rt_pids" --sample-ms 500 -- \
    --users "$users" --increase-rate "$users" --run-time "${SECS}s" \
    --report-file "$OUT/$name.html" --report-file "$OUT/$name.json" --error-log "$OUT/$name-errors.log" >"$OUT/$name.log" 2>&1 &
  goose_pid=$!
  wait_for 300 "$name's sockets" grep -q "and relaying" "$OUT/$name.log" || { tail -20 "$OUT/$name.log" >&2; fail "$name"; }
  window "$name" wait "$goose_pid" || { tail -20 "$OUT/$name.log" >&2; fail "$name"; }
  grep -E "^$name: " "$OUT/$name.log" || true
}

# sends NAME: durable sends with no sockets, `wrk -t2 -c64` through the balancer with 64
# signed-in senders (scripts/wrk/sends.lua, as scripts/bench-sends.sh --wrk), the window
# closing once the queue is drained; sends counted as the rows stored.
stored() {
  local last=-1 n
  while true; do
    n="$("$(pg_bin)/psql" -qtA "postgres://postgres@${addr[data]}:5432/chat" -c "SELECT count(*) FROM messages")"
    [ "$n" = "$last" ] && { echo "$n"; return; }
    last="$n"; sleep 1
  done
}
wrk_drained() { wrk -t2 -c64 -d"${SECS}s" --latency -s scripts/wrk/sends.lua "http://${addr[lb]}" -- "$work/targets" >"$OUT/$1.log"; stored >"$work/$1.rows-after"; }
sends() {
  local name="$1"
  command -v wrk >/dev/null || deps_install wrk wrk || fail "wrk is needed"
  "$CLUSTER_BIN_DIR/sends" --target "${addr[lb]}:80" --senders 64 --signed-in --targets-to "$work/targets"
  wrk -t2 -c64 -d3s -s scripts/wrk/sends.lua "http://${addr[lb]}" -- "$work/targets" >/dev/null
  stored >"$work/$name.rows-before"
  window "$name" wrk_drained "$name" || fail "$name: wrk"
  echo $(($(cat "$work/$name.rows-after") - $(cat "$work/$name.rows-before"))) >"$work/$name.sent"
  sed "s/^/$name: /" "$OUT/$name.log" | grep -E "Requests/sec|answered|p50"
}

for rate in $RATES; do
  name="cluster-$topology-$SOCKETS-$rate"
  step "$name: $ROOMS rooms of $MEMBERS through HAProxy, $rate, ${SECS}s (load average $(cut -d' ' -f1 /proc/loadavg))"
  redis_home config resetstat >/dev/null
  if [ "$rate" = sends ]; then sends "$name"; else broadcast "$name" "$rate"; fi
  # Where the namespace's master spends its time (setup included): the five costliest commands.
  redis_home info commandstats | tr -d '\r' \
    | awk -F'[:=,]' '/^cmdstat_/ { printf "%s %d calls %d usec\n", substr($1, 9), $3, $5 }' \
    | sort -k4 -nr | head -5 | sed "s/^/$name: namespace master: /"
done

step "CPU per send by role, and the model's figure (docs/capacity.md)"
python3 - "$work" "$OUT" "$ROOMS" "$MEMBERS" "$SECS" "$(machine)" "$RATES" "$SOCKETS" "$topology" <<'PY' | tee "$OUT/cluster-summary-$topology-$SOCKETS.md"
import json, os, sys
work, out, rooms, members, secs, machine, rates, sockets_via, topology = sys.argv[1:]
# The model's inputs (docs/capacity.md, one machine at saturation), µs per send.
model = {"gateway": 30, "chat": 46, "redis: namespace master": 28, "worker": 10, "postgresql": 27}
def snap(path):
    rows = {}
    for line in open(path):
        host, pid, label, ticks, rss = line.split()
        rows[(host, pid)] = (label.replace("_", " "), int(ticks), int(rss))
    return rows
idle = snap(os.path.join(work, "idle.snap"))
print(f"# Capacity check on the namespace cluster\n\nmachine: {machine} (every host shares it); "
      f"{rooms} rooms of {members}; {secs} s per run; topology {topology}; REST through HAProxy and a gateway; "
      f"sockets through HAProxy and {'a gateway' if sockets_via == 'gateway' else 'straight'} to chat.\n")
runs = []
for rate in rates.split():
    name = f"cluster-{topology}-{sockets_via}-{rate}"
    before, after = snap(os.path.join(work, name + ".before")), snap(os.path.join(work, name + ".after"))
    if os.path.exists(os.path.join(work, name + ".sent")):
        events, sent = {}, int(open(os.path.join(work, name + ".sent")).read())
    else:
        extra = json.load(open(os.path.join(out, name + "-extra.json")))
        events = extra["sockets"]["events"]
        sent = sum(e["sent"] for e in events.values())
    t0, t1 = map(float, open(os.path.join(work, name + ".window")).read().split())
    deliveries = sum(e["events_per_s"] for e in events.values()) * (extra["sockets"]["seconds"] if events else 0)
    cpu = {}
    for key, (label, ticks, _) in after.items():
        # A process started during the run counts from zero; one gone by its end is lost.
        was = before.get(key, (label, 0, 0))[1]
        cpu[label] = cpu.get(label, 0) + (ticks - was) / 100.0
    mem = [(key[0], rss, idle.get(key, (None, 0, rss))[2]) for key, (label, _, rss) in after.items() if label == "chat"]
    peak = {}
    for m in (extra.get("memory", []) if events else []):
        peak[m["name"]] = m["peak_kib"]
    runs.append((rate, sent, deliveries, cpu, mem, peak, events, t1 - t0))
labels = sorted({l for r in runs for l in r[3]}, key=lambda l: (l not in model, l))
print("| role | " + " | ".join(f"{r[0]}{'' if r[0] in ('max', 'sends') else '/s'}: µs per send" for r in runs) + " | model |")
print("|---|" + "---:|" * (len(runs) + 1))
for l in labels:
    cells = [f"{r[3].get(l, 0) * 1e6 / max(r[1], 1):.0f}" for r in runs]
    print(f"| {l} | " + " | ".join(cells) + f" | {model.get(l, '')} |")
tot = [sum(r[3].values()) * 1e6 / max(r[1], 1) for r in runs]
print("| **all hosts** | " + " | ".join(f"**{t:.0f}**" for t in tot) + f" | {sum(model.values())} + HAProxy |")
print()
for rate, sent, deliveries, cpu, mem, peak, events, window in runs:
    print(f"- {rate}: {sent} sends, {sent / window:.0f}/s, {sum(cpu.values()) / window:.2f} cores busy over the {window:.1f} s window"
          + (f"; chat {cpu.get('chat', 0) * 1e6 / deliveries:.1f} µs per delivery ({deliveries:.0f} deliveries)" if deliveries else ""))
for rate, sent, deliveries, cpu, mem, peak, events, window in runs:
    for kind, e in events.items():
        print(f"- {rate}: {kind}: {e['sent']} sent, {e['complete']} reached every member, {e['timeouts']} timed out, "
              f"{e['events_per_s']:.0f} deliveries/s; every member p50 {e['every_member_ms']['p50']} ms, p99 {e['every_member_ms']['p99']} ms")
sockets = int(rooms) * int(members)
for rate, sent, deliveries, cpu, mem, peak, events, window in [r for r in runs if r[6]][:1]:
    idle_kib = sum(m[2] for m in mem)
    peak_kib = sum(peak.values()) if peak else sum(m[1] for m in mem)
    print(f"\nchat memory: {idle_kib} KiB on the three instances before the sockets, peak {peak_kib} KiB with {sockets} sockets open: "
          f"{(peak_kib - idle_kib) / sockets:.1f} KiB per connection under load (model: 6.67 KiB idle, at 10,000).")
PY
