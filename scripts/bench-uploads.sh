#!/usr/bin/env bash
# The upload measurement of docs/perf/2026-12-attachments.md: the release gateway and chat
# service against PostgreSQL and Redis (the test servers by default, in a database of its
# own), then UPLOADS concurrent uploads of SIZE bytes each (curl, streaming the file) through
# the gateway, once on the local back end and once on S3 (s3s-fs, started here). Prints, for
# each, the answers, the wall time and throughput, and the peak resident memory (VmHWM) of the
# gateway and of a chat service started fresh for it, next to their resident memory before.
# Then the ceilings of the same run: the same files written straight to disk (dd, fsync), and
# PUT straight to the S3 server (curl --aws-sigv4, one request each).
#   scripts/bench-uploads.sh [UPLOADS=20] [SIZE=26214400]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
UPLOADS="${1:-20}"; SIZE="${2:-26214400}"
ADMIN_URL="${BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:25432/postgres}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:26379}"
DB="bench_uploads_$$"
PG_URL="${ADMIN_URL%/*}/$DB"
bin="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/bench-uploads.XXXXXX)"
on_exit rm -rf "$work"

deps_up "$ADMIN_URL" "$REDIS"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p chat -p gateway
"$(pg_bin)/psql" -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
on_exit "$(pg_bin)/psql" -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
s3_endpoint="http://127.0.0.1:$(free_port)"
s3_up "$s3_endpoint" bench-access bench-secret-0123456789 "$work/s3"
mkdir -p "$work/s3/bench"

export CHAT_DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" RUST_LOG=warn CHAT_NAMESPACE="benchu$$"
export AUTH_MODE=token INTERNAL_SECRET="bench-$(random_secret)" ATTACHMENT_MAX_BYTES="$SIZE"
chat_port=$(free_port); gateway_port=$(free_port)
# Every upload at once is the point: the per-instance cap (default 16) and one user's unsent
# quota (default 250 MiB) would refuse some.
chat_env=(PORT="$chat_port" HOST=127.0.0.1 METRICS_PORT="$(free_port)" ATTACHMENT_UPLOADS_MAX="$UPLOADS"
  ATTACHMENT_UNSENT_MAX_BYTES=$((UPLOADS * SIZE * 2)) ATTACHMENT_DIR="$work/local")
gateway="http://127.0.0.1:$gateway_port"

head -c "$SIZE" /dev/urandom >"$work/file"
mem() { awk -v k="$2:" '$1 == k {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }

# run_case NAME CHAT_ENV...: a fresh gateway and chat service (the latter with those settings),
# the uploads, the figures.
run_case() {
  local name="$1"; shift
  env "${chat_env[@]}" "$@" "$bin/chat" & local chat_pid=$!
  track_bg "$chat_pid"
  env PORT="$gateway_port" METRICS_PORT="$(free_port)" CHAT_SERVICE_URL="http://127.0.0.1:$chat_port" \
    CALL_SERVICE_URL="http://127.0.0.1:9" RATE_UPLOADS_PER_USER=100000 RATE_UPLOADS_PER_ADDRESS=100000 \
    "$bin/gateway" & local gateway_pid=$!
  track_bg "$gateway_pid"
  wait_http "http://127.0.0.1:$chat_port/readyz" 30
  wait_http "$gateway/healthz" 30
  local token
  token="$(curl -fsS -X POST "$gateway/auth/register" -H 'content-type: application/json' \
    -d "{\"userId\":\"u$name$$\",\"displayName\":\"u\",\"password\":\"password-bench-$$\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  echo "[$name] before: gateway VmRSS $(mem "$gateway_pid" VmRSS), chat VmRSS $(mem "$chat_pid" VmRSS)"
  local start=$EPOCHREALTIME i pids=()
  for i in $(seq 1 "$UPLOADS"); do
    curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -X POST -T "$work/file" \
      -H "authorization: Bearer $token" -H 'content-type: application/octet-stream' \
      -H "x-filename: file-$i.bin" "$gateway/attachments" >"$work/up-$name.$i" &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  local end=$EPOCHREALTIME
  echo "[$name] answers: $(cat "$work/up-$name".* | cut -d' ' -f1 | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
  python3 - "$start" "$end" "$UPLOADS" "$SIZE" "$work/up-$name" <<'PY'
import glob, sys
start, end, n, size, prefix = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
times = sorted(float(open(f).read().split()[1]) for f in glob.glob(prefix + ".*"))
wall = end - start
name = prefix.rsplit("/up-", 1)[1]
print(f"[{name}] {n} x {size / 1048576:.0f} MiB in {wall:.2f} s: "
      f"{n * size / 1048576 / wall:.0f} MiB/s in all; per upload median {times[len(times) // 2]:.2f} s, slowest {times[-1]:.2f} s")
PY
  echo "[$name] peak: gateway VmHWM $(mem "$gateway_pid" VmHWM), chat VmHWM $(mem "$chat_pid" VmHWM)"
  kill "$chat_pid" "$gateway_pid"; wait "$chat_pid" "$gateway_pid" 2>/dev/null || true
}

echo "machine: $(machine); load average before: $(load_average)"
run_case local
run_case s3 S3_ENDPOINT="$s3_endpoint" S3_BUCKET=bench S3_ACCESS_KEY_ID=bench-access \
  S3_SECRET_ACCESS_KEY=bench-secret-0123456789
echo "stored on S3: $(find "$work/s3/bench" -type f | wc -l) objects"

# ceiling NAME COMMAND...: UPLOADS copies of COMMAND at once ({} is the copy's number).
ceiling() {
  local name="$1"; shift
  local start=$EPOCHREALTIME i pids=()
  for i in $(seq 1 "$UPLOADS"); do
    "${@//\{\}/$i}" & pids+=($!)
  done
  wait "${pids[@]}"
  python3 -c "import sys; w = float(sys.argv[2]) - float(sys.argv[1]); print(f'[ceiling {sys.argv[3]}] {int(sys.argv[4])} x {int(sys.argv[5]) / 1048576:.0f} MiB in {w:.2f} s: {int(sys.argv[4]) * int(sys.argv[5]) / 1048576 / w:.0f} MiB/s in all')" \
    "$start" "$EPOCHREALTIME" "$name" "$UPLOADS" "$SIZE"
}
mkdir -p "$work/disk"
ceiling disk dd if="$work/file" of="$work/disk/{}" bs=1M conv=fsync status=none
ceiling s3 curl -sS -o /dev/null --fail --aws-sigv4 "aws:amz:us-east-1:s3" \
  --user bench-access:bench-secret-0123456789 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  -T "$work/file" "$s3_endpoint/bench/ceiling-{}"
echo "load average after: $(load_average)"
