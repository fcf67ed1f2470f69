#!/usr/bin/env bash
# The gateway's memory after a burst of sign-ins (issue 18): a release gateway on its own
# PostgreSQL and Redis, glibc's defaults (no allocator setting), N registrations then N
# sign-ins, P at a time; prints the gateway's peak (VmHWM) and resident (VmRSS) memory.
#   scripts/bench-signins.sh [N] [P]       (default 300 users, 32 at a time)
# BENCH_BIN_DIR: run the gateway found there instead of building this checkout (to compare
# two commits). BENCH_PORT: the gateway's port (default 3200). BENCH_DATABASE_URL and
# BENCH_REDIS_URL as in scripts/bench-sends.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
N="${1:-300}"; P="${2:-32}"
PG_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:25433/bench}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26380}"
bin="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
GW="${BENCH_PORT:-3200}"

deps_up "$PG_URL" "$REDIS"
if [ -z "${BENCH_BIN_DIR:-}" ]; then cargo build --release -q -p gateway; fi
unset MALLOC_MMAP_THRESHOLD_ MALLOC_ARENA_MAX
export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="signins$$"
export AUTH_MODE=token INTERNAL_SECRET="bench-$(random_secret)"
export RATE_REGISTRATIONS_PER_ADDRESS=1000000000 RATE_LOGIN_FAILURES_PER_ADDRESS=1000000000
# No upstreams are needed: accounts are answered by the gateway itself.
PORT=$GW HOST=127.0.0.1 CHAT_SERVICE_URL=http://127.0.0.1:9 CALL_SERVICE_URL=http://127.0.0.1:9 \
  "$bin/gateway" & gw=$!; track_bg $gw
wait_http http://127.0.0.1:$GW/healthz 20
mem() { awk '/^VmHWM|^VmRSS/ {printf "%s %d MiB  ", $1, $2/1024}' "/proc/$gw/status"; echo; }
echo "machine: $(machine); load average before: $(load_average)"
echo "idle: $(mem)"
tag="u$$x"
call() { # path, user: fails loudly on anything but 2xx
  curl -fsS -o /dev/null -H 'content-type: application/json' -X POST "http://127.0.0.1:$GW$1" \
    -d "{\"userId\":\"$2\",\"displayName\":\"$2\",\"password\":\"password-$2\"}"
}
export -f call; export GW
start=$(date +%s.%N)
seq 1 "$N" | xargs -P "$P" -I{} bash -c "call /auth/register $tag{}"
echo "after $N registrations ($P at a time): $(mem)"
seq 1 "$N" | xargs -P "$P" -I{} bash -c "call /auth/login $tag{}"
end=$(date +%s.%N)
echo "after $N sign-ins: $(mem)"
echo "$((2 * N)) password hashes in $(echo "$end - $start" | bc) s"
echo "load average after: $(load_average)"
