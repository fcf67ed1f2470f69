#!/usr/bin/env bash
# PostgreSQL and Redis for the run and test commands. Source this file, then call
# `deps_up PG_URL REDIS_URL`: each server that does not answer at its URL is started here
# (installed with apt-get first when missing and running as root) and stopped at exit by
# `deps_down`, which `deps_up` registers (scripts/lib.sh). Their data lives in DEPS_DIR:
# when the caller sets it (the run command), a folder that is kept: PostgreSQL is initialised
# only when it holds no cluster yet, Redis reloads its append-only file, and nothing there is
# ever deleted. Unset (the test commands), a temporary folder, deleted at exit.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEPS_DIR="${DEPS_DIR:-}"
DEPS_TEMP=""
DEPS_STARTED_PG=""
DEPS_STARTED_REDIS=""
DEPS_DOWN_REGISTERED=""

deps_log() { printf '[deps] %s\n' "$*" >&2; }

# url_part URL host|port|user|pass|db
url_part() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
part = sys.argv[2]
print({"host": u.hostname or "127.0.0.1", "port": u.port or (5432 if u.scheme.startswith("postgres") else 6379),
       "user": u.username or "", "pass": u.password or "", "db": (u.path or "/").lstrip("/")}[part])
PY
}

deps_install() {
  # deps_install COMMAND PACKAGE...
  local cmd="$1"; shift
  if command -v "$cmd" >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/"$cmd" >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    deps_log "installing $* with apt-get"
    if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
      deps_log "apt-get install $* failed"; return 1
    fi
    # Debian's packages may start their own server on the default port; ours are private.
    if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
  else
    deps_log "missing $cmd: install it with: sudo apt-get install $*"
    return 1
  fi
}

redis_answers() {
  local host="$1" port="$2"
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = "PONG" ]
  else
    (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && read -r -t 1 line <&3 && [[ "$line" == +PONG* ]]) 2>/dev/null
  fi
}

# shellcheck disable=SC2012 # the version directories have plain names; ls prints nothing when none
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

pg_answers() { "$(pg_bin)/pg_isready" -q -h "$1" -p "$2" >/dev/null 2>&1; }

deps_up() {
  local pg_url="$1" redis_url="$2"
  # Registered before anything starts, so that a server started before a failure stops too.
  [ -n "$DEPS_DOWN_REGISTERED" ] || { on_exit deps_down; DEPS_DOWN_REGISTERED=1; }
  if [ -z "$DEPS_DIR" ]; then DEPS_DIR="$(mktemp -d /tmp/chat-deps.XXXXXX)"; DEPS_TEMP=1; fi
  mkdir -p "$DEPS_DIR"
  chmod 755 "$DEPS_DIR"
  deps_install pg_ctl postgresql postgresql-contrib || return 1
  deps_install redis-server redis-server || return 1

  local host port
  host="$(url_part "$pg_url" host)"; port="$(url_part "$pg_url" port)"
  if pg_answers "$host" "$port"; then
    deps_log "PostgreSQL answers at $host:$port; using it"
  else
    deps_log "starting PostgreSQL on $host:$port (data in $DEPS_DIR/pg)"
    local bin user pass; bin="$(pg_bin)"; user="$(url_part "$pg_url" user)"; pass="$(url_part "$pg_url" pass)"
    mkdir -p "$DEPS_DIR/pg"
    local as=()
    if [ "$(id -u)" = 0 ]; then
      # PostgreSQL refuses to run as root: run it as its own user, made here if need be.
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      chown postgres "$DEPS_DIR/pg"; as=(runuser -u postgres --)
      "${as[@]}" test -x "$DEPS_DIR/pg" \
        || { deps_log "the postgres user cannot reach $DEPS_DIR (a parent folder is private): choose another folder"; return 1; }
    fi
    if [ -s "$DEPS_DIR/pg/data/PG_VERSION" ]; then
      deps_log "reusing the PostgreSQL cluster in $DEPS_DIR/pg/data"
    else
      "${as[@]}" "$bin/initdb" -D "$DEPS_DIR/pg/data" -U "${user:-postgres}" --auth=trust -E UTF8 >"$DEPS_DIR/initdb.log" 2>&1 \
        || { deps_log "initdb failed:"; cat "$DEPS_DIR/initdb.log" >&2; return 1; }
    fi
    "${as[@]}" "$bin/pg_ctl" -D "$DEPS_DIR/pg/data" -l "$DEPS_DIR/pg/server.log" -w -t 30 start \
      -o "-h $host -p $port -k $DEPS_DIR/pg -c max_connections=500 -c shared_buffers=256MB -c track_commit_timestamp=on" >/dev/null \
      || { deps_log "PostgreSQL did not start:"; tail -20 "$DEPS_DIR/pg/server.log" >&2; return 1; }
    DEPS_STARTED_PG="$bin/pg_ctl -D $DEPS_DIR/pg/data"
    [ -n "$pass" ] && "$bin/psql" -q -h "$host" -p "$port" -U "${user:-postgres}" -d postgres \
      -c "ALTER USER \"${user:-postgres}\" PASSWORD '$pass'" >/dev/null
  fi
  local db; db="$(url_part "$pg_url" db)"
  if [ -n "$db" ] && [ "$db" != postgres ]; then
    PGPASSWORD="$(url_part "$pg_url" pass)" "$(pg_bin)/psql" -q -h "$host" -p "$port" -U "$(url_part "$pg_url" user)" -d postgres \
      -tc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
      || PGPASSWORD="$(url_part "$pg_url" pass)" "$(pg_bin)/createdb" -h "$host" -p "$port" -U "$(url_part "$pg_url" user)" "$db"
  fi

  host="$(url_part "$redis_url" host)"; port="$(url_part "$redis_url" port)"
  if redis_answers "$host" "$port"; then
    deps_log "Redis answers at $host:$port; using it"
  else
    deps_log "starting Redis on $host:$port (append-only file in $DEPS_DIR/redis)"
    mkdir -p "$DEPS_DIR/redis"
    redis-server --bind "$host" --port "$port" --dir "$DEPS_DIR/redis" --appendonly yes --appendfsync everysec \
      --save "" --daemonize yes --pidfile "$DEPS_DIR/redis/redis.pid" --logfile "$DEPS_DIR/redis/redis.log" \
      || { deps_log "Redis did not start"; return 1; }
    wait_for 5 "Redis at $host:$port" redis_answers "$host" "$port" \
      || { deps_log "Redis did not answer"; tail -20 "$DEPS_DIR/redis/redis.log" >&2; return 1; }
    DEPS_STARTED_REDIS="$DEPS_DIR/redis/redis.pid"
  fi
}

deps_down() {
  if [ -n "$DEPS_STARTED_REDIS" ] && [ -f "$DEPS_STARTED_REDIS" ]; then
    kill "$(cat "$DEPS_STARTED_REDIS")" 2>/dev/null || true
    deps_log "Redis stopped"
  fi
  if [ -n "$DEPS_STARTED_PG" ]; then
    local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    # shellcheck disable=SC2086 # "pg_ctl -D DIR", split on purpose
    "${as[@]}" $DEPS_STARTED_PG -m fast -w stop >/dev/null 2>&1 || true
    deps_log "PostgreSQL stopped"
  fi
  DEPS_STARTED_PG=""; DEPS_STARTED_REDIS=""
  # Only the temporary folder made by deps_up; a folder the caller chose is kept.
  if [ -n "$DEPS_TEMP" ] && [[ "$DEPS_DIR" == /tmp/chat-deps.* ]]; then rm -rf "$DEPS_DIR"; fi
}

# An S3-compatible server for the attachments (tests, and the run command with STORAGE=s3):
# s3s-fs from crates.io, a real S3 implementation (SigV4 signatures checked, multipart
# uploads, ranged reads) keeping each bucket as a folder. Built once with `cargo install`
# into S3S_ROOT (default ~/.cache/chat-tools/s3s-fs) and reused by every later run. A debug
# build: 1.5 minutes here where an optimised one takes 3.5 (even at opt-level 1, 3), on every
# fresh machine's test run; the tests' and a trial stack's files are small. A deployment
# keeping many large files uses an S3 server of its own (S3_ENDPOINT).
S3S_VERSION="0.14.1"  # the newest that builds with this machine's Rust (0.17 needs 1.96)
S3S_ROOT="${S3S_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-tools/s3s-fs}"
S3_STARTED_PID=""
S3_DOWN_REGISTERED=""

s3_install() {
  if [ -x "$S3S_ROOT/bin/s3s-fs" ]; then return 0; fi
  deps_log "installing s3s-fs $S3S_VERSION with cargo (once, into $S3S_ROOT)"
  local build; build="$(mktemp -d /tmp/s3s-build.XXXXXX)"
  CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug "s3s-fs@$S3S_VERSION" --features binary \
    --root "$S3S_ROOT" --target-dir "$build" \
    || { rm -rf "$build"; deps_log "cargo install s3s-fs failed"; return 1; }
  rm -rf "$build"
}

# Any HTTP answer (403 without a signature) means an S3 server listens there.
s3_answers() { curl -s -o /dev/null -m 2 "$1/"; }

# s3_up ENDPOINT ACCESS_KEY SECRET_KEY DIR: starts s3s-fs at ENDPOINT (http://host:port)
# with its buckets in DIR, unless something answers there already; stopped at exit.
s3_up() {
  local endpoint="$1" access="$2" secret="$3" dir="$4"
  [ -n "$S3_DOWN_REGISTERED" ] || { on_exit s3_down; S3_DOWN_REGISTERED=1; }
  if s3_answers "$endpoint"; then deps_log "an S3 server answers at $endpoint; using it"; return 0; fi
  s3_install || return 1
  local hostport="${endpoint#http://}"; hostport="${hostport%/}"
  mkdir -p "$dir"
  deps_log "starting s3s-fs on $hostport (buckets in $dir)"
  "$S3S_ROOT/bin/s3s-fs" --host "${hostport%:*}" --port "${hostport##*:}" \
    --access-key "$access" --secret-key "$secret" "$dir" >"$dir.log" 2>&1 &
  S3_STARTED_PID=$!
  wait_tcp "$hostport" 15 || { deps_log "s3s-fs did not start:"; tail -20 "$dir.log" >&2; return 1; }
}

s3_down() {
  if [ -n "$S3_STARTED_PID" ]; then
    kill "$S3_STARTED_PID" 2>/dev/null || true
    wait "$S3_STARTED_PID" 2>/dev/null || true
    deps_log "s3s-fs stopped"
  fi
  S3_STARTED_PID=""
}

# A Redis Cluster for the tests run against one (issue 19): 3 masters with a replica each,
# on HOST, ports FIRST to FIRST+5 (redis-cli --cluster create), unless a healthy cluster
# answers at FIRST already; stopped and its folder removed at exit. Sets
# REDIS_CLUSTER_SEEDS to its nodes (`host:port,...`, what REDIS_CLUSTER_NODES takes).
# Not in a `$(...)`: the clean-up is registered in the calling shell.
# redis_cluster_up HOST FIRST [DIR]
REDIS_CLUSTER_STARTED=()
REDIS_CLUSTER_TEMP=()
REDIS_CLUSTER_DOWN_REGISTERED=""
REDIS_CLUSTER_SEEDS=""

# redis_cluster_args HOST PORT DIR: sets REDIS_CLUSTER_ARGS to a cluster node's settings, its
# files in DIR, for redis-server (this file's cluster and the many-hosts harness's). A lost
# master is found within REDIS_CLUSTER_NODE_TIMEOUT_MS (default 1.5 s), and its replica
# always takes over: what a replica lacks was never confirmed to a client
# (REDIS_WAIT_REPLICAS), so its data's age does not matter.
redis_cluster_args() {
  REDIS_CLUSTER_ARGS=(--bind "$1" --port "$2" --protected-mode no --cluster-enabled yes
    --cluster-config-file "$3/nodes.conf"
    --cluster-node-timeout "${REDIS_CLUSTER_NODE_TIMEOUT_MS:-1500}"
    --cluster-replica-validity-factor 0 --dir "$3" --appendonly yes --save ""
    --logfile "$3/redis.log")
}

redis_cluster_ok() { [ "$(redis-cli -h "$1" -p "$2" cluster info 2>/dev/null | tr -d '\r' | grep -c '^cluster_state:ok')" = 1 ]; }

redis_cluster_up() {
  local host="$1" first="$2" dir="${3:-}"
  local nodes=() port
  for ((port = first; port < first + 6; port++)); do nodes+=("$host:$port"); done
  REDIS_CLUSTER_SEEDS="$(IFS=,; echo "${nodes[*]}")"
  if redis_cluster_ok "$host" "$first"; then
    deps_log "a Redis Cluster answers at $host:$first; using it"; return 0
  fi
  deps_install redis-server redis-server || return 1
  [ -n "$REDIS_CLUSTER_DOWN_REGISTERED" ] || { on_exit redis_cluster_down; REDIS_CLUSTER_DOWN_REGISTERED=1; }
  if [ -z "$dir" ]; then dir="$(mktemp -d /tmp/chat-redis-cluster.XXXXXX)"; REDIS_CLUSTER_TEMP+=("$dir"); fi
  deps_log "starting a Redis Cluster on $host:$first-$((first + 5)) (3 masters, 3 replicas; data in $dir)"
  for ((port = first; port < first + 6; port++)); do
    mkdir -p "$dir/$port"
    redis_cluster_args "$host" "$port" "$dir/$port"
    redis-server "${REDIS_CLUSTER_ARGS[@]}" --daemonize yes --pidfile "$dir/$port/redis.pid" \
      || { deps_log "Redis on $port did not start"; return 1; }
  done
  for ((port = first; port < first + 6; port++)); do
    wait_for 10 "Redis on $host:$port" redis_answers "$host" "$port" || return 1
    REDIS_CLUSTER_STARTED+=("$(cat "$dir/$port/redis.pid")")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
    || { deps_log "redis-cli --cluster create failed:"; tail -20 "$dir/create.log" >&2; return 1; }
  for ((port = first; port < first + 6; port++)); do
    wait_for 20 "the cluster's state at $host:$port" redis_cluster_ok "$host" "$port" || return 1
  done
  # Every replica attached before anyone relies on a failover.
  wait_for 20 "3 replicas attached" redis_cluster_replicas "$host" "$first" 3 || return 1
}

# redis_cluster_replicas HOST PORT N: N replicas in the cluster, each with its link to its
# master up (replicated, so able to take over).
redis_cluster_replicas() {
  local replicas n=0 r
  replicas="$(redis-cli -h "$1" -p "$2" cluster nodes 2>/dev/null | awk '$3 ~ /slave/ {split($2, a, "@"); print a[1]}')"
  for r in $replicas; do
    redis-cli -h "${r%:*}" -p "${r##*:}" info replication 2>/dev/null | grep -q '^master_link_status:up' && n=$((n + 1))
  done
  [ "$n" -ge "$3" ]
}

redis_cluster_down() {
  local pid dir
  for pid in "${REDIS_CLUSTER_STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${REDIS_CLUSTER_STARTED[@]}"; do
    wait_for 10 "Redis $pid to stop" eval "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
  done
  [ ${#REDIS_CLUSTER_STARTED[@]} -eq 0 ] || deps_log "Redis Cluster stopped"
  for dir in "${REDIS_CLUSTER_TEMP[@]}"; do rm -rf "$dir"; done
  REDIS_CLUSTER_STARTED=(); REDIS_CLUSTER_TEMP=()
}
