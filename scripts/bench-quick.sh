#!/usr/bin/env bash
# The criterion benchmarks of `bench/` in their short mode (0.2 s warm-up, 0.5 s measured
# per benchmark: about a minute once built), printed as one line each: the median time and,
# where set, the median throughput. Extra arguments go to criterion (a name filter, say).
#   scripts/bench-quick.sh [FILTER]
# The full run is `cargo bench -p bench`; the test command runs each benchmark once
# (`cargo test -p bench --benches`) so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
cargo bench -q -p bench -- --warm-up-time 0.2 --measurement-time 0.5 "$@" 2>/dev/null | awk '
  # criterion prints "name  time: [low median high]", the name alone on the line before
  # when it is long, then "thrpt: [...]" when a throughput is set. Comparisons with the
  # previous run ("change:" and lines of percentages) are left out.
  /change:|%/ { next }
  /time:/ {
    if ($1 != "time:") name = $1
    for (i = 1; i <= NF; i++) if ($i == "time:") { t = $(i + 3) " " $(i + 4) }
    printf "%-48s %14s", name, t; pending = 1; next
  }
  /thrpt:/ && pending {
    for (i = 1; i <= NF; i++) if ($i == "thrpt:") { printf "  %s %s", $(i + 3), $(i + 4) }
    next
  }
  pending && !/thrpt:/ { print ""; pending = 0 }
  !/time:|thrpt:/ && NF == 1 { name = $1 }
  END { if (pending) print "" }
'
