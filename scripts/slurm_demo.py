#!/usr/bin/env python3
"""Helpers of scripts/slurm-demo.sh: a loopback server for the lists, and the checks of the reports.

  slurm_demo.py serve PORT_FILE LOG_FILE       serve on 127.0.0.1 until killed; the port goes to PORT_FILE,
                                               one line per request ("GET /img/x.jpg") to LOG_FILE
  slurm_demo.py list BASE N [SLOW [PREFIX]]    print a list of N items on BASE, every SLOW-th one slow
                                               (0: none), names starting with PREFIX
  slurm_demo.py check-array LIST OUT SHARDS    the shard reports are disjoint, cover LIST, files intact
  slurm_demo.py check-requeue LIST OUT TASK LOG  the requeued TASK resumed without fetching again

Routes: /img/NAME answers at once; /slow/NAME sends the same body in 10 slices 0.5 s apart (5 s, never
silent for long enough to trip --stall 3, well inside --timeout 10). The body of NAME is a JPEG header and
a few kilobytes derived from NAME, so every file can be checked byte for byte.
"""
import hashlib
import http.server
import json
import os
import sys
import threading
import time


def body(name):
    seed = hashlib.sha256(name.encode()).digest()
    length = 2000 + seed[0] * 40
    out = bytearray(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01")
    block = seed
    while len(out) < length:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:length])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_lock = threading.Lock()
    log_file = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        with Handler.log_lock:
            Handler.log_file.write(f"GET {self.path}\n")
            Handler.log_file.flush()
        parts = self.path.split("/", 2)
        if len(parts) != 3 or parts[1] not in ("img", "slow"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body(parts[2])
        try:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if parts[1] == "img":
                self.wfile.write(data)
                return
            step = len(data) // 10 + 1
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass


def serve(port_file, log_path):
    Handler.log_file = open(log_path, "a", encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_report(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def fail(message):
    sys.exit(f"slurm-demo: FAILED: {message}")


def check_files(out, lines):
    for line in lines:
        if line["status"] != "ok":
            continue
        name = line["url"].rsplit("/", 1)[1]
        with open(os.path.join(out, line["path"]), "rb") as f:
            got = f.read()
        if got != body(name):
            fail(f"{line['path']} is not what {line['url']} served")
        if hashlib.sha256(got).hexdigest() != line["sha256"]:
            fail(f"{line['path']}: the report's sha256 is not the file's")


def check_array(list_path, out, shards):
    """Every item is in the report of exactly one task, whose lines for it end ok or skipped after an
    ok (a requeued task reports again what it had finished, as skipped); every file is intact."""
    urls = set(read_list(list_path))
    owner = {}
    statuses = {}
    for k in range(int(shards)):
        report = os.path.join(out, f"report-{k}.jsonl")
        if not os.path.exists(report):
            fail(f"task {k} wrote no report ({report})")
        lines = read_report(report)
        for line in lines:
            url = line["url"]
            if owner.setdefault(url, k) != k:
                fail(f"{url} is in the reports of tasks {owner[url]} and {k}")
            statuses.setdefault(url, []).append(line["status"])
        check_files(out, lines)
    for url, got in statuses.items():
        if "ok" not in got or got[-1] not in ("ok", "skipped"):
            fail(f"{url} (task {owner[url]}) ended {got}")
    if set(owner) != urls:
        fail(f"{len(urls - set(owner))} items of the list are in no report")
    print(f"slurm-demo: {len(urls)} of {len(urls)} items in {shards} disjoint reports, every file intact",
          file=sys.stderr)


def check_requeue(list_path, out, task, log_path):
    report = os.path.join(out, f"report-{task}.jsonl")
    lines = read_report(report)
    by_url = {}
    for line in lines:
        by_url.setdefault(line["url"], []).append(line["status"])
    resumed = [u for u, s in by_url.items() if s[:1] == ["ok"] and "skipped" in s[1:]]
    twice = [u for u, s in by_url.items() if s.count("ok") > 1]
    if not resumed:
        fail(f"task {task}: no item finished before the requeue was skipped after it: {by_url}")
    if twice:
        fail(f"task {task}: downloaded twice: {twice}")
    with open(log_path, encoding="utf-8") as f:
        requests = [line.split(" ", 1)[1].strip() for line in f if line.startswith("GET ")]
    for url in resumed:
        path = "/" + url.split("/", 3)[3]
        if requests.count(path) != 1:
            fail(f"{url} finished before the requeue but was requested {requests.count(path)} times")
    check_files(out, lines)
    print(f"slurm-demo: task {task} requeued mid-run: {len(resumed)} finished item(s) skipped after it and "
          f"not requested again, {len(by_url) - len(resumed)} other(s) fetched after it",
          file=sys.stderr)


def make_list(base, n, slow=0, prefix=""):
    for i in range(int(n)):
        kind = "slow" if int(slow) and i % int(slow) == 0 else "img"
        print(f"{base}/{kind}/{prefix}{i:04d}.jpg")


def main():
    commands = {"serve": serve, "list": make_list, "check-array": check_array, "check-requeue": check_requeue}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])


main()
