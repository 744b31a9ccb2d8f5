#!/usr/bin/env bash
# Performance claims, measured side by side with their peers in one run: scripts/bench/bench.py does the
# work (`scripts/bench.sh --help` lists the comparisons, options and BENCH_* variables).
#
#   scripts/bench.sh                 # every comparison; writes BENCHMARKS.md
#   scripts/bench.sh batch cpu       # some of them
#   scripts/bench.sh --quick         # every comparison with few rounds and small inputs (a smoke test)
#   BENCH_BASELINE=OLD_BINARY scripts/bench.sh   # an older watchdog beside this build in the same run
set -euo pipefail
command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is missing: install the python3 package" >&2; exit 1; }
exec python3 "$(dirname "$0")/bench/bench.py" "$@"
