#!/usr/bin/env bash
# The README's Slurm recipe on a real Slurm: starts a one-node cluster (munged, slurmctld, slurmd on
# this host, everything in a temp directory), serves a list from a loopback server, submits the
# README's array script as written (paths substituted), and checks that the shards' reports are
# disjoint, cover the list, and that every file is intact; then runs it again on slow items, requeues
# one array task mid-run (`scontrol requeue`), and checks that the task resumed without downloading
# again what it had finished. Ends with the recipe's `watchdog report` step. Stops every daemon it
# started, by pid.
#
# Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge). Set WATCHDOG to a
# binary to test, with watchdog-fetch beside it (default: cargo build, then target/debug/watchdog);
# KEEP=1 keeps the temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
started=$(date +%s)

say() { echo "slurm-demo: $*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it starts slurmctld, slurmd and munged)"
export PATH="$PATH:/usr/sbin:/sbin"
for tool in munged slurmctld slurmd sbatch squeue scontrol python3; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is not installed: apt-get install slurm-wlm munge python3"
done
if [ -z "${WATCHDOG:-}" ]; then
  cargo build --quiet
  WATCHDOG=$repo/target/debug/watchdog
fi
[ -x "$WATCHDOG" ] || die "no watchdog binary at $WATCHDOG"

tmp=$(mktemp -d /tmp/watchdog-slurm.XXXXXX)
server_pid=
cleanup() {
  local rc=$?
  # A second signal must not cut the clean-up short.
  trap '' INT TERM
  # Jobs first (their tasks are children of slurmd's steps), then the daemons, each by its pid.
  if [ -f "$tmp/slurmctld.pid" ]; then
    scancel --quiet --full "${job:-0}" >/dev/null 2>&1 || true
  fi
  for pidfile in "$tmp/slurmd.pid" "$tmp/slurmctld.pid" "$tmp/munge/munged.pid"; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || continue 2
      sleep 0.1
    done
    say "pid $pid ($pidfile) ignored SIGTERM for 5 s: SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  done
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    for log in "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/munge/munged.log; do
      [ -f "$log" ] && { say "--- tail of $log"; tail -n 15 "$log" >&2; }
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (bounded by $2 seconds) until the command in the remaining arguments succeeds.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local until=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$until" ] || die "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}

# Two distinct free ports, for slurmctld and slurmd.
read -r ctld_port slurmd_port < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')

# --- munge, with a key made on the spot
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool"
chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
munged --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/munge.sock" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
  --seed-file="$tmp/munge/munged.seed"
wait_for "munged" 10 test -S "$tmp/munge/munge.sock"

# --- slurmctld and slurmd on this host
node=$(hostname -s)
memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=watchdog-demo
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=5
MinJobAge=600
# The node declares 32 CPUs whatever it has, so that all 16 tasks of the array (2 CPUs each) run at once.
SlurmdParameters=config_overrides
NodeName=$node CPUs=32 RealMemory=$memory State=UNKNOWN
PartitionName=demo Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
node_idle() { [ "$(sinfo -h -n "$node" -o %t 2>/dev/null)" = idle ]; }
wait_for "the node to be idle" 30 node_idle
say "cluster up: slurmctld $(cat "$tmp/slurmctld.pid"), slurmd $(cat "$tmp/slurmd.pid"), munged $(cat "$tmp/munge/munged.pid")"

# --- the loopback server
python3 "$repo/scripts/testserver.py" --port-file "$tmp/port" --log "$tmp/requests.log" >/dev/null &
server_pid=$!
wait_for "the server" 10 test -s "$tmp/port"
base=http://127.0.0.1:$(cat "$tmp/port")

# The README's array script, as written: the sh block after "A Slurm job array", with its paths
# substituted (list, output directory, binary).
readme_script() {
  local list=$1 out=$2
  awk '/^A Slurm job array/ { found = 1 } found && /^```sh$/ { inside = 1; next }
       inside && /^```$/ { exit } inside { print }' "$repo/README.md" |
    sed -e "s#urls.txt#$list#g" -e "s#/data/imgs#$out#g" -e "s#^watchdog #$WATCHDOG #"
}

# squeue lists every task of a job named by id, finished ones too (until MinJobAge).
tasks_left() {
  squeue -h -j "$job" -o %T 2>/dev/null |
    grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE)$'
}
no_tasks_left() { ! tasks_left; }
# Every task of the job exited 0.
all_tasks_succeeded() {
  local codes
  codes=$(scontrol show job "$job" | grep -o ' ExitCode=[0-9:]*' | sort | uniq -c)
  echo "$codes" | grep -q ' ExitCode=0:0$' && ! echo "$codes" | grep -vq ' ExitCode=0:0$'
}

# --- 1. The array as written: 400 items over 16 tasks
mkdir -p "$tmp/run1/imgs"
python3 "$repo/scripts/slurm_demo.py" list "$base" 400 0 run1- >"$tmp/run1/urls.txt"
readme_script "$tmp/run1/urls.txt" "$tmp/run1/imgs" >"$tmp/run1/fetch.sbatch"
grep -q -- '--array=0-15' "$tmp/run1/fetch.sbatch" || die "the README's script has changed: no --array=0-15"
grep -q -- '--shard auto' "$tmp/run1/fetch.sbatch" || die "the README's script has changed: no --shard auto"
t0=$(date +%s)
job=$(cd "$tmp/run1" && sbatch --parsable fetch.sbatch)
say "submitted array job $job (README script, 400 items)"
wait_for "array job $job" 120 no_tasks_left
all_tasks_succeeded || die "not every task of $job exited 0: $(scontrol show job "$job" | grep -o 'JobId=[^ ]*\|ExitCode=[^ ]*' | paste -sd ' ')"
say "array job $job done in $(($(date +%s) - t0))s"
python3 "$repo/scripts/slurm_demo.py" check-array "$tmp/run1/urls.txt" "$tmp/run1/imgs" 16
# The recipe's last step.
"$WATCHDOG" report "$tmp"/run1/imgs/report-*.jsonl >"$tmp/run1/summary.txt" ||
  die "watchdog report exited $?: $(cat "$tmp/run1/summary.txt")"
grep -q '^400 items in 16 reports' "$tmp/run1/summary.txt" || die "unexpected summary: $(cat "$tmp/run1/summary.txt")"
sed 's/^/  /' "$tmp/run1/summary.txt" >&2

# --- 2. Slow items, and one task requeued while it runs
mkdir -p "$tmp/run2/imgs"
python3 "$repo/scripts/slurm_demo.py" list "$base" 160 4 run2- >"$tmp/run2/urls.txt"
readme_script "$tmp/run2/urls.txt" "$tmp/run2/imgs" >"$tmp/run2/fetch.sbatch"
t0=$(date +%s)
job=$(cd "$tmp/run2" && sbatch --parsable fetch.sbatch)
say "submitted array job $job (160 items, every 4th slow)"
# A task that is running and has finished an item: requeue it (another one if it ended meanwhile).
requeued=
requeue_a_task() {
  local k state
  for k in $(seq 0 15); do
    state=$(squeue -h -j "${job}_$k" -o %T 2>/dev/null || true)
    [ "$state" = RUNNING ] || continue
    grep -q '"status":"ok"' "$tmp/run2/imgs/report-$k.jsonl" 2>/dev/null || continue
    if scontrol requeue "${job}_$k" 2>/dev/null; then
      requeued=$k
      return 0
    fi
  done
  return 1
}
wait_for "a running task with a finished item, requeued" 60 requeue_a_task
say "requeued task $requeued of job $job mid-run"
# Slurm holds a requeued job back for a while (Reason=BeginTime, two minutes here) once the killed run
# has ended; then let it start at once, so that the check stays short.
task_state() { scontrol show job "${job}_$requeued" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
pending_again() {
  scontrol show job "${job}_$requeued" | grep -q 'Restarts=1' && [ "$(task_state)" = PENDING ]
}
wait_for "task $requeued to be pending again" 60 pending_again
scontrol update JobId="${job}_$requeued" StartTime=now || die "cannot release task $requeued"
started_again() { [ "$(task_state)" != PENDING ]; }
wait_for "task $requeued to start again" 30 started_again
wait_for "array job $job" 150 no_tasks_left
all_tasks_succeeded || die "not every task of $job exited 0 after the requeue"
say "array job $job done in $(($(date +%s) - t0))s, task $requeued restarted once"
python3 "$repo/scripts/slurm_demo.py" check-array "$tmp/run2/urls.txt" "$tmp/run2/imgs" 16
python3 "$repo/scripts/slurm_demo.py" check-requeue "$tmp/run2/urls.txt" "$tmp/run2/imgs" "$requeued" "$tmp/requests.log"
"$WATCHDOG" report "$tmp"/run2/imgs/report-*.jsonl >"$tmp/run2/summary.txt" ||
  die "watchdog report exited $?: $(cat "$tmp/run2/summary.txt")"
grep -q '^160 items in 16 reports' "$tmp/run2/summary.txt" || die "unexpected summary: $(cat "$tmp/run2/summary.txt")"

say "passed in $(($(date +%s) - started))s"
