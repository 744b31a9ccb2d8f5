#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (nginx for the real-server
# tests, curl for the supervised-curl test), then `cargo test`. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# setsid for the process-tree tests; setpriv and unshare for the containment tests (as nobody, and
# without user namespaces).
for tool in setsid setpriv unshare; do
  command -v "$tool" >/dev/null 2>&1 || { missing+=(util-linux); break; }
done
# script(1) drives an interactive bash in a pseudo-terminal (Ctrl-C on a loop of watchdog calls);
# python3 checks what subprocess sees of a death by a signal.
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing ${missing[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The tests start their own nginx on loopback ports; a system one is not needed.
    service nginx stop >/dev/null 2>&1 || true
  else
    echo "test: missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
export PATH="$PATH:/usr/sbin"
exec cargo test --locked "$@"
