#!/usr/bin/env bash
# Tests the run command (scripts/run-stack.sh) as a team runs it: started on free ports with
# the debug binaries (RUN_STACK_BIN_DIR, default target/debug; no release or npm build: the
# web service serves a one-page placeholder) and a temporary data folder. A user signs up and
# sends; the worker, then chat, are killed with SIGKILL: each is restarted by its supervisor
# while the gateway keeps answering, and sends made during and after the outage are stored.
# Ctrl-C (SIGINT to the run command's process group) stops everything, leaving no process
# and keeping the data; a second start on the same folder lists every earlier message.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
STEP_PREFIX="[run-stack] "

bin="${RUN_STACK_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/debug}"
for b in chat worker call gateway web; do
  [ -x "$bin/$b" ] || fail "$bin/$b missing: cargo build --workspace --bins"
done
work="$(mktemp -d /tmp/run-stack-test.XXXXXX)"
# PostgreSQL runs as its own user when this runs as root: it must reach the data folder.
chmod 755 "$work"
on_exit rm -rf "$work"
mkdir -p "$work/static"
echo '<!doctype html><title>chat</title>' >"$work/static/index.html"
pg_port=$(free_port); redis_port=$(free_port); chat_port=$(free_port); worker_port=$(free_port)
call_port=$(free_port); gateway_port=$(free_port); web_port=$(free_port)
gw="http://127.0.0.1:$gateway_port"
stack_pid=""
runs=0

# Started with job control on: the run command gets a process group of its own, with SIGINT
# not ignored, as in a terminal (`env --default-signal`: a shell started with SIGINT ignored,
# as `nohup cmd &` starts it, hands that on and cannot trap it, and Ctrl-C would then stop
# the services but not the run command).
start_stack() {
  runs=$((runs + 1))
  set -m
  CHAT_DATA_DIR="$work/data" BIN_DIR="$bin" SKIP_BUILD=1 SKIP_WEB_BUILD=1 STATIC_DIR="$work/static" \
    CHAT_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/chat" REDIS_URL="redis://127.0.0.1:$redis_port" \
    CHAT_PORT=$chat_port WORKER_PORT=$worker_port CALL_PORT=$call_port GATEWAY_PORT=$gateway_port WEB_PORT=$web_port \
    RESTART_MAX_DELAY=2 RUST_LOG=warn \
    env --default-signal=INT bash scripts/run-stack.sh >"$work/run$runs.log" 2>&1 &
  stack_pid=$!
  set +m
  wait_for 120 "the gateway, or the run command's exit" stack_up_or_gone
  kill -0 "$stack_pid" 2>/dev/null && curl -fsS -o /dev/null "$gw/readyz" \
    || { tail -n 40 "$work/run$runs.log" >&2; fail "the run command did not come up"; }
  wait_http "http://127.0.0.1:$web_port/healthz"
}

port_closed() { ! tcp_open 127.0.0.1 "$1"; }

stack_up_or_gone() { ! kill -0 "$stack_pid" 2>/dev/null || curl -fsS -o /dev/null "$gw/readyz"; }

# stop_stack: Ctrl-C, then everything it started must be gone within 30 s.
stop_stack() {
  kill -INT -- "-$stack_pid"
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$stack_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$stack_pid" 2>/dev/null; then
    echo "--- what was still running, and the run command's log" >&2
    ps -o pid,stat,etime,cmd -g "$stack_pid" >&2 || true
    tail -n 40 "$work/run$runs.log" >&2
    kill -KILL -- "-$stack_pid" 2>/dev/null || true
    fail "the run command did not stop on SIGINT"
  fi
  wait "$stack_pid" 2>/dev/null || true
  for port in $chat_port $worker_port $call_port $gateway_port $web_port $pg_port $redis_port; do
    wait_for 10 "port $port closed" port_closed "$port" \
      || fail "something still listens on $port after Ctrl-C: $(ss -Hltnp "sport = :$port")"
  done
  [ -z "$(ps -o pid= -g "$stack_pid")" ] || fail "processes left after Ctrl-C: $(ps -o pid,cmd -g "$stack_pid")"
  stack_pid=""
}
# A failure midway still stops the stack (its own exit trap stops the servers), before the
# data folder is removed.
stack_cleanup() {
  [ -n "$stack_pid" ] || return 0
  kill -INT -- "-$stack_pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$stack_pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$stack_pid" 2>/dev/null || true
}
on_exit stack_cleanup

# api METHOD PATH [JSON]: the answer's status in $status, its body in $work/body.
api() {
  status="$(curl -sS -o "$work/body" -w '%{http_code}' -X "$1" "$gw$2" -H 'content-type: application/json' \
    ${token:+-H "authorization: Bearer $token"} ${3:+--data "$3"})" || status=000
}
# field KEY: a top-level field of the last answer's body.
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/body" "$1"; }
# sign_in: Ann's token in $token.
sign_in() {
  token=""
  api POST /auth/login '{"userId":"ann","password":"password-ann"}'
  [ "$status" = 200 ] || fail "sign-in: $status"
  token="$(field token)"
}

# pid_on PORT: the pid of the process listening there (one the run command started).
pid_on() { ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; }

# kill_and_watch NAME PORT: SIGKILL the service; until it is ready again, the gateway's
# /healthz must answer 200 every time it is asked.
kill_and_watch() {
  local name="$1" port="$2" pid asked=0 i
  pid="$(pid_on "$port")"; [ -n "$pid" ] || fail "no process listens on $name's port $port"
  kill -KILL "$pid"
  for ((i = 0; i < 600; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$gw/healthz")" = 200 ] \
      || fail "the gateway stopped answering /healthz while $name was down"
    asked=$((asked + 1))
    if [ "$i" -gt 2 ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then break; fi
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || fail "$name was not restarted within 60 s"
  local new; new="$(pid_on "$port")"
  if [ -z "$new" ] || [ "$new" = "$pid" ]; then fail "$name answers, but not from a new process"; fi
  grep -q "$name exited with status 137 (signal 9)" "$work/run$runs.log" \
    || fail "the restart of $name was not logged"
  echo "$name: killed (pid $pid), restarted (pid $new); gateway /healthz answered 200 to all $asked probes meanwhile"
}

step "first start on an empty data folder"
start_stack
token=""
api POST /auth/register '{"userId":"ann","displayName":"Ann","password":"password-ann"}'
[ "$status" = 201 ] || fail "register ann: $status"
api POST /auth/register '{"userId":"ben","displayName":"Ben","password":"password-ben"}'
[ "$status" = 201 ] || fail "register ben: $status"
sign_in
api POST /conversations '{"type":"group","members":[{"userId":"ann","displayName":"Ann"},{"userId":"ben","displayName":"Ben"}]}'
[ "$status" = 201 ] || fail "create conversation: $status"
conv="$(field id)"
send() {
  api POST "/conversations/$conv/messages" "{\"senderId\":\"ann\",\"body\":\"$1\",\"clientMessageId\":\"$1\"}"
  case "$status" in 201 | 202) ;; *) fail "send $1: $status $(cat "$work/body")" ;; esac
}
send before-faults

step "SIGKILL the worker, then chat"
kill_and_watch worker "$worker_port"
send after-worker-restart
kill_and_watch chat "$chat_port"
send after-chat-restart

# bodies: the conversation's stored message bodies, sorted, on one line.
bodies() {
  api GET "/conversations/$conv/messages?limit=100"
  python3 -c 'import json,sys; print(" ".join(sorted(m["body"] for m in json.load(open(sys.argv[1])))))' "$work/body" 2>/dev/null
}
want="after-chat-restart after-worker-restart before-faults"
all_stored() { [ "$(bodies)" = "$want" ]; }
wait_for 15 "all three sends stored" all_stored || fail "stored: '$(bodies)', expected: '$want'"
echo "stored: $want"

step "Ctrl-C, then a second start on the same data folder"
stop_stack
[ -s "$work/data/pg/data/PG_VERSION" ] || fail "stopping deleted the PostgreSQL data"
start_stack
grep -q "reusing the PostgreSQL cluster" "$work/run$runs.log" || fail "the second start did not reuse the cluster"
sign_in
got="$(bodies)"
[ "$got" = "$want" ] || fail "after the restart the conversation lists: '$got', expected: '$want'"
echo "after the restart: $got"
stop_stack
echo "[run-stack] passed"
