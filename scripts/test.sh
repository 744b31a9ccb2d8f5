#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (nginx for the real-server
# tests, curl for the supervised-curl test, util-linux's unshare/setpriv for the containment tests,
# Squid (built with OpenSSL, to intercept TLS), htpasswd, Dante and OpenSSH (its SOCKS4a) for the
# proxy tests, perl and make to build the OpenSSL and libcurl that go into the binary, PyYAML for the
# README's Kubernetes manifest, promtool from Debian's prometheus for the metrics files, Chromium for
# the report page), then `cargo test` with the test hooks built in (`--features test-hooks`; a build
# for users has none). Extra arguments go to `cargo test`.
#
# A test whose tool or privilege is missing fails; WATCHDOG_TEST_ALLOW_SKIP=1 lets it say so and pass
# instead, for a machine where it cannot run (this script and CI never set it).
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
# Squid, Dante and OpenSSH for the proxy tests; make and perl build the bundled libcurl and OpenSSL.
# squid-openssl is Debian's Squid with TLS interception: it replaces the `squid` package (they
# conflict) and serves every proxy test.
squid_build=$(/usr/sbin/squid -v 2>/dev/null || squid -v 2>/dev/null || true)
case "$squid_build" in *--with-openssl*) ;; *) missing+=(squid-openssl) ;; esac
[ -x /usr/lib/squid/basic_ncsa_auth ] && [ -x /usr/lib/squid/security_file_certgen ] ||
  missing+=(squid-openssl)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
[ -x /usr/sbin/danted ] || command -v danted >/dev/null 2>&1 || missing+=(dante-server)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v make >/dev/null 2>&1 || missing+=(make)
perl -MIPC::Cmd -e 1 >/dev/null 2>&1 || missing+=(perl)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
# promtool checks the --metrics files; headless Chromium opens the report --html page.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing ${missing[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The tests start their own nginx, Squid, Dante and sshd on loopback ports; system ones are not
    # needed.
    for service in nginx squid danted ssh prometheus; do service "$service" stop >/dev/null 2>&1 || true; done
  else
    echo "test: missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
export PATH="$PATH:/usr/sbin"
exec cargo test --locked --features test-hooks "$@"
