#!/usr/bin/env bash
# SIGKILL-of-watchdog soak: how many processes outlive a watchdog killed with SIGKILL, per --contain
# mechanism. Each trial runs a randomised tree (setsid grandchildren, double-forked daemons that
# ignore TERM, a fork storm of sleepers), SIGKILLs watchdog after a random delay (half the trials
# within 30 ms, while watchdog, its init and the command start; the rest up to 0.7 s), waits up to
# 2 s for the tree to die, and counts the processes still carrying the trial's tag in their
# environment; those are then killed.
#
#   scripts/contain-soak.sh [TRIALS] [MECHANISM...]   # default: 40 trials of each available mechanism
#   SOAK_USER=nobody scripts/contain-soak.sh ...       # watchdog runs as that user (setpriv; needs root)
#   WATCHDOG=/path/to/watchdog scripts/contain-soak.sh  # that binary instead of a release build
#
# Prints one line per mechanism: trials, trials with survivors, survivors in all, and what `auto`
# chose. A mechanism that cannot be had here is named and skipped. Exits 1 when a mechanism other
# than group left any survivor (group's survivors are its documented limit), and when a trial tested
# nothing: its watchdog exited by itself before the SIGKILL (a refused option, a mechanism that cannot
# start), or, in a trial killed after 0.3 s or more, no process of its tree was running yet beside
# watchdog.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-40}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then MECHANISMS=("$@"); else MECHANISMS=(auto pidns userns sentinel group); fi

if [ -z "${WATCHDOG:-}" ]; then
  cargo build --release --quiet
  WATCHDOG=$PWD/target/release/watchdog
fi
AS=()
if [ -n "${SOAK_USER:-}" ]; then
  # The binary must be readable and runnable by that user: a copy in a world-readable directory
  # (watchdog alone: the trials download nothing, so its worker, watchdog-fetch, is not needed).
  RUN_DIR=$(mktemp -d)
  trap 'rm -rf "$RUN_DIR"' EXIT
  chmod 755 "$RUN_DIR"
  cp "$WATCHDOG" "$RUN_DIR/watchdog"
  chmod 755 "$RUN_DIR/watchdog"
  WATCHDOG=$RUN_DIR/watchdog
  AS=(setpriv "--reuid=$SOAK_USER" "--regid=$(id -gn "$SOAK_USER")" --clear-groups)
fi
TAG=WATCHDOG_SOAK_TAG

# tagged VALUE: pids of live processes whose environment has TAG=VALUE (a zombie has none).
tagged() {
  grep -lsxzF "$TAG=$1" /proc/[0-9]*/environ 2>/dev/null | sed 's|/proc/\([0-9]*\)/environ|\1|' || true
}

# One random tree, as a shell script.
tree() {
  local setsids=$((RANDOM % 4)) daemons=$((RANDOM % 4)) storm=$((RANDOM % 150)) s=""
  for _ in $(seq "$setsids"); do s+="setsid sleep 600 & "; done
  for _ in $(seq "$daemons"); do s+="(setsid sh -c 'trap \"\" TERM; sleep 600 & sleep 600' &) ; "; done
  s+="i=0; while [ \$i -lt $storm ]; do sleep 600 & i=\$((i+1)); done; wait"
  printf '%s' "$s"
}

status=0
for mechanism in "${MECHANISMS[@]}"; do
  chosen=$mechanism
  if [ "$mechanism" = auto ]; then
    chosen=$("${AS[@]}" "$WATCHDOG" -vv -- true 2>&1 | sed -n 's/.*(--contain \(.*\))$/\1/p')
  elif ! "${AS[@]}" "$WATCHDOG" --contain "$mechanism" -- true 2>/dev/null; then
    printf 'contain-soak: %-8s not available here%s\n' "$mechanism" "${SOAK_USER:+ for $SOAK_USER}"
    continue
  fi
  dirty=0 total=0
  for trial in $(seq "$TRIALS"); do
    value="soak-$$-$mechanism-$trial"
    env "$TAG=$value" "${AS[@]}" "$WATCHDOG" --contain "$mechanism" -t 600 -- sh -c "$(tree)" >/dev/null 2>&1 &
    pid=$!
    # Half the trials within 30 ms (watchdog, its init and the command still starting), half up to
    # 0.7 s (the storm forked or forking).
    late=0
    if [ $((RANDOM % 2)) = 0 ]; then
      sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
    else
      tenths=$((RANDOM % 7))
      sleep "0.$tenths$((RANDOM % 10))"
      [ "$tenths" -ge 3 ] && late=1
    fi
    running=
    [ "$late" = 1 ] && running=$(tagged "$value")
    kill -KILL "$pid" 2>/dev/null || true
    code=0
    wait "$pid" 2>/dev/null || code=$?
    # 137: watchdog was still running when it was killed; anything else, it had already exited.
    if [ "$code" != 137 ]; then
      echo "contain-soak: $mechanism trial $trial: watchdog exited $code before the SIGKILL: it tested nothing" >&2
      status=1
    fi
    if [ "$late" = 1 ] && [ "$(wc -w <<<"$running")" -lt 2 ]; then
      echo "contain-soak: $mechanism trial $trial: no command was running after 0.3 s: it tested nothing" >&2
      status=1
    fi
    left=
    for _ in $(seq 40); do
      left=$(tagged "$value")
      [ -z "$left" ] && break
      sleep 0.05
    done
    if [ -n "$left" ]; then
      n=$(wc -w <<<"$left")
      dirty=$((dirty + 1)); total=$((total + n))
      # shellcheck disable=SC2086
      kill -KILL $left 2>/dev/null || true
    fi
  done
  printf 'contain-soak: %-8s %d trials, %d with survivors, %d survivors%s%s\n' "$mechanism" "$TRIALS" "$dirty" \
    "$total" "${SOAK_USER:+ (as $SOAK_USER)}" "$([ "$mechanism" = auto ] && echo ", auto chose $chosen")"
  if [ "$mechanism" != group ] && [ "$total" -gt 0 ]; then status=1; fi
done
exit "$status"
