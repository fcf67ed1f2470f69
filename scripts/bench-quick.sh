#!/usr/bin/env bash
# The criterion benchmarks of `bench/` in their short mode (0.2 s warm-up, 0.5 s measured
# per benchmark: about a minute once built), printed as one line each: the median time and,
# where set, the median throughput. Extra arguments go to criterion (a name filter, say).
#   scripts/bench-quick.sh [FILTER]
# Environment: BENCH_PROFILE (cargo profile, default `bench`), BENCH_WARMUP and
# BENCH_MEASURE (seconds). `BENCH_PROFILE=bench-ci BENCH_WARMUP=0.05 BENCH_MEASURE=0.2`
# prints every figure quickly from a build without LTO (figures close to, not equal to,
# `cargo bench`). The full run is `cargo bench -p bench`; the test command only runs each
# benchmark once, unmeasured (`cargo test --bench '*'`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
echo "machine: $(machine); load average $(load_average); profile ${BENCH_PROFILE:-bench}"
cargo bench -q -p bench --profile "${BENCH_PROFILE:-bench}" --no-run
# criterion's progress goes to stderr, kept aside: shown (its end) only when a benchmark fails.
err="$(mktemp)"
on_exit rm -f "$err"
cargo bench -q -p bench --profile "${BENCH_PROFILE:-bench}" -- \
  --warm-up-time "${BENCH_WARMUP:-0.2}" --measurement-time "${BENCH_MEASURE:-0.5}" "$@" 2>"$err" | awk '
  # criterion prints "name  time: [low median high]", the name alone on the line before
  # when it is long, then "thrpt: [...]" when a throughput is set. Comparisons with the
  # previous run ("change:" and lines of percentages) are left out.
  /change:|%/ { next }
  # Percentiles that a benchmark prints after its criterion run (listing).
  / p99 / { if (pending) print ""; pending = 0; print; next }
  /time:/ {
    # The previous benchmark had no throughput line: end its line first.
    if (pending) print ""
    if ($1 != "time:") name = $1
    for (i = 1; i <= NF; i++) if ($i == "time:") { t = $(i + 3) " " $(i + 4) }
    printf "%-48s %14s", name, t; pending = 1; next
  }
  /thrpt:/ && pending {
    for (i = 1; i <= NF; i++) if ($i == "thrpt:") { printf "  %s %s", $(i + 3), $(i + 4) }
    next
  }
  # What a benchmark says of itself ("search: corpus built in 61s", "history: skipped ...").
  /^[a-z_]+: / { if (pending) print ""; pending = 0; print; next }
  pending && !/thrpt:/ { print ""; pending = 0 }
  !/time:|thrpt:/ && NF == 1 { name = $1 }
  END { if (pending) print "" }
' || {
  status=$?
  echo "bench-quick: a benchmark failed (exit $status); the end of its error output:" >&2
  tail -n 40 "$err" >&2
  exit "$status"
}
