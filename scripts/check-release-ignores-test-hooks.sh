#!/usr/bin/env bash
# A binary built for users ignores the test hooks: with WATCHDOG_TEST_SILENT_HOSTS naming the server,
# `watchdog batch` against a healthy server on 127.0.0.1 still delivers every item, whole, with exit 0
# and without hanging (the hook, honoured, makes the resolver silent, and `-t 0 --stall 0` never ends).
#
#   scripts/check-release-ignores-test-hooks.sh [WATCHDOG]   # default: a fresh release build
#
# WATCHDOG's download worker, watchdog-fetch, must be beside it (batch workers run it); the test hooks
# are read there.
#
# Given a binary built with `--features test-hooks`, the check fails: that is how it was shown able to.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  WATCHDOG=$1
else
  cargo build --release --locked --quiet
  WATCHDOG=$PWD/target/release/watchdog
fi
ITEMS=20
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/site" "$work/out"
for i in $(seq "$ITEMS"); do head -c $((1000 * i)) /dev/urandom >"$work/site/$i.bin"; done
python3 - "$work/site" >"$work/port" 2>/dev/null <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
for i in $(seq "$ITEMS"); do echo "http://127.0.0.1:$port/$i.bin"; done >"$work/list"
code=0
WATCHDOG_TEST_SILENT_HOSTS=127.0.0.1,localhost timeout 60 "$WATCHDOG" batch "$work/list" \
  --out "$work/out" -t 0 --stall 0 --retries 0 -j 4 -q || code=$?
if [ "$code" != 0 ]; then
  echo "check-release-ignores-test-hooks: FAILED: watchdog batch exited $code (124: it hung)" >&2
  exit 1
fi
for i in $(seq "$ITEMS"); do
  if ! cmp -s "$work/site/$i.bin" "$work/out/$i.bin"; then
    echo "check-release-ignores-test-hooks: FAILED: $i.bin was not delivered whole" >&2
    exit 1
  fi
done
echo "check-release-ignores-test-hooks: $ITEMS of $ITEMS items delivered with WATCHDOG_TEST_SILENT_HOSTS set"
