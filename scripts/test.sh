#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (nginx for the real-server
# tests, curl for the supervised-curl test, util-linux's unshare/setpriv for the containment tests,
# PyYAML for the README's Kubernetes manifest), then `cargo test` with the test hooks built in
# (`--features test-hooks`; a build for users has none). Extra arguments go to `cargo test`.
#
# A test whose tool or privilege is missing fails; WATCHDOG_TEST_ALLOW_SKIP=1 lets it say so and pass
# instead, for a machine where it cannot run (this script and CI never set it).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v setsid >/dev/null 2>&1 || missing+=(util-linux)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
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
exec cargo test --locked --features test-hooks "$@"
