#!/usr/bin/env bash
# What the scripts share: step headers, waiting for a server to be ready, free ports, the
# processes and clean-ups to run at exit, the machine line of the benchmarks and a random
# secret. Source it (`source scripts/lib.sh`; deps.sh sources it too). Sourcing it installs
# the exit trap: a script registers clean-ups with `on_exit` and never sets its own trap.

# Sourced twice (a script and deps.sh): the second time would forget the registered clean-ups.
[ -n "${LIB_SH_LOADED:-}" ] && return 0
LIB_SH_LOADED=1

# step TEXT: a header before each stage of a script. STEP_PREFIX (unset: none) names the
# script in the header when its output lands inside another's (e.g. "[ui] ").
# Under the test command (STEPS_STARTED, set by test-all.sh) each step says when it began, so
# a run's log shows where its time went.
step() {
  local at=""
  [ -z "${STEPS_STARTED:-}" ] || at="[$(( ($(date +%s) - STEPS_STARTED) / 60 ))m$(( ($(date +%s) - STEPS_STARTED) % 60 ))s] "
  printf '\n==> %s%s%s\n' "$at" "${STEP_PREFIX:-}" "$*"
}

# fail TEXT: the reason on stderr, then exit 1 (the clean-ups run).
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds. After
# SECONDS it runs it once more with its errors shown, says what was not ready and returns 1
# (under `set -e` the script stops there, not at a later, less clear failure).
wait_for() {
  local secs="$1" what="$2" tries
  shift 2
  tries=$((secs * 10))
  while [ "$tries" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
    tries=$((tries - 1))
  done
  "$@" >/dev/null && return 0
  printf 'not ready after %ss: %s\n' "$secs" "$what" >&2
  return 1
}

# wait_http URL [SECONDS=30]: until URL answers 2xx.
wait_http() { wait_for "${2:-30}" "$1" curl -fsS -o /dev/null "$1"; }

# tcp_open HOST PORT: whether something accepts connections there.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_tcp HOST:PORT [SECONDS=30]: until something accepts connections at HOST:PORT.
wait_tcp() { wait_for "${2:-30}" "$1" tcp_open "${1%:*}" "${1##*:}"; }

# free_port: a TCP port free on 127.0.0.1 right now (the kernel's choice).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# LOADTEST_LIMITS: the settings a load test gives the services (NAME=VALUE words), so that one
# address driving thousands of users is not throttled (scripts/loadtest.sh,
# scripts/bench-cluster.sh): sends, registrations, sign-in failures and connects; open
# connections (a conversation of 999 members is 999 sockets); socket events (each typing
# sender emits as fast as its events come back: 5/s after a burst of 20 would cap the typing
# runs at about 200 events/s); the REST mix's conversations, edits and reads.
LOADTEST_LIMITS=(
  RATE_SENDS_PER_USER=1000000 RATE_SENDS_PER_ADDRESS=1000000 RATE_REGISTRATIONS_PER_ADDRESS=1000000
  RATE_LOGIN_FAILURES_PER_USER=1000000 RATE_LOGIN_FAILURES_PER_ADDRESS=1000000 RATE_CONNECTS_PER_ADDRESS=1000000
  MAX_CONNECTIONS_PER_ADDRESS=1000000
  SOCKET_EVENT_BURST=100000 SOCKET_EVENTS_PER_SEC=100000 SOCKET_EVENTS_PER_USER_PER_MIN=10000000
  RATE_CONVERSATIONS_PER_USER=1000000 RATE_CONVERSATIONS_PER_ADDRESS=1000000
  RATE_EDITS_PER_USER=1000000 RATE_EDITS_PER_ADDRESS=1000000 RATE_READS_PER_USER=1000000 RATE_READS_PER_ADDRESS=1000000
)

# random_secret: 48 hex characters, for INTERNAL_SECRET and the like.
random_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# machine: "2 cores, 24 GiB, <kernel>", the first words of every benchmark's output.
machine() { echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"; }

# load_average: the 1, 5 and 15 minute load averages.
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# Exit: first every process given to `track_bg` gets TERM and is waited for (all at once,
# so they stop in parallel), then the `on_exit` commands run, last registered first (so a
# database is dropped before its server stops). EXIT_STATUS holds the script's exit status
# meanwhile. Ctrl-C and TERM exit with 130 and run the same.
BG_PIDS=()
LIB_ON_EXIT=()
EXIT_STATUS=0

# track_bg PID...: background processes to stop at exit.
track_bg() { BG_PIDS+=("$@"); }

# on_exit COMMAND...: a command to run at exit (after the tracked processes stopped). Its
# failure does not stop the other clean-ups.
on_exit() {
  local quoted
  printf -v quoted '%q ' "$@"
  LIB_ON_EXIT+=("$quoted")
}

lib_run_exit() {
  EXIT_STATUS=$?
  trap - EXIT INT TERM
  local p i
  for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ((i = ${#LIB_ON_EXIT[@]} - 1; i >= 0; i--)); do
    eval "${LIB_ON_EXIT[i]}" || true
  done
  exit "$EXIT_STATUS"
}
trap lib_run_exit EXIT
trap 'exit 130' INT TERM

# bench_stack BIN GATEWAY_PORT: the release chat, worker and gateway found in BIN, the gateway on
# GATEWAY_PORT and chat, call and worker on the next three ports, meeting over Unix sockets in
# SOCKET_DIR as scripts/run-stack.sh runs them (a fresh folder unless set; SOCKET_DIR= keeps
# TCP). BENCH_WORKERS (1): worker processes, the others on GATEWAY_PORT+10 and up. The
# caller's environment configures them; returns once all of them answer.
bench_stack() {
  local bin="$1" gw="$2"
  local chat=$((gw + 1)) call=$((gw + 2)) worker=$((gw + 3))
  if [ -z "${SOCKET_DIR+set}" ]; then
    SOCKET_DIR="$(mktemp -d)/run"; on_exit rm -rf "$(dirname "$SOCKET_DIR")"
  fi
  export SOCKET_DIR
  PORT=$chat HOST=127.0.0.1 "$bin/chat" & track_bg $!
  PORT=$worker "$bin/worker" & track_bg $!
  local i
  for ((i = 2; i <= ${BENCH_WORKERS:-1}; i++)); do
    PORT=$((gw + 8 + i)) "$bin/worker" & track_bg $!
  done
  PORT=$gw HOST=127.0.0.1 CHAT_SERVICE_URL=http://127.0.0.1:$chat \
    CALL_SERVICE_URL=http://127.0.0.1:$call "$bin/gateway" & track_bg $!
  wait_http "http://127.0.0.1:$chat/readyz" 20
  wait_http "http://127.0.0.1:$worker/readyz" 20
  for ((i = 2; i <= ${BENCH_WORKERS:-1}; i++)); do
    wait_http "http://127.0.0.1:$((gw + 8 + i))/readyz" 20
  done
  wait_http "http://127.0.0.1:$gw/healthz" 20
}
