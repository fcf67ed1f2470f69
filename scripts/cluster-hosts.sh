# The many-hosts harness (issue 19), sourced by scripts/test-cluster.sh (the tests) and
# scripts/bench-cluster.sh (the capacity check): each host is a Linux network namespace with
# its own address on a bridge, and the services run on them as they would on separate
# machines (TCP only, no shared sockets folder):
#
#   data  .10  PostgreSQL
#   r1-r3 .31-.33  Redis Cluster: each host a master (port 7001) and the replica of another
#              host's master (7002), so that losing a host loses one master and one replica
#   lb    .20  HAProxy with the sample configuration, deploy/haproxy/chat.cfg: :80
#              balances the two gateways; :3001 balances the three chat instances for the
#              gateways, sticky by a cookie it inserts (SERVERID), so a long-polling
#              session's requests all reach the instance that holds it
#   app1  .11  gateway, chat, call
#   app2  .12  gateway, chat, worker
#   app3  .13  chat (and a gateway, colocated)
#   work2 .14  worker
#
# CLUSTER_TOPOLOGY: `tunnel` (the default: the gateways tunnel WebSockets to the chat
# instances through the balancer) or `colocated` (a gateway beside each chat instance, the
# pair sharing a SOCKET_DIR, so WebSockets are handed to the local chat; HAProxy's
# configuration gets COLOCATED=1 and GATEWAY3).
#
# Sourced after scripts/lib.sh and scripts/deps.sh, it starts all of that and leaves:
# `ns`, `addr`, `veth` (by host name), `on HOST COMMAND...` (runs in a host's namespace),
# `work` (the work folder, with every server's log), `partitions`, `secret`, `topology`, and the
# balancer at http://${addr[lb]}. Needs root (ip netns); installs HAProxy, PostgreSQL and
# Redis with apt-get when missing. CLUSTER_BIN_DIR: the services' binaries (default
# target/debug, built by the caller); CLUSTER_RUST_LOG: their RUST_LOG (default warn);
# CLUSTER_KEEP=1 keeps the work folder. CLUSTER_SERVICE_ENV: more settings for every
# service (words of NAME=VALUE); CLUSTER_FAST_FAULTS=0: the services' own heartbeat and
# claim timings instead of the fault tests' short ones. Everything it makes (namespaces, bridge, servers, the work
# folder) is removed at exit.
[ "$(id -u)" = 0 ] || fail "network namespaces need root"
topology="${CLUSTER_TOPOLOGY:-tunnel}"
case "$topology" in tunnel | colocated) ;; *) fail "CLUSTER_TOPOLOGY: tunnel or colocated, not $topology" ;; esac
command -v ip >/dev/null 2>&1 || deps_install ip iproute2 || fail "iproute2 is needed"
if ! command -v haproxy >/dev/null 2>&1; then
  deps_install haproxy haproxy || fail "HAProxy is needed"
  # Debian's package starts its own; ours runs in the lb namespace.
  service haproxy stop >/dev/null 2>&1 || true
fi
deps_install pg_ctl postgresql postgresql-contrib || fail "PostgreSQL is needed"
deps_install redis-server redis-server || fail "Redis is needed"
bin="${CLUSTER_BIN_DIR:-$PWD/target/debug}"
for b in gateway chat call worker; do [ -x "$bin/$b" ] || fail "no $bin/$b: build the workspace first"; done

work="$(mktemp -d /tmp/chat-cluster.XXXXXX)"
chmod 755 "$work"
[ -n "${CLUSTER_KEEP:-}" ] || on_exit rm -rf "$work"

step "hosts: network namespaces on a bridge"
# A /24 of 10.213.0.0/16 that no route of this machine uses; names unique to this run.
tag=$(($$ % 100000))
net=""
for ((o = 20 + $$ % 200, n = 0; n < 200; o = 20 + (o - 19) % 200, n++)); do
  if ! ip route | grep -q "^10\.213\.$o\."; then net="10.213.$o"; break; fi
done
[ -n "$net" ] || fail "no free 10.213.x.0/24 subnet"
bridge="chbr$tag"
ip link add "$bridge" type bridge
on_exit ip link del "$bridge"
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up

declare -A ns addr veth
host() {
  local name="$1" last="$2"
  ns[$name]="chat$tag-$name"; addr[$name]="$net.$last"; veth[$name]="v$tag$name"
  ip netns add "${ns[$name]}"
  # Every process left in it is killed before the namespace goes.
  on_exit host_gone "$name"
  ip link add "${veth[$name]}" type veth peer name eth0 netns "${ns[$name]}"
  ip link set "${veth[$name]}" master "$bridge" up
  ip -n "${ns[$name]}" addr add "${addr[$name]}/24" dev eth0
  ip -n "${ns[$name]}" link set eth0 up
  ip -n "${ns[$name]}" link set lo up
}
host_gone() {
  local pids; pids="$(ip netns pids "${ns[$1]}" 2>/dev/null || true)"
  # shellcheck disable=SC2086 # one pid per word
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  ip netns del "${ns[$1]}" 2>/dev/null || true
}
on() { local h="$1"; shift; ip netns exec "${ns[$h]}" "$@"; }

host data 10
host lb 20
host app1 11
host app2 12
host app3 13
host work2 14
host r1 31
host r2 32
host r3 33
echo "hosts on $net.0/24: data lb app1 app2 app3 work2 r1 r2 r3"

step "PostgreSQL on the data host"
pg="$(pg_bin)"
id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
mkdir -p "$work/pg"
chown postgres "$work/pg"
runuser -u postgres -- "$pg/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log"; fail "initdb"; }
echo "host all all $net.0/24 trust" >>"$work/pg/data/pg_hba.conf"
on data runuser -u postgres -- "$pg/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 30 start \
  -o "-h ${addr[data]} -p 5432 -k $work/pg -c max_connections=300" >/dev/null \
  || { tail -20 "$work/pg/server.log"; fail "PostgreSQL did not start"; }
stop_pg() { on data runuser -u postgres -- "$pg/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1; }
on_exit stop_pg
"$pg/psql" -q "postgres://postgres@${addr[data]}:5432/postgres" -c "CREATE DATABASE chat" >/dev/null

step "Redis Cluster on r1, r2, r3 (3 masters, 3 replicas)"
# A master lost is given up after 4 s: slower than the balancer's two failed probes (0.6 s),
# as a production failover is (`cluster-node-timeout` defaults to 15 s), so that the
# failover test shows whether losing a store takes every instance out of the balancer (it
# must not: READY_GRACE_MS).
REDIS_CLUSTER_NODE_TIMEOUT_MS="${REDIS_CLUSTER_NODE_TIMEOUT_MS:-4000}"
redis_nodes=()
for h in r1 r2 r3; do
  for port in 7001 7002; do
    mkdir -p "$work/redis/$h-$port"
    redis_cluster_args "${addr[$h]}" "$port" "$work/redis/$h-$port"
    on "$h" redis-server "${REDIS_CLUSTER_ARGS[@]}" &
    track_bg $!
  done
done
# Masters first (7001 on each host), then replicas: redis-cli gives each master a replica on
# another host.
for port in 7001 7002; do for h in r1 r2 r3; do redis_nodes+=("${addr[$h]}:$port"); done; done
for n in "${redis_nodes[@]}"; do wait_for 10 "Redis at $n" redis_answers "${n%:*}" "${n##*:}" || fail "Redis at $n"; done
redis-cli --cluster create "${redis_nodes[@]}" --cluster-replicas 1 --cluster-yes >"$work/redis/create.log" 2>&1 \
  || { cat "$work/redis/create.log"; fail "redis-cli --cluster create"; }
for n in "${redis_nodes[@]}"; do
  wait_for 20 "the cluster's state at $n" redis_cluster_ok "${n%:*}" "${n##*:}" || fail "Redis Cluster state"
done
wait_for 20 "3 replicas attached" redis_cluster_replicas "${addr[r1]}" 7001 3 || fail "Redis Cluster replicas"
redis-cli -h "${addr[r1]}" -p 7001 cluster nodes | awk '{print $2, $3}' | sort

step "services ($topology): gateways, 3 chat instances, 2 workers, call"
secret="$(random_secret)"
partitions=4
common=(
  CHAT_DATABASE_URL="postgres://postgres@${addr[data]}:5432/chat"
  REDIS_CLUSTER_NODES="${addr[r1]}:7001,${addr[r2]}:7001,${addr[r3]}:7001"
  CHAT_NAMESPACE=cluster AUTH_MODE=token INTERNAL_SECRET="$secret" RUST_LOG="${CLUSTER_RUST_LOG:-warn}"
  STREAM_PARTITIONS=$partitions
  # Every address here is one of ours: the balancer's X-Forwarded-For names the client.
  TRUSTED_PROXIES="$net.0/24"
)
# Bounded faults, for the fault tests: a lost worker's partitions move after 3 s (the
# lease), a dead socket is noticed within 3 s (ping and pong). CLUSTER_FAST_FAULTS=0 keeps
# the services' defaults (the benchmark).
[ "${CLUSTER_FAST_FAULTS:-1}" = 0 ] || common+=(CLAIM_IDLE_MS=3000 PING_INTERVAL_MS=1500 PING_TIMEOUT_MS=1500)
# shellcheck disable=SC2206 # words of NAME=VALUE on purpose
common+=(${CLUSTER_SERVICE_ENV:-})
service() {
  local h="$1" name="$2" port="$3"; shift 3
  on "$h" env "${common[@]}" HOST=0.0.0.0 PORT="$port" WORKER_CONSUMER="worker-$h" "$@" "$bin/$name" \
    >"$work/$h-$name.log" 2>&1 &
  track_bg $!
}
# CLUSTER_TOPOLOGY=colocated: a gateway beside each chat instance too (app3 gets one), each
# pair sharing a SOCKET_DIR of its host: WebSockets are handed to the local chat instance.
gateway_hosts=(app1 app2)
if [ "$topology" = colocated ]; then
  gateway_hosts=(app1 app2 app3)
  for h in app1 app2 app3; do mkdir -p "$work/$h-run"; done
fi
socket_dir() { [ "$topology" != colocated ] || echo "SOCKET_DIR=$work/$1-run"; }
for h in app1 app2 app3; do
  # shellcheck disable=SC2046 # nothing, or one NAME=VALUE
  service "$h" chat 3001 $(socket_dir "$h")
done
service app1 call 3002
service app2 worker 3003
service work2 worker 3003
for h in "${gateway_hosts[@]}"; do
  # shellcheck disable=SC2046 # nothing, or one NAME=VALUE
  service "$h" gateway 3000 CHAT_SERVICE_URL="http://${addr[lb]}:3001" CALL_SERVICE_URL="http://${addr[app1]}:3002" $(socket_dir "$h")
done
for h in app1 app2 app3; do wait_http "http://${addr[$h]}:3001/readyz" 60 || { cat "$work/$h-chat.log"; fail "chat on $h"; }; done
for h in app2 work2; do wait_http "http://${addr[$h]}:3003/readyz" 30 || { cat "$work/$h-worker.log"; fail "worker on $h"; }; done

step "HAProxy on the lb host (deploy/haproxy/chat.cfg)"
lb_env=(LB_ADDR="${addr[lb]}" GATEWAY1="${addr[app1]}:3000" GATEWAY2="${addr[app2]}:3000"
  CHAT1="${addr[app1]}:3001" CHAT2="${addr[app2]}:3001" CHAT3="${addr[app3]}:3001")
[ "$topology" != colocated ] || lb_env+=(COLOCATED=1 GATEWAY3="${addr[app3]}:3000")
env "${lb_env[@]}" haproxy -c -q -f deploy/haproxy/chat.cfg || fail "HAProxy refuses deploy/haproxy/chat.cfg"
on lb env "${lb_env[@]}" haproxy -db -f deploy/haproxy/chat.cfg >"$work/haproxy.log" 2>&1 &
track_bg $!
wait_http "http://${addr[lb]}/readyz" 30 || { cat "$work/haproxy.log"; fail "the gateways behind HAProxy"; }
