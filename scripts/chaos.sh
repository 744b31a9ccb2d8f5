#!/usr/bin/env bash
# Randomized soak of the supervisor's promises (scripts/chaos.py says what is checked): hostile
# children x random options x signals sent to watchdog. Bounded in time (--max-seconds), loopback-free
# (no network at all), and it only ever kills processes that carry its own per-trial marker.
#
#   scripts/chaos.sh                 # 1,000 trials, 4 at a time
#   scripts/chaos.sh --trials 100    # the CI-sized run
#   scripts/chaos.sh --seed 42       # replay a run (the seed is in the summary line)
#
# Prints one JSON summary line (trials, survivors, wrong_codes, hangs, late_deadlines, lateness,
# peak_rss_kb, wall_s) and a FAIL line per broken trial on stderr; exits 1 if any promise broke.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 scripts/chaos.py --binary "$PWD/target/release/watchdog" "$@"
