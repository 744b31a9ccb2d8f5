#!/usr/bin/env bash
# Performance claims, measured side by side with their peers in one run and reported as medians and
# ratios. Not a test: run it by hand on a quiet machine.
#
#   scripts/bench.sh            # every benchmark
#   scripts/bench.sh supervise  # start-up overhead and deadline precision against GNU timeout
#
# Needs hyperfine (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "bench: $1 is missing: install the $2 package" >&2; exit 1
  fi
}
need hyperfine hyperfine
need jq jq

cargo build --release --quiet
WATCHDOG=$PWD/target/release/watchdog
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# median_ms FILE INDEX: median of a hyperfine JSON export's command INDEX, in milliseconds.
median_ms() { jq -r ".results[$2].median * 1000" "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

bench_supervise() {
  echo "== start-up overhead: watchdog --timeout 10 -- true  vs  timeout 10 true"
  hyperfine -N --warmup 50 --runs 500 --export-json "$OUT/startup.json" --style none \
    "$WATCHDOG --timeout 10 -- true" "timeout 10 true" >/dev/null
  local w g
  w=$(median_ms "$OUT/startup.json" 0); g=$(median_ms "$OUT/startup.json" 1)
  printf "   median watchdog %.3f ms, GNU timeout %.3f ms, ratio %sx (target <= 1.5x)\n" "$w" "$g" "$(ratio "$w" "$g")"

  echo "== deadline precision: --timeout 0.2 -- sleep 5 (time past the 200 ms deadline)"
  hyperfine -N -i --warmup 3 --runs 40 --export-json "$OUT/deadline.json" --style none \
    "$WATCHDOG --timeout 0.2 -- sleep 5" "timeout 0.2 sleep 5" >/dev/null 2>&1
  w=$(median_ms "$OUT/deadline.json" 0); g=$(median_ms "$OUT/deadline.json" 1)
  printf "   median watchdog %.2f ms (+%.2f), GNU timeout %.2f ms (+%.2f), difference %.2f ms (target <= 5 ms)\n" \
    "$w" "$(awk -v a="$w" 'BEGIN{print a-200}')" "$g" "$(awk -v a="$g" 'BEGIN{print a-200}')" "$(awk -v a="$w" -v b="$g" 'BEGIN{print a-b}')"

  echo "== idle CPU: watchdog --timeout 3 -- sleep 5 (user+sys of the supervisor alone)"
  /usr/bin/time -f "   %U s user, %S s sys over %e s wall" "$WATCHDOG" --timeout 3 -- sleep 5 2>&1 >/dev/null | tail -1 || true
}

case "${1:-all}" in
  supervise) bench_supervise ;;
  all) bench_supervise ;;
  *) echo "bench: unknown benchmark '$1' (supervise, all)" >&2; exit 2 ;;
esac
