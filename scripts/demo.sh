#!/usr/bin/env bash
# watchdog's main job on a self-contained loopback demo: a flaky local server (scripts/testserver.py), then downloads that
# succeed, stall, drip past their deadline and serve the wrong content, each supervised by watchdog.
# Needs only cargo and python3; no network beyond 127.0.0.1.
set -uo pipefail
cd "$(dirname "$0")/.."

# WATCHDOG=/path/to/watchdog runs that binary instead of building this tree (release).
if [ -z "${WATCHDOG:-}" ]; then
  cargo build --release --quiet || exit 1
  WATCHDOG=$PWD/target/release/watchdog
fi
OUT=$(mktemp -d /tmp/watchdog-demo.XXXXXX)
python3 scripts/testserver.py >"$OUT/port" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 200); do [ -s "$OUT/port" ] && break; sleep 0.05; done
[ -s "$OUT/port" ] || { echo "demo: the test server (scripts/testserver.py) did not start" >&2; exit 1; }
BASE="http://127.0.0.1:$(cat "$OUT/port")"
mkdir -p "$OUT/imgs"

show() {
  local title=$1; shift
  printf '\n\033[1m== %s\033[0m\n$ watchdog %s\n' "$title" "$*"
  local started=$SECONDS
  "$WATCHDOG" "$@"
  local code=$?
  printf -- '-> exit %d after %ds\n' "$code" $((SECONDS - started))
}

show "A good download, with a progress bar" \
  --timeout 10 --stall 2 -- fetch "$BASE/photo.png" -o "$OUT/imgs/photo.png"
show "A server that goes silent: --stall stops it after 2 s (exit 124)" \
  --timeout 10 --stall 2 -v -- fetch "$BASE/stall.jpg" -o "$OUT/imgs/stall.jpg"
show "A server that drips bytes forever: never silent, so the 3 s deadline stops it (exit 124)" \
  --timeout 3 --stall 2 -v -- fetch "$BASE/drip.jpg" -o "$OUT/imgs/drip.jpg"
show "A proxy login page served as 200: refused by --expect image (exit 16)" \
  --timeout 10 -- fetch --expect image "$BASE/login.jpg" -o "$OUT/imgs/login.jpg"
show "A 404 (exit 14)" \
  --timeout 10 -- fetch "$BASE/missing.jpg" -o "$OUT/imgs/missing.jpg"
show "Any command: a shell whose background job escapes with setsid is still swept (exit 124)" \
  --timeout 1 -v -- sh -c 'setsid sleep 600 & sleep 600'

printf '%s\n' "$BASE/photo.png" "$BASE/stall.jpg" "$BASE/drip.jpg" "$BASE/login.jpg" "$BASE/missing.jpg" \
  "ftp://127.0.0.1/not-http.jpg" > "$OUT/list.txt"
for i in 1 2 3 4 5 6; do printf '%s\tbatch/copy-%d.png\n' "$BASE/photo.png" "$i"; done >> "$OUT/list.txt"
show "Batch: 12 items, 4 at a time, 3 s deadline and 2 s stall per item, no retries (exit 1: some failed)" \
  batch "$OUT/list.txt" --out "$OUT/imgs" --jobs 4 --timeout 3 --stall 2 --retries 0 --expect image
printf '\n\033[1m== The report\033[0m (%s)\n' "$OUT/imgs/report.jsonl"
cut -c1-160 "$OUT/imgs/report.jsonl"

printf '\n\033[1m== What is on disk\033[0m: only complete files, no partial ones\n'
ls -laR "$OUT/imgs"
echo "(demo files are in $OUT)"
