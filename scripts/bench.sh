#!/usr/bin/env bash
# Performance claims, measured side by side with their peers in one run and reported as medians and
# ratios. Not a test: run it by hand on a quiet machine (numbers from a busy one are noisy).
#
#   scripts/bench.sh            # every benchmark
#   scripts/bench.sh supervise  # start-up overhead and deadline precision against GNU timeout
#                               # (BENCH_BASELINE=OLD_BINARY adds an older watchdog to the same runs)
#   scripts/bench.sh fetch      # one 100 MB download from a local nginx: watchdog -- fetch vs curl
#   scripts/bench.sh batch      # 2000 small files, 16 at a time (watchdog with and without its
#                               # SHA-256), vs curl --parallel, aria2c, wget2, xargs+curl; the same list with 10% misbehaving items and a 2 s
#                               # deadline; the batch supervisor's memory against list length
#   scripts/bench.sh memory     # only the last: the batch supervisor's memory against list length,
#                               # and `watchdog report --list`'s against the list's length
#   scripts/bench.sh report-memory  # only `watchdog report --list`'s memory
#   scripts/bench.sh proxy      # the clean batch through a stock Squid on loopback (forward requests),
#                               # watchdog batch -x vs curl --parallel -x (BENCH_PROXY_RUNS, default 10)
#   scripts/bench.sh ab         # with BENCH_BASELINE: the clean batch, this build and the baseline in
#                               # turn for 25 rounds, so load drift falls on both alike
#   scripts/bench.sh image      # the cost of --expect image: the clean batch as images (JPEG, PNG),
#                               # with and without the check (and the baseline likewise, given
#                               # BENCH_BASELINE) in turn, CPU user+sys and wall time
#   scripts/bench.sh badnet     # a bad network built in a network namespace (root only; see
#                               # bench_badnet): 600 items from slow, lossy, dead and misbehaving hosts
#                               # and a silent resolver, watchdog vs curl, aria2c, wget2
#
# A full run (no argument, or `all`) also writes BENCHMARKS.md at the top of the repository: the
# machine it ran on and every figure; BENCH_PUBLISH=1 does the same for a partial run.
#
# BENCH_WATCHDOG=/path/to/watchdog measures that binary instead of building this tree (release).
# BENCH_BASELINE=/path/to/an/older/watchdog runs that binary beside this build in the same run (start-up,
# deadline, one large file, the clean batch on tmpfs and on disk, the faulty batch), so a change is
# measured against what it replaces, not against figures from another day.
#
# Everything talks to 127.0.0.1 only: the script starts its own nginx (scripts/bench/nginx.sh, from a
# configuration generated in a temp directory) and, for the faulty items, its own misbehaving server
# (scripts/bench/faulty_server.py), generates the files it serves (scripts/bench/make_corpus.py, fixed
# seed) and removes everything on exit. Run as root it installs what is missing with apt-get (nginx,
# curl, aria2, wget2, hyperfine, jq, time); otherwise it names the package to install. Downloads are
# written to a tmpfs (/dev/shm when writable; BENCH_DL_DIR to choose) so that the tools, not the disk,
# set the pace. In the faulty batch a tool still running after BENCH_FAULTY_CAP seconds (30) is killed.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=$PWD/scripts/bench
BASE=${BENCH_BASELINE:-}
if [ -n "$BASE" ] && [ ! -x "$BASE" ]; then
  echo "bench: BENCH_BASELINE='$BASE' is not an executable file" >&2; exit 2
fi

APT_UPDATED=
# apt_install PACKAGE: apt-get install when root, else fail naming the package.
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "bench: install the $1 package" >&2; return 1
  fi
  if [ -z "$APT_UPDATED" ]; then apt-get update -qq >/dev/null || true; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1
}
# have COMMAND: on PATH, or an absolute path that exists (nginx lives in /usr/sbin).
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "$1" ]; }
# need COMMAND PACKAGE: COMMAND must exist; installs PACKAGE when missing (as root).
need() { have "$1" || apt_install "$2" || { echo "bench: $1 is missing: install the $2 package" >&2; exit 1; }; have "$1" || exit 1; }
# want COMMAND PACKAGE: like need, but returns 1 instead of exiting when it cannot be had.
want() { have "$1" || { apt_install "$2" && have "$1"; }; }

need hyperfine hyperfine
need jq jq

# BENCH_WATCHDOG: a binary already built (this tree's release build otherwise).
if [ -n "${BENCH_WATCHDOG:-}" ]; then
  WATCHDOG=$BENCH_WATCHDOG
else
  cargo build --release --quiet
  WATCHDOG=$PWD/target/release/watchdog
fi
OUT=$(mktemp -d /tmp/watchdog-bench.XXXXXX)
if [ -n "${BENCH_DL_DIR:-}" ]; then
  DL=$(mktemp -d "$BENCH_DL_DIR/watchdog-bench-dl.XXXXXX")
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
  DL=$(mktemp -d /dev/shm/watchdog-bench-dl.XXXXXX)
else
  DL=$OUT/dl; mkdir -p "$DL"
fi
PIDS=()
MEM_DIR=
BADNET_NS=
# Stops what the benchmarks started: servers, and the bad-network lab's namespace.
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  if [ -n "$BADNET_NS" ]; then
    ip netns pids "$BADNET_NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$BADNET_NS" 2>/dev/null || true
    rm -rf "/etc/netns/$BADNET_NS"
  fi
}
cleanup() {
  stop_servers
  rm -rf "$OUT" "$DL" ${MEM_DIR:+"$MEM_DIR"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# median_ms FILE INDEX: median of a hyperfine JSON export's command INDEX, in milliseconds.
median_ms() { jq -r ".results[$2].median * 1000" "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_port PORT PID: until something listens on PORT (fails if PID died or after 10 s).
wait_port() {
  local _
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench: the server on port $1 did not start" >&2; return 1
}

SRV=$OUT/srv
NGINX_BASE=
# nginx serving $SRV/www on a free loopback port; started once, killed on exit.
start_nginx() {
  [ -n "$NGINX_BASE" ] && return
  need nginx nginx
  need curl curl
  need python3 python3
  mkdir -p "$SRV/www"
  local port; port=$(free_port)
  "$BENCH/nginx.sh" "$SRV" "$port" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$port" "$!" || { cat "$SRV/error.log" >&2 2>/dev/null; exit 1; }
  NGINX_BASE=http://127.0.0.1:$port
}
FAULTY_BASE=
start_faulty() {
  [ -n "$FAULTY_BASE" ] && return
  python3 "$BENCH/faulty_server.py" >"$OUT/faulty.port" 2>"$OUT/faulty.log" &
  PIDS+=($!)
  local _
  for _ in $(seq 200); do [ -s "$OUT/faulty.port" ] && break; sleep 0.05; done
  wait_port "$(cat "$OUT/faulty.port")" "$!"
  FAULTY_BASE=http://127.0.0.1:$(cat "$OUT/faulty.port")
}

# startup_rounds LABEL RUNNER...: start-up of watchdog under each --contain mechanism that can be had,
# GNU timeout and BENCH_BASELINE, in one hyperfine run per round (hyperfine itself run through RUNNER,
# e.g. setpriv, so every command runs as that user with nothing in between); prints the median of the
# rounds' medians and of the rounds' ratios to GNU, so that load drift falls on all of them alike, and
# the CPU time (user + system, mean) each start costs, which a loaded machine disturbs less.
startup_rounds() {
  local label=$1 dir rounds=${STARTUP_ROUNDS:-10} m r
  shift
  dir=$(mktemp -d "$OUT/startup.XXXXXX")
  chmod 777 "$dir"
  local cmds=() names=()
  for m in auto pidns userns sentinel group; do
    if "$@" "$WATCHDOG" --contain "$m" -- true 2>/dev/null; then
      cmds+=("$WATCHDOG --contain $m --timeout 10 -- true"); names+=("$m")
    else
      echo "   $m: not available here${label:+ $label}"
    fi
  done
  cmds+=("timeout 10 true"); names+=("GNU")
  if [ -n "$BASE" ]; then cmds+=("$BASE --timeout 10 -- true"); names+=("baseline"); fi
  for r in $(seq "$rounds"); do
    "$@" hyperfine -N --warmup 10 --runs 40 --export-json "$dir/$r.json" --style none "${cmds[@]}" >/dev/null
  done
  python3 - "$dir" "$rounds" "${names[@]}" <<'PY'
import json, statistics, sys
d, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = [json.load(open(f"{d}/{r}.json"))["results"] for r in range(1, rounds + 1)]
gnu = names.index("GNU")
for i, name in enumerate(names):
    med = statistics.median(r[i]["median"] * 1e3 for r in runs)
    ratio = statistics.median(r[i]["median"] / r[gnu]["median"] for r in runs)
    cpu = statistics.median((r[i]["user"] + r[i]["system"]) * 1e3 for r in runs)
    cpu_ratio = statistics.median(
        (r[i]["user"] + r[i]["system"]) / (r[gnu]["user"] + r[gnu]["system"]) for r in runs)
    print(f"   {name:<9} median {med:6.3f} ms  {ratio:.2f}x GNU   CPU {cpu:5.2f} ms  {cpu_ratio:.2f}x GNU")
PY
}

# deadline_rounds: how late the deadline's stop comes under each mechanism, GNU timeout and
# BENCH_BASELINE, in one hyperfine run per round; the median of the rounds' medians, minus 200 ms.
deadline_rounds() {
  local dir rounds=${DEADLINE_ROUNDS:-4} m r cmds=() names=()
  dir=$(mktemp -d "$OUT/deadline.XXXXXX")
  for m in auto group; do
    cmds+=("$WATCHDOG --contain $m --timeout 0.2 -- sleep 5"); names+=("$m")
  done
  cmds+=("timeout 0.2 sleep 5"); names+=("GNU")
  if [ -n "$BASE" ]; then cmds+=("$BASE --timeout 0.2 -- sleep 5"); names+=("baseline"); fi
  for r in $(seq "$rounds"); do
    hyperfine -N -i --warmup 2 --runs 10 --export-json "$dir/$r.json" --style none "${cmds[@]}" >/dev/null 2>&1
  done
  python3 - "$dir" "$rounds" "${names[@]}" <<'PY'
import json, statistics, sys
d, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = [json.load(open(f"{d}/{r}.json"))["results"] for r in range(1, rounds + 1)]
gnu = names.index("GNU")
for i, name in enumerate(names):
    late = statistics.median(r[i]["median"] * 1e3 - 200 for r in runs)
    diff = statistics.median((r[i]["median"] - r[gnu]["median"]) * 1e3 for r in runs)
    print(f"   {name:<9} +{late:6.2f} ms late   {diff:+6.2f} ms beside GNU")
PY
}

bench_supervise() {
  echo "== start-up: watchdog --contain X --timeout 10 -- true  vs  timeout 10 true (targets: default as root <= 1.5x, group <= 1.3x)"
  startup_rounds ""
  if [ "$(id -u)" = 0 ] && have setpriv; then
    echo "== the same as nobody (setpriv runs hyperfine; the binary copied where nobody can run it)"
    local copy
    copy=$(mktemp -d "$OUT/nobody.XXXXXX")
    chmod o+x "$OUT"; chmod 755 "$copy"
    cp "$WATCHDOG" "$copy/watchdog"; chmod 755 "$copy/watchdog"
    [ -n "$BASE" ] && { cp "$BASE" "$copy/baseline"; chmod 755 "$copy/baseline"; }
    WATCHDOG=$copy/watchdog BASE=${BASE:+$copy/baseline} startup_rounds "for nobody" \
      setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups
  fi

  echo "== deadline precision: --contain X --timeout 0.2 -- sleep 5 (time past the 200 ms deadline; target: within 5 ms of GNU)"
  deadline_rounds

  echo "== idle CPU: watchdog --timeout 3 -- sleep 5 (user+sys of the supervisor alone)"
  /usr/bin/time -f "   %U s user, %S s sys over %e s wall" "$WATCHDOG" --timeout 3 -- sleep 5 2>&1 >/dev/null | tail -1 || true
}

# One large download: wall time and throughput beside curl, then the supervisor's share of the CPU.
FETCH_BYTES=100000000
bench_fetch() {
  start_nginx
  python3 "$BENCH/make_corpus.py" big "$SRV" "$FETCH_BYTES"
  local url=$NGINX_BASE/big.bin file=$DL/fetch.bin
  echo "== fetch: 100 MB from nginx on loopback: watchdog -q -- fetch URL -o F  vs  curl -s -o F URL"
  hyperfine -N --warmup 2 --runs 10 --export-json "$OUT/fetch.json" --style none --prepare "rm -f $file" \
    "$WATCHDOG -q -- fetch $url -o $file" "curl -s -o $file $url" ${BASE:+"$BASE -q -- fetch $url -o $file"} \
    >/dev/null 2>"$OUT/hyperfine.err" || { cat "$OUT/hyperfine.err" >&2; exit 1; }
  "$WATCHDOG" -q -- fetch "$url" -o "$file"
  cmp -s "$file" "$SRV/www/big.bin" || { echo "bench: watchdog's download differs from the served file" >&2; exit 1; }
  local w c
  w=$(median_ms "$OUT/fetch.json" 0); c=$(median_ms "$OUT/fetch.json" 1)
  printf "   median watchdog %.1f ms (%.0f MB/s), curl %.1f ms (%.0f MB/s), ratio %sx (target <= 1.10x)\n" \
    "$w" "$(awk -v ms="$w" -v b="$FETCH_BYTES" 'BEGIN{print b/1e6/(ms/1000)}')" \
    "$c" "$(awk -v ms="$c" -v b="$FETCH_BYTES" 'BEGIN{print b/1e6/(ms/1000)}')" "$(ratio "$w" "$c")"
  if [ -n "$BASE" ]; then
    local b; b=$(median_ms "$OUT/fetch.json" 2)
    printf "   baseline        %.1f ms, ratio %sx to curl; this build / baseline %sx\n" "$b" "$(ratio "$b" "$c")" "$(ratio "$w" "$b")"
  fi

  # Supervisor CPU vs worker CPU. /usr/bin/time on `watchdog -- fetch` reports the supervisor plus the
  # worker it reaped, and in 10 ms steps, too coarse for a supervisor that uses a few milliseconds.
  # So (a), directly: cpu_split.py waits for watchdog with waitid(WNOWAIT), reads the exited but not yet
  # reaped supervisor's own CPU time from /proc/PID/schedstat (ns; it runs a single thread without
  # --stall), then reaps it with wait4, whose rusage (us) is the supervisor plus the worker; the worker's
  # share is the difference. And (b), as a cross-check: the worker run alone (`watchdog __fetch-worker
  # URL -o F`, no progress channel) against the whole `watchdog -- fetch`, both measured the same way;
  # supervisor ~ median(whole) - median(worker alone), which is within the noise of two transfers.
  echo "== fetch CPU: supervisor vs worker for one 100 MB download (medians of 5)"
  local i sup=() wrk=() whole=() alone=() line
  for i in 1 2 3 4 5; do
    rm -f "$file"
    line=$(python3 "$BENCH/cpu_split.py" "$WATCHDOG" -q -- fetch "$url" -o "$file")
    sup+=("$(echo "$line" | awk '{print $1 * 1000}')")
    wrk+=("$(echo "$line" | awk '{print $2 * 1000}')")
    whole+=("$(echo "$line" | awk '{print ($1 + $2) * 1000}')")
    rm -f "$file"
    line=$(python3 "$BENCH/cpu_split.py" "$WATCHDOG" __fetch-worker "$url" -o "$file")
    alone+=("$(echo "$line" | awk '{print ($1 + $2) * 1000}')")
  done
  local s k t a
  s=$(printf '%s\n' "${sup[@]}" | median); k=$(printf '%s\n' "${wrk[@]}" | median)
  t=$(printf '%s\n' "${whole[@]}" | median); a=$(printf '%s\n' "${alone[@]}" | median)
  printf "   (a) supervisor %.2f ms CPU, worker %.1f ms CPU: supervisor = %.2f%% of worker (target < 5%%)\n" \
    "$s" "$k" "$(awk -v s="$s" -v k="$k" 'BEGIN{print 100*s/k}')"
  printf "   (b) whole watchdog -- fetch %.1f ms CPU, worker alone %.1f ms CPU, difference %.1f ms\n" \
    "$t" "$a" "$(awk -v t="$t" -v a="$a" 'BEGIN{print t-a}')"
  rm -f "$file"
}

BATCH_N=2000
# run_counted NAME SIZES DIR CAP CMD...: runs CMD (in a shell) with DIR fresh, bounded by CAP seconds
# (GNU timeout, so a tool that never returns shows exit 124), and appends "NAME ms exit complete
# truncated missing stray" to $OUT/faulty.runs.
run_counted() {
  local name=$1 sizes=$2 dir=$3 cap=$4; shift 4
  rm -rf "$dir"; mkdir -p "$dir"
  local start rc=0 ms
  start=$(date +%s%N)
  timeout -k 5 "$cap" bash -c "$*" >>"$OUT/$name.log" 2>&1 || rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "$name $ms $rc $(python3 "$BENCH/count_files.py" "$sizes" "$dir")" >>"$OUT/faulty.runs"
}

# clean_batch CORPUS DIR WHERE WGET2 [AFTER]: the clean batch, every tool side by side, downloading
# into DIR; AFTER (e.g. sync) runs after each command, inside its timing.
clean_batch() {
  local clean=$1 dl=$2 where=$3 wget2=$4 after=${5:-}
  echo "== batch on $where: $BATCH_N files of 20-80 KB from nginx on loopback, 16 at a time (median of 10 runs)"
  # Each tool writes to its own directory, emptied before each run; what is left after the last run
  # is checked against the expected names and sizes.
  # watchdog runs twice: as it comes (a SHA-256 of every file in the report, which no peer computes)
  # and with --no-sha256, the same work as its peers.
  local names=(watchdog watchdog-no-sha256 curl-parallel aria2c) cmds=(
    "$WATCHDOG batch $clean.urls --out $dl/watchdog -j 16 -t 10 -q"
    "$WATCHDOG batch $clean.urls --out $dl/watchdog-no-sha256 -j 16 -t 10 -q --no-sha256"
    "cd $dl/curl-parallel && curl -s --no-progress-meter --parallel --parallel-max 16 -K $clean.curl"
    "aria2c -q -i $clean.urls -d $dl/aria2c -j 16 -x1 --allow-overwrite=true --auto-file-renaming=false --file-allocation=none --summary-interval=0"
  )
  if [ -n "$wget2" ]; then
    names+=(wget2); cmds+=("wget2 -q --max-threads 16 -i $clean.urls -P $dl/wget2")
  fi
  names+=(xargs-curl); cmds+=("cd $dl/xargs-curl && xargs -P16 -n1 curl -s -O < $clean.urls")
  if [ -n "$BASE" ]; then
    names+=(baseline baseline-no-sha256)
    cmds+=("$BASE batch $clean.urls --out $dl/baseline -j 16 -t 10 -q"
      "$BASE batch $clean.urls --out $dl/baseline-no-sha256 -j 16 -t 10 -q --no-sha256")
  fi
  if [ -n "$after" ]; then
    for i in "${!cmds[@]}"; do cmds[$i]="${cmds[$i]} && $after"; done
  fi
  local args=() i
  for i in "${!names[@]}"; do args+=(--prepare "rm -rf $dl/${names[$i]} && mkdir $dl/${names[$i]}"); done
  hyperfine --warmup 1 --runs 10 --export-json "$OUT/batch.json" --style none "${args[@]}" "${cmds[@]}" \
    >/dev/null 2>"$OUT/hyperfine.err" || { cat "$OUT/hyperfine.err" >&2; exit 1; }
  local curl_ms t counts
  curl_ms=$(median_ms "$OUT/batch.json" 2)
  for i in "${!names[@]}"; do
    t=$(median_ms "$OUT/batch.json" "$i")
    counts=$(python3 "$BENCH/count_files.py" "$clean.sizes" "$dl/${names[$i]}")
    printf "   %-19s median %7.0f ms  %6.0f files/s  time ratio to curl --parallel %sx  (last run: %s/%s complete)\n" \
      "${names[$i]}" "$t" "$(awk -v ms="$t" -v n="$BATCH_N" 'BEGIN{print n/(ms/1000)}')" "$(ratio "$t" "$curl_ms")" \
      "${counts%% *}" "$BATCH_N"
    rm -rf "${dl:?}/${names[$i]}"
  done
  if [ -n "$BASE" ]; then
    printf "   this build / baseline: %sx with SHA-256, %sx without\n" \
      "$(ratio "$(median_ms "$OUT/batch.json" 0)" "$(median_ms "$OUT/batch.json" $((${#names[@]} - 2)))")" \
      "$(ratio "$(median_ms "$OUT/batch.json" 1)" "$(median_ms "$OUT/batch.json" $((${#names[@]} - 1)))")"
  fi
}

bench_batch() {
  start_nginx
  start_faulty
  need aria2c aria2
  local wget2=yes
  want wget2 wget2 || { wget2=; echo "   (wget2 is not installed and could not be: left out)"; }
  python3 "$BENCH/make_corpus.py" batch "$SRV" "$BATCH_N" "$NGINX_BASE" "$FAULTY_BASE"
  local clean=$SRV/clean faulty=$SRV/faulty

  clean_batch "$clean" "$DL" "$(stat -fc %T "$DL")" "$wget2"
  # Users write to disks: the same run with the files on the file system of this run's temp directory
  # (BENCH_DISK_DIR to choose), each run followed by a sync inside the timing so the write-back counts.
  local disk
  disk=$(mktemp -d "${BENCH_DISK_DIR:-$OUT}/watchdog-bench-disk.XXXXXX")
  clean_batch "$clean" "$disk" "disk ($(stat -fc %T "$disk"), synced)" "$wget2" sync
  rm -rf "$disk"

  local cap=${BENCH_FAULTY_CAP:-30}
  echo "== batch with faults: the same $BATCH_N items, 10% misbehaving (stall after headers, drip 1 byte/s,"
  echo "   close before Content-Length, never answer), 2 s per item, no retries; 3 rounds, tools side by"
  echo "   side in each; a tool still running after $cap s is killed (exit 124). A truncated file is one at"
  echo "   its final name with the wrong size. Lower bound: 150 slow items x 2 s / 16 = 18.8 s."
  : >"$OUT/faulty.runs"
  local round
  for round in 1 2 3; do
    run_counted watchdog "$faulty.sizes" "$DL/f" "$cap" \
      "$WATCHDOG batch $faulty.urls --out $DL/f -j 16 -t 2 --retries 0 -q"
    if [ -n "$BASE" ]; then
      run_counted baseline "$faulty.sizes" "$DL/f" "$cap" \
        "$BASE batch $faulty.urls --out $DL/f -j 16 -t 2 --retries 0 -q"
    fi
    run_counted curl-parallel "$faulty.sizes" "$DL/f" "$cap" \
      "cd $DL/f && curl -s --no-progress-meter --parallel --parallel-max 16 --max-time 2 -K $faulty.curl"
    run_counted aria2c "$faulty.sizes" "$DL/f" "$cap" \
      "aria2c -q -i $faulty.urls -d $DL/f -j 16 -x1 --allow-overwrite=true --auto-file-renaming=false --file-allocation=none --summary-interval=0 --timeout=2 --connect-timeout=2 --max-tries=1"
    if [ -n "$wget2" ]; then
      run_counted wget2 "$faulty.sizes" "$DL/f" "$cap" \
        "wget2 -q --max-threads 16 -i $faulty.urls -P $DL/f --timeout=2 --tries=1"
    fi
  done
  rm -rf "${DL:?}/f"
  local name runs wall
  for name in watchdog ${BASE:+baseline} curl-parallel aria2c ${wget2:+wget2}; do
    runs=$(awk -v n="$name" '$1 == n' "$OUT/faulty.runs")
    wall=$(echo "$runs" | awk '{print $2}' | median)
    printf "   %-14s median %5.1f s (runs %s s)  exit %s\n" "$name" "$(awk -v ms="$wall" 'BEGIN{print ms/1000}')" \
      "$(echo "$runs" | awk '{ sep = NR > 1 ? " " : ""; printf "%s%.1f", sep, $2 / 1000 }')" "$(echo "$runs" | awk '{print $3}' | paste -sd' ')"
    printf "   %-14s per run: complete %s | truncated at final name %s | missing %s | other files %s\n" "" \
      "$(echo "$runs" | awk '{print $4}' | paste -sd/)" "$(echo "$runs" | awk '{print $5}' | paste -sd/)" \
      "$(echo "$runs" | awk '{print $6}' | paste -sd/)" "$(echo "$runs" | awk '{print $7}' | paste -sd/)"
  done

  bench_batch_memory
  bench_report_memory
}

# Peak RSS of `watchdog report --list LIST REPORT` against the list's length (1,000 and 1,000,000
# lines; BENCH_REPORT_MEM_BIG=10000000 for ten million), with a report of every tenth item, so that
# nine in ten are missing: the list pass, its name index and the report index all grow with the list.
# The indexes go to the report's directory, under BENCH_MEM_DIR as for batch. Each run checks the
# counts it printed.
bench_report_memory() {
  need /usr/bin/time time
  local dir n i rc small big=${BENCH_REPORT_MEM_BIG:-1000000} got
  dir=$(mktemp -d "${BENCH_MEM_DIR:-$OUT}/watchdog-bench-report.XXXXXX")
  echo "== report --list memory vs list length: peak RSS (/usr/bin/time -f '%M %e'), median of 3"
  echo "   index directory on $(stat -f -c %T "$dir") ($dir)"
  for n in 1000 "$big"; do
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "https://h%d.example/img/%d.jpg\n", i % 100, i }' >"$dir/list"
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i += 10) printf "{\"url\":\"https://h%d.example/img/%d.jpg\",\"path\":\"%d.jpg\",\"status\":\"ok\",\"http_status\":200,\"bytes\":1000,\"sha256\":null,\"attempts\":1,\"elapsed_ms\":5,\"error\":null}\n", i % 100, i, i }' >"$dir/report.jsonl"
    for i in 1 2 3; do
      rc=0
      /usr/bin/time -f '%M %e' -o "$OUT/rss" "$WATCHDOG" report --json --list "$dir/list" "$dir/report.jsonl" \
        >"$OUT/report.json" 2>"$OUT/report.err" || rc=$?
      [ "$rc" = 1 ] || { echo "bench: report --list $n: exit $rc, expected 1" >&2; cat "$OUT/report.err" >&2; exit 1; }
      got=$(python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(j["items"], j["statuses"]["missing"])' "$OUT/report.json")
      [ "$got" = "$n $((n - n / 10))" ] || { echo "bench: report --list $n: items and missing $got" >&2; exit 1; }
      tail -1 "$OUT/rss"
    done >"$OUT/rss.report.$n"
    awk '{ print $1 }' "$OUT/rss.report.$n" | median >"$OUT/rss.report.$n.m"
    awk '{ print $2 }' "$OUT/rss.report.$n" | median >"$OUT/wall.report.$n.m"
  done
  small=$(cat "$OUT/rss.report.1000.m")
  printf "   1,000 lines %5.1f MB; %s lines %5.1f MB in %s s; ratio %sx\n" \
    "$(awk -v k="$small" 'BEGIN{print k/1024}')" "$big" \
    "$(awk -v k="$(cat "$OUT/rss.report.$big.m")" 'BEGIN{print k/1024}')" "$(cat "$OUT/wall.report.$big.m")" \
    "$(ratio "$(cat "$OUT/rss.report.$big.m")" "$small")"
  rm -rf "$dir"
}

# Peak RSS of the batch supervisor against list length, with lists that start no worker and no
# download, so the figure is the supervisor's alone (each run checks the report holds what it should):
#   stream:  lines that are not http(s) URLs, and belong to another shard (--shard 1/4294967295, the
#            largest count): each is read, found invalid and hashed for the shard, nothing else.
#            Exercises the list stream alone.
#   shard:   valid URLs, all of another shard: each is read, parsed, named by the name allocator (every
#            shard names every item, so that shards sharing a directory agree on names) and dropped.
#            Exercises the list stream, the planner and the allocator, which remembers every name.
#   own:     URL<TAB>blocked/NAME, all of this shard: each is planned and named, then creating its
#            directory fails ('blocked' is a plain file) and it is reported io_error. Exercises the
#            list stream, the planner, the allocator and the report writer.
#   resume:  the shard list again, with an earlier report (--report) holding an `ok` line for every one
#            of its URLs: the run reads the report into the resume index, which holds one entry per
#            line, then plans the list. Exercises the resume index on top of what shard does.
# Past 32,768 entries the allocator and the resume index keep their entries in a file in the output
# directory, which must therefore be on disk for the figure to mean anything: the output directory
# here is under BENCH_MEM_DIR (default: this run's temp directory under /tmp), not on the tmpfs the
# downloads go to, and its file system type is shown.
bench_batch_memory() {
  need /usr/bin/time time
  MEM_DIR=$(mktemp -d "${BENCH_MEM_DIR:-$OUT}/watchdog-bench-mem.XXXXXX")
  local fs dir=$MEM_DIR/out mode n i rc lines expect want_rc small big extra list report
  fs=$(stat -f -c %T "$MEM_DIR")
  echo "== batch supervisor memory vs list length: peak RSS (/usr/bin/time -f %M), median of 3, no downloads"
  echo "   output directory on $fs ($MEM_DIR)$([ "$fs" = tmpfs ] && echo ': RAM-backed, set BENCH_MEM_DIR to a disk')"
  for mode in stream shard own resume; do
    for n in 1000 1000000; do
      extra=(--shard 1/4294967295); expect=0; want_rc=0; report=$dir/report.jsonl
      case $mode in
        stream) list=invalid ;;
        shard) list=urls ;;
        own) list=named; extra=(); expect=$n; want_rc=1 ;;
        resume) list=urls; report=$OUT/mem.report; extra+=(--report "$report"); expect=$n
          python3 "$BENCH/make_corpus.py" memreport "$report" "$n" ;;
      esac
      python3 "$BENCH/make_corpus.py" memlist "$OUT/mem.list" "$n" "$list"
      for i in 1 2 3; do
        rm -rf "$dir"; mkdir -p "$dir"; : >"$dir/blocked"
        rc=0
        /usr/bin/time -f %M -o "$OUT/rss" "$WATCHDOG" batch "$OUT/mem.list" --out "$dir" -j 16 -t 10 -q \
          "${extra[@]}" >/dev/null 2>"$OUT/mem.err" || rc=$?
        [ "$rc" = "$want_rc" ] || { echo "bench: $mode $n: exit $rc, expected $want_rc" >&2; cat "$OUT/mem.err" >&2; exit 1; }
        lines=$(wc -l <"$report")
        [ "$lines" = "$expect" ] || { echo "bench: $mode $n: $lines report lines, expected $expect" >&2; exit 1; }
        tail -1 "$OUT/rss"
      done | median >"$OUT/rss.$mode.$n"
    done
    small=$(cat "$OUT/rss.$mode.1000"); big=$(cat "$OUT/rss.$mode.1000000")
    printf "   %-7s 1,000 lines %5.1f MB, 1,000,000 lines %5.1f MB, ratio %sx, %.1f bytes per extra line\n" \
      "$mode" "$(awk -v k="$small" 'BEGIN{print k/1024}')" "$(awk -v k="$big" 'BEGIN{print k/1024}')" \
      "$(ratio "$big" "$small")" "$(awk -v a="$small" -v b="$big" 'BEGIN{print (b-a)*1024/999000}')"
  done
  rm -rf "$MEM_DIR" "$OUT/mem.list" "$OUT/mem.report"
}

# The bad-network lab. A network namespace of its own (ip netns, from iproute2) in which loopback
# addresses act as hosts; nothing leaves it, and it is removed on exit with everything in it:
#   127.0.0.1:8080  nginx, the origin of every good file
#   127.0.0.2:80    normal host: 40 ms RTT (delay_proxy.py, 20 ms each way)
#   127.0.0.3:80    slow host: 300 ms RTT, 3% loss (iptables statistic), 2 Mbit/s (tc htb)
#   127.0.0.4:80    lossy host: 40 ms RTT, 10% loss
#   127.0.0.5:80    dead host: SYNs dropped (iptables)
#   127.0.0.6:80    the misbehaving server (faulty_server.py: stall, drip, close, never)
#   *.silent.test   a name the resolver never answers: the namespace's resolv.conf (ip netns exec
#                   mounts /etc/netns/NAME/resolv.conf) names 127.0.0.53, where DNS packets are dropped
# This kernel has no sch_netem, so delay is a userspace proxy, loss an iptables rule and rate a tc htb
# class; loss and rate apply to what the host sends (the body direction). 600 items (552 deliverable),
# 16 at a time, each tool with the same limits: 10 s per attempt, 3 s without data (or below 1 KiB/s
# for 3 s), 2 retries. A tool still running after BENCH_BADNET_CAP seconds (180) is killed;
# BENCH_BADNET_TOOLS="watchdog curl" runs only those.
BADNET_N=600
bench_badnet() {
  [ "$(id -u)" = 0 ] || { echo "bench: badnet builds a network namespace: run it as root" >&2; exit 1; }
  need ip iproute2
  need tc iproute2
  need iptables iptables
  need nginx nginx
  need curl curl
  need python3 python3
  local aria2=yes wget2=yes
  want aria2c aria2 || { aria2=; echo "   (aria2c is not installed and could not be: left out)"; }
  want wget2 wget2 || { wget2=; echo "   (wget2 is not installed and could not be: left out)"; }
  local ns=watchdog-badnet-$$
  BADNET_NS=$ns
  ip netns add "$ns" || { echo "bench: cannot create a network namespace (ip netns add): see above" >&2; exit 1; }
  mkdir -p "/etc/netns/$ns"
  printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:2\n' >"/etc/netns/$ns/resolv.conf"
  printf '127.0.0.1 localhost\n' >"/etc/netns/$ns/hosts"
  local x="ip netns exec $ns"
  $x ip link set lo up
  # Rate: everything at 10 Gbit/s but what 127.0.0.3 sends, at 2 Mbit/s.
  $x tc qdisc add dev lo root handle 1: htb default 10 r2q 10000 ||
    { echo "bench: tc htb is not available in this kernel (sch_htb)" >&2; exit 1; }
  $x tc class add dev lo parent 1: classid 1:10 htb rate 10gbit
  $x tc class add dev lo parent 1: classid 1:20 htb rate 2mbit quantum 1514
  $x tc filter add dev lo parent 1: protocol ip u32 match ip src 127.0.0.3/32 flowid 1:20 ||
    { echo "bench: tc u32 filters are not available in this kernel (cls_u32)" >&2; exit 1; }
  $x iptables -A INPUT -s 127.0.0.3 -p tcp -m statistic --mode random --probability 0.03 -j DROP ||
    { echo "bench: iptables statistic is not available in this kernel (xt_statistic)" >&2; exit 1; }
  $x iptables -A INPUT -s 127.0.0.4 -p tcp -m statistic --mode random --probability 0.10 -j DROP
  $x iptables -A INPUT -d 127.0.0.5 -p tcp --syn -j DROP
  # Dropped on the way in: a packet dropped on the way out fails its sendto() at once (EPERM).
  $x iptables -A INPUT -d 127.0.0.53 -j DROP

  local srv=$OUT/badnet
  mkdir -p "$srv/www"
  python3 "$BENCH/make_corpus.py" batch "$srv" "$BADNET_N" http://127.0.0.1:8080 http://127.0.0.6
  python3 "$BENCH/make_corpus.py" badnet "$srv" "$BADNET_N"
  $x "$BENCH/nginx.sh" "$srv" 8080 >/dev/null 2>&1 &
  PIDS+=($!)
  $x python3 "$BENCH/delay_proxy.py" 127.0.0.2 80 127.0.0.1 8080 20 & PIDS+=($!)
  $x python3 "$BENCH/delay_proxy.py" 127.0.0.3 80 127.0.0.1 8080 150 & PIDS+=($!)
  $x python3 "$BENCH/delay_proxy.py" 127.0.0.4 80 127.0.0.1 8080 20 & PIDS+=($!)
  $x python3 "$BENCH/faulty_server.py" 80 127.0.0.6 >/dev/null & PIDS+=($!)
  local h _
  for h in 127.0.0.1:8080 127.0.0.2:80 127.0.0.3:80 127.0.0.4:80 127.0.0.6:80; do
    for _ in $(seq 100); do
      $x bash -c "exec 3<>/dev/tcp/${h%:*}/${h#*:}" 2>/dev/null && break
      sleep 0.1
    done
  done
  $x curl -sf -o /dev/null "http://127.0.0.2/b/f00000.bin" ||
    { echo "bench: the lab's normal host does not serve" >&2; exit 1; }

  local cap=${BENCH_BADNET_CAP:-180} list=$srv/badnet dir=$DL/bn
  local curl_common="--parallel --parallel-max 16 --max-time 10 --speed-limit 1024 --speed-time 3 --retry 2"
  echo "== bad network: $BADNET_N items (552 deliverable), 16 at a time, 10 s per attempt, 3 s stall or"
  echo "   below 1 KiB/s for 3 s, 2 retries; killed after $cap s (exit 124)"
  : >"$OUT/faulty.runs"
  badnet_run() {
    local name=$1; shift
    rm -rf "$dir"; mkdir -p "$dir"
    local start rc=0 ms
    start=$(date +%s%N)
    timeout -k 5 "$cap" $x bash -c "$*" >"$OUT/$name.log" 2>&1 || rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    local named=no
    if [ "$name" = watchdog ]; then
      named=$(python3 - "$list.expect" "$dir/report.jsonl" <<'PY'
import json, sys
expect = dict(line.split() for line in open(sys.argv[1]))
got = {}
for line in open(sys.argv[2]):
    entry = json.loads(line)
    got[entry["url"]] = entry["status"]
right = sum(1 for url, ok in expect.items() if got.get(url) in ok.split("|"))
print(f"{right}/{len(expect)}")
PY
)
    fi
    printf "   %-22s %6.1f s  exit %-3s  intact/truncated/missing/other files: %s  named: %s\n" "$name" \
      "$(awk -v ms="$ms" 'BEGIN{print ms/1000}')" "$rc" \
      "$(python3 "$BENCH/count_files.py" "$list.sizes" "$dir" | tr ' ' /)" "$named"
    if [ "$name" = watchdog ]; then
      # What bounds the wall time: per host, its items, their statuses, the slowest and the sum.
      python3 - "$dir/report.jsonl" <<'PY'
import collections, json, sys
hosts = collections.defaultdict(list)
for line in open(sys.argv[1]):
    e = json.loads(line)
    hosts[e["url"].split("/")[2]].append(e)
for host, items in sorted(hosts.items()):
    statuses = collections.Counter(e["status"] for e in items)
    slowest = max(e["elapsed_ms"] for e in items) / 1000
    total = sum(e["elapsed_ms"] for e in items) / 1000
    print(f"     {host:<16} {len(items):>3} items  slowest {slowest:5.1f} s  sum {total:6.1f} s  "
          + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
PY
    fi
  }
  local tools=" ${BENCH_BADNET_TOOLS:-watchdog curl-remove-on-error curl aria2c wget2} "
  [ -z "${tools##* watchdog *}" ] &&
  badnet_run watchdog "$WATCHDOG batch $list.urls --out $dir -j 16 -t 10 --stall 3 --min-speed 1K --min-speed-window 3 --retries 2 -q"
  [ -z "${tools##* curl-remove-on-error *}" ] &&
  badnet_run curl-remove-on-error "cd $dir && curl -s $curl_common --remove-on-error -K $list.curl"
  [ -z "${tools##* curl *}" ] &&
  badnet_run curl "cd $dir && curl -s $curl_common -K $list.curl"
  if [ -n "$aria2" ] && [ -z "${tools##* aria2c *}" ]; then
    badnet_run aria2c "aria2c -q -i $list.urls -d $dir -j 16 -x1 --timeout=3 --connect-timeout=3 --max-tries=3 --lowest-speed-limit=1K --allow-overwrite=true --auto-file-renaming=false --file-allocation=none --summary-interval=0"
  fi
  if [ -n "$wget2" ] && [ -z "${tools##* wget2 *}" ]; then
    badnet_run wget2 "wget2 -q --max-threads 16 -i $list.urls -P $dir --timeout=3 --tries=3"
  fi
  rm -rf "$dir"
  echo "   (truncated: at its final name with the wrong size; other: temp and control files left behind;"
  echo "   named: bad items whose report status names their cause; no peer writes a per-item report)"
}

# This build against the baseline on the clean batch, taking turns round by round: hyperfine runs
# each command's runs together, so a machine whose load drifts favours one side; here both see it.
bench_batch_ab() {
  [ -n "$BASE" ] || { echo "bench: ab needs BENCH_BASELINE=/path/to/an/older/watchdog" >&2; exit 2; }
  start_nginx
  python3 "$BENCH/make_corpus.py" batch "$SRV" "$BATCH_N" "$NGINX_BASE" "$NGINX_BASE"
  local rounds=${BENCH_AB_ROUNDS:-25} round name bin extra start
  echo "== batch A/B: $BATCH_N files from nginx, 16 at a time, this build and the baseline in turn, $rounds rounds"
  : >"$OUT/ab.runs"
  for round in $(seq "$rounds"); do
    for name in new base new-no-sha256 base-no-sha256; do
      case $name in new*) bin=$WATCHDOG ;; *) bin=$BASE ;; esac
      case $name in *no-sha256) extra=--no-sha256 ;; *) extra= ;; esac
      rm -rf "$DL/ab"; mkdir "$DL/ab"
      start=$(date +%s%N)
      "$bin" batch "$SRV/clean.urls" --out "$DL/ab" -j 16 -t 10 -q $extra >/dev/null 2>&1
      echo "$name $(( ($(date +%s%N) - start) / 1000000 ))" >>"$OUT/ab.runs"
    done
  done
  rm -rf "$DL/ab"
  local new base newn basen
  new=$(awk '$1 == "new" {print $2}' "$OUT/ab.runs" | median)
  base=$(awk '$1 == "base" {print $2}' "$OUT/ab.runs" | median)
  newn=$(awk '$1 == "new-no-sha256" {print $2}' "$OUT/ab.runs" | median)
  basen=$(awk '$1 == "base-no-sha256" {print $2}' "$OUT/ab.runs" | median)
  printf "   with SHA-256: this build %s ms, baseline %s ms, ratio %sx\n" "$new" "$base" "$(ratio "$new" "$base")"
  printf "   --no-sha256:  this build %s ms, baseline %s ms, ratio %sx\n" "$newn" "$basen" "$(ratio "$newn" "$basen")"
}

# The cost of --expect image on the clean batch made of images (make_corpus.py images: JPEGs and PNGs
# of 20-80 KB): this build without and with the check and, given BENCH_BASELINE, the baseline without
# and with its own check, taking turns round by round as `ab` does. CPU is user+sys of watchdog and every worker it
# reaped (GNU time), wall the batch's elapsed time; every checked run must end with every image ok.
bench_image() {
  need /usr/bin/time time
  start_nginx
  python3 "$BENCH/make_corpus.py" images "$SRV" "$BATCH_N" "$NGINX_BASE"
  local rounds=${BENCH_IMAGE_ROUNDS:-11} round name bin extra names=(unchecked checked)
  [ -n "$BASE" ] && names+=(baseline-unchecked baseline-checked)
  echo "== --expect image: $BATCH_N images (JPEG, PNG) of 20-80 KB from nginx, 16 at a time, in turn for $rounds rounds"
  : >"$OUT/image.runs"
  for round in $(seq "$rounds"); do
    for name in "${names[@]}"; do
      case $name in baseline*) bin=$BASE ;; *) bin=$WATCHDOG ;; esac
      case $name in *unchecked) extra= ;; *) extra="--expect image" ;; esac
      rm -rf "$DL/img"; mkdir "$DL/img"
      # shellcheck disable=SC2086
      /usr/bin/time -f "$name %e %U %S" -a -o "$OUT/image.runs" \
        "$bin" batch "$SRV/images.urls" --out "$DL/img" -j 16 -t 10 -q $extra >/dev/null 2>"$OUT/image.err" \
        || { echo "bench: $name: watchdog failed" >&2; cat "$OUT/image.err" >&2; exit 1; }
      local counts; counts=$(python3 "$BENCH/count_files.py" "$SRV/images.sizes" "$DL/img")
      [ "${counts%% *}" = "$BATCH_N" ] || { echo "bench: $name: $counts (complete truncated missing stray)" >&2; exit 1; }
    done
  done
  rm -rf "$DL/img"
  local cpu wall base_cpu=
  for name in "${names[@]}"; do
    cpu=$(awk -v n="$name" '$1 == n {print $3 + $4}' "$OUT/image.runs" | median)
    wall=$(awk -v n="$name" '$1 == n {print $2}' "$OUT/image.runs" | median)
    [ -n "$base_cpu" ] || base_cpu=$cpu
    printf "   %-17s CPU user+sys median %6.2f s (%sx unchecked), wall median %5.2f s\n" \
      "$name" "$cpu" "$(ratio "$cpu" "$base_cpu")" "$wall"
  done
}

# The machine and the tools, for the top of BENCHMARKS.md.
# squid on a free loopback port with Debian's stock rules (CONNECT only to 443, plain requests from
# localhost allowed) and no cache, so every request reaches nginx; started once, killed on exit.
SQUID_URL=
start_squid() {
  [ -n "$SQUID_URL" ] && return
  need squid squid
  local dir=$OUT/squid port; port=$(free_port)
  mkdir -p "$dir"; chmod 777 "$dir"
  cat >"$dir/squid.conf" <<EOF
http_port 127.0.0.1:$port
pid_filename $dir/squid.pid
cache_log $dir/cache.log
access_log none
cache deny all
cache_mem 8 MB
dns_nameservers 127.0.0.1
visible_hostname localhost
pinger_enable off
shutdown_lifetime 0 seconds
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow localhost
http_access deny all
EOF
  "$(command -v squid || echo /usr/sbin/squid)" -N -f "$dir/squid.conf" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$port" "$!" || { cat "$dir/cache.log" >&2 2>/dev/null; exit 1; }
  SQUID_URL=http://127.0.0.1:$port
}

bench_proxy() {
  start_nginx
  start_faulty
  start_squid
  python3 "$BENCH/make_corpus.py" batch "$SRV" "$BATCH_N" "$NGINX_BASE" "$FAULTY_BASE"
  local clean=$SRV/clean dl=$DL
  echo "== batch through Squid: $BATCH_N files of 20-80 KB from nginx on loopback via a stock Squid (forward"
  echo "   requests, no cache), 16 at a time (median of ${BENCH_PROXY_RUNS:-10} runs)"
  local names=(watchdog watchdog-no-sha256 curl-parallel) cmds=(
    "$WATCHDOG batch $clean.urls --out $dl/watchdog -j 16 -t 10 -q -x $SQUID_URL"
    "$WATCHDOG batch $clean.urls --out $dl/watchdog-no-sha256 -j 16 -t 10 -q --no-sha256 -x $SQUID_URL"
    "cd $dl/curl-parallel && curl -s --no-progress-meter --parallel --parallel-max 16 -x $SQUID_URL -K $clean.curl"
  )
  # An older watchdog tunnels http:// through CONNECT, which the stock rules refuse: no baseline here.
  local args=() i
  for i in "${!names[@]}"; do args+=(--prepare "rm -rf $dl/${names[$i]} && mkdir $dl/${names[$i]}"); done
  hyperfine --warmup 1 --runs "${BENCH_PROXY_RUNS:-10}" --export-json "$OUT/proxy.json" --style none "${args[@]}" "${cmds[@]}" \
    >/dev/null 2>"$OUT/hyperfine.err" || { cat "$OUT/hyperfine.err" >&2; exit 1; }
  local curl_ms t counts
  curl_ms=$(median_ms "$OUT/proxy.json" 2)
  for i in "${!names[@]}"; do
    t=$(median_ms "$OUT/proxy.json" "$i")
    counts=$(python3 "$BENCH/count_files.py" "$clean.sizes" "$dl/${names[$i]}")
    printf "   %-19s median %7.0f ms  %6.0f files/s  time ratio to curl --parallel -x %sx  (last run: %s/%s complete)\n" \
      "${names[$i]}" "$t" "$(awk -v ms="$t" -v n="$BATCH_N" 'BEGIN{print n/(ms/1000)}')" "$(ratio "$t" "$curl_ms")" \
      "${counts%% *}" "$BATCH_N"
    rm -rf "${dl:?}/${names[$i]}"
  done
}

describe_machine() {
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- CPU: $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || uname -m)"
  echo "- Memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || echo unknown); kernel $(uname -r)"
  echo "- Load average at start: $LOAD_AT_START"
  echo "- Tools: $("$WATCHDOG" --version 2>/dev/null | head -1); $(timeout --version | head -1);" \
    "$(curl --version | head -1 | cut -d' ' -f1-2); $(aria2c --version 2>/dev/null | head -1);" \
    "$(wget2 --version 2>/dev/null | head -1 | cut -d' ' -f1-3); $(hyperfine --version)"
  [ -n "$BASE" ] && echo "- Baseline binary beside this build: $BASE"
  echo "- Downloads on $(stat -fc %T "$DL"); the on-disk runs on $(stat -fc %T "$OUT")"
}

run_benchmarks() {
  local which
  for which in "$@"; do
    case "$which" in
      supervise) bench_supervise ;;
      fetch) bench_fetch ;;
      batch) bench_batch ;;
      memory) bench_batch_memory; bench_report_memory ;;
      report-memory) bench_report_memory ;;
      badnet) bench_badnet ;;
      ab) bench_batch_ab ;;
      image) bench_image ;;
      proxy) bench_proxy ;;
      all)
        bench_supervise; bench_fetch; bench_batch; bench_image; bench_proxy
        # The lab needs root (network namespaces); elsewhere the rest still runs.
        if [ "$(id -u)" = 0 ]; then bench_badnet; else echo "== badnet: left out (needs root)"; fi ;;
      *) echo "bench: unknown benchmark '$which' (supervise, fetch, batch, memory, report-memory, badnet, ab, image, proxy, all)" >&2; exit 2 ;;
    esac
  done
}

[ $# -gt 0 ] || set -- all
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
if [ "$*" = all ] || [ -n "${BENCH_PUBLISH:-}" ]; then
  # A full run (or BENCH_PUBLISH=1) also writes BENCHMARKS.md: the machine, then every figure as
  # printed. Commit it from a quiet run.
  need aria2c aria2
  want wget2 wget2 || true
  # The benchmarks run in the pipeline's subshell, which has no EXIT trap: it stops its own servers,
  # which would otherwise hold the pipe open and keep tee waiting.
  { run_benchmarks "$@"; stop_servers; } 2>&1 | tee "$OUT/figures.txt"
  {
    echo "# Benchmarks"
    echo
    echo "Written by \`scripts/bench.sh $*\`; every comparison ran side by side in the same run, and"
    echo "figures are medians (hyperfine) unless a line says otherwise. Only 127.0.0.1 was contacted."
    echo
    describe_machine
    echo
    echo '```'
    grep -v 'Warning: Statistical outliers\|quiet PC without any interferences\|^ *$' "$OUT/figures.txt"
    echo '```'
  } >BENCHMARKS.md
  echo "bench: wrote BENCHMARKS.md" >&2
else
  run_benchmarks "$@"
fi
