#!/usr/bin/env bash
# Fuzzes the parsers (Engine.IO, Socket.IO, JSON bodies, forwarding headers) and the router with cargo-fuzz
# (libFuzzer), each target for SECONDS (default 30). cargo-fuzz needs nightly features; the
# stable toolchain provides them with RUSTC_BOOTSTRAP=1. A crash, or a target that does not
# build, fails the script; the crashing input lands in fuzz/artifacts/<target>/.
#
# Corpus: each run starts from the committed seeds in fuzz/corpus/<target>/ (hand-made
# inputs, read only) plus what earlier runs on this machine found, kept in
# fuzz/corpus-grown/<target>/ (git-ignored; libFuzzer writes new inputs to the first
# directory it is given). Delete that folder to start again from the seeds.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
SECONDS_EACH="${1:-30}"
# A debug build of cargo-fuzz itself: it only drives cargo, and builds in half the time.
command -v cargo-fuzz >/dev/null 2>&1 || CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug cargo-fuzz
export RUSTC_BOOTSTRAP=1
cd fuzz
log="$(mktemp /tmp/fuzz-log.XXXXXX)"
on_exit rm -f "$log"
for target in engine_packets socketio_packets router json_bodies forwarded; do
  step "fuzz $target for ${SECONDS_EACH}s"
  mkdir -p "corpus-grown/$target" "corpus/$target"
  # The status is cargo fuzz's own, taken before any filter runs: it is non-zero on a crash,
  # a leak, a timeout or a failed build.
  status=0
  cargo fuzz run "$target" "corpus-grown/$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|Done)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    fail "fuzz target $target exited with status $status; see fuzz/artifacts/$target"
  fi
done
