#!/usr/bin/env bash
# Fuzzes the parsers (Engine.IO, Socket.IO, JSON bodies) and the router with cargo-fuzz
# (libFuzzer), each target for SECONDS (default 30). cargo-fuzz needs nightly features; the
# stable toolchain provides them with RUSTC_BOOTSTRAP=1. Crashes land in fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
SECONDS_EACH="${1:-30}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --quiet --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in engine_packets socketio_packets router json_bodies; do
  step "fuzz $target for ${SECONDS_EACH}s"
  mkdir -p "corpus/$target"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|Done)" || true
  # cargo fuzz exits non-zero on a crash; pipefail carries it here.
  test "${PIPESTATUS[0]}" -eq 0 || { echo "fuzz target $target failed; see fuzz/artifacts/$target" >&2; exit 1; }
done
