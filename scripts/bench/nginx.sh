#!/usr/bin/env bash
# Runs a throwaway nginx for scripts/bench.sh, in the foreground, from a configuration generated in DIR:
#   scripts/bench/nginx.sh DIR PORT
# serves DIR/www on 127.0.0.1:PORT with its pid file, logs and temp paths under DIR. One process
# (no master), so the caller's `kill PID` stops it. Access logging is off to keep the server's cost
# out of the measurements; keep-alive is nginx's default (1000 requests per connection).
set -euo pipefail
dir=$(cd "$1" && pwd)
port=$2
mkdir -p "$dir/www" "$dir/tmp"
cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/client;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000;
    server {
        listen 127.0.0.1:$port backlog=1024;
        root $dir/www;
    }
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
exec "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
