#!/usr/bin/env bash
# Many hosts on this machine (issue 19), made by scripts/cluster-hosts.sh (network namespaces
# on a bridge: PostgreSQL; a Redis Cluster of 3 masters and 3 replicas on 3 hosts; HAProxy
# with deploy/haproxy/chat.cfg; 2 gateways, 3 chat instances, 2 workers on 4 hosts),
# then runs tests/node/cluster.test.mjs (official socket.io-client) against the balancer:
# messages reach sockets on every instance, WebSocket and long-polling, exactly once; a chat
# host lost (its link cut, its processes killed): its clients reconnect through the balancer
# to another instance and recover what they missed; a worker host lost: its stream
# partitions move to the other worker and every answered send is stored once; the host of
# the Redis master serving the platform's keys lost: its replica is promoted, every send
# answered 201 or 202 is stored once (one answered 503 is retried with its clientMessageId),
# and no socket is disconnected.
#
# CLUSTER_TOPOLOGY=colocated runs the same tests with a gateway beside each chat instance
# (SOCKET_DIR: WebSockets handed to the local chat), as deploy/haproxy/chat.cfg's COLOCATED.
# Needs root (ip netns); installs HAProxy, PostgreSQL and Redis with apt-get when missing.
# CLUSTER_BIN_DIR: the services' binaries (default target/debug, built by the caller).
# Everything it makes (namespaces, bridge, servers, the work folder) is removed at exit.
# For looking into a failure: CLUSTER_TESTS (a pattern of test names), CLUSTER_RUST_LOG (the
# services' RUST_LOG, default warn), CLUSTER_KEEP=1 (keep the work folder and its logs),
# CLUSTER_HOLD=SECONDS (after a failure, keep everything running that long).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
STEP_PREFIX="cluster: "
[ -d tests/node/node_modules ] || (cd tests/node && npm ci --no-audit --no-fund --silent)
source scripts/cluster-hosts.sh

step "the tests, through the balancer (tests/node/cluster.test.mjs)"
export LB_URL="http://${addr[lb]}" REDIS_SEED="${addr[r1]}:7001" CLUSTER_NAMESPACE=cluster
export STREAM_PARTITIONS=$partitions CLUSTER_TOPOLOGY="$topology"
for h in app1 app2 app3 work2 r1 r2 r3; do
  export "HOST_NS_$h=${ns[$h]}" "HOST_LINK_$h=${veth[$h]}" "HOST_ADDR_$h=${addr[$h]}"
done
# The first test sets up the others: a CLUSTER_TESTS pattern keeps it.
pattern=()
[ -z "${CLUSTER_TESTS:-}" ] || pattern=(--test-name-pattern "$CLUSTER_TESTS")
if ! (cd tests/node && timeout 300 node --test --test-concurrency=1 "${pattern[@]}" cluster.test.mjs); then
  for f in "$work"/*.log; do echo "--- $f"; tail -n 30 "$f"; done
  [ -z "${CLUSTER_HOLD:-}" ] || { echo "holding for ${CLUSTER_HOLD}s ($work)"; sleep "$CLUSTER_HOLD"; }
  fail "cluster tests"
fi
